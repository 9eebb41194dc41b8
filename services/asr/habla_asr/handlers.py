"""Event handlers of the asr service.

* ``speech.turn`` (:class:`SpeechTurn`: one speaker's part of a segmented utterance, from
  the diarize stage; a bare :class:`UtteranceSegmented` is accepted too) -> exactly one
  :class:`TranscriptFinal` per turn, always: when nothing usable was heard its ``text`` is
  empty and ``dropped`` says why. The final carries the turn's speaker and part. Its id is
  derived from the turn event's id, so a redelivered turn republishes the same final (the
  bus drops it).
* ``speech.window`` (:class:`SpeechWindow`) -> a best-effort :class:`TranscriptPartial`
  whose ``committed`` words never change (:class:`~habla_asr.agreement.LocalAgreement`
  per utterance). State of an utterance is dropped once its final is out, and at most
  ``max_utterances`` utterances are tracked (least recently used evicted).

:meth:`AsrHandler.select` decides what of a batch read from the streams gets work:
finals first, then only the newest window of each utterance still open; the rest is
acked untouched ("newest window wins, stale skipped while busy").
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from habla_common.metrics import observe_stage
from habla_contracts import (
    Event,
    SpeechTurn,
    SpeechWindow,
    TranscriptFinal,
    TranscriptPartial,
    UtteranceSegmented,
    derived_id,
    source_language,
)

from .adapters import Transcriber
from .agreement import LocalAgreement
from .config import AsrConfig
from .domain import DROP_EMPTY, MIN_AUDIO_MS, SAMPLE_RATE, Cleaned, Thresholds, clean, pcm16_to_float32

__all__ = ["AsrHandler", "Publish", "SettingsLookup"]

log = logging.getLogger("habla.asr")

SettingsLookup = Callable[[str], Mapping[str, str]]
Publish = Callable[[Event], Any]
Key = tuple[str, str]  # (session_id, utterance_id)
Utterance = UtteranceSegmented | SpeechTurn

_STICKY_LANGUAGE_P = 0.8  # a partial's detected language is reused once this sure
_STICKY_LANGUAGE_MS = 1500  # ... and detected on at least this much audio


@dataclass
class _Live:
    """What the handler remembers about one utterance still being spoken."""

    agreement: LocalAgreement = field(default_factory=LocalAgreement)
    last_window: int = -1
    language: str | None = None
    shown: tuple[str, str] | None = None


def _key(event: SpeechWindow | Utterance) -> Key:
    """The live line an event belongs to: a turn's is its segmented utterance's."""
    if isinstance(event, SpeechTurn) and event.parent_id:
        return (event.session_id, event.parent_id)
    return (event.session_id, event.utterance_id)


class AsrHandler:
    def __init__(
        self,
        transcriber: Transcriber,
        config: AsrConfig,
        settings_lookup: SettingsLookup,
        *,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.transcriber = transcriber
        self.config = config
        self.settings_lookup = settings_lookup
        self.clock = clock
        self.thresholds = Thresholds(
            config.no_speech_threshold, config.log_prob_threshold, config.compression_ratio_threshold
        )
        self._live: OrderedDict[Key, _Live] = OrderedDict()
        self._finalized: OrderedDict[Key, None] = OrderedDict()
        self._max_finalized = max(1024, 4 * config.max_utterances)

    # --- entry points -----------------------------------------------------------

    def handle(self, event: Event, publish: Publish) -> None:
        if isinstance(event, UtteranceSegmented | SpeechTurn):
            self.on_utterance(event, publish)
        elif isinstance(event, SpeechWindow):
            self.on_window(event, publish)

    def select(self, batch: list[Event]) -> list[Event]:
        """What of ``batch`` to handle, in order: every final, then the newest window
        of each utterance that is neither finalized nor already past that window.
        Everything left out (older windows, other kinds) is acked by the consumer unhandled."""
        finals = [e for e in batch if isinstance(e, UtteranceSegmented | SpeechTurn)]
        closing = {_key(e) for e in finals}
        newest: dict[Key, SpeechWindow] = {}
        for e in batch:
            if not isinstance(e, SpeechWindow):
                continue
            k = _key(e)
            if k in closing or k in self._finalized:
                continue
            live = self._live.get(k)
            if live is not None and e.window_index <= live.last_window:
                continue
            best = newest.get(k)
            if best is None or e.window_index >= best.window_index:
                newest[k] = e
        chosen = {id(w) for w in newest.values()}
        windows = [e for e in batch if id(e) in chosen]
        return [*finals, *windows]

    def give_up(self, event: Event, reason: str, publish: Publish) -> None:
        """The consumer is dead-lettering ``event``: an utterance still gets its one final,
        empty and marked ``asr_failed``, so no utterance is silently lost."""
        if not isinstance(event, UtteranceSegmented | SpeechTurn):
            return
        publish(self._final(event, dropped="asr_failed"))
        log.error("gave up on %s/%s: %s", event.session_id, event.utterance_id, reason.strip())
        self._close(_key(event))

    @property
    def open_utterances(self) -> int:
        return len(self._live)

    # --- finals -------------------------------------------------------------------

    def on_utterance(self, ev: Utterance, publish: Publish) -> None:
        started = self.clock()
        language = self._language(ev.session_id)
        audio = pcm16_to_float32(ev.pcm, ev.sample_rate)
        probability = 0.0
        if audio.size * 1000 < MIN_AUDIO_MS * SAMPLE_RATE:
            cleaned = Cleaned("", DROP_EMPTY, 0.0, 0.0)
        else:
            heard = self.transcriber.transcribe(
                audio, language=language, beam_size=self.config.beam_size, partial=False
            )
            cleaned = clean(heard, self.thresholds)
            language, probability = heard.language, heard.language_probability
        asr_ms = round(1000 * (self.clock() - started))
        publish(
            self._final(
                ev,
                text=cleaned.text,
                language=language or "",
                language_probability=probability,
                avg_logprob=cleaned.avg_logprob,
                no_speech_prob=cleaned.no_speech_prob,
                dropped=cleaned.dropped,
                asr_ms=asr_ms,
            )
        )
        observe_stage("speech_end_to_asr_final", ev.received_at)
        log.debug("final %s/%s in %d ms: %r %s", ev.session_id, ev.utterance_id, asr_ms, cleaned.text, cleaned.dropped)
        self._close(_key(ev))

    def _final(self, ev: Utterance, **result: Any) -> TranscriptFinal:
        """The one final of ``ev``; its id derives from the utterance's, so redeliveries dedupe."""
        if isinstance(ev, SpeechTurn):
            result.update(speaker=ev.speaker, part=ev.part, parts=ev.parts, parent_id=ev.parent_id)
        return TranscriptFinal(
            session_id=ev.session_id,
            event_id=derived_id(ev.event_id, "final"),
            utterance_id=ev.utterance_id,
            index=ev.index,
            start_ms=ev.start_ms,
            end_ms=ev.end_ms,
            speech_end_ms=ev.speech_end_ms,
            model=self.transcriber.name,
            received_at=ev.received_at,
            **result,
        )

    def _close(self, key: Key) -> None:
        self._live.pop(key, None)
        self._finalized[key] = None
        self._finalized.move_to_end(key)
        while len(self._finalized) > self._max_finalized:
            self._finalized.popitem(last=False)

    # --- partials -----------------------------------------------------------------

    def on_window(self, ev: SpeechWindow, publish: Publish) -> None:
        key = _key(ev)
        if key in self._finalized:
            return  # its final is out: the live line is gone
        live = self._open(key)
        if ev.window_index <= live.last_window:
            return  # redelivered or overtaken by a newer window
        audio = pcm16_to_float32(ev.pcm, ev.sample_rate)
        if audio.size * 1000 < MIN_AUDIO_MS * SAMPLE_RATE:
            return
        language = self._language(ev.session_id) or live.language
        heard = self.transcriber.transcribe(
            audio, language=language, beam_size=self.config.partial_beam_size, partial=True
        )
        if (
            language is None
            and heard.language_probability >= _STICKY_LANGUAGE_P
            and heard.duration_ms >= _STICKY_LANGUAGE_MS
        ):
            live.language = heard.language
        words = clean(heard, self.thresholds).text.split()
        committed, tentative = live.agreement.update(words)
        shown = (" ".join(committed), " ".join(tentative))
        live.last_window = ev.window_index
        if shown == live.shown:
            return  # nothing new to show
        publish(
            TranscriptPartial(
                session_id=ev.session_id,
                event_id=derived_id(ev.event_id, "partial"),
                utterance_id=ev.utterance_id,
                index=ev.index,
                window_index=ev.window_index,
                committed=shown[0],
                tentative=shown[1],
                language=heard.language,
                audio_end_ms=ev.end_ms,
                received_at=ev.received_at,
            )
        )
        if ev.received_at and any(shown) and not (live.shown and any(live.shown)):
            # the first words shown for the utterance: from when the window's first audio arrived
            # (the window starts at the speech onset, padded by the VAD's pre-roll)
            observe_stage("onset_to_first_partial", ev.received_at - (ev.end_ms - ev.start_ms) / 1000)
        observe_stage("window_to_asr_partial", ev.received_at)
        live.shown = shown

    def _open(self, key: Key) -> _Live:
        live = self._live.get(key)
        if live is None:
            live = self._live[key] = _Live()
            while len(self._live) > self.config.max_utterances:
                self._live.popitem(last=False)
        self._live.move_to_end(key)
        return live

    # --- settings -------------------------------------------------------------------

    def _language(self, session_id: str) -> str | None:
        """The session's spoken language (None = detect), from its direction setting."""
        return source_language(self.settings_lookup(session_id).get("direction") or "es-en")
