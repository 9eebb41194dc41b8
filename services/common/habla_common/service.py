"""Bootstrap for a stream-consuming service: settings, Redis, topology, the loop.

``best_effort`` names the kinds the service may shed when it falls behind the live audio
(its live partials; see :mod:`habla_common.shedding`); ``HABLA_SHED=0`` turns shedding off."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from habla_contracts import Event

from .bus import RedisBus, connect_redis
from .consumer import Consumer, Select, consumer_name
from .lifecycle import install_stop_handlers, setup_logging, stop_with_parent
from .metrics import MODEL_LOAD_SECONDS, serve_metrics, watch_streams
from .settings import Settings
from .shedding import LoadShedder, install

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
    best_effort: Sequence[str] = (),
) -> Consumer:
    unknown = set(best_effort) - set(kinds)
    if unknown:
        raise ValueError(f"best-effort kinds {sorted(unknown)} are not among the consumed kinds {list(kinds)}")
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

    shed = (
        LoadShedder(settings.shed, settings.service or group, sheds=bool(best_effort))
        if settings.shed.enabled
        else None
    )
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
        shed=shed,
        best_effort=best_effort,
    )


def run_consumer(
    *,
    service: str,
    group: str,
    kinds: Sequence[str],
    handler: BoundHandler | None = None,
    build: Build | None = None,
    select: Select | None = None,
    best_effort: Sequence[str] = (),
) -> None:
    """Run one service's consumer loop until SIGTERM/SIGINT."""
    settings = Settings.from_env(service)
    setup_logging(settings.log_level, service)
    bus = RedisBus(connect_redis(settings.redis_url), settings.partitions)
    bus.ensure_topology()
    started = time.perf_counter()
    consumer = build_consumer(
        bus, settings, group=group, kinds=kinds, handler=handler, build=build, select=select, best_effort=best_effort
    )
    MODEL_LOAD_SECONDS.labels(service).set(time.perf_counter() - started)
    install(consumer.shed)  # the handler may ask shedding.current_level() to put off optional work
    if serve_metrics(settings.metrics_port, settings.metrics_host):
        watch_streams(bus.r, group, kinds, settings.partitions)
    stop = threading.Event()
    install_stop_handlers(stop)
    stop_with_parent()
    consumer.run(stop)
