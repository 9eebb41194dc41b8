"""REST: health, sessions and transcripts, read from the Postgres projections.

Every route but ``/api/health`` needs the token. Errors are JSON
``{"error": <code>, "message": ...}``: 401 unauthorized, 404 not_found, 400 bad_request,
503 unavailable (Postgres unreachable or not migrated).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import wraps
from typing import Any

import psycopg
import redis
from psycopg.rows import dict_row
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from habla_common.transcript import Line, to_markdown, to_srt

from .auth import requires_token

__all__ = ["error_response", "get_session", "get_transcript", "health", "list_sessions"]

log = logging.getLogger("habla.gateway.rest")

_SESSION_COLUMNS = (
    "s.session_id, s.started_at, s.ended_at, s.end_reason, s.direction, s.mode, s.codec, s.source, s.title, "
    "count(u.utterance_id) AS utterances, "
    "count(u.utterance_id) FILTER (WHERE coalesce(u.text, '') <> '') AS transcribed"
)
_SESSION_FROM = "FROM sessions s LEFT JOIN utterances u ON u.session_id = s.session_id"


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


async def _connect(url: str) -> psycopg.AsyncConnection[dict[str, Any]]:
    return await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=5, row_factory=dict_row)


Handler = Callable[[Request], Awaitable[Response]]


def _db_errors_as_503(handler: Handler) -> Handler:
    @wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except psycopg.errors.UndefinedTable as e:
            log.error("read models missing: %s", e)
            return error_response(
                503,
                "unavailable",
                "the database has no read models yet; run the migrations (habla up / the recorder applies them)",
            )
        except psycopg.OperationalError as e:
            log.error("Postgres unavailable: %s", e)
            return error_response(503, "unavailable", "the database is unreachable; try again shortly")

    return wrapped


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def _session_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "session_id": row["session_id"],
        "title": row["title"] or "",
        "started_at": _iso(row["started_at"]),
        "ended_at": _iso(row["ended_at"]),
        "end_reason": row["end_reason"],
        "direction": row["direction"],
        "mode": row["mode"],
        "codec": row["codec"],
        "source": row["source"],
        "utterances": int(row["utterances"]),
        "transcribed": int(row["transcribed"]),
    }


async def health(request: Request) -> Response:
    """No token needed: says whether Redis and Postgres answer (503 unless both do)."""
    state = request.state
    redis_ok = pg_ok = False
    try:
        redis_ok = bool(await state.aredis.ping())
    except (redis.RedisError, OSError) as e:
        log.warning("health: Redis: %s", e)
    try:
        async with await _connect(state.database_url) as conn:
            await conn.execute("SELECT 1")
        pg_ok = True
    except psycopg.Error as e:
        log.warning("health: Postgres: %s", e)
    ok = redis_ok and pg_ok
    return JSONResponse(
        {"status": "ok" if ok else "degraded", "redis": redis_ok, "postgres": pg_ok}, status_code=200 if ok else 503
    )


def _int_param(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = lo - 1
    if not lo <= value <= hi:
        raise _BadRequest(f"{name} must be an integer from {lo} to {hi}")
    return value


class _BadRequest(Exception):
    pass


@requires_token
@_db_errors_as_503
async def list_sessions(request: Request) -> Response:
    """Sessions, newest first, with utterance counts. ``?limit=`` (1-500, default 50), ``?offset=``."""
    try:
        limit = _int_param(request, "limit", 50, 1, 500)
        offset = _int_param(request, "offset", 0, 0, 10**9)
    except _BadRequest as e:
        return error_response(400, "bad_request", str(e))
    async with await _connect(request.state.database_url) as conn:
        cur = await conn.execute(
            f"SELECT {_SESSION_COLUMNS} {_SESSION_FROM} GROUP BY s.session_id "
            "ORDER BY s.started_at DESC NULLS LAST, s.session_id LIMIT %s OFFSET %s",
            (limit, offset),
        )
        rows = await cur.fetchall()
    return JSONResponse({"sessions": [_session_json(r) for r in rows], "limit": limit, "offset": offset})


async def _load_session(conn: psycopg.AsyncConnection[dict[str, Any]], session_id: str) -> dict[str, Any] | None:
    cur = await conn.execute(
        f"SELECT {_SESSION_COLUMNS} {_SESSION_FROM} WHERE s.session_id = %s GROUP BY s.session_id", (session_id,)
    )
    return await cur.fetchone()


def _not_found(session_id: str) -> JSONResponse:
    return error_response(
        404,
        "not_found",
        f"no session {session_id!r}; a session is listed once the recorder "
        "has recorded its start (see GET /api/sessions)",
    )


@requires_token
@_db_errors_as_503
async def get_session(request: Request) -> Response:
    session_id = request.path_params["session_id"]
    async with await _connect(request.state.database_url) as conn:
        row = await _load_session(conn, session_id)
    if row is None:
        return _not_found(session_id)
    return JSONResponse(_session_json(row))


_FORMATS = ("json", "md", "srt")
# each utterance with the newest revision of its translation (re-translations append revisions)
_TRANSCRIPT_QUERY = (
    "SELECT u.utterance_id, u.idx, u.start_ms, u.end_ms, u.text, u.language, u.dropped, u.reason, "
    "t.revision, t.corrected, t.translation, t.status, t.corrections, t.idioms, t.model, "
    "t.source_language, t.target_language "
    "FROM utterances u LEFT JOIN LATERAL (SELECT * FROM translations tr WHERE tr.utterance_id = u.utterance_id "
    "ORDER BY tr.revision DESC LIMIT 1) t ON true WHERE u.session_id = %s ORDER BY u.idx"
)


def _translation_json(r: dict[str, Any]) -> dict[str, Any] | None:
    if r["revision"] is None:
        return None
    return {
        "revision": r["revision"],
        "text": r["translation"],
        "corrected": r["corrected"],
        "status": r["status"],
        "source_language": r["source_language"],
        "target_language": r["target_language"],
        "corrections": r["corrections"],
        "idioms": r["idioms"],
        "model": r["model"],
    }


@requires_token
@_db_errors_as_503
async def get_transcript(request: Request) -> Response:
    """Utterances in order. ``?format=json`` (default) | ``md`` | ``srt``."""
    session_id = request.path_params["session_id"]
    fmt = request.query_params.get("format", "json")
    if fmt not in _FORMATS:
        return error_response(400, "bad_request", f"format must be one of {', '.join(_FORMATS)}; got {fmt!r}")
    async with await _connect(request.state.database_url) as conn:
        session = await _load_session(conn, session_id)
        if session is None:
            return _not_found(session_id)
        cur = await conn.execute(_TRANSCRIPT_QUERY, (session_id,))
        rows = await cur.fetchall()
    if fmt == "json":
        return JSONResponse(
            {
                "session": _session_json(session),
                "utterances": [
                    {
                        "index": r["idx"],
                        "utterance_id": r["utterance_id"],
                        "start_ms": r["start_ms"],
                        "end_ms": r["end_ms"],
                        "start": None if r["start_ms"] is None else r["start_ms"] / 1000,
                        "end": None if r["end_ms"] is None else r["end_ms"] / 1000,
                        "text": r["text"],
                        "language": r["language"] or None,
                        "dropped": r["dropped"] or None,
                        "translation": _translation_json(r),
                    }
                    for r in rows
                ],
            }
        )
    lines = [
        Line(
            start_ms=r["start_ms"] or 0,
            end_ms=r["end_ms"] or 0,
            text=(r["corrected"] or r["text"] or "") if r["revision"] is not None else (r["text"] or ""),
            language=r["language"] or "",
            translation=r["translation"] or None,
            idioms=list(r["idioms"] or []),
        )
        for r in rows
    ]
    title = session["title"] or f"Session {session_id}"
    stem = "habla-" + re.sub(r"[^A-Za-z0-9._-]", "_", session_id)
    if fmt == "md":
        return PlainTextResponse(
            to_markdown(lines, title=title),
            media_type="text/markdown; charset=utf-8",
            headers={"Content-Disposition": f'inline; filename="{stem}.md"'},
        )
    return PlainTextResponse(
        to_srt(lines),
        media_type="application/x-subrip; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="{stem}.srt"'},
    )
