"""Event handler of the tts service: translations and practice replies, spoken sentence by sentence.

* ``translation.final`` (:class:`TranslationFinal`) and ``tutor.replied``
  (:class:`TutorReplied`): when :func:`habla_tts.domain.what_to_say` says the text is spoken,
  it is cut into sentences (:func:`habla_tts.sentences.speech_chunks`) and each is synthesised
  and published as one :class:`SpeechSynthesized` at once, before the next is synthesised: the
  phone plays the first sentence while the second is being made. ``chunk`` counts them from 0,
  ``last`` marks the final one. A sentence that fails is published with ``error`` and no audio,
  and the rest still come.

Ids derive from the spoken event's id and the chunk number, so a redelivery republishes the
same ids and the bus drops the duplicates. Speech is best-effort: a message the consumer gives
up on is only logged.

Metrics: ``habla_stage_seconds{stage="speech_end_to_first_audio"}`` (from the gateway receiving
the audio to the first sentence's audio published), ``habla_tts_synthesis_seconds{engine}`` per
sentence and ``habla_tts_failures_total{engine}``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

from prometheus_client import Counter, Histogram

from habla_common.metrics import observe_stage
from habla_contracts import Event, SpeechSynthesized, TranslationFinal, TutorReplied, derived_id

from .config import TtsConfig
from .domain import what_to_say
from .engines import Synthesizer
from .errors import SynthesisFailed
from .sentences import speech_chunks

__all__ = ["FIRST_AUDIO_STAGE", "Publish", "SettingsLookup", "TtsHandler"]

log = logging.getLogger("habla.tts")

SettingsLookup = Callable[[str], Mapping[str, str]]
Publish = Callable[[Event], Any]
FIRST_AUDIO_STAGE = "speech_end_to_first_audio"
Spoken: TypeAlias = TranslationFinal | TutorReplied

SYNTH_SECONDS = Histogram(
    "habla_tts_synthesis_seconds",
    "Time an engine took to synthesise one sentence",
    ["engine"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0),
)
SYNTH_FAILURES = Counter("habla_tts_failures", "Sentences an engine failed to synthesise", ["engine"])


class TtsHandler:
    def __init__(
        self,
        settings_lookup: SettingsLookup,
        voices: Mapping[str, Synthesizer],
        config: TtsConfig | None = None,
        *,
        clock: Callable[[], float] = time.perf_counter,
        now: Callable[[], float] = time.time,
    ) -> None:
        """``voices``: language (``es``, ``en``) -> the engine that speaks it."""
        self.settings_lookup = settings_lookup
        self.voices = dict(voices)
        self.config = config or TtsConfig()
        self.clock, self.now = clock, now

    def handle(self, event: Event, publish: Publish) -> None:
        if not isinstance(event, TranslationFinal | TutorReplied):
            return
        to_say = what_to_say(event, self.settings_lookup(event.session_id))
        if to_say is None:
            return
        age = self.now() - (event.received_at or event.occurred_at)
        if self.config.max_age_s and age > self.config.max_age_s:
            log.info("not speaking %s %s: its audio came %.0f s ago", event.KIND, event.event_id, age)
            return
        voice = self.voices.get(to_say.language)
        if voice is None:
            log.warning("no voice for language %r; %s %s stays silent", to_say.language, event.KIND, event.event_id)
            return
        self.speak(event, to_say.text, voice, publish)

    def give_up(self, event: Event, reason: str, publish: Publish) -> None:
        """Speech is best-effort: nothing replaces audio that could not be published."""
        log.warning("not speaking %s %s: %s", event.KIND, event.event_id, reason)

    def speak(self, spoken: Spoken, text: str, voice: Synthesizer, publish: Publish) -> int:
        """Synthesise and publish ``text`` sentence by sentence; returns how many were published."""
        pieces = speech_chunks(text, self.config.max_chars, self.config.first_chunk_words)
        for n, piece in enumerate(pieces):
            out = self._synthesize(spoken, n, piece, voice, last=n == len(pieces) - 1)
            publish(out)
            if n == 0 and out.audio:
                observe_stage(FIRST_AUDIO_STAGE, spoken.received_at)
        return len(pieces)

    def _synthesize(self, spoken: Spoken, n: int, text: str, voice: Synthesizer, *, last: bool) -> SpeechSynthesized:
        common: dict[str, Any] = {
            "session_id": spoken.session_id,
            "event_id": derived_id(SpeechSynthesized.KIND, spoken.event_id, n),
            "utterance_id": spoken.utterance_id,
            "index": spoken.index,
            "spoken_id": spoken.event_id,
            "spoken_kind": spoken.KIND,
            "chunk": n,
            "last": last,
            "text": text,
            "language": voice.language,
            "engine": voice.engine,
            "voice": voice.voice,
            "received_at": spoken.received_at,
        }
        started = self.clock()
        try:
            speech = voice.synthesize(text)
        except SynthesisFailed as e:
            SYNTH_FAILURES.labels(voice.engine).inc()
            log.warning("sentence %d of %s %s not spoken: %s", n, spoken.KIND, spoken.event_id, e)
            return SpeechSynthesized(**common, synth_ms=round(1000 * (self.clock() - started)), error=str(e))
        took = self.clock() - started
        SYNTH_SECONDS.labels(voice.engine).observe(took)
        return SpeechSynthesized(
            **common,
            sample_rate=speech.sample_rate,
            audio=speech.wav(),
            audio_ms=speech.duration_ms,
            synth_ms=round(1000 * took),
        )
