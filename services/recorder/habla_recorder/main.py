"""python -m habla_recorder: record facts from every shard this worker leases."""

from __future__ import annotations

from habla_common.bus import RedisBus
from habla_common.eventlog import PostgresEventStore, connect_pg
from habla_common.migrate import migrate
from habla_common.service import run_consumer
from habla_common.settings import Settings
from habla_contracts.streams import fact_kinds

from .config import RecorderConfig
from .handlers import Recorder


def main() -> None:
    settings = Settings.from_env("recorder")
    config = RecorderConfig.from_env()
    migrate(settings.database_url)

    def build(bus: RedisBus) -> Recorder.handle:  # type: ignore[valid-type]
        recorder = Recorder(
            connect_pg(settings.database_url, autocommit=True),
            PostgresEventStore(settings.database_url),
            config,
            bus=bus,
        )
        recorder.prune_audio()  # retention at start, then at most hourly as facts arrive
        return recorder.handle

    run_consumer(service="recorder", group="recorder", kinds=fact_kinds(), build=build)


if __name__ == "__main__":
    main()
