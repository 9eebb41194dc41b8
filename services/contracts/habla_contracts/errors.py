"""Errors of the contracts library.

HablaError
 └── ContractError
      ├── UnknownEventKind   a kind no event class is registered for
      └── UndecodableEvent   bytes that are not a valid event of their kind
"""

from __future__ import annotations

__all__ = ["ContractError", "HablaError", "UndecodableEvent", "UnknownEventKind"]


class HablaError(Exception):
    """Base of every error Habla raises on purpose."""


class ContractError(HablaError):
    pass


class UnknownEventKind(ContractError):
    pass


class UndecodableEvent(ContractError):
    pass
