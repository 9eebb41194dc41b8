"""Vocabulary exports (Anki package or CSV) as rq jobs.

The gateway (``POST /api/exports``) and ``habla export`` enqueue :func:`run_export` on the
job worker's queue (:data:`QUEUE`, the one ``python -m habla.worker`` serves); the gateway
does it by function path, ``"habla_vocab.jobs.run_export"``, so it never imports this
package. The job reads the live items from the vocabulary read models (``DATABASE_URL``
of the worker, unless the caller names a database) and writes
``<out_dir>/habla-vocab-<date>-<job id>.apkg|.csv``, first under a ``.part`` name, so a
file with the final name is always complete. ``out_dir`` defaults to
``<HABLA_DATA_DIR>/exports``; export files there older than a day are removed when the
next export starts.

Progress is kept in the job's ``meta`` while it runs: ``stage`` (``queued`` → ``reading``
→ ``exporting`` → ``writing`` → ``finished``, or ``failed`` with ``error``), ``done`` and
``total`` items. The job returns ``{path, filename, format, items, clips, bytes, elapsed_s}``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from habla_common.jobs import EXPORT_FORMATS, EXPORT_KEEP_S, JOB_QUEUE, enqueue_export
from habla_common.settings import Settings, default_data_dir

from .errors import ExportFailed
from .export import export_apkg, export_csv
from .store import PostgresVocabStore

__all__ = [
    "FILE_PREFIX",
    "FORMATS",
    "KEEP_S",
    "QUEUE",
    "JobProgress",
    "default_out_dir",
    "enqueue_export",
    "export_filename",
    "prune_exports",
    "run_export",
]

log = logging.getLogger("habla.vocab.jobs")

QUEUE = JOB_QUEUE
FORMATS = EXPORT_FORMATS
FILE_PREFIX = "habla-vocab-"
KEEP_S = EXPORT_KEEP_S
_SAVE_EVERY_S = 0.25  # job.meta is written to Redis at most this often while items go by

JobProgress = Callable[[int, int, str], None]
"""``progress(done, total, stage)`` for a caller that runs the export in its own process."""


def default_out_dir() -> Path:
    return default_data_dir() / "exports"


def export_filename(fmt: str, job_id: str, day: datetime | None = None) -> str:
    day = day or datetime.now(UTC)
    return f"{FILE_PREFIX}{day:%Y-%m-%d}-{job_id}.{fmt}"


def prune_exports(out_dir: Path, max_age_s: float = KEEP_S, now: float | None = None) -> list[Path]:
    """Remove export files (and abandoned ``.part`` files) in ``out_dir`` older than ``max_age_s``."""
    cutoff = (time.time() if now is None else now) - max_age_s
    removed = []
    for path in out_dir.glob(f"{FILE_PREFIX}*"):
        with contextlib.suppress(FileNotFoundError):  # another export may prune it first
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
    return removed


class _Reporter:
    """Keeps the job's meta (``stage``, ``done``, ``total``) and the caller's callback up to date."""

    def __init__(self, job: Any, callback: JobProgress | None) -> None:
        self.job = job
        self.callback = callback
        self.done = self.total = 0
        self.stage = "reading"
        self._saved_at = 0.0

    def set_stage(self, stage: str, **extra: Any) -> None:
        self.stage = stage
        self._publish(force=True, **extra)

    def __call__(self, done: int, total: int) -> None:  # export_apkg / export_csv's progress
        self.done, self.total = done, total
        # once every item is in, the package is written (apkg) or the file closed (csv)
        self.stage = "writing" if done >= total else "exporting"
        self._publish(force=done == 0 or done >= total)

    def _publish(self, *, force: bool, **extra: Any) -> None:
        if self.callback is not None:
            self.callback(self.done, self.total, self.stage)
        if self.job is None or not (force or time.monotonic() - self._saved_at >= _SAVE_EVERY_S):
            return
        self.job.meta.update(stage=self.stage, done=self.done, total=self.total, **extra)
        try:
            self.job.save_meta()
            self._saved_at = time.monotonic()
        except Exception as e:  # noqa: BLE001 - progress is advisory; the export goes on
            log.warning("cannot save the export job's progress: %s", e)


def run_export(
    fmt: str,
    out_dir: str | None = None,
    *,
    database_url: str | None = None,
    progress: JobProgress | None = None,
) -> dict[str, Any]:
    """Export every live vocabulary item as ``fmt`` (``apkg`` or ``csv``) into ``out_dir``."""
    from rq import get_current_job

    job = get_current_job()
    job_id = job.id if job is not None else f"local-{uuid.uuid4().hex[:16]}"
    report = _Reporter(job, progress)
    t0 = time.perf_counter()
    part: Path | None = None
    try:
        if fmt not in FORMATS:
            raise ExportFailed(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
        folder = Path(out_dir) if out_dir else default_out_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ExportFailed(f"cannot create the export folder {folder}: {e}") from e
        for old in prune_exports(folder):
            log.info("removed old export %s", old.name)
        report.set_stage("reading", format=fmt)
        final = folder / export_filename(fmt, job_id)
        part = final.with_name(final.name + ".part")
        store = PostgresVocabStore(database_url or Settings.from_env("worker").database_url)
        export = export_apkg if fmt == "apkg" else export_csv
        try:
            result = export(store, part, report)
        except psycopg.errors.UndefinedTable as e:
            raise ExportFailed(f"the database has no vocabulary tables yet; run `habla migrate` ({e})") from e
        except psycopg.Error as e:
            raise ExportFailed(f"cannot read the vocabulary from the database: {e}") from e
        os.replace(part, final)
        size = final.stat().st_size
    except Exception as e:
        if part is not None:
            part.unlink(missing_ok=True)
        report.set_stage("failed", error=str(e) or type(e).__name__)
        raise
    elapsed = round(time.perf_counter() - t0, 3)
    report.set_stage("finished")
    log.info("exported %d items (%d clips) as %s in %.2f s: %s", result.items, result.clips, fmt, elapsed, final)
    return {
        "path": str(final),
        "filename": final.name,
        "format": fmt,
        "items": result.items,
        "clips": result.clips,
        "bytes": size,
        "elapsed_s": elapsed,
    }
