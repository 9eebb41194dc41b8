"""The recorder's configuration, read once from the environment.

Keys (all optional):

``RECORDER_AUDIO_BITRATE``  Opus bitrate of stored utterance audio in kbit/s, default 24
                            (16 kHz mono speech; 6-510).
``AUDIO_RETENTION_DAYS``    delete stored utterance audio this many days after it was heard
                            (``RECORDER_AUDIO_RETENTION_DAYS`` wins); 0 keeps it forever, the
                            default. Transcripts and translations are kept either way.
"""

from __future__ import annotations

from dataclasses import dataclass

from habla_common.errors import ConfigError
from habla_common.settings import env_int

__all__ = ["RecorderConfig"]


@dataclass(frozen=True)
class RecorderConfig:
    audio_bitrate_kbps: int = 24
    audio_retention_days: int = 0

    @classmethod
    def from_env(cls) -> RecorderConfig:
        d = cls()
        cfg = cls(
            audio_bitrate_kbps=env_int("RECORDER_AUDIO_BITRATE", d.audio_bitrate_kbps),
            audio_retention_days=env_int("AUDIO_RETENTION_DAYS", d.audio_retention_days, "recorder"),
        )
        cfg.check()
        return cfg

    def check(self) -> None:
        if not 6 <= self.audio_bitrate_kbps <= 510:
            raise ConfigError(f"RECORDER_AUDIO_BITRATE is Opus kbit/s from 6 to 510, got {self.audio_bitrate_kbps}")
        if self.audio_retention_days < 0:
            raise ConfigError(
                "AUDIO_RETENTION_DAYS must be 0 (keep audio forever) or a number of days, "
                f"got {self.audio_retention_days}"
            )
