"""Errors of the asr service.

HablaError (habla_contracts)
 └── AsrError
      ├── ModelUnavailable      the Whisper model cannot be assembled, found or loaded
      │    └── ModelCorrupt     an assembled model does not match what was recorded
      └── TranscriptionFailed   the model raised while transcribing (retried by the consumer)

Configuration mistakes raise ``habla_common.errors.ConfigError`` naming the key.
"""

from __future__ import annotations

from habla_contracts import HablaError

__all__ = ["AsrError", "ModelCorrupt", "ModelUnavailable", "TranscriptionFailed"]


class AsrError(HablaError):
    pass


class ModelUnavailable(AsrError, RuntimeError):
    pass


class ModelCorrupt(ModelUnavailable):
    pass


class TranscriptionFailed(AsrError):
    pass
