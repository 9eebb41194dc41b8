"""Every engine passes the same contract: real speech of plausible length for a sentence, as
WAV that reads back; clear errors when there is nothing to say or the engine cannot work.

Engines: espeak-ng (Spanish, English), the bundled Piper voice (English; slow: loads a model),
and the HTTP engine against the stand-in for the GPU PC's speech server (tests/conftest.py)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from habla_tts.audio import Speech, from_wav
from habla_tts.engines import EspeakSynthesizer, PiperSynthesizer, Synthesizer
from habla_tts.errors import EngineUnavailable, SynthesisFailed
from habla_tts.http_engine import HttpSynthesizer
from habla_tts.voices import ENGINES

SENTENCES = {
    "es": "El tren de las ocho llega tarde porque está lloviendo mucho en Madrid.",
    "en": "The eight o'clock train is late because it is raining hard in Madrid.",
}
ENGINE_FIXTURES = [
    "espeak_es",
    "espeak_en",
    pytest.param("piper_en", marks=pytest.mark.slow),
    "http_es",
]


def voiced_share(speech: Speech, frame_ms: int = 20, threshold: float = 300.0) -> float:
    """Share of ``frame_ms`` frames whose RMS is above ``threshold`` (int16 scale)."""
    n = speech.sample_rate * frame_ms // 1000
    frames = speech.samples[: len(speech.samples) // n * n].astype(np.float64).reshape(-1, n)
    return float(np.mean(np.sqrt(np.mean(frames**2, axis=1)) > threshold))


@pytest.fixture(params=ENGINE_FIXTURES)
def engine(request: pytest.FixtureRequest) -> Synthesizer:
    voice: Synthesizer = request.getfixturevalue(request.param)
    return voice


def test_a_sentence_becomes_speech_of_plausible_length(engine: Synthesizer) -> None:
    text = SENTENCES[engine.language]
    speech = engine.synthesize(text)
    words = len(text.split())

    assert engine.engine in ENGINES and engine.voice
    assert speech.samples.dtype == np.int16 and speech.samples.ndim == 1
    assert 16_000 <= speech.sample_rate <= 48_000
    assert words * 150 <= speech.duration_ms <= words * 700, speech.duration_ms  # about 2.5 words a second
    samples = speech.samples.astype(np.float64)
    assert np.sqrt(np.mean(samples**2)) > 500 and np.max(np.abs(samples)) > 4000  # not silence, not a hiss
    assert voiced_share(speech) > 0.5  # sound most of the time, not one click


def test_the_wav_holds_exactly_the_speech(engine: Synthesizer) -> None:
    speech = engine.synthesize("Hola." if engine.language == "es" else "Hello.")
    back = from_wav(speech.wav())
    assert back.sample_rate == speech.sample_rate
    assert np.array_equal(back.samples, speech.samples)
    assert speech.wav()[:4] == b"RIFF"


def test_nothing_to_say_is_an_error(engine: Synthesizer) -> None:
    for text in ("", "   ", "¿…?"):
        with pytest.raises(SynthesisFailed, match="nothing to say"):
            engine.synthesize(text)


def test_warm_up_speaks(engine: Synthesizer) -> None:
    engine.warm_up()


def test_a_faster_rate_speaks_faster_espeak(espeak_es: EspeakSynthesizer) -> None:
    normal = espeak_es.synthesize(SENTENCES["es"]).duration_ms
    fast = EspeakSynthesizer("es", "es", rate=1.5).synthesize(SENTENCES["es"]).duration_ms
    assert fast < 0.8 * normal, (fast, normal)


@pytest.mark.slow
def test_a_faster_rate_speaks_faster_piper(piper_en: PiperSynthesizer) -> None:
    normal = piper_en.synthesize(SENTENCES["en"]).duration_ms
    fast = PiperSynthesizer(piper_en.model, "en", rate=1.5).synthesize(SENTENCES["en"]).duration_ms
    assert fast < 0.8 * normal, (fast, normal)


def test_espeak_without_the_program_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH where espeak-ng is not
    with pytest.raises(EngineUnavailable, match="apt-get install espeak-ng"):
        EspeakSynthesizer("es", "es")


def test_an_espeak_voice_that_does_not_exist_is_named(espeak_es: EspeakSynthesizer) -> None:
    with pytest.raises(EngineUnavailable, match="no voice 'xx-nope'"):
        EspeakSynthesizer("xx-nope", "es").warm_up()


def test_a_missing_piper_voice_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailable, match=r"es_ES-nadie-medium\.onnx does not exist"):
        PiperSynthesizer(tmp_path / "es_ES-nadie-medium.onnx", "es")
    (tmp_path / "half.onnx").write_bytes(b"no config next to it")
    with pytest.raises(EngineUnavailable, match=r"half\.onnx\.json does not exist"):
        PiperSynthesizer(tmp_path / "half.onnx", "es")


def test_an_unreadable_piper_voice_is_an_error(tmp_path: Path) -> None:
    model = tmp_path / "broken.onnx"
    model.write_bytes(b"not an onnx model")
    model.with_name("broken.onnx.json").write_text("{}")
    with pytest.raises(EngineUnavailable, match="cannot be loaded"):
        PiperSynthesizer(model, "es")


def test_the_http_engine_posts_the_openai_speech_request(server: Any) -> None:
    voice = HttpSynthesizer(server.url, "ef_dora", "es", model="kokoro", rate=1.25)
    speech = voice.synthesize("Buenos días.")
    assert speech.duration_ms > 300
    assert server.requests == [
        {"model": "kokoro", "input": "Buenos días.", "voice": "ef_dora", "response_format": "wav", "speed": 1.25}
    ]


def test_the_http_engine_leaves_speed_out_at_the_normal_rate(server: Any, http_es: HttpSynthesizer) -> None:
    http_es.synthesize("Hola.")
    assert "speed" not in server.requests[-1]


def test_a_server_error_is_a_synthesis_failure_with_its_detail(server: Any, http_es: HttpSynthesizer) -> None:
    server.fail_on = "Hola"
    with pytest.raises(SynthesisFailed, match=r"HTTP 500.*synthesis failed on the GPU"):
        http_es.synthesize("Hola.")


def test_a_server_that_answers_no_wav_is_a_synthesis_failure(server: Any) -> None:
    with pytest.raises(SynthesisFailed, match="not a WAV file"):
        HttpSynthesizer(server.url, "ef_dora", "es", model="not-wav").synthesize("Hola.")


def test_a_wrong_path_is_a_synthesis_failure(server: Any) -> None:
    with pytest.raises(SynthesisFailed, match="HTTP 404"):
        HttpSynthesizer(server.url.replace("/v1/", "/v2/"), "ef_dora", "es").synthesize("Hola.")


def test_a_server_that_is_not_there(espeak_es: EspeakSynthesizer) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    voice = HttpSynthesizer(f"http://127.0.0.1:{port}/v1/audio/speech", "ef_dora", "es", timeout_s=2)
    with pytest.raises(SynthesisFailed, match="cannot be reached"):
        voice.synthesize("Hola.")
    with pytest.raises(EngineUnavailable, match="is the server running"):
        voice.warm_up()


def test_a_server_that_does_not_answer_in_time(espeak_es: EspeakSynthesizer) -> None:
    with socket.socket() as listener:  # accepts the connection, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1/audio/speech"
        with pytest.raises(SynthesisFailed, match=r"did not answer within 0\.5 s"):
            HttpSynthesizer(url, "ef_dora", "es", timeout_s=0.5).synthesize("Hola.")
