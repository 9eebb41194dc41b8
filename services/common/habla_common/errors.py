"""Errors of the shared runtime.

HablaError (habla_contracts)
 └── InfraError
      ├── ConfigError        a setting has a value that cannot work (names the key)
      ├── BusUnavailable     Redis cannot be reached
      └── StoreUnavailable   Postgres cannot be reached
"""

from __future__ import annotations

from habla_contracts import HablaError

__all__ = ["BusUnavailable", "ConfigError", "InfraError", "StoreUnavailable"]


class InfraError(HablaError):
    pass


class ConfigError(InfraError):
    pass


class BusUnavailable(InfraError):
    pass


class StoreUnavailable(InfraError):
    pass
