"""Bootstrap and run loop of the diarize service.

``python -m habla_diarize`` (or ``habla-diarize``): reads :class:`DiarizeConfig` from the
environment, loads and warms up the speaker embedder, loads the stored voiceprints from
the event log, then consumes ``speech.segmented``, ``asr.final``, ``speaker.renamed`` and
``voiceprint.*`` as consumer group ``diarize`` until SIGTERM. Before the encoder loads,
torch is capped to ``DIARIZE_CPU_THREADS`` threads and, on a GPU, to
``DIARIZE_GPU_MEMORY_FRACTION`` of its memory (:mod:`habla_common.limits`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from habla_contracts import (
    Event,
    HablaError,
    SpeakerRenamed,
    TranscriptFinal,
    UtteranceSegmented,
    VoiceprintDeleted,
    VoiceprintSaved,
)

from .config import DiarizeConfig
from .embedders import SpeakerEmbedder, build_embedder
from .handlers import DiarizeHandler, Publish, SettingsLookup
from .store import RedisStateStore

__all__ = ["KINDS", "bootstrap", "build", "main", "stored_voiceprints"]

log = logging.getLogger("habla.diarize")

KINDS = (
    UtteranceSegmented.KIND,
    TranscriptFinal.KIND,
    SpeakerRenamed.KIND,
    VoiceprintSaved.KIND,
    VoiceprintDeleted.KIND,
)


class BusLike(Protocol):
    """The part of the bus the service needs (``habla_common.bus.RedisBus`` has it)."""

    r: Any

    def session_settings(self, session_id: str) -> Mapping[str, str]: ...


def stored_voiceprints(database_url: str) -> list[VoiceprintSaved | VoiceprintDeleted]:
    """Voiceprints saved and deleted before this start, in log order (the log is the truth)."""
    from habla_common.eventlog import PostgresEventStore

    try:
        store = PostgresEventStore(database_url)
        stored = [*store.events_of_kind(VoiceprintSaved.KIND), *store.events_of_kind(VoiceprintDeleted.KIND)]
    except HablaError as e:
        log.warning("voiceprints not loaded (%s); new ones still apply", e)
        return []
    stored.sort(key=lambda s: s.position)
    return [s.event for s in stored if isinstance(s.event, VoiceprintSaved | VoiceprintDeleted)]


def bootstrap(
    config: DiarizeConfig,
    redis_client: Any,
    settings_lookup: SettingsLookup,
    *,
    embedder: SpeakerEmbedder | None = None,
    voiceprints: list[VoiceprintSaved | VoiceprintDeleted] | None = None,
) -> DiarizeHandler:
    """The service's handler with its dependencies; pass ``embedder`` to override the model."""
    if embedder is None and config.backend != "none":
        embedder = build_embedder(config)
    store = RedisStateStore(redis_client, ttl_s=config.state_ttl_s)
    return DiarizeHandler(embedder, config, store, settings_lookup, voiceprints=voiceprints or [])


def build(
    bus: BusLike, config: DiarizeConfig, database_url: str = "", **overrides: Any
) -> tuple[
    Callable[[Event, Publish], None],
    Callable[[list[Event]], list[Event]],
    Callable[[Event, str, Publish], None],
]:
    """``(handle, select, give_up)`` for :func:`habla_common.service.run_consumer` (``build=``)."""
    voiceprints = stored_voiceprints(database_url) if database_url else []
    handler = bootstrap(config, bus.r, bus.session_settings, voiceprints=voiceprints, **overrides)
    return handler.handle, handler.select, handler.give_up


def main() -> None:
    from habla_common.limits import cap_torch, gpu_memory_fraction
    from habla_common.service import run_consumer
    from habla_common.settings import Settings

    config = DiarizeConfig.from_env()  # a bad setting fails before Redis or the model is touched
    fraction = gpu_memory_fraction("diarize")
    database_url = Settings.from_env("diarize").database_url
    if config.backend != "none":  # the encoders run on torch
        cap_torch(threads=config.cpu_threads, gpu_memory_fraction=fraction if config.device != "cpu" else None)
    run_consumer(service="diarize", group="diarize", kinds=KINDS, build=lambda bus: build(bus, config, database_url))


if __name__ == "__main__":
    main()
