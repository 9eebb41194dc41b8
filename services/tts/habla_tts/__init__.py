"""Habla's speech stage: translations into Spanish and the practice partner's replies, spoken
sentence by sentence (espeak-ng, Piper, or an OpenAI-compatible speech server)."""

from .audio import Speech, from_wav, to_wav
from .config import TtsConfig
from .engines import EspeakSynthesizer, PiperSynthesizer, Synthesizer
from .errors import BadVoiceSpec, EngineUnavailable, SynthesisFailed, TtsError
from .handlers import TtsHandler
from .http_engine import HttpSynthesizer
from .sentences import speech_chunks, split_sentences
from .voices import VoiceSpec, build_synthesizer, parse_voice_spec

__all__ = [
    "BadVoiceSpec",
    "EngineUnavailable",
    "EspeakSynthesizer",
    "HttpSynthesizer",
    "PiperSynthesizer",
    "Speech",
    "SynthesisFailed",
    "Synthesizer",
    "TtsConfig",
    "TtsError",
    "TtsHandler",
    "VoiceSpec",
    "build_synthesizer",
    "from_wav",
    "parse_voice_spec",
    "speech_chunks",
    "split_sentences",
    "to_wav",
]
