"""Bootstrap and run loop of the translate service.

``python -m habla_translate`` (or ``habla-translate``): reads :class:`TranslateConfig`
from the environment, loads the idiom database, the language guard and the model,
warms them up, then consumes ``asr.final``, ``asr.partial`` and ``term.saved`` as
consumer group ``translate`` until SIGTERM. Practice sessions are answered by the
conversation partner on the same model (:mod:`habla_translate.practice`). Live partials are best-effort: when the
service falls behind the live audio they are thinned, then dropped
(:mod:`habla_common.shedding`), and the topic summary waits; finals never do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from habla_contracts import Event, TermSaved, TranscriptFinal, TranscriptPartial

from .config import TranslateConfig
from .fallback import build_fallback
from .guard import LanguageGuard
from .handlers import Publish, SettingsLookup, TranslateHandler
from .idioms import IdiomDatabase
from .interpreter import Interpreter
from .llm import ChatModel, build_chat_model

__all__ = ["BEST_EFFORT", "KINDS", "bootstrap", "build", "build_interpreter", "main"]

log = logging.getLogger("habla.translate")

KINDS = (TranscriptFinal.KIND, TranscriptPartial.KIND, TermSaved.KIND)
BEST_EFFORT = (TranscriptPartial.KIND,)  # shed when behind; finals and saved terms never are


class SettingsSource(Protocol):
    """The part of the bus the handler needs (``habla_common.bus.EventBus`` has it)."""

    def session_settings(self, session_id: str) -> Mapping[str, str]: ...


def build_interpreter(
    config: TranslateConfig,
    *,
    chat: ChatModel | None = None,
    idioms: IdiomDatabase | None = None,
    guard: LanguageGuard | None = None,
    warm_up: bool = True,
) -> Interpreter:
    """Everything a translation needs, loaded once; pass any part to override it."""
    db = idioms or IdiomDatabase.load()
    log.info("idiom database: %d entries in %.2f s", len(db), db.load_s)
    model = chat or build_chat_model(
        config.backend,
        config.model,
        cache_dir=config.cache_dir,
        ollama_url=config.ollama_url,
        threads=config.threads,
        n_ctx=config.context_tokens,
        timeout_s=config.timeout_s,
    )
    interpreter = Interpreter(
        model,
        db,
        guard or LanguageGuard(),
        build_fallback(config.fallback),
        json_mode=config.json_mode,
        retries=config.retries,
    )
    if warm_up:
        interpreter.warm_up()
    return interpreter


def bootstrap(
    config: TranslateConfig,
    settings_lookup: SettingsLookup,
    *,
    saved_terms: Iterable[TermSaved] = (),
    **overrides: Any,
) -> TranslateHandler:
    return TranslateHandler(build_interpreter(config, **overrides), config, settings_lookup, saved_terms=saved_terms)


def _saved_terms(database_url: str) -> list[TermSaved]:
    """Idioms and words the user saved before this start (the log is the source of truth)."""
    from habla_common.eventlog import PostgresEventStore
    from habla_contracts import HablaError

    try:
        stored = PostgresEventStore(database_url).events_of_kind(TermSaved.KIND)
    except HablaError as e:
        log.warning("saved terms not loaded (%s); new saves still apply", e)
        return []
    return [s.event for s in stored if isinstance(s.event, TermSaved)]


def build(
    bus: SettingsSource, config: TranslateConfig, database_url: str = "", **overrides: Any
) -> tuple[
    Callable[[Event, Publish], None],
    Callable[[list[Event]], list[Event]],
    Callable[[Event, str, Publish], None],
]:
    """``(handle, select, give_up)`` for :func:`habla_common.service.run_consumer` (``build=``)."""
    saved = _saved_terms(database_url) if database_url else []
    handler = bootstrap(config, bus.session_settings, saved_terms=saved, **overrides)
    return handler.handle, handler.select, handler.give_up


def main() -> None:
    import os

    from habla_common.service import run_consumer
    from habla_common.settings import Settings

    # llama.cpp's OpenMP threads spin while they wait by default; next to the ASR on a
    # small CPU that spinning starves both. Passive waiting halved the first call's
    # latency with Whisper running beside it (measured on 2 cores). Must be set before
    # llama.cpp loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    config = TranslateConfig.from_env()  # a bad setting fails before Redis or the model is touched
    database_url = Settings.from_env("translate").database_url
    run_consumer(
        service="translate",
        group="translate",
        kinds=KINDS,
        build=lambda bus: build(bus, config, database_url),
        best_effort=BEST_EFFORT,
    )


if __name__ == "__main__":
    main()
