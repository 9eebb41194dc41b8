"""Online diarization of one session: speaker turns inside an utterance, speakers across them.

For each segmented utterance (:meth:`SessionSpeakers.process`):

1. **Turns.** The voice just before and just after every point inside the utterance is
   compared (two adjacent analysis windows). Where they differ enough
   (cosine below ``change_threshold``, at a local minimum, at least ``min_turn_ms`` from
   the edges and from another change) the speaker changed; the boundary then moves to the
   nearest quiet stretch within 700 ms across which the voices differ about as much, since
   two voices usually meet in a short gap. Neighbouring turns whose
   voices still match are merged again.
2. **Speakers.** Each turn's voice (mean of its windows) goes to the closest speaker
   centroid when the cosine reaches ``assign_threshold``; otherwise a new speaker opens,
   unless the turn is too short to judge (under ``min_new_speaker_ms``): such fragments
   inherit the neighbouring turn's speaker. Centroids are duration-weighted running means
   and only learn from turns long enough to trust.
3. **Voiceprints.** A new speaker whose voice matches a stored voiceprint (same embedding
   backend, cosine at least ``voiceprint_threshold``) is labelled with its name; a speaker
   that opened unrecognised is checked again as its centroid firms up.

Everything here is plain data and numpy, so the state serialises to Redis
(:meth:`SessionSpeakers.to_state`) and a restarted worker carries on with the same ids.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from habla_contracts import SPEAKER_COLORS

from .config import DiarizeConfig
from .embedders import SAMPLE_RATE, Windows, mean_voice, normalise

__all__ = [
    "Outcome",
    "SessionSpeakers",
    "Speaker",
    "Turn",
    "Voiceprint",
    "best_cut",
    "change_points",
    "quiet_stretches",
]

F32 = npt.NDArray[np.float32]

MIN_JUDGE_MS = 800  # a turn shorter than this always inherits its neighbour's speaker
MIN_LEARN_MS = 1000  # centroids learn only from turns at least this long
MAX_LEARN_MS = 10000  # ... and weigh one turn at most this much
SNAP_MS = 700  # a change point may move to a quiet stretch within this distance
QUIET_FRACTION = 0.1  # a 20 ms frame below this share of the utterance's loud level is quiet
MIN_VOICED = 0.5  # windows less voiced than this are left out of change detection and means
RECHECK_MS = 4000  # an unrecognised speaker is compared with the voiceprints again every N ms of speech


@dataclass(frozen=True)
class Voiceprint:
    id: str
    name: str
    is_user: bool
    backend: str
    vector: F32


@dataclass
class Speaker:
    id: str
    number: int
    total: F32  # duration-weighted sum of the voices learnt from
    speech_ms: int = 0
    label: str = ""
    color: str = ""
    voiceprint_id: str = ""
    is_user: bool = False
    named: bool = False  # the user named it: voiceprints never relabel it
    checked_ms: int = 0  # speech_ms at the last voiceprint check

    @property
    def centroid(self) -> F32:
        return normalise(self.total)

    def learn(self, voice: F32, duration_ms: int) -> None:
        if duration_ms >= MIN_LEARN_MS:
            self.total = (self.total + voice * (min(duration_ms, MAX_LEARN_MS) / 1000)).astype(np.float32)
        self.speech_ms += duration_ms

    def to_state(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.number,
            "total": self.total.astype("<f4").tobytes(),
            "speech_ms": self.speech_ms,
            "label": self.label,
            "color": self.color,
            "voiceprint_id": self.voiceprint_id,
            "is_user": self.is_user,
            "named": self.named,
            "checked_ms": self.checked_ms,
        }

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> Speaker:
        return cls(
            id=d["id"],
            number=d["number"],
            total=np.frombuffer(d["total"], dtype="<f4").astype(np.float32),
            speech_ms=d["speech_ms"],
            label=d["label"],
            color=d["color"],
            voiceprint_id=d.get("voiceprint_id", ""),
            is_user=d.get("is_user", False),
            named=d.get("named", False),
            checked_ms=d.get("checked_ms", 0),
        )


@dataclass(frozen=True)
class Turn:
    start_ms: int  # from the utterance's start
    end_ms: int
    speaker: str
    similarity: float  # to the speaker's centroid before learning (1.0 opened it, 0.0 inherited)


@dataclass
class Outcome:
    turns: list[Turn]
    joined: list[Speaker] = field(default_factory=list)  # opened by this utterance
    recognised: list[tuple[Speaker, Voiceprint, float]] = field(default_factory=list)


def frame_levels(audio: F32, frame_ms: int = 20) -> F32:
    """RMS level of each ``frame_ms`` frame."""
    frame = SAMPLE_RATE * frame_ms // 1000
    n = audio.size // frame
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    power = np.mean(audio[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1)
    return np.asarray(np.sqrt(power), dtype=np.float32)


def quiet_level(levels: F32) -> float:
    """Frames below this level count as a gap between words or voices."""
    return float(QUIET_FRACTION * np.percentile(levels, 95)) if levels.size else 0.0


def voiced_fraction(w: Windows, levels: F32, frame_ms: int = 20) -> F32:
    """Share of each window's frames above the quiet level (a window of silence has a
    meaningless voice: it is left out of change detection and voice means)."""
    voiced = levels > quiet_level(levels)
    out = np.zeros(len(w), dtype=np.float32)
    for i, start in enumerate(w.starts_ms):
        part = voiced[int(start) // frame_ms : (int(start) + w.length_ms) // frame_ms]
        out[i] = float(part.mean()) if part.size else 0.0
    return out


def quiet_stretches(levels: F32, t_ms: int, reach_ms: int = SNAP_MS, frame_ms: int = 20) -> list[int]:
    """Middles (ms) of the quiet stretches within ``reach_ms`` of ``t_ms``."""
    threshold = quiet_level(levels)
    lo = max(0, (t_ms - reach_ms) // frame_ms)
    hi = min(levels.size, (t_ms + reach_ms) // frame_ms + 1)
    out = []
    i = lo
    while i < hi:
        if levels[i] > threshold:
            i += 1
            continue
        j = i
        while j < hi and levels[j] <= threshold:
            j += 1
        out.append((i + j) // 2 * frame_ms + frame_ms // 2)
        i = j
    return out


def best_cut(w: Windows, levels: F32, t_ms: int, usable: npt.NDArray[np.bool_] | None = None) -> int:
    """Where exactly the voice changes near ``t_ms``: two voices usually meet in a short gap,
    so the nearest quiet stretch, unless the voices either side of it are more alike than
    at ``t_ms`` itself (a pause inside one speaker's turn); ``t_ms`` when no gap qualifies."""
    here = _side_similarity(w, t_ms, usable)
    for c in sorted(quiet_stretches(levels, t_ms), key=lambda c: abs(c - t_ms)):
        if _side_similarity(w, c, usable) <= here + 0.05:
            return c
    return t_ms


def _side_similarity(w: Windows, t_ms: int, usable: npt.NDArray[np.bool_] | None, reach_ms: int = 2000) -> float:
    """Cosine between the voice of the windows just before ``t_ms`` and just after it."""
    ends = w.starts_ms + w.length_ms
    before = (w.starts_ms >= t_ms - reach_ms) & (ends <= t_ms)
    after = (w.starts_ms >= t_ms) & (ends <= t_ms + reach_ms)
    if usable is not None:
        before, after = before & usable, after & usable
    if not before.any() or not after.any():
        return 1.0
    return float(normalise(w.vectors[before].mean(axis=0)) @ normalise(w.vectors[after].mean(axis=0)))


def change_points(
    w: Windows, duration_ms: int, *, threshold: float, min_turn_ms: int, usable: npt.NDArray[np.bool_] | None = None
) -> list[int]:
    """Where the voice changes inside one utterance (ms from its start), before snapping.

    A point ``t`` on the window grid scores the cosine between the window ending at ``t``
    and the window starting there (both ``usable``: voiced enough); points below
    ``threshold`` that are the lowest within half a window either side are taken, lowest
    first, keeping ``min_turn_ms`` apart and from both ends."""
    if len(w) < 2 or duration_ms < 2 * min_turn_ms:
        return []
    ok = np.ones(len(w), dtype=bool) if usable is None else usable
    index = {int(s): i for i, s in enumerate(w.starts_ms)}
    points: list[tuple[int, float]] = []
    for i, start in enumerate(w.starts_ms):
        t = int(start)
        left = index.get(t - w.length_ms)
        if left is None or t + w.length_ms > duration_ms or not (ok[left] and ok[i]):
            continue
        points.append((t, float(w.vectors[left] @ w.vectors[i])))
    half = w.length_ms // 2
    taken: list[int] = []
    for t, sim in sorted(points, key=lambda p: p[1]):
        if sim >= threshold:
            break
        if t < min_turn_ms or duration_ms - t < min_turn_ms:
            continue
        if any(abs(t - u) < min_turn_ms for u in taken):
            continue
        if any(s < sim for u, s in points if abs(u - t) <= half):
            continue  # not a local minimum: a lower point nearby speaks for this change
        taken.append(t)
    return sorted(taken)


class SessionSpeakers:
    """The speakers of one session and how to assign new speech to them."""

    def __init__(self, speakers: Sequence[Speaker] = (), last_speaker: str = "") -> None:
        self.speakers: list[Speaker] = list(speakers)
        self.last_speaker = last_speaker

    def get(self, speaker_id: str) -> Speaker | None:
        return next((s for s in self.speakers if s.id == speaker_id), None)

    # --- one utterance -------------------------------------------------------------

    def process(
        self,
        w: Windows,
        audio: F32,
        config: DiarizeConfig,
        voiceprints: Sequence[Voiceprint] = (),
    ) -> Outcome:
        """Split ``audio`` (one utterance, whose windows are ``w``) into turns, assign each
        to a speaker (opening new ones as needed) and learn from it."""
        duration = audio.size * 1000 // SAMPLE_RATE
        levels = frame_levels(audio)
        usable = voiced_fraction(w, levels) >= MIN_VOICED
        bounds = self._turn_bounds(w, levels, usable, duration, config)
        outcome = Outcome(turns=[])
        previous = self.last_speaker
        for start, end in bounds:
            voice = mean_voice(w, start, end, usable)
            speaker, similarity, opened = self._assign(voice, end - start, previous, config)
            if opened:
                self._label_new(speaker, voice, voiceprints, config, outcome)
            if similarity > 0.0 or opened:
                speaker.learn(voice, end - start)
            else:
                speaker.speech_ms += end - start
            outcome.turns.append(Turn(start, end, speaker.id, round(similarity, 4)))
            previous = speaker.id
        outcome.turns = _merge_same(outcome.turns)
        self.last_speaker = previous
        self._recheck(voiceprints, config, outcome)
        return outcome

    def _turn_bounds(
        self, w: Windows, levels: F32, usable: npt.NDArray[np.bool_], duration: int, config: DiarizeConfig
    ) -> list[tuple[int, int]]:
        found = change_points(
            w, duration, threshold=config.change_threshold, min_turn_ms=config.min_turn_ms, usable=usable
        )
        edges = [0]
        for t in found:
            cut = best_cut(w, levels, t, usable)
            if cut - edges[-1] >= config.min_turn_ms // 2 and duration - cut >= config.min_turn_ms // 2:
                edges.append(cut)
        edges.append(duration)
        merged = True
        while merged and len(edges) > 2:  # a change whose two sides still sound alike was noise
            merged = False
            for i in range(1, len(edges) - 1):
                a = mean_voice(w, edges[i - 1], edges[i], usable)
                b = mean_voice(w, edges[i], edges[i + 1], usable)
                if float(a @ b) >= config.assign_threshold:
                    del edges[i]
                    merged = True
                    break
        return list(itertools.pairwise(edges))

    def _assign(
        self, voice: F32, duration_ms: int, previous: str, config: DiarizeConfig
    ) -> tuple[Speaker, float, bool]:
        if not self.speakers:
            return self._open(voice), 1.0, True
        sims = [float(s.centroid @ voice) for s in self.speakers]
        best = int(np.argmax(sims))
        neighbour = self.get(previous)
        if duration_ms < MIN_JUDGE_MS and neighbour is not None:
            return neighbour, 0.0, False
        if sims[best] >= config.assign_threshold:
            return self.speakers[best], sims[best], False
        if duration_ms < config.min_new_speaker_ms:
            return (neighbour, 0.0, False) if neighbour is not None else (self.speakers[best], sims[best], False)
        if len(self.speakers) >= config.max_speakers:
            return self.speakers[best], sims[best], False
        return self._open(voice), 1.0, True

    def _open(self, voice: F32) -> Speaker:
        number = len(self.speakers) + 1
        speaker = Speaker(
            id=f"S{number}",
            number=number,
            total=np.zeros_like(voice),
            label=f"Speaker {number}",
            color=SPEAKER_COLORS[(number - 1) % len(SPEAKER_COLORS)],
        )
        self.speakers.append(speaker)
        return speaker

    # --- voiceprints ----------------------------------------------------------------

    def _match(
        self, voice: F32, voiceprints: Sequence[Voiceprint], config: DiarizeConfig
    ) -> tuple[Voiceprint, float] | None:
        taken = {s.voiceprint_id for s in self.speakers if s.voiceprint_id}
        best: tuple[Voiceprint, float] | None = None
        for vp in voiceprints:
            if vp.id in taken or vp.vector.shape != voice.shape:
                continue
            sim = float(vp.vector @ voice)
            if sim >= config.voiceprint_threshold and (best is None or sim > best[1]):
                best = (vp, sim)
        return best

    def _label_new(
        self, speaker: Speaker, voice: F32, voiceprints: Sequence[Voiceprint], config: DiarizeConfig, out: Outcome
    ) -> None:
        out.joined.append(speaker)
        found = self._match(voice, voiceprints, config)
        if found is not None:
            vp, sim = found
            speaker.voiceprint_id, speaker.label, speaker.is_user = vp.id, vp.name, vp.is_user
            out.recognised.append((speaker, vp, sim))

    def _recheck(self, voiceprints: Sequence[Voiceprint], config: DiarizeConfig, out: Outcome) -> None:
        joined = {s.id for s in out.joined}
        for speaker in self.speakers:
            if speaker.voiceprint_id or speaker.named or speaker.id in joined:
                continue
            if speaker.speech_ms - speaker.checked_ms < RECHECK_MS or not speaker.total.any():
                continue
            speaker.checked_ms = speaker.speech_ms
            found = self._match(speaker.centroid, voiceprints, config)
            if found is not None:
                vp, sim = found
                speaker.voiceprint_id, speaker.label, speaker.is_user = vp.id, vp.name, vp.is_user
                out.recognised.append((speaker, vp, sim))

    # --- persistence ----------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {"speakers": [s.to_state() for s in self.speakers], "last_speaker": self.last_speaker}

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> SessionSpeakers:
        return cls([Speaker.from_state(s) for s in d.get("speakers", [])], d.get("last_speaker", ""))


def _merge_same(turns: list[Turn]) -> list[Turn]:
    """Adjacent turns given to the same speaker are one turn."""
    out: list[Turn] = []
    for t in turns:
        if out and out[-1].speaker == t.speaker:
            prev = out[-1]
            out[-1] = Turn(prev.start_ms, t.end_ms, prev.speaker, max(prev.similarity, t.similarity))
        else:
            out.append(t)
    return out
