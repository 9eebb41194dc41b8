"""Bootstrap and run loop of the ingest service.

``python -m habla_ingest``: reads :class:`IngestConfig` from the environment, loads
Silero once (a broken install fails here, not on the first chunk), then consumes
``audio.chunk`` as consumer group ``ingest`` until SIGTERM. On the way out it
publishes every session's utterance in progress (reason ``end``), so a restart
loses no speech; the next worker picks the sessions up at their next chunk. Each
session's checkpoint lives in Redis (``ingest:<session>``, see
:class:`~habla_ingest.adapters.RedisCheckpointStore`), so a worker that takes a
session over, after a SIGTERM or a crash, continues its timeline and numbering.
"""

from __future__ import annotations

from typing import Any

from habla_contracts import AudioChunkReceived

from .adapters import RedisCheckpointStore, SileroDetector
from .config import IngestConfig
from .handlers import IngestHandler, Publish

__all__ = ["KINDS", "bootstrap", "main"]

KINDS = (AudioChunkReceived.KIND,)


def bootstrap(config: IngestConfig, bus: Any = None, **overrides: Any) -> IngestHandler:
    """The service's handler; ``overrides`` go to :class:`IngestHandler` (factories, clock).
    With ``bus`` (a RedisBus) its checkpoints go to Redis on the bus's client."""
    if bus is not None:
        overrides.setdefault("checkpoints", RedisCheckpointStore(bus.r))
    return IngestHandler(config, **overrides)


def main() -> None:
    from habla_common.bus import RedisBus
    from habla_common.service import run_consumer

    config = IngestConfig.from_env()  # a bad setting fails before Redis or the model is touched
    SileroDetector()
    built: list[tuple[IngestHandler, Publish]] = []

    def build(bus: RedisBus) -> Any:
        handler = bootstrap(config, bus)
        built.append((handler, bus.publish))
        return handler.handle

    run_consumer(service="ingest", group="ingest", kinds=KINDS, build=build)
    for handler, publish in built:
        handler.flush_all(publish)


if __name__ == "__main__":
    main()
