"""Gateway configuration from the environment.

``GATEWAY_``-prefixed keys win over plain ones (see :mod:`habla_common.settings`).
``HABLA_TOKEN`` has no default: the runtime (``habla up``) makes one and passes it.
``GATEWAY_WEB_DIR`` is the phone client's folder (default: the checkout's ``web/``,
which is where ``habla up`` finds it; the gateway image sets ``/app/web``).
``GATEWAY_TLS_CERT`` / ``GATEWAY_TLS_KEY`` (PEM files, both or neither) serve HTTPS: a phone
records from its microphone only on an https:// page.
``GATEWAY_OPS_TARGETS`` (comma-separated ``name=url``: each service's Prometheus endpoint) is
what the ops view (:mod:`habla_gateway.ops`) scrapes besides the gateway's own metrics.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from habla_common.errors import ConfigError
from habla_common.settings import env_float, env_int, env_str

__all__ = ["GatewayConfig", "default_web_dir", "parse_ops_targets"]

_SERVICE = "gateway"
_TARGET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


def parse_ops_targets(value: str) -> tuple[tuple[str, str], ...]:
    """``GATEWAY_OPS_TARGETS``: ``asr=http://127.0.0.1:9101/metrics,ingest=http://…`` as
    ``((name, url), …)``; empty: none. ``gateway`` is the gateway's own registry, not a target."""
    targets: list[tuple[str, str]] = []
    for raw in value.split(","):
        item = raw.strip()
        if not item:
            continue
        name, sep, url = (part.strip() for part in item.partition("="))
        where = f"GATEWAY_OPS_TARGETS: {item!r}"
        if not sep or not name or not url:
            raise ConfigError(f"{where} is not name=url (e.g. asr=http://127.0.0.1:9101/metrics)")
        if not _TARGET_NAME.match(name):
            raise ConfigError(f"{where}: the name may hold letters, digits, '_', '.' and '-' only")
        if name == "gateway":
            raise ConfigError(f"{where}: the gateway's own metrics are always read; leave it out")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{where}: the URL must be http:// or https:// with a host")
        if any(name == seen for seen, _ in targets):
            raise ConfigError(f"{where}: {name} is named twice")
        targets.append((name, url))
    return tuple(targets)


def default_web_dir() -> str:
    """The repository's ``web/`` next to this package's source (an editable install)."""
    return str(Path(__file__).resolve().parents[2] / "web")


@dataclass(frozen=True)
class GatewayConfig:
    token: str
    host: str = "0.0.0.0"
    port: int = 8000
    # App-level limit: a bigger binary/text frame gets a ``frame_too_large`` error and
    # is dropped; the socket keeps working. ~8 s of PCM16 at 16 kHz.
    max_frame_bytes: int = 256 * 1024
    # Transport limit (uvicorn ``ws_max_size``): a frame above it closes the socket
    # with 1009, so it sits well above ``max_frame_bytes``.
    ws_max_size: int = 16 * 1024 * 1024
    ws_ping_interval: float = 20.0
    ws_ping_timeout: float = 20.0
    partitions: int = 4
    outbox_block_ms: int = 5000  # one XREAD BLOCK round per socket at most this long
    max_sockets: int = 32  # session.start beyond this many live sessions gets ``busy``
    busy_retry_after_s: int = 5
    log_level: str = "INFO"
    # The web client's static files, served at ``/`` without a token (the token lives
    # in the page's storage); a folder that does not exist serves no client.
    web_dir: str = field(default_factory=default_web_dir)
    tls_cert: str = ""
    tls_key: str = ""
    # the ops view's Prometheus endpoints besides the gateway's own: ((name, url), ...)
    ops_targets: tuple[tuple[str, str], ...] = ()
    # the speech API (POST /api/stream-audio, /ws/stream): one recording per turn
    max_upload_bytes: int = 25 * 1024 * 1024
    max_turn_s: float = 120.0  # longest recording a turn takes
    turn_timeout_s: float = 300.0  # how long a turn may wait for the pipeline

    @property
    def https(self) -> bool:
        return bool(self.tls_cert)

    def __post_init__(self) -> None:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("set both GATEWAY_TLS_CERT and GATEWAY_TLS_KEY (PEM files), or neither")
        for name, path in (("GATEWAY_TLS_CERT", self.tls_cert), ("GATEWAY_TLS_KEY", self.tls_key)):
            if path and not Path(path).is_file():
                raise ConfigError(f"{name}={path}: no such file")
        if not self.token:
            raise ConfigError("HABLA_TOKEN is empty; set it (habla up makes one and passes it)")
        if self.max_frame_bytes < 1:
            raise ConfigError("GATEWAY_MAX_FRAME_BYTES must be at least 1")
        if self.ws_max_size < self.max_frame_bytes:
            raise ConfigError("GATEWAY_WS_MAX_SIZE must not be smaller than GATEWAY_MAX_FRAME_BYTES")
        if self.partitions < 1:
            raise ConfigError("HABLA_PARTITIONS must be at least 1")
        if self.max_upload_bytes < 1 or self.max_turn_s <= 0 or self.turn_timeout_s <= 0:
            raise ConfigError(
                "GATEWAY_MAX_UPLOAD_BYTES, GATEWAY_MAX_TURN_S and GATEWAY_TURN_TIMEOUT_S must be positive"
            )

    @classmethod
    def from_env(cls) -> GatewayConfig:
        token = env_str("HABLA_TOKEN", "", _SERVICE)
        if not token:
            raise ConfigError("HABLA_TOKEN is not set; the gateway refuses to run without a token")
        return cls(
            token=token,
            host=env_str("GATEWAY_HOST", "0.0.0.0"),
            port=env_int("GATEWAY_PORT", 8000),
            max_frame_bytes=env_int("GATEWAY_MAX_FRAME_BYTES", 256 * 1024),
            ws_max_size=env_int("GATEWAY_WS_MAX_SIZE", 16 * 1024 * 1024),
            ws_ping_interval=env_float("GATEWAY_WS_PING_INTERVAL", 20.0),
            ws_ping_timeout=env_float("GATEWAY_WS_PING_TIMEOUT", 20.0),
            partitions=env_int("HABLA_PARTITIONS", 4, _SERVICE),
            outbox_block_ms=env_int("GATEWAY_OUTBOX_BLOCK_MS", 5000),
            max_sockets=env_int("GATEWAY_MAX_SESSIONS", 32),
            busy_retry_after_s=env_int("GATEWAY_BUSY_RETRY_AFTER_S", 5),
            log_level=env_str("LOG_LEVEL", "INFO", _SERVICE),
            web_dir=env_str("GATEWAY_WEB_DIR", "") or default_web_dir(),
            tls_cert=env_str("GATEWAY_TLS_CERT", ""),
            tls_key=env_str("GATEWAY_TLS_KEY", ""),
            ops_targets=parse_ops_targets(env_str("GATEWAY_OPS_TARGETS", "")),
            max_upload_bytes=env_int("GATEWAY_MAX_UPLOAD_BYTES", 25 * 1024 * 1024),
            max_turn_s=env_float("GATEWAY_MAX_TURN_S", 120.0),
            turn_timeout_s=env_float("GATEWAY_TURN_TIMEOUT_S", 300.0),
        )

    def __repr__(self) -> str:  # never show the token
        return (
            f"GatewayConfig(host={self.host!r}, port={self.port}, https={self.https}, "
            f"max_frame_bytes={self.max_frame_bytes})"
        )
