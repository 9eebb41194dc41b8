"""Voice specs: one string names an engine and its voice (``TTS_VOICE_ES``, ``TTS_VOICE_EN``).

=========================================================  ============================================
``espeak:es``, ``espeak:es-419``, ``espeak:en-us``         an espeak-ng voice (``espeak-ng --voices``)
``piper:joe``                                              the bundled English Piper voice
``piper:/path/to/es_ES-davefx-medium.onnx``                any Piper voice file (its ``.onnx.json`` next
                                                           to it)
``http://host:8880/v1/audio/speech?voice=ef_dora&model=    an OpenAI-compatible speech server (``model``
kokoro``                                                   defaults to ``tts-1``; ``https`` too)
=========================================================  ============================================

:func:`parse_voice_spec` checks the form only (clear :class:`BadVoiceSpec` errors naming the
key); :func:`build_synthesizer` makes the engine, which is when a missing program or file is
found (:class:`EngineUnavailable`).
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from .engines import BUNDLED_PIPER_VOICE, EspeakSynthesizer, PiperSynthesizer, Synthesizer, bundled_piper_model
from .errors import BadVoiceSpec
from .http_engine import HttpSynthesizer

__all__ = ["ENGINES", "VoiceSpec", "build_synthesizer", "parse_voice_spec"]

ENGINES = ("espeak", "piper", "http")
DEFAULT_HTTP_MODEL = "tts-1"
_ESPEAK_VOICE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*$")
_FORMS = "espeak:es, espeak:en-us, piper:joe, piper:/path/to/voice.onnx or http://host:port/v1/audio/speech?voice=NAME"


@dataclass(frozen=True)
class VoiceSpec:
    engine: str  # one of ENGINES
    voice: str  # espeak voice, "joe" or a Piper model path, the server's voice name
    url: str = ""  # http: the endpoint, without the voice and model parameters
    model: str = ""  # http: the server's model name

    def __str__(self) -> str:
        if self.engine == "http":
            return f"{self.url} (voice {self.voice}, model {self.model})"
        return f"{self.engine}:{self.voice}"


def parse_voice_spec(spec: str, key: str = "voice") -> VoiceSpec:
    """The engine and voice a spec names; ``key`` (the setting it came from) is named in errors."""
    text = spec.strip()
    if not text:
        raise BadVoiceSpec(f"{key} is empty; give a voice such as {_FORMS}")
    if text.lower().startswith(("http://", "https://")):
        return _parse_http(text, key)
    engine, sep, voice = text.partition(":")
    engine, voice = engine.strip().lower(), voice.strip()
    if not sep or engine not in ("espeak", "piper"):
        raise BadVoiceSpec(f"{key}={spec!r} names no engine; a voice spec looks like {_FORMS}")
    if not voice:
        example = "espeak:es" if engine == "espeak" else f"piper:{BUNDLED_PIPER_VOICE} or piper:/path/to/voice.onnx"
        raise BadVoiceSpec(f"{key}={spec!r} names no voice after {engine!r}: e.g. {example}")
    if engine == "espeak":
        if not _ESPEAK_VOICE.match(voice):
            raise BadVoiceSpec(f"{key}={spec!r}: {voice!r} is not an espeak-ng voice name (espeak-ng --voices)")
        return VoiceSpec("espeak", voice)
    if voice.lower() != BUNDLED_PIPER_VOICE and not voice.lower().endswith(".onnx"):
        raise BadVoiceSpec(
            f"{key}={spec!r}: a Piper voice is piper:{BUNDLED_PIPER_VOICE} (the bundled English voice) "
            "or the path of a voice's .onnx file"
        )
    return VoiceSpec("piper", BUNDLED_PIPER_VOICE if voice.lower() == BUNDLED_PIPER_VOICE else voice)


def _parse_http(text: str, key: str) -> VoiceSpec:
    parts = urllib.parse.urlsplit(text)
    try:
        port = parts.port
    except ValueError as e:
        raise BadVoiceSpec(f"{key}={text!r}: the port is not a number") from e
    if not parts.hostname:
        raise BadVoiceSpec(f"{key}={text!r} names no host: http://host:port/v1/audio/speech?voice=NAME")
    query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    voice = (query.pop("voice", [""])[0]).strip()
    model = (query.pop("model", [""])[0]).strip() or DEFAULT_HTTP_MODEL
    if not voice:
        raise BadVoiceSpec(f"{key}={text!r} names no voice: add ?voice=NAME (a voice the server has, e.g. ef_dora)")
    if port == 0:
        raise BadVoiceSpec(f"{key}={text!r}: port 0 is not a server's port")
    rest = urllib.parse.urlencode(query, doseq=True)
    url = urllib.parse.urlunsplit((parts.scheme.lower(), parts.netloc, parts.path or "/v1/audio/speech", rest, ""))
    return VoiceSpec("http", voice, url=url, model=model)


def build_synthesizer(
    spec: VoiceSpec, language: str, *, rate: float = 1.0, threads: int = 1, http_timeout_s: float = 30.0
) -> Synthesizer:
    """The engine a spec names, for ``language``; loads a Piper model (seconds)."""
    if spec.engine == "espeak":
        return EspeakSynthesizer(spec.voice, language, rate=rate)
    if spec.engine == "piper":
        if spec.voice == BUNDLED_PIPER_VOICE:
            return PiperSynthesizer(
                bundled_piper_model(), language, voice=BUNDLED_PIPER_VOICE, rate=rate, threads=threads
            )
        return PiperSynthesizer(Path(spec.voice).expanduser(), language, rate=rate, threads=threads)
    if spec.engine == "http":
        return HttpSynthesizer(spec.url, spec.voice, language, model=spec.model, rate=rate, timeout_s=http_timeout_s)
    raise BadVoiceSpec(f"unknown engine {spec.engine!r}; one of {', '.join(ENGINES)}")
