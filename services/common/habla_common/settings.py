"""Configuration from the environment.

Every key has a default that works on one machine. A service-prefixed key wins over
the plain one (``ASR_REDIS_URL`` over ``REDIS_URL`` for the asr service); for the
``HABLA_``-prefixed load-shedding keys the service's own key drops that prefix
(``ASR_SHED_THIN_S`` over ``HABLA_SHED_THIN_S``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError

__all__ = ["Settings", "ShedPolicy", "default_data_dir", "env_bool", "env_float", "env_int", "env_str", "habla_key"]


def _lookup(key: str, service: str | None) -> str | None:
    if service:
        v = os.environ.get(f"{service.upper()}_{key}")
        if v not in (None, ""):
            return v
    v = os.environ.get(key)
    return v if v not in (None, "") else None


def habla_key(name: str, service: str | None) -> str:
    """The key that sets ``HABLA_<name>`` for ``service``: ``<SERVICE>_<name>`` when that is
    set (``ASR_SHED_THIN_S``), else ``HABLA_<name>``."""
    if service and os.environ.get(f"{service.upper()}_{name}") not in (None, ""):
        return f"{service.upper()}_{name}"
    return f"HABLA_{name}"


def env_str(key: str, default: str, service: str | None = None) -> str:
    v = _lookup(key, service)
    return default if v is None else v


def env_int(key: str, default: int, service: str | None = None) -> int:
    v = _lookup(key, service)
    if v is None:
        return default
    try:
        return int(v)
    except ValueError as e:
        raise ConfigError(f"{key} must be an integer, got {v!r}") from e


def env_float(key: str, default: float, service: str | None = None) -> float:
    v = _lookup(key, service)
    if v is None:
        return default
    try:
        return float(v)
    except ValueError as e:
        raise ConfigError(f"{key} must be a number, got {v!r}") from e


def env_bool(key: str, default: bool, service: str | None = None) -> bool:
    v = _lookup(key, service)
    if v is None:
        return default
    if v.lower() in ("1", "true", "yes", "on"):
        return True
    if v.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key} must be true or false, got {v!r}")


def default_data_dir() -> Path:
    return Path(os.environ.get("HABLA_DATA_DIR") or Path.home() / ".local" / "share" / "habla")


@dataclass(frozen=True)
class ShedPolicy:
    """When a consumer sheds best-effort work (see :mod:`habla_common.shedding`).

    ``behind`` is how many seconds the consumer is behind the live audio. At or above
    ``thin_at_s`` live partials are thinned to one per ``thin_interval_s`` per utterance;
    at or above ``finals_only_at_s`` only finals are handled. A level is left, one step at a
    time, once ``behind`` has stayed under ``recover`` x its entry threshold for ``hold_s``.
    """

    enabled: bool = True
    thin_at_s: float = 2.0
    finals_only_at_s: float = 5.0
    thin_interval_s: float = 2.0
    hold_s: float = 5.0
    recover: float = 0.5

    def __post_init__(self) -> None:
        per_service = "(a <SERVICE>_SHED_… key overrides it for one service)"
        if not self.thin_at_s > 0:
            raise ConfigError(f"HABLA_SHED_THIN_S must be above 0 seconds, got {self.thin_at_s} {per_service}")
        if not self.finals_only_at_s > self.thin_at_s:
            raise ConfigError(
                f"HABLA_SHED_FINALS_ONLY_S ({self.finals_only_at_s} s) must be above HABLA_SHED_THIN_S "
                f"({self.thin_at_s} s) {per_service}"
            )
        if self.thin_interval_s < 0:
            raise ConfigError(
                f"HABLA_SHED_THIN_INTERVAL_S must be 0 or more seconds, got {self.thin_interval_s} {per_service}"
            )
        if self.hold_s < 0:
            raise ConfigError(f"HABLA_SHED_HOLD_S must be 0 or more seconds, got {self.hold_s} {per_service}")
        if not 0 < self.recover <= 1:
            raise ConfigError(f"the shedding recover factor must be above 0 and at most 1, got {self.recover}")

    @classmethod
    def from_env(cls, service: str | None = None) -> ShedPolicy:
        """``HABLA_SHED``, ``HABLA_SHED_THIN_S``, ``HABLA_SHED_FINALS_ONLY_S``,
        ``HABLA_SHED_THIN_INTERVAL_S``, ``HABLA_SHED_HOLD_S``; ``<SERVICE>_SHED…`` wins.
        A service whose input is already seconds old by design starts from its own defaults."""
        d = _SHED_DEFAULTS.get(service or "") or cls()

        def number(name: str, default: float) -> float:
            return env_float(habla_key(name, service), default)

        return cls(
            enabled=env_bool(habla_key("SHED", service), d.enabled),
            thin_at_s=number("SHED_THIN_S", d.thin_at_s),
            finals_only_at_s=number("SHED_FINALS_ONLY_S", d.finals_only_at_s),
            thin_interval_s=number("SHED_THIN_INTERVAL_S", d.thin_interval_s),
            hold_s=number("SHED_HOLD_S", d.hold_s),
        )


# translate reads ASR's output, which on a laptop CPU comes seconds after the audio: its live
# partials are worth translating for longer, and its finals turn express at 15 s (translate config)
_SHED_DEFAULTS: dict[str, ShedPolicy] = {"translate": ShedPolicy(thin_at_s=6.0, finals_only_at_s=12.0)}


@dataclass(frozen=True)
class Settings:
    """Settings every service shares."""

    service: str
    redis_url: str
    database_url: str
    partitions: int
    max_deliveries: int
    block_ms: int
    lease_ms: int
    log_level: str
    metrics_port: int = 0  # 0: no metrics endpoint (habla_common.metrics)
    metrics_host: str = "127.0.0.1"
    shed: ShedPolicy = field(default_factory=ShedPolicy)

    @classmethod
    def from_env(cls, service: str = "") -> Settings:
        s = service or None
        partitions = env_int("HABLA_PARTITIONS", 4, s)
        if partitions < 1:
            raise ConfigError("HABLA_PARTITIONS must be at least 1")
        return cls(
            service=service,
            redis_url=env_str("REDIS_URL", "redis://localhost:6379/0", s),
            database_url=env_str("DATABASE_URL", "postgresql://postgres@localhost:5432/habla", s),
            partitions=partitions,
            max_deliveries=env_int("HABLA_MAX_DELIVERIES", 5, s),
            block_ms=env_int("HABLA_BLOCK_MS", 500, s),
            lease_ms=env_int("HABLA_LEASE_MS", 5000, s),
            log_level=env_str("LOG_LEVEL", "INFO", s),
            metrics_port=env_int("METRICS_PORT", 0, s),
            metrics_host=env_str("METRICS_HOST", "127.0.0.1", s),
            shed=ShedPolicy.from_env(s),
        )
