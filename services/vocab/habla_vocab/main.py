"""Bootstrap and run loop of the vocab service.

``python -m habla_vocab`` (or ``habla-vocab``): reads :class:`VocabConfig` from the
environment, applies pending migrations, writes its study settings where the due queue
reads them, then consumes ``term.saved``, the vocab facts (``vocab.saved``,
``vocab.reviewed``, ``vocab.deleted``), ``translation.final`` and ``session.deleted`` as
consumer group ``vocab`` until SIGTERM.
"""

from __future__ import annotations

from collections.abc import Callable

from habla_contracts import Event, TermSaved

from .adapters import HeardSource, LogHeardSource
from .config import VocabConfig
from .handlers import Publish, VocabHandler
from .store import PROJECTED_KINDS, PostgresVocabStore, VocabStore

__all__ = ["KINDS", "bootstrap", "build", "main"]

KINDS = (TermSaved.KIND, *PROJECTED_KINDS)


def bootstrap(
    config: VocabConfig,
    database_url: str,
    *,
    store: VocabStore | None = None,
    source: HeardSource | None = None,
) -> VocabHandler:
    """The service's handler with its dependencies (each can be overridden)."""
    return VocabHandler(
        config,
        store if store is not None else PostgresVocabStore(database_url),
        source if source is not None else LogHeardSource(database_url),
    )


def build(
    config: VocabConfig, database_url: str
) -> tuple[
    Callable[[Event, Publish], None],
    Callable[[list[Event]], list[Event]],
    Callable[[Event, str, Publish], None],
]:
    """``(handle, select, give_up)`` for :func:`habla_common.service.run_consumer` (``build=``)."""
    handler = bootstrap(config, database_url)
    handler.publish_settings()
    return handler.handle, handler.select, handler.give_up


def main() -> None:
    from habla_common.migrate import migrate
    from habla_common.service import run_consumer
    from habla_common.settings import Settings

    config = VocabConfig.from_env()  # a bad setting fails before Redis or Postgres is touched
    database_url = Settings.from_env("vocab").database_url
    migrate(database_url)
    run_consumer(service="vocab", group="vocab", kinds=KINDS, build=lambda _bus: build(config, database_url))


if __name__ == "__main__":
    main()
