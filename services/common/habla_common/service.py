"""Bootstrap for a stream-consuming service: settings, Redis, topology, the loop."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from habla_contracts import Event

from .bus import RedisBus, connect_redis
from .consumer import Consumer, Select, consumer_name
from .lifecycle import install_stop_handlers, setup_logging, stop_with_parent
from .metrics import serve_metrics, watch_streams
from .settings import Settings

__all__ = ["build_consumer", "run_consumer"]

Publish = Callable[[Event], Any]
BoundHandler = Callable[[Event, Publish], None]
BoundGiveUp = Callable[[Event, str, Publish], None]
Build = Callable[[RedisBus], "BoundHandler | tuple[BoundHandler, Select] | tuple[BoundHandler, Select, BoundGiveUp]"]


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
    give_up: BoundGiveUp | None = None
    if build is not None:
        built = build(bus)
        if isinstance(built, tuple):
            handler, select, *rest = built
            give_up = rest[0] if rest else None
        else:
            handler = built
    if handler is None:
        raise ValueError("give handler= or build=")
    bound, bound_give_up = handler, give_up

    def handle(event: Event) -> None:
        bound(event, bus.publish)

    def on_give_up(event: Event, reason: str) -> None:
        if bound_give_up is not None:
            bound_give_up(event, reason, bus.publish)

    return Consumer(
        bus,
        group,
        kinds,
        handle,
        name=name or consumer_name(settings.service or group),
        select=select,
        give_up=on_give_up if give_up is not None else None,
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
    if serve_metrics(settings.metrics_port, settings.metrics_host):
        watch_streams(bus.r, group, kinds, settings.partitions)
    stop = threading.Event()
    install_stop_handlers(stop)
    stop_with_parent()
    consumer.run(stop)
