"""Habla's speech recognition service: utterances and live windows to transcripts."""

from __future__ import annotations

from .adapters import FasterWhisperTranscriber, Transcriber, assemble_bundled_model, load_whisper
from .agreement import LocalAgreement
from .config import AsrConfig
from .domain import Cleaned, Segment, Thresholds, Transcription, clean, collapse_repetitions, is_boilerplate
from .errors import AsrError, ModelCorrupt, ModelUnavailable, TranscriptionFailed
from .handlers import AsrHandler

__all__ = [
    "AsrConfig",
    "AsrError",
    "AsrHandler",
    "Cleaned",
    "FasterWhisperTranscriber",
    "LocalAgreement",
    "ModelCorrupt",
    "ModelUnavailable",
    "Segment",
    "Thresholds",
    "Transcriber",
    "Transcription",
    "TranscriptionFailed",
    "assemble_bundled_model",
    "clean",
    "collapse_repetitions",
    "is_boilerplate",
    "load_whisper",
]
