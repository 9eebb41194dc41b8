"""REST for vocabulary exports: Anki packages and CSV, built by an rq job on the job worker.

``POST /api/exports`` queues ``habla_vocab.jobs.run_export`` (by its path: the gateway never
imports a service) on the worker's queue; ``GET /api/exports/{job_id}`` reports the job's
progress from its ``meta``; ``GET /api/exports/{job_id}/file`` sends the finished file,
which the worker wrote on this machine (``<HABLA_DATA_DIR>/exports``, kept a day).
Every route needs the token; Redis down answers 503.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from habla_common.jobs import EXPORT_FUNCTION, enqueue_export

from .auth import requires_token
from .rest import _BadRequest, _db_errors_as_503, _json_object, error_response

__all__ = ["EXPORT_FUNCTION", "FORMATS", "create_export", "export_file", "export_status"]

log = logging.getLogger("habla.gateway.exports")

FORMATS = {"apkg": "application/apkg", "csv": "text/csv"}  # format -> media type of the file
_JOB_ID = re.compile(r"export-[0-9a-f]{32}")
# rq's job states as this API shows them
_STATUS = {
    "queued": "queued",
    "deferred": "queued",
    "scheduled": "queued",
    "started": "started",
    "finished": "finished",
    "failed": "failed",
    "stopped": "failed",
    "canceled": "failed",
}


def _fetch(redis: Any, job_id: str) -> Any | None:
    """The export job ``job_id``, or None (unknown, expired, or not an export)."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    if not _JOB_ID.fullmatch(job_id):
        return None
    try:
        job = Job.fetch(job_id, connection=redis)
    except NoSuchJobError:
        return None
    return job if job.func_name == EXPORT_FUNCTION else None


def _error(job: Any, meta: dict[str, Any]) -> str:
    if meta.get("error"):
        return str(meta["error"])
    result = job.latest_result()
    lines = [ln for ln in (result.exc_string or "").splitlines() if ln.strip()] if result is not None else []
    return lines[-1].strip() if lines else "the export job failed"


def _state(job: Any) -> tuple[dict[str, Any], str | None]:
    """What the status route reports, and the finished file's path (reads Redis: run in a thread)."""
    rq_status = job.get_status()
    status = _STATUS.get(str(getattr(rq_status, "value", rq_status)), "queued")
    meta = job.get_meta(refresh=False)
    done, total = int(meta.get("done", 0)), int(meta.get("total", 0))
    out: dict[str, Any] = {
        "job_id": job.id,
        "format": meta.get("format") or (job.args[0] if job.args else None),
        "status": status,
        "stage": meta.get("stage", status),
        "done": done,
        "total": total,
        "progress": 1.0 if status == "finished" else (round(done / total, 4) if total else 0.0),
        "enqueued_at": job.enqueued_at.isoformat() if job.enqueued_at else None,
    }
    path = None
    if status == "finished":
        result = dict(job.return_value() or {})
        path = result.get("path")
        out.update(
            items=result.get("items"),
            clips=result.get("clips"),
            bytes=result.get("bytes"),
            filename=result.get("filename"),
            download_url=f"/api/exports/{job.id}/file",
        )
    elif status == "failed":
        out["error"] = _error(job, meta)
    return out, path


def _not_found(job_id: str) -> JSONResponse:
    return error_response(
        404, "not_found", f"no export job {job_id!r} (unknown, or older than a day; start one with POST /api/exports)"
    )


@requires_token
@_db_errors_as_503
async def create_export(request: Request) -> Response:
    """``POST /api/exports`` ``{"format": "apkg"|"csv"}`` → 202 ``{job_id, status_url, format}``."""
    try:
        body = await _json_object(request)
    except _BadRequest as e:
        return error_response(400, "bad_request", str(e))
    fmt = body.get("format")
    if fmt not in FORMATS:
        return error_response(400, "bad_request", f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    job = await to_thread.run_sync(enqueue_export, request.state.redis, fmt)
    log.info("queued vocabulary export %s (%s)", job.id, fmt)
    return JSONResponse(
        {"job_id": job.id, "status_url": f"/api/exports/{job.id}", "format": fmt, "status": "queued"},
        status_code=202,
    )


def _load(redis: Any, job_id: str) -> tuple[dict[str, Any], str | None] | None:
    job = _fetch(redis, job_id)
    return None if job is None else _state(job)


@requires_token
@_db_errors_as_503
async def export_status(request: Request) -> Response:
    """``GET /api/exports/{job_id}``: status, progress, and the download link once finished."""
    job_id = request.path_params["job_id"]
    loaded = await to_thread.run_sync(_load, request.state.redis, job_id)
    if loaded is None:
        return _not_found(job_id)
    return JSONResponse(loaded[0])


@requires_token
@_db_errors_as_503
async def export_file(request: Request) -> Response:
    """``GET /api/exports/{job_id}/file``: the finished export; 404 before it is finished or once it is gone."""
    job_id = request.path_params["job_id"]
    loaded = await to_thread.run_sync(_load, request.state.redis, job_id)
    if loaded is None:
        return _not_found(job_id)
    state, file = loaded
    if state["status"] != "finished":
        return error_response(
            404, "not_found", f"export {job_id} is {state['status']}, not finished; see GET /api/exports/{job_id}"
        )
    path = Path(file or "")
    if not file or not await to_thread.run_sync(path.is_file):
        return error_response(404, "not_found", f"the file of export {job_id} is gone (kept a day); export again")
    fmt = str(state["format"])
    return FileResponse(path, media_type=FORMATS.get(fmt, "application/octet-stream"), filename=path.name)
