"""python -m habla_gateway: serve the gateway with uvicorn.

Host and port come from ``GATEWAY_HOST`` / ``GATEWAY_PORT`` (default 0.0.0.0:8000),
the token from ``HABLA_TOKEN`` (required; never printed or logged: socket paths are
logged with ``token=***``).
"""

from __future__ import annotations

import logging
import sys

import uvicorn

from habla_common.errors import ConfigError
from habla_common.lifecycle import setup_logging, stop_with_parent
from habla_common.settings import Settings

from .app import create_app
from .auth import RedactTokenFilter
from .config import GatewayConfig

__all__ = ["main", "server_config"]


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
    )
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).addFilter(RedactTokenFilter())
    return uv


def main() -> None:
    try:
        settings = Settings.from_env("gateway")
        config = GatewayConfig.from_env()
    except ConfigError as e:
        sys.exit(f"habla-gateway: {e}")
    setup_logging(config.log_level, "gateway")
    uv = server_config(config, settings.redis_url, settings.database_url)
    stop_with_parent()  # uvicorn shuts down gracefully on the SIGTERM this sends
    uvicorn.Server(uv).run()


if __name__ == "__main__":
    main()
