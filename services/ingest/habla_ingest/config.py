"""Ingest settings from the environment (every key has a one-laptop default).

Latency budget for the first live caption on 2 CPU cores: the first window is cut
``INGEST_FIRST_WINDOW_MS`` after the speech onset, reaches ingest at most one
MediaRecorder timeslice (250 ms) later, and a Whisper call takes 0.5-0.9 s:
450 + 250 + 900 ms at worst, so the first window comes earlier than the following
ones to keep onset-to-caption under the 1.5 s goal (`habla bench` measures it).
"""

from __future__ import annotations

from dataclasses import dataclass

from habla_common.errors import ConfigError
from habla_common.settings import env_float, env_int

from .domain import SegmenterOptions

__all__ = ["IngestConfig"]


@dataclass(frozen=True)
class IngestConfig:
    silence_ms: int = 500  # a pause this long ends an utterance
    first_window_ms: int = 450  # first partial window, after the speech onset
    window_ms: int = 1000  # then one partial window per this much speech
    max_window_s: float = 28.0  # partial windows carry at most the last N seconds
    max_utterance_s: float = 20.0  # longer monologues are split at a quiet point
    speech_pad_ms: int = 200  # pre-roll and post-roll around speech
    min_speech_ms: int = 250  # shorter blips are dropped
    vad_threshold: float = 0.5
    max_sessions: int = 32  # live sessions kept; the least recently used is flushed first
    session_idle_s: float = 300.0  # a session silent this long is flushed and forgotten

    @classmethod
    def from_env(cls) -> IngestConfig:
        d = cls()
        cfg = cls(
            silence_ms=env_int("INGEST_SILENCE_MS", d.silence_ms),
            first_window_ms=env_int("INGEST_FIRST_WINDOW_MS", d.first_window_ms),
            window_ms=env_int("INGEST_WINDOW_MS", d.window_ms),
            max_window_s=env_float("INGEST_MAX_WINDOW_S", d.max_window_s),
            max_utterance_s=env_float("INGEST_MAX_UTTERANCE_S", d.max_utterance_s),
            speech_pad_ms=env_int("INGEST_SPEECH_PAD_MS", d.speech_pad_ms),
            min_speech_ms=env_int("INGEST_MIN_SPEECH_MS", d.min_speech_ms),
            vad_threshold=env_float("INGEST_VAD_THRESHOLD", d.vad_threshold),
            max_sessions=env_int("INGEST_MAX_SESSIONS", d.max_sessions),
            session_idle_s=env_float("INGEST_SESSION_IDLE_S", d.session_idle_s),
        )
        cfg.validate()
        return cfg

    def validate(self) -> None:
        checks: list[tuple[str, float, bool, str]] = [
            ("INGEST_SILENCE_MS", self.silence_ms, self.silence_ms > 0, "> 0"),
            ("INGEST_FIRST_WINDOW_MS", self.first_window_ms, self.first_window_ms > 0, "> 0"),
            ("INGEST_WINDOW_MS", self.window_ms, self.window_ms > 0, "> 0"),
            ("INGEST_MAX_WINDOW_S", self.max_window_s, 1 <= self.max_window_s <= 30, "1..30 (Whisper sees 30 s)"),
            ("INGEST_MAX_UTTERANCE_S", self.max_utterance_s, 1 <= self.max_utterance_s <= 600, "1..600"),
            ("INGEST_SPEECH_PAD_MS", self.speech_pad_ms, 0 <= self.speech_pad_ms <= 2000, "0..2000"),
            ("INGEST_MIN_SPEECH_MS", self.min_speech_ms, self.min_speech_ms >= 0, ">= 0"),
            ("INGEST_VAD_THRESHOLD", self.vad_threshold, 0.16 <= self.vad_threshold < 1, "0.16..1"),
            ("INGEST_MAX_SESSIONS", self.max_sessions, self.max_sessions >= 1, ">= 1"),
            ("INGEST_SESSION_IDLE_S", self.session_idle_s, self.session_idle_s > 0, "> 0"),
        ]
        for key, value, ok, expected in checks:
            if not ok:
                raise ConfigError(f"{key}={value} is out of range; expected {expected}")

    def segmenter_options(self) -> SegmenterOptions:
        return SegmenterOptions(
            threshold=self.vad_threshold,
            silence_ms=self.silence_ms,
            speech_pad_ms=self.speech_pad_ms,
            min_speech_ms=self.min_speech_ms,
            first_window_ms=self.first_window_ms,
            window_ms=self.window_ms,
            max_window_ms=int(self.max_window_s * 1000),
            max_utterance_ms=int(self.max_utterance_s * 1000),
        )
