"""Re-translation from the event log, as an rq job.

``habla retranslate SESSION [--model NAME]`` enqueues :func:`retranslate` on the
``habla`` queue. The job reads the session's final transcripts from the Postgres log,
runs them through the same :class:`~habla_translate.handlers.TranslateHandler` as the
live service (with the session's direction and mode as they were at each utterance),
and publishes every :class:`TranslationFinal` as the next revision. The old events stay:
the log is append-only, and the transcript views show the newest revision.
Progress is kept in the job's ``meta`` (``done``/``total``) for the CLI's progress bar.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from habla_common.jobs import JOB_QUEUE
from habla_contracts import (
    Event,
    RetranslationCompleted,
    SessionSettingsChanged,
    SessionStarted,
    TranscriptFinal,
    TranslationFinal,
    derived_id,
)

from .config import TranslateConfig
from .handlers import TranslateHandler

__all__ = ["QUEUE", "enqueue_retranslation", "next_revision", "retranslate"]

log = logging.getLogger("habla.translate.jobs")

QUEUE = JOB_QUEUE  # the job worker serves this one queue
_INTERPRETERS: dict[tuple[str, str], Any] = {}  # a SimpleWorker keeps models loaded between jobs


def next_revision(events: list[Event]) -> int:
    revisions = [e.revision for e in events if isinstance(e, TranslationFinal)]
    return max(revisions, default=-1) + 1


def _interpreter(config: TranslateConfig) -> Any:
    from .main import build_interpreter

    key = (config.backend, config.model)
    if key not in _INTERPRETERS:
        _INTERPRETERS[key] = build_interpreter(config)
    return _INTERPRETERS[key]


def retranslate(
    session_id: str,
    *,
    redis_url: str,
    database_url: str,
    revision: int | None = None,
    backend: str = "",
    model: str = "",
    partitions: int = 4,
) -> dict[str, Any]:
    """Translate every final transcript of ``session_id`` again; returns a summary."""
    from habla_common.bus import RedisBus, connect_redis
    from habla_common.eventlog import PostgresEventStore

    t0 = time.perf_counter()
    events = [s.event for s in PostgresEventStore(database_url).session_events(session_id)]
    finals = {e.utterance_id: e for e in events if isinstance(e, TranscriptFinal)}
    if not finals:
        raise LookupError(f"session {session_id!r} has no final transcripts in the log")
    if revision is None:  # given by the CLI, so a retried job reuses its revision and event ids
        revision = next_revision(events)
    config = TranslateConfig.from_env()
    config = replace(config, backend=backend or config.backend, model=model or config.model, partials=False)
    settings: dict[str, str] = {"direction": "es-en", "mode": "conversation"}
    handler = TranslateHandler(_interpreter(config), config, lambda _sid: settings, revision=revision)
    bus = RedisBus(connect_redis(redis_url), partitions)
    job = _current_job()
    total, done, untranslated = len(finals), 0, 0

    def publish(event: Event) -> None:
        nonlocal untranslated
        if isinstance(event, TranslationFinal) and event.status == "untranslated":
            untranslated += 1
        bus.publish(event)

    for event in events:  # log order: settings changes apply from where they happened
        if isinstance(event, SessionStarted):
            settings.update(direction=event.direction, mode=event.mode)
        elif isinstance(event, SessionSettingsChanged):
            settings.update({k: v for k, v in (("direction", event.direction), ("mode", event.mode)) if v})
        elif isinstance(event, TranscriptFinal) and finals.get(event.utterance_id) is event:
            handler.on_final(event, publish)
            done += 1
            if job is not None:
                job.meta.update(done=done, total=total, revision=revision)
                job.save_meta()
    elapsed = time.perf_counter() - t0
    bus.publish(
        RetranslationCompleted(
            event_id=derived_id("translation.completed", session_id, revision),
            session_id=session_id,
            revision=revision,
            model=config.model_label,
            count=done,
            untranslated=untranslated,
            elapsed_s=round(elapsed, 2),
        )
    )
    log.info("session %s: revision %d of %d utterances in %.1f s", session_id, revision, done, elapsed)
    return {"session_id": session_id, "revision": revision, "count": done, "untranslated": untranslated}


def _current_job() -> Any:
    from rq import get_current_job

    return get_current_job()


def enqueue_retranslation(redis: Any, session_id: str, **kwargs: Any) -> Any:
    """Queue the job; one per session at a time (its id is derived from the session)."""
    from rq import Queue, Retry

    queue = Queue(QUEUE, connection=redis)
    job_id = f"retranslate-{derived_id('retranslate', session_id, time.time_ns())}"
    return queue.enqueue(
        retranslate,
        args=(session_id,),
        kwargs=kwargs,
        job_id=job_id,
        job_timeout=6 * 3600,
        result_ttl=24 * 3600,
        retry=Retry(max=2),  # requeued at once: the worker runs no scheduler
        description=f"re-translate {session_id}",
    )
