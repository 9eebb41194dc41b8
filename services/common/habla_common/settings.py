"""Configuration from the environment.

Every key has a default that works on one machine. A service-prefixed key wins over
the plain one (``ASR_REDIS_URL`` over ``REDIS_URL`` for the asr service).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

__all__ = ["Settings", "default_data_dir", "env_bool", "env_float", "env_int", "env_str"]


def _lookup(key: str, service: str | None) -> str | None:
    if service:
        v = os.environ.get(f"{service.upper()}_{key}")
        if v not in (None, ""):
            return v
    v = os.environ.get(key)
    return v if v not in (None, "") else None


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
        )
