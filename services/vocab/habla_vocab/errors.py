"""Errors of the vocab service.

HablaError (habla_contracts)
 └── VocabError
      ├── UnknownItem       no vocabulary item has that id (never saved, or deleted)
      ├── BadGrade          a review grade outside 0-5
      ├── ContextNotReady   the utterance a term was saved from is not in the event log yet
      │                     (the consumer retries; when it gives up the item is saved
      │                     without its sentence and clip)
      ├── ClipFailed        the clip could not be encoded
      └── ExportFailed      an export could not be written

Configuration mistakes raise ``habla_common.errors.ConfigError`` naming the key.
"""

from __future__ import annotations

from habla_contracts import HablaError

__all__ = ["BadGrade", "ClipFailed", "ContextNotReady", "ExportFailed", "UnknownItem", "VocabError"]


class VocabError(HablaError):
    pass


class UnknownItem(VocabError, LookupError):
    pass


class BadGrade(VocabError, ValueError):
    pass


class ContextNotReady(VocabError):
    pass


class ClipFailed(VocabError, RuntimeError):
    pass


class ExportFailed(VocabError, RuntimeError):
    pass
