"""Errors of the tts service.

HablaError (habla_contracts)
 └── TtsError
      ├── EngineUnavailable   an engine cannot be used here: espeak-ng or piper-tts is not
      │                       installed, a voice file is missing (the message says what to
      │                       install or configure; also a ``RuntimeError``, fatal at start)
      ├── BadVoiceSpec        a voice spec (``TTS_VOICE_ES``, ``TTS_VOICE_EN``) cannot be
      │                       parsed (also a ``ValueError``)
      └── SynthesisFailed     one text could not be spoken: the engine failed, timed out or
                              answered with something that is not speech (the handler
                              publishes that sentence with ``error`` and goes on)

Configuration mistakes raise ``habla_common.errors.ConfigError`` naming the key.
"""

from __future__ import annotations

from habla_contracts import HablaError

__all__ = ["BadVoiceSpec", "EngineUnavailable", "SynthesisFailed", "TtsError"]


class TtsError(HablaError):
    pass


class EngineUnavailable(TtsError, RuntimeError):
    pass


class BadVoiceSpec(TtsError, ValueError):
    pass


class SynthesisFailed(TtsError):
    pass
