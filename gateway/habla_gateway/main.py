"""python -m habla_gateway: serve the gateway with uvicorn.

Host and port come from ``GATEWAY_HOST`` / ``GATEWAY_PORT`` (default 0.0.0.0:8000),
the token from ``HABLA_TOKEN`` (required; never printed or logged: socket paths are
logged with ``token=***``). With ``GATEWAY_TLS_CERT`` and ``GATEWAY_TLS_KEY`` it serves HTTPS
(and the socket as wss://); with ``GATEWAY_HTTPS=1`` and no certificate of its own it makes a
self-signed one in the data dir for the names in ``GATEWAY_TLS_NAMES`` (comma-separated: the
host name or address the phone uses) and logs its fingerprint.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import replace

import uvicorn

from habla_common.errors import ConfigError
from habla_common.lifecycle import setup_logging, stop_with_parent
from habla_common.settings import Settings, default_data_dir, env_bool, env_str

from .app import create_app
from .auth import RedactTokenFilter
from .config import GatewayConfig

__all__ = ["main", "server_config", "with_own_certificate"]

log = logging.getLogger("habla.gateway")


def server_config(config: GatewayConfig, redis_url: str, database_url: str) -> uvicorn.Config:
    """The uvicorn config, with the transport limits set explicitly."""
    uv = uvicorn.Config(
        create_app(config, redis_url, database_url),
        host=config.host,
        port=config.port,
        ws_max_size=config.ws_max_size,
        ws_ping_interval=config.ws_ping_interval,
        ws_ping_timeout=config.ws_ping_timeout,
        log_level=config.log_level.lower(),
        server_header=False,
        lifespan="on",
        timeout_graceful_shutdown=5,  # open sockets get 5 s to finish, then they are closed
        ssl_certfile=config.tls_cert or None,
        ssl_keyfile=config.tls_key or None,
    )
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).addFilter(RedactTokenFilter())
    return uv


def with_own_certificate(config: GatewayConfig) -> GatewayConfig:
    """``config`` serving HTTPS with this machine's self-signed certificate (made or reused)."""
    from habla_common.tls import ensure_certificate, fingerprint

    names = [n.strip() for n in env_str("GATEWAY_TLS_NAMES", "").split(",") if n.strip()]
    cert, key = ensure_certificate(default_data_dir() / "tls", names)
    log.info(
        "HTTPS with this machine's own certificate for %s; the phone warns once: check SHA-256 %s",
        ", ".join(["localhost", "127.0.0.1", *names]),
        fingerprint(cert),
    )
    return replace(config, tls_cert=str(cert), tls_key=str(key))


def main() -> None:
    try:
        settings = Settings.from_env("gateway")
        config = GatewayConfig.from_env()
    except ConfigError as e:
        sys.exit(f"habla-gateway: {e}")
    setup_logging(config.log_level, "gateway")
    if not config.https and env_bool("GATEWAY_HTTPS", False):
        config = with_own_certificate(config)
    uv = server_config(config, settings.redis_url, settings.database_url)
    stop_with_parent()  # uvicorn shuts down gracefully on the SIGTERM this sends
    uvicorn.Server(uv).run()


if __name__ == "__main__":
    main()
