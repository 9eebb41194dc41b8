"""The vocab service's configuration, read once from the environment.

Keys (all optional; the defaults suit one learner on one machine):

``VOCAB_CLIP_MAX_MS``        longest audio clip kept with a saved item, default 10000; a
                             longer speaker turn is cut around the saved phrase.
``VOCAB_CLIP_PAD_MS``        speech kept either side of the phrase when the phrase alone
                             needs more than ``VOCAB_CLIP_MAX_MS``, default 1500.
``VOCAB_CLIP_BITRATE``       MP3 bitrate of clips in kbit/s, default 32 (16 kHz mono speech).
``VOCAB_NEW_PER_DAY``        new cards in a day's study queue, default 20.
``VOCAB_REVIEWS_PER_DAY``    reviews in a day's study queue, default 200.
``VOCAB_TIMEZONE``           the learner's time zone (IANA name) for the study day, default UTC.
``VOCAB_DAY_STARTS_AT``      hour (0-23, local) at which a study day begins, default 4.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from habla_common.errors import ConfigError
from habla_common.settings import env_int, env_str

__all__ = ["VocabConfig"]


@dataclass(frozen=True)
class VocabConfig:
    clip_max_ms: int = 10_000
    clip_pad_ms: int = 1_500
    clip_bitrate_kbps: int = 32
    new_per_day: int = 20
    reviews_per_day: int = 200
    timezone: str = "UTC"
    day_starts_at: int = 4

    @classmethod
    def from_env(cls) -> VocabConfig:
        d = cls()
        cfg = cls(
            clip_max_ms=env_int("VOCAB_CLIP_MAX_MS", d.clip_max_ms),
            clip_pad_ms=env_int("VOCAB_CLIP_PAD_MS", d.clip_pad_ms),
            clip_bitrate_kbps=env_int("VOCAB_CLIP_BITRATE", d.clip_bitrate_kbps),
            new_per_day=env_int("VOCAB_NEW_PER_DAY", d.new_per_day),
            reviews_per_day=env_int("VOCAB_REVIEWS_PER_DAY", d.reviews_per_day),
            timezone=env_str("VOCAB_TIMEZONE", d.timezone),
            day_starts_at=env_int("VOCAB_DAY_STARTS_AT", d.day_starts_at),
        )
        cfg.check()
        return cfg

    def check(self) -> None:
        for key, value, low in (
            ("VOCAB_CLIP_MAX_MS", self.clip_max_ms, 1000),
            ("VOCAB_CLIP_PAD_MS", self.clip_pad_ms, 0),
            ("VOCAB_CLIP_BITRATE", self.clip_bitrate_kbps, 8),
            ("VOCAB_NEW_PER_DAY", self.new_per_day, 0),
            ("VOCAB_REVIEWS_PER_DAY", self.reviews_per_day, 0),
        ):
            if value < low:
                raise ConfigError(f"{key} must be at least {low}, got {value}")
        if not 0 <= self.day_starts_at <= 23:
            raise ConfigError(f"VOCAB_DAY_STARTS_AT is an hour from 0 to 23, got {self.day_starts_at}")
        self.tz()

    def tz(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ConfigError(
                f"VOCAB_TIMEZONE must be an IANA time zone such as Europe/Madrid, got {self.timezone!r}"
            ) from e
