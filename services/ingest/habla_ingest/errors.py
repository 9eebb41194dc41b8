"""Errors of the ingest service.

HablaError (habla_contracts)
 └── IngestError
      ├── DecodeError        audio bytes that cannot be decoded (garbage, truncated
      │                      or wrong container); the session goes on with the next chunk
      └── UnsupportedAudio   a codec or sample rate ingest does not handle
"""

from __future__ import annotations

from habla_contracts import HablaError

__all__ = ["DecodeError", "IngestError", "UnsupportedAudio"]


class IngestError(HablaError):
    pass


class DecodeError(IngestError):
    pass


class UnsupportedAudio(IngestError):
    pass
