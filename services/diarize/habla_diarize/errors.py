"""Errors of the diarize service.

HablaError (habla_contracts)
 └── DiarizeError
      ├── EmbedderUnavailable   the configured embedding backend cannot be loaded here
      ├── EmbeddingFailed       audio the embedder cannot use (empty, wrong shape or rate)
      └── EnrolmentFailed       a voice cannot be enrolled from this recording (too little speech, no name)

Configuration mistakes raise ``habla_common.errors.ConfigError`` naming the key.
"""

from __future__ import annotations

from habla_contracts import HablaError

__all__ = ["DiarizeError", "EmbedderUnavailable", "EmbeddingFailed", "EnrolmentFailed"]


class DiarizeError(HablaError):
    pass


class EmbedderUnavailable(DiarizeError, RuntimeError):
    pass


class EmbeddingFailed(DiarizeError, ValueError):
    pass


class EnrolmentFailed(DiarizeError, ValueError):
    pass
