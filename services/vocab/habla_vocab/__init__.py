"""Habla's study stage: saved words, phrases, idioms and corrections as vocabulary items with
their context and audio, SM-2 spaced repetition, and Anki/CSV export."""

from .adapters import Heard, HeardSource, LogHeardSource
from .config import VocabConfig
from .errors import BadGrade, ClipFailed, ContextNotReady, ExportFailed, UnknownItem, VocabError
from .handlers import VocabHandler
from .jobs import enqueue_export, run_export
from .srs import Schedule
from .store import Context, DueCard, Item, PostgresVocabStore, Review, VocabStore, rebuild

__all__ = [
    "BadGrade",
    "ClipFailed",
    "Context",
    "ContextNotReady",
    "DueCard",
    "ExportFailed",
    "Heard",
    "HeardSource",
    "Item",
    "LogHeardSource",
    "PostgresVocabStore",
    "Review",
    "Schedule",
    "UnknownItem",
    "VocabConfig",
    "VocabError",
    "VocabHandler",
    "VocabStore",
    "enqueue_export",
    "rebuild",
    "run_export",
]
