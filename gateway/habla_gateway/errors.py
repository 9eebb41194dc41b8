"""Errors of the gateway.

HablaError (habla_contracts)
 └── GatewayError
      └── ProtocolError   a client frame the gateway cannot use; carries the ``code``
                          sent back in the ``error`` frame (the socket stays open)

Infrastructure failures arrive as :class:`habla_common.errors.BusUnavailable` /
``StoreUnavailable`` (or ``redis``/``psycopg`` errors) and are reported as
``unavailable``: the socket closes with 1011 so the client resumes, REST answers 503.
"""

from __future__ import annotations

from typing import Any

from habla_contracts import HablaError

__all__ = ["GatewayError", "ProtocolError"]


class GatewayError(HablaError):
    pass


class ProtocolError(GatewayError):
    """A client frame was refused; ``code`` is one of :mod:`habla_gateway.protocol`'s codes."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.extra = extra

    def frame(self) -> dict[str, Any]:
        return {"type": "error", "code": self.code, "message": self.message, **self.extra}
