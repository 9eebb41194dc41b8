"""Bootstrap for a stream-consuming service: settings, Redis, topology, the loop."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from habla_contracts import Event

from .bus import RedisBus, connect_redis
from .consumer import Consumer, Select, consumer_name
from .lifecycle import install_stop_handlers, setup_logging
from .settings import Settings

__all__ = ["run_consumer", "build_consumer"]

Publish = Callable[[Event], Any]
BoundHandler = Callable[[Event, Publish], None]
Build = Callable[[RedisBus], "BoundHandler | tuple[BoundHandler, Select]"]


def build_consumer(
    bus: RedisBus,
    settings: Settings,
    *,
    group: str,
    kinds: Sequence[str],
    handler: BoundHandler | None = None,
    build: Build | None = None,
    select: Select | None = None,
    name: str | None = None,
) -> Consumer:
    if build is not None:
        built = build(bus)
        handler, select = built if isinstance(built, tuple) else (built, select)
    if handler is None:
        raise ValueError("give handler= or build=")
    bound = handler

    def handle(event: Event) -> None:
        bound(event, bus.publish)

    return Consumer(
        bus,
        group,
        kinds,
        handle,
        name=name or consumer_name(settings.service or group),
        select=select,
        max_deliveries=settings.max_deliveries,
        block_ms=settings.block_ms,
        lease_ms=settings.lease_ms,
    )


def run_consumer(
    *,
    service: str,
    group: str,
    kinds: Sequence[str],
    handler: BoundHandler | None = None,
    build: Build | None = None,
    select: Select | None = None,
) -> None:
    """Run one service's consumer loop until SIGTERM/SIGINT."""
    settings = Settings.from_env(service)
    setup_logging(settings.log_level, service)
    bus = RedisBus(connect_redis(settings.redis_url), settings.partitions)
    bus.ensure_topology()
    consumer = build_consumer(bus, settings, group=group, kinds=kinds, handler=handler, build=build, select=select)
    stop = threading.Event()
    install_stop_handlers(stop)
    consumer.run(stop)
