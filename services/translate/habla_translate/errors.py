"""Errors of the translate service.

HablaError (habla_contracts)
 └── TranslateError
      ├── ModelUnavailable      the LLM cannot be assembled, found or loaded (not retryable:
      │    │                    the message says what to install or configure)
      │    └── ModelCorrupt     an assembled bundled model does not match what was recorded
      ├── BackendError          one call to the LLM backend failed or timed out (retryable:
      │                         Ollama restarting, a dropped connection, a busy server)
      └── OutputInvalid         the model answered, but not in a form the caller can parse

``ModelUnavailable`` is also a ``RuntimeError`` so that code which only knows the standard
library (a supervisor, a CLI) still treats it as a fatal start-up failure.
Configuration mistakes raise ``habla_common.errors.ConfigError`` naming the key.
"""

from __future__ import annotations

from habla_contracts import HablaError

__all__ = ["BackendError", "ModelCorrupt", "ModelUnavailable", "OutputInvalid", "TranslateError"]


class TranslateError(HablaError):
    pass


class ModelUnavailable(TranslateError, RuntimeError):
    pass


class ModelCorrupt(ModelUnavailable):
    pass


class BackendError(TranslateError):
    pass


class OutputInvalid(TranslateError):
    pass
