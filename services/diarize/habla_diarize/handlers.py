"""Event handlers of the diarize service.

* ``speech.segmented`` (:class:`UtteranceSegmented`) -> the utterance's speaker turns:
  :class:`SpeakerJoined` for each new voice (and :class:`SpeakerRenamed` when a stored
  voiceprint recognises one), one :class:`SpeakerAssigned` fact, then one
  :class:`SpeechTurn` per turn for the asr stage. Every utterance yields at least one
  turn, always: with ``DIARIZE_BACKEND=none``, or when the consumer gives up on it, the
  whole utterance passes through with no speaker.
* ``asr.final`` (:class:`TranscriptFinal`) -> role evidence; in classroom mode a
  :class:`SpeakerRoleSuggested` whenever the suggested roles change.
* ``speaker.renamed`` from the user -> the name sticks to the speaker (voiceprints never
  overwrite it); with ``remember`` or ``is_user`` its voice is kept as a
  :class:`VoiceprintSaved` for later sessions.
* ``voiceprint.saved`` / ``voiceprint.deleted`` -> the stored voices compared with new
  speakers.

Event ids derive from the input's, and the result of each utterance is kept in the
session state (Redis) before anything is published, so redeliveries republish the same
events (dropped by the bus) and a restarted worker keeps the same speaker ids.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from habla_common.audio import pcm16_to_float32
from habla_contracts import (
    Event,
    SpeakerAssigned,
    SpeakerJoined,
    SpeakerRenamed,
    SpeakerRoleSuggested,
    SpeechTurn,
    TranscriptFinal,
    UtteranceSegmented,
    VoiceprintDeleted,
    VoiceprintSaved,
    derived_id,
)

from .config import DiarizeConfig
from .domain import SessionSpeakers, Voiceprint
from .embedders import SAMPLE_RATE, SpeakerEmbedder, normalise
from .roles import RoleStats, suggest_roles
from .store import StateStore

__all__ = ["DiarizeHandler", "Publish", "SettingsLookup"]

log = logging.getLogger("habla.diarize")

SettingsLookup = Callable[[str], Mapping[str, str]]
Publish = Callable[[Event], Any]

_KEEP_RESULTS = 32  # utterance results kept per session for redeliveries
_KEEP_FINALS = 64  # final ids remembered per session so a redelivered final counts once


class DiarizeHandler:
    def __init__(
        self,
        embedder: SpeakerEmbedder | None,
        config: DiarizeConfig,
        store: StateStore,
        settings_lookup: SettingsLookup,
        *,
        voiceprints: Iterable[VoiceprintSaved | VoiceprintDeleted] = (),
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.embedder = embedder
        self.config = config
        self.store = store
        self.settings_lookup = settings_lookup
        self.clock = clock
        self._voiceprints: dict[str, Voiceprint] = {}
        for e in voiceprints:
            self._on_voiceprint(e)

    # --- entry points -----------------------------------------------------------

    def handle(self, event: Event, publish: Publish) -> None:
        if isinstance(event, UtteranceSegmented):
            self.on_utterance(event, publish)
        elif isinstance(event, TranscriptFinal):
            self.on_final(event, publish)
        elif isinstance(event, SpeakerRenamed):
            self.on_renamed(event, publish)
        elif isinstance(event, VoiceprintSaved | VoiceprintDeleted):
            self._on_voiceprint(event)

    def select(self, batch: list[Event]) -> list[Event]:
        """Utterances first (they hold up the captions), then names, voiceprints and finals."""
        return sorted(batch, key=lambda e: not isinstance(e, UtteranceSegmented))

    def give_up(self, event: Event, reason: str, publish: Publish) -> None:
        """The consumer is dead-lettering ``event``: an utterance still reaches the asr
        stage, whole and without a speaker, so no final is lost."""
        if not isinstance(event, UtteranceSegmented):
            return
        log.error("gave up on speakers of %s/%s: %s", event.session_id, event.utterance_id, reason.strip())
        duration = len(event.pcm) // 2 * 1000 // max(1, event.sample_rate)
        for turn in self._turn_events(event, [{"start": 0, "end": duration, "speaker": "", "similarity": 0.0}]):
            publish(turn)

    @property
    def voiceprints(self) -> list[Voiceprint]:
        """Stored voices comparable with this embedder's."""
        name = self.embedder.name if self.embedder else ""
        return [v for v in self._voiceprints.values() if v.backend == name]

    # --- utterances -------------------------------------------------------------

    def on_utterance(self, ev: UtteranceSegmented, publish: Publish) -> None:
        state = self._load(ev.session_id)
        result = state["results"].get(ev.utterance_id)
        if result is None:
            result = self._diarize(ev, state)
            results = state["results"]
            results[ev.utterance_id] = result
            for old in list(results)[:-_KEEP_RESULTS]:
                del results[old]
            self.store.save(ev.session_id, state)
        for joined in result["joined"]:
            publish(
                SpeakerJoined(
                    session_id=ev.session_id,
                    event_id=derived_id(ev.event_id, "joined", joined["speaker"]),
                    **joined,
                )
            )
        for rec in result["recognised"]:
            publish(
                SpeakerRenamed(
                    session_id=ev.session_id,
                    event_id=derived_id(ev.event_id, "recognised", rec["speaker"]),
                    speaker=rec["speaker"],
                    name=rec["name"],
                    is_user=rec["is_user"],
                    source="voiceprint",
                )
            )
        turns = self._turn_events(ev, result["turns"])
        if self.embedder is not None:
            publish(
                SpeakerAssigned(
                    session_id=ev.session_id,
                    event_id=derived_id(ev.event_id, "assigned"),
                    utterance_id=ev.utterance_id,
                    index=ev.index,
                    speaker=turns[0].speaker,
                    turns=tuple(
                        {
                            "utterance_id": t.utterance_id,
                            "part": t.part,
                            "start_ms": t.start_ms,
                            "end_ms": t.end_ms,
                            "speaker": t.speaker,
                            "similarity": r["similarity"],
                        }
                        for t, r in zip(turns, result["turns"], strict=True)
                    ),
                    embed_ms=result["embed_ms"],
                    backend=self.embedder.name,
                )
            )
        for turn in turns:
            publish(turn)

    def _diarize(self, ev: UtteranceSegmented, state: dict[str, Any]) -> dict[str, Any]:
        audio = pcm16_to_float32(ev.pcm, ev.sample_rate)
        duration = audio.size * 1000 // SAMPLE_RATE
        if self.embedder is None or audio.size == 0:
            return {
                "turns": [{"start": 0, "end": duration, "speaker": "", "similarity": 0.0}],
                "joined": [],
                "recognised": [],
                "embed_ms": 0,
            }
        started = self.clock()
        speakers = SessionSpeakers.from_state(state["speakers"])
        windows = self.embedder.windows(audio, self.config.hop_ms)
        outcome = speakers.process(windows, audio, self.config, self.voiceprints)
        embed_ms = round(1000 * (self.clock() - started))
        state["speakers"] = speakers.to_state()
        recognised = {s.id: (vp, sim) for s, vp, sim in outcome.recognised}
        joined_ids = {s.id for s in outcome.joined}
        log.debug(
            "%s/%s: %d turns %s in %d ms",
            ev.session_id,
            ev.utterance_id,
            len(outcome.turns),
            [t.speaker for t in outcome.turns],
            embed_ms,
        )
        return {
            "turns": [
                {"start": t.start_ms, "end": t.end_ms, "speaker": t.speaker, "similarity": t.similarity}
                for t in outcome.turns
            ],
            "joined": [
                {
                    "speaker": s.id,
                    "number": s.number,
                    "label": s.label,
                    "color": s.color,
                    "voiceprint_id": s.voiceprint_id,
                    "is_user": s.is_user,
                    "similarity": round(recognised[s.id][1], 4) if s.id in recognised else 0.0,
                }
                for s in outcome.joined
            ],
            # speakers recognised after they joined (a joined one carries its name already)
            "recognised": [
                {"speaker": s.id, "name": vp.name, "is_user": vp.is_user}
                for s, vp, _ in outcome.recognised
                if s.id not in joined_ids
            ],
            "embed_ms": embed_ms,
        }

    def _turn_events(self, ev: UtteranceSegmented, turns: list[dict[str, Any]]) -> list[SpeechTurn]:
        """One SpeechTurn per turn; the first keeps the utterance's id (the live card's)."""
        bytes_per_ms = ev.sample_rate * 2 / 1000
        out = []
        for part, t in enumerate(turns):
            last = part == len(turns) - 1
            lo = int(t["start"] * bytes_per_ms) // 2 * 2
            hi = len(ev.pcm) if last else int(t["end"] * bytes_per_ms) // 2 * 2
            out.append(
                SpeechTurn(
                    session_id=ev.session_id,
                    event_id=derived_id(ev.event_id, "turn", part),
                    utterance_id=ev.utterance_id if part == 0 else derived_id(ev.utterance_id, "turn", part),
                    parent_id=ev.utterance_id,
                    index=ev.index,
                    part=part,
                    parts=len(turns),
                    speaker=t["speaker"],
                    start_ms=ev.start_ms + t["start"],
                    end_ms=ev.end_ms if last else ev.start_ms + t["end"],
                    sample_rate=ev.sample_rate,
                    pcm=ev.pcm[lo:hi],
                    reason=ev.reason if last else "speaker",
                    received_at=ev.received_at,
                    speech_end_ms=ev.speech_end_ms if last else ev.start_ms + t["end"],
                )
            )
        return out

    # --- transcripts: roles ---------------------------------------------------------

    def on_final(self, ev: TranscriptFinal, publish: Publish) -> None:
        if not ev.speaker or not ev.text.strip():
            return
        state = self._load(ev.session_id)
        seen: list[str] = state["finals"]
        if ev.event_id not in seen:
            roles = RoleStats.from_state(state["roles"])
            end = ev.speech_end_ms or ev.end_ms
            roles.add(ev.speaker, ev.text, end - ev.start_ms)
            suggestions = []
            if self.settings_lookup(ev.session_id).get("mode") == "classroom":
                suggestions = suggest_roles(roles)
            state["roles"] = roles.to_state()
            state["suggested"] = [
                {"speaker": s.speaker, "role": s.role, "confidence": s.confidence, "evidence": s.evidence}
                for s in suggestions
            ]
            seen.append(ev.event_id)
            del seen[:-_KEEP_FINALS]
            state["last_final"] = ev.event_id
            self.store.save(ev.session_id, state)
        if state.get("last_final") != ev.event_id:
            return  # an old redelivery: its suggestions went out with it
        for s in state.get("suggested", []):
            publish(
                SpeakerRoleSuggested(
                    session_id=ev.session_id,
                    event_id=derived_id(ev.event_id, "role", s["speaker"], s["role"]),
                    **s,
                )
            )

    # --- names and voiceprints ------------------------------------------------------

    def on_renamed(self, ev: SpeakerRenamed, publish: Publish) -> None:
        if ev.source != "user":
            return  # our own voiceprint recognitions
        state = self._load(ev.session_id)
        speakers = SessionSpeakers.from_state(state["speakers"])
        speaker = speakers.get(ev.speaker)
        if speaker is None:
            log.warning("rename of unknown speaker %s in %s ignored", ev.speaker, ev.session_id)
            return
        speaker.named, speaker.label, speaker.is_user = True, ev.name, ev.is_user
        saved: VoiceprintSaved | None = None
        if (ev.remember or ev.is_user) and self.embedder is not None and speaker.total.any():
            vp_id = speaker.voiceprint_id or derived_id(ev.event_id, "voiceprint")
            speaker.voiceprint_id = vp_id
            centroid = normalise(speaker.total)
            saved = VoiceprintSaved(
                session_id=ev.session_id,
                event_id=derived_id(ev.event_id, "voiceprint.saved"),
                voiceprint_id=vp_id,
                name=ev.name,
                is_user=ev.is_user,
                backend=self.embedder.name,
                dim=int(centroid.size),
                embedding=centroid.astype("<f4").tobytes(),
                speech_ms=speaker.speech_ms,
                speaker=speaker.id,
            )
        elif ev.remember or ev.is_user:
            log.warning("no voice to remember for %s in %s yet", ev.speaker, ev.session_id)
        state["speakers"] = speakers.to_state()
        self.store.save(ev.session_id, state)
        if saved is not None:
            self._on_voiceprint(saved)
            publish(saved)

    def _on_voiceprint(self, ev: VoiceprintSaved | VoiceprintDeleted) -> None:
        if isinstance(ev, VoiceprintDeleted):
            self._voiceprints.pop(ev.voiceprint_id, None)
            return
        vector = np.frombuffer(ev.embedding, dtype="<f4").astype(np.float32)
        if vector.size != ev.dim or vector.size == 0:
            log.warning("voiceprint %s has %d values, expected %d: ignored", ev.voiceprint_id, vector.size, ev.dim)
            return
        self._voiceprints[ev.voiceprint_id] = Voiceprint(
            ev.voiceprint_id, ev.name, ev.is_user, ev.backend, normalise(vector)
        )

    # --- state ----------------------------------------------------------------------

    def _load(self, session_id: str) -> dict[str, Any]:
        state = self.store.load(session_id) or {}
        state.setdefault("speakers", {})
        state.setdefault("roles", {})
        state.setdefault("results", {})
        state.setdefault("finals", [])
        return state
