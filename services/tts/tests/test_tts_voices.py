"""Voice specs and the service's configuration: what parses, what is refused and how."""

from __future__ import annotations

from pathlib import Path

import pytest

from habla_common.errors import ConfigError
from habla_tts.config import TtsConfig
from habla_tts.engines import EspeakSynthesizer
from habla_tts.errors import BadVoiceSpec, EngineUnavailable
from habla_tts.http_engine import HttpSynthesizer
from habla_tts.voices import VoiceSpec, build_synthesizer, parse_voice_spec

TTS_KEYS = (
    "TTS_VOICE_ES",
    "TTS_VOICE_EN",
    "TTS_MAX_CHARS",
    "TTS_FIRST_CHUNK_WORDS",
    "TTS_RATE",
    "TTS_THREADS",
    "TTS_HTTP_TIMEOUT_S",
    "TTS_MAX_AGE_S",
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in TTS_KEYS:
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("espeak:es", VoiceSpec("espeak", "es")),
        ("espeak:es-419", VoiceSpec("espeak", "es-419")),
        (" ESPEAK:en-us ", VoiceSpec("espeak", "en-us")),
        ("espeak:es+f3", VoiceSpec("espeak", "es+f3")),
        ("piper:joe", VoiceSpec("piper", "joe")),
        ("piper:/voices/es_ES-davefx-medium.onnx", VoiceSpec("piper", "/voices/es_ES-davefx-medium.onnx")),
        ("piper:voices/es_MX-claude-high.onnx", VoiceSpec("piper", "voices/es_MX-claude-high.onnx")),
        (
            "http://gpu-pc:8880/v1/audio/speech?voice=ef_dora&model=kokoro",
            VoiceSpec("http", "ef_dora", url="http://gpu-pc:8880/v1/audio/speech", model="kokoro"),
        ),
        (
            "https://tts.home.arpa/v1/audio/speech?voice=af_heart",
            VoiceSpec("http", "af_heart", url="https://tts.home.arpa/v1/audio/speech", model="tts-1"),
        ),
        (
            "http://10.0.0.5:5000/speak?lang=es&voice=v1",
            VoiceSpec("http", "v1", url="http://10.0.0.5:5000/speak?lang=es", model="tts-1"),
        ),
    ],
)
def test_good_specs(spec: str, expected: VoiceSpec) -> None:
    assert parse_voice_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "TTS_VOICE_ES is empty"),
        ("es", "names no engine"),
        ("festival:es", "names no engine"),
        ("espeak:", "names no voice after 'espeak': e.g. espeak:es"),
        ("piper:", "names no voice after 'piper'"),
        ("espeak:es; rm -rf /", "not an espeak-ng voice name"),
        ("piper:alan", "piper:joe .*or the path of a voice's .onnx file"),
        ("piper:/voices/es_ES.txt", "the path of a voice's .onnx file"),
        ("http://gpu-pc:8880/v1/audio/speech", r"names no voice: add \?voice=NAME"),
        ("http:///v1/audio/speech?voice=x", "names no host"),
        ("http://gpu-pc:port/v1/audio/speech?voice=x", "the port is not a number"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(BadVoiceSpec, match=message) as caught:
        parse_voice_spec(spec, "TTS_VOICE_ES")
    assert "TTS_VOICE_ES" in str(caught.value)


def test_specs_print_as_written() -> None:
    assert str(parse_voice_spec("espeak:es")) == "espeak:es"
    assert (
        str(parse_voice_spec("http://h:1/v1/audio/speech?voice=v&model=m"))
        == "http://h:1/v1/audio/speech (voice v, model m)"
    )


def test_build_makes_the_named_engine(espeak_es: EspeakSynthesizer) -> None:
    voice = build_synthesizer(parse_voice_spec("espeak:es-419"), "es", rate=1.2)
    assert isinstance(voice, EspeakSynthesizer)
    assert (voice.engine, voice.voice, voice.language, voice.words_per_minute) == ("espeak", "es-419", "es", 210)
    http = build_synthesizer(parse_voice_spec("http://h:1/v1/audio/speech?voice=v"), "en", http_timeout_s=3)
    assert isinstance(http, HttpSynthesizer)
    assert (http.url, http.voice, http.model, http.language, http.timeout_s) == (
        "http://h:1/v1/audio/speech",
        "v",
        "tts-1",
        "en",
        3,
    )


def test_build_names_a_piper_voice_file_that_is_not_there(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailable, match="does not exist"):
        build_synthesizer(parse_voice_spec(f"piper:{tmp_path}/es_ES-nadie-medium.onnx"), "es")


def test_defaults(env: pytest.MonkeyPatch) -> None:
    cfg = TtsConfig.from_env()
    assert (cfg.voice_es, cfg.voice_en) == ("espeak:es", "piper:joe")  # piper-tts and the voice are installed
    assert (cfg.max_chars, cfg.first_chunk_words, cfg.rate, cfg.threads) == (600, 12, 1.0, 1)
    assert (cfg.http_timeout_s, cfg.max_age_s) == (30.0, 300.0)
    assert cfg.voices() == {"es": VoiceSpec("espeak", "es"), "en": VoiceSpec("piper", "joe")}


def test_settings_from_the_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("TTS_VOICE_ES", "http://gpu-pc:8880/v1/audio/speech?voice=ef_dora&model=kokoro")
    env.setenv("TTS_VOICE_EN", "espeak:en-us")
    env.setenv("TTS_MAX_CHARS", "300")
    env.setenv("TTS_RATE", "0.8")
    cfg = TtsConfig.from_env()
    assert cfg.voices()["es"].engine == "http" and cfg.voices()["en"] == VoiceSpec("espeak", "en-us")
    assert (cfg.max_chars, cfg.rate) == (300, 0.8)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("TTS_VOICE_EN", "joe", "TTS_VOICE_EN='joe' names no engine"),
        ("TTS_MAX_CHARS", "5", "TTS_MAX_CHARS must be at least 20"),
        ("TTS_MAX_CHARS", "many", "TTS_MAX_CHARS must be an integer"),
        ("TTS_RATE", "3", "TTS_RATE is a speed from 0.5 to 2.0"),
        ("TTS_HTTP_TIMEOUT_S", "0", "TTS_HTTP_TIMEOUT_S must be above 0"),
        ("TTS_MAX_AGE_S", "-1", "TTS_MAX_AGE_S must be 0"),
        ("TTS_FIRST_CHUNK_WORDS", "-2", "TTS_FIRST_CHUNK_WORDS must be at least 0"),
    ],
)
def test_bad_settings_name_the_key(env: pytest.MonkeyPatch, key: str, value: str, message: str) -> None:
    env.setenv(key, value)
    with pytest.raises(ConfigError, match=message):
        TtsConfig.from_env()
