"""The tts handler with real engines, publishing into a list: what is spoken and when, one
event per sentence, published as soon as that sentence is synthesised."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pytest
from prometheus_client import REGISTRY

from habla_contracts import Event, SpeechSynthesized, TranslationFinal, TutorReplied, derived_id
from habla_tts.audio import Speech, from_wav
from habla_tts.config import TtsConfig
from habla_tts.engines import EspeakSynthesizer, PiperSynthesizer, Synthesizer
from habla_tts.handlers import FIRST_AUDIO_STAGE, TtsHandler
from habla_tts.http_engine import HttpSynthesizer

CONFIG = TtsConfig(voice_es="espeak:es", voice_en="espeak:en-us")
TWO_SENTENCES = "Buenos días, quería reservar una mesa para dos. ¿Tienen sitio en la terraza?"


class SessionSettings:
    """The session settings hash as the bus holds it (``speak``, ``mode``), per session."""

    def __init__(self, **by_session: Mapping[str, str]) -> None:
        self.by_session = by_session

    def __call__(self, session_id: str) -> Mapping[str, str]:
        return self.by_session.get(session_id, {})


class Recorded:
    """A real engine whose calls are written to a shared timeline (it still synthesises)."""

    def __init__(self, voice: Synthesizer, timeline: list[tuple[str, str]]) -> None:
        self.inner, self.timeline = voice, timeline
        self.engine, self.voice, self.language = voice.engine, voice.voice, voice.language

    def synthesize(self, text: str) -> Speech:
        self.timeline.append(("synthesize start", text))
        speech = self.inner.synthesize(text)
        self.timeline.append(("synthesize end", text))
        return speech

    def warm_up(self) -> None:
        self.inner.warm_up()


def final(text: str, target: str = "es", **fields: Any) -> TranslationFinal:
    values: dict[str, Any] = {
        "session_id": "s1",
        "utterance_id": "u7",
        "index": 7,
        "source_language": "en" if target == "es" else "es",
        "target_language": target,
        "translation": text,
        "received_at": time.time() - 2.0,
    }
    values.update(fields)
    return TranslationFinal(**values)


def reply(text: str, **fields: Any) -> TutorReplied:
    return TutorReplied(session_id="s1", utterance_id="u3", index=3, reply=text, received_at=time.time(), **fields)


def spoken(handler: TtsHandler, event: Event) -> list[SpeechSynthesized]:
    out: list[Event] = []
    handler.handle(event, out.append)
    assert all(isinstance(e, SpeechSynthesized) for e in out)
    return [e for e in out if isinstance(e, SpeechSynthesized)]


@pytest.fixture
def voices(espeak_es: EspeakSynthesizer, espeak_en: EspeakSynthesizer) -> dict[str, Synthesizer]:
    return {"es": espeak_es, "en": espeak_en}


def test_a_spanish_translation_is_spoken_sentence_by_sentence(voices: dict[str, Synthesizer]) -> None:
    handler = TtsHandler(SessionSettings(s1={"speak": "auto", "mode": "conversation"}), voices, CONFIG)
    event = final(TWO_SENTENCES)
    chunks = spoken(handler, event)

    assert [c.text for c in chunks] == [
        "Buenos días, quería reservar una mesa para dos.",
        "¿Tienen sitio en la terraza?",
    ]
    assert [(c.chunk, c.last) for c in chunks] == [(0, False), (1, True)]
    assert [c.event_id for c in chunks] == [derived_id("tts.audio", event.event_id, n) for n in (0, 1)]
    for c in chunks:
        assert (c.session_id, c.utterance_id, c.index) == ("s1", "u7", 7)
        assert (c.spoken_id, c.spoken_kind, c.received_at) == (event.event_id, "translation.final", event.received_at)
        assert (c.language, c.engine, c.voice, c.error) == ("es", "espeak", "es", "")
        audio = from_wav(c.audio)
        assert audio.sample_rate == c.sample_rate == 22050
        assert audio.duration_ms == c.audio_ms and c.audio_ms > 1000
        assert 0 <= c.synth_ms < 5000
    assert chunks[0].audio_ms > chunks[1].audio_ms  # the longer sentence takes longer to say


def test_the_first_sentence_is_published_before_the_second_is_synthesised(voices: dict[str, Synthesizer]) -> None:
    timeline: list[tuple[str, str]] = []
    handler = TtsHandler(SessionSettings(), {"es": Recorded(voices["es"], timeline)}, CONFIG)
    handler.handle(
        final("Hola. ¿Qué tal? Adiós."),
        lambda e: timeline.append(("publish", e.text if isinstance(e, SpeechSynthesized) else "")),
    )
    assert timeline == [
        ("synthesize start", "Hola."),
        ("synthesize end", "Hola."),
        ("publish", "Hola."),
        ("synthesize start", "¿Qué tal?"),
        ("synthesize end", "¿Qué tal?"),
        ("publish", "¿Qué tal?"),
        ("synthesize start", "Adiós."),
        ("synthesize end", "Adiós."),
        ("publish", "Adiós."),
    ]


def test_english_with_speak_auto_stays_silent(voices: dict[str, Synthesizer]) -> None:
    handler = TtsHandler(SessionSettings(s1={"speak": "auto"}), voices, CONFIG)
    assert spoken(handler, final("Good morning. I would like a table.", target="en")) == []
    assert (
        spoken(TtsHandler(SessionSettings(), voices, CONFIG), final("Good morning.", target="en")) == []
    )  # unset = auto


@pytest.mark.slow
def test_speak_on_speaks_english_too_with_piper(voices: dict[str, Synthesizer], piper_en: PiperSynthesizer) -> None:
    handler = TtsHandler(SessionSettings(s1={"speak": "on"}), {**voices, "en": piper_en}, CONFIG)
    chunks = spoken(handler, final("Good morning. I would like a table for two, please.", target="en"))
    assert [(c.text, c.language, c.engine, c.voice, c.last) for c in chunks] == [
        ("Good morning.", "en", "piper", "joe", False),
        ("I would like a table for two, please.", "en", "piper", "joe", True),
    ]
    assert all(c.sample_rate == 22050 and c.audio_ms > 500 for c in chunks)


def test_speak_off_silences_everything(voices: dict[str, Synthesizer]) -> None:
    handler = TtsHandler(SessionSettings(s1={"speak": "off", "mode": "practice"}), voices, CONFIG)
    assert spoken(handler, final(TWO_SENTENCES)) == []
    assert spoken(handler, reply("¡Qué bien! ¿Y qué más hiciste?")) == []


def test_practice_mode_speaks_the_partner_not_the_translation(voices: dict[str, Synthesizer]) -> None:
    handler = TtsHandler(SessionSettings(s1={"speak": "on", "mode": "practice"}), voices, CONFIG)
    assert spoken(handler, final(TWO_SENTENCES)) == []
    event = reply("¡Qué bien! ¿Y qué más hiciste el fin de semana?")
    chunks = spoken(handler, event)
    assert [(c.text, c.language, c.spoken_kind, c.utterance_id, c.index) for c in chunks] == [
        ("¡Qué bien!", "es", "tutor.replied", "u3", 3),
        ("¿Y qué más hiciste el fin de semana?", "es", "tutor.replied", "u3", 3),
    ]
    assert chunks[-1].last and all(c.audio for c in chunks)


def test_a_failed_reply_is_spoken_too(voices: dict[str, Synthesizer]) -> None:
    handler = TtsHandler(SessionSettings(s1={"mode": "practice"}), voices, CONFIG)
    chunks = spoken(handler, reply("Perdona, no te he entendido.", status="failed"))
    assert [(c.text, c.last, bool(c.audio)) for c in chunks] == [("Perdona, no te he entendido.", True, True)]


@pytest.mark.parametrize(
    "event",
    [
        final(TWO_SENTENCES, revision=1),  # a re-translation from the log
        final(TWO_SENTENCES, status="untranslated"),
        final(TWO_SENTENCES, status="empty"),
        final("   "),
        final(TWO_SENTENCES, target=""),
        reply(""),
    ],
    ids=["revision", "untranslated", "empty-status", "blank", "no-target", "blank-reply"],
)
def test_what_is_not_spoken(voices: dict[str, Synthesizer], event: Event) -> None:
    assert spoken(TtsHandler(SessionSettings(s1={"speak": "on"}), voices, CONFIG), event) == []


def test_a_fallback_translation_is_spoken(voices: dict[str, Synthesizer]) -> None:
    chunks = spoken(TtsHandler(SessionSettings(), voices, CONFIG), final("Hola amigo.", status="fallback"))
    assert [c.text for c in chunks] == ["Hola amigo."]


def test_a_text_whose_audio_is_too_old_is_not_spoken(voices: dict[str, Synthesizer]) -> None:
    handler = TtsHandler(SessionSettings(), voices, CONFIG)
    assert spoken(handler, final("Hola.", received_at=time.time() - 301)) == []
    never_too_old = TtsHandler(
        SessionSettings(), voices, TtsConfig(voice_es="espeak:es", voice_en="espeak:en-us", max_age_s=0)
    )
    assert len(spoken(never_too_old, final("Hola.", received_at=time.time() - 3600))) == 1


def test_a_sentence_that_fails_is_reported_and_the_rest_still_come(server: Any, http_es: HttpSynthesizer) -> None:
    server.fail_on = "terraza"  # the speech server fails on the second sentence only
    handler = TtsHandler(SessionSettings(), {"es": http_es}, CONFIG)
    chunks = spoken(handler, final(TWO_SENTENCES + " Muchas gracias."))
    assert [(c.chunk, c.last, bool(c.audio), c.engine) for c in chunks] == [
        (0, False, True, "http"),
        (1, False, False, "http"),
        (2, True, True, "http"),
    ]
    assert "HTTP 500" in chunks[1].error and "synthesis failed on the GPU" in chunks[1].error
    assert (chunks[1].text, chunks[1].sample_rate, chunks[1].audio_ms) == ("¿Tienen sitio en la terraza?", 0, 0)
    assert chunks[0].error == chunks[2].error == ""
    assert [r["input"] for r in server.requests] == [c.text for c in chunks]


def test_a_failed_last_sentence_still_ends_the_text(server: Any, http_es: HttpSynthesizer) -> None:
    server.fail_on = "terraza"
    chunks = spoken(TtsHandler(SessionSettings(), {"es": http_es}, CONFIG), final(TWO_SENTENCES))
    assert [(c.chunk, c.last, bool(c.error)) for c in chunks] == [(0, False, False), (1, True, True)]


def test_a_redelivery_publishes_the_same_ids(voices: dict[str, Synthesizer]) -> None:
    handler = TtsHandler(SessionSettings(), voices, CONFIG)
    event = final(TWO_SENTENCES)
    assert [c.event_id for c in spoken(handler, event)] == [c.event_id for c in spoken(handler, event)]


def test_the_first_audio_latency_is_recorded(voices: dict[str, Synthesizer]) -> None:
    def count() -> float:
        return REGISTRY.get_sample_value("habla_stage_seconds_count", {"stage": FIRST_AUDIO_STAGE}) or 0.0

    before = count()
    spoken(TtsHandler(SessionSettings(), voices, CONFIG), final(TWO_SENTENCES))
    assert count() == before + 1  # once per text, on its first sentence


def test_giving_up_publishes_nothing(voices: dict[str, Synthesizer]) -> None:
    out: list[Event] = []
    TtsHandler(SessionSettings(), voices, CONFIG).give_up(final(TWO_SENTENCES), "espeak-ng crashed", out.append)
    assert out == []
