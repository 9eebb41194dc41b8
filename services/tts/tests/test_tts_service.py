"""The tts service: its handler inside habla_common's consumer loop on the real Redis (the
session's settings come from the bus, every sentence reaches the session's outbox, what sockets
read), and its start (voices built and warmed up)."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from habla_common.bus import RedisBus
from habla_common.service import build_consumer
from habla_common.settings import Settings
from habla_contracts import SpeechSynthesized, TranslationFinal, TutorReplied, stream_key
from habla_tts.config import TtsConfig
from habla_tts.errors import EngineUnavailable
from habla_tts.main import KINDS, build, build_voices


def test_translations_into_spanish_reach_the_outbox_as_audio(bus: RedisBus) -> None:
    bus.set_session_settings("es-out", direction="en-es", mode="conversation", speak="auto")
    bus.set_session_settings("en-out", direction="es-en", mode="conversation", speak="auto")
    bus.set_session_settings("practice", direction="auto", mode="practice", speak="auto")
    now = time.time()
    common = {"index": 0, "utterance_id": "u0", "received_at": now}
    bus.publish(TranslationFinal(session_id="en-out", target_language="en", translation="Good morning.", **common))
    bus.publish(
        TranslationFinal(session_id="es-out", target_language="es", translation="Buenos días. ¿Qué tal?", **common)
    )
    bus.publish(TranslationFinal(session_id="practice", target_language="es", translation="Hola.", **common))
    bus.publish(TutorReplied(session_id="practice", reply="¡Hola! ¿Cómo te llamas?", **common))

    config = TtsConfig(voice_es="espeak:es", voice_en="espeak:en-us")
    settings = Settings("tts", "", "", bus.partitions, 3, 100, 5000, "INFO")
    consumer = build_consumer(
        bus, settings, group="tts", kinds=KINDS, build=lambda b: build(b.session_settings, config)
    )
    consumer.maintain_leases()
    for _ in range(3):
        consumer.poll()

    def outbox(session_id: str) -> list[tuple[str, int, bool]]:
        events = [d.event for d in bus.read_outbox(session_id, "0-0", block_ms=0)]
        return [(e.text, e.chunk, e.last) for e in events if isinstance(e, SpeechSynthesized) and e.audio]

    assert outbox("es-out") == [("Buenos días.", 0, False), ("¿Qué tal?", 1, True)]
    assert outbox("en-out") == []
    assert outbox("practice") == [("¡Hola!", 0, False), ("¿Cómo te llamas?", 1, True)]
    for kind in KINDS:
        for p in range(bus.partitions):
            assert bus.r.xpending(stream_key(kind, p), "tts")["pending"] == 0  # everything acked


def test_start_fails_on_a_local_voice_that_cannot_work() -> None:
    with pytest.raises(EngineUnavailable, match="no voice 'xx-nope'"):
        build_voices(TtsConfig(voice_es="espeak:xx-nope", voice_en="espeak:en-us"))


def test_start_goes_on_when_the_speech_server_is_not_up_yet(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/v1/audio/speech?voice=ef_dora"
    with caplog.at_level(logging.WARNING, logger="habla.tts"):
        voices = build_voices(TtsConfig(voice_es=url, voice_en="espeak:en-us"))
    assert (voices["es"].engine, voices["en"].engine) == ("http", "espeak")
    assert "does not answer yet" in caplog.text
