"""Batch jobs on rq: the one queue the job worker (``python -m habla.worker``) serves, and
the vocabulary export job as callers queue it.

Services and the gateway enqueue on it by name (the gateway enqueues a service's job by
its function path, so it never imports the service).
"""

from __future__ import annotations

import uuid
from typing import Any

__all__ = ["EXPORT_FORMATS", "EXPORT_FUNCTION", "EXPORT_KEEP_S", "JOB_QUEUE", "enqueue_export"]

JOB_QUEUE = "habla"

EXPORT_FUNCTION = "habla_vocab.jobs.run_export"
EXPORT_FORMATS = ("apkg", "csv")
EXPORT_KEEP_S = 24 * 3600  # export files, and finished or failed export jobs, are kept a day


def enqueue_export(redis: Any, fmt: str, **kwargs: Any) -> Any:
    """Queue a vocabulary export (``kwargs``: ``out_dir``, ``database_url`` of
    ``habla_vocab.jobs.run_export``); returns the rq job, whose id starts ``export-``."""
    from rq import Queue

    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    return Queue(JOB_QUEUE, connection=redis).enqueue(
        EXPORT_FUNCTION,
        args=(fmt,),
        kwargs=kwargs,
        job_id=f"export-{uuid.uuid4().hex}",
        job_timeout=3600,
        result_ttl=EXPORT_KEEP_S,
        failure_ttl=EXPORT_KEEP_S,
        meta={"stage": "queued", "done": 0, "total": 0, "format": fmt},
        description=f"vocabulary export ({fmt})",
    )
