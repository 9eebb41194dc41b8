"""REST: health, sessions, transcripts, utterance audio and speakers, read from the Postgres projections.

Every route but ``/api/health`` needs the token. Errors are JSON
``{"error": <code>, "message": ...}``: 401 unauthorized, 404 not_found, 400 bad_request,
503 unavailable (Postgres or Redis unreachable, or not migrated). Changes (naming a
speaker, forgetting a voiceprint, deleting a session) are published as facts and
answered 202: the read models show them once the recorder has recorded them.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import wraps
from typing import Any

import psycopg
import redis
from anyio import to_thread
from psycopg.rows import dict_row
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from habla_common.errors import BusUnavailable
from habla_common.transcript import Line, to_markdown, to_srt
from habla_contracts import ADMIN_SESSION, SessionDeleted

from .auth import requires_token
from .errors import ProtocolError
from .protocol import parse_rename

__all__ = [
    "delete_session",
    "delete_voiceprint",
    "error_response",
    "get_session",
    "get_transcript",
    "get_utterance_audio",
    "health",
    "list_sessions",
    "list_voiceprints",
    "rename_speaker",
]

log = logging.getLogger("habla.gateway.rest")

_SESSION_COLUMNS = (
    "s.session_id, s.started_at, s.ended_at, s.end_reason, s.direction, s.mode, s.codec, s.source, s.title, "
    # segmented utterances (a split one's later turns are not counted again), and how many of them have text
    "count(u.utterance_id) FILTER (WHERE u.part = 0) AS utterances, "
    "count(DISTINCT u.idx) FILTER (WHERE coalesce(u.text, '') <> '') AS transcribed, "
    # transcript lines: speaker turns with text (what the transcript shows)
    "count(u.utterance_id) FILTER (WHERE coalesce(u.text, '') <> '') AS lines, "
    # how much of its audio is stored (by session, indexed; retention deletes old audio)
    "(SELECT coalesce(sum(a.end_ms - a.start_ms), 0) FROM utterance_audio a "
    "WHERE a.session_id = s.session_id) AS audio_ms"
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
        except (BusUnavailable, redis.ConnectionError, redis.TimeoutError) as e:
            log.error("Redis unavailable: %s", e)
            return error_response(503, "unavailable", "the event bus is unreachable; try again shortly")

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
        "lines": int(row["lines"]),
        "audio_ms": int(row["audio_ms"]),
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


async def _session_gone(conn: psycopg.AsyncConnection[dict[str, Any]], session_id: str) -> JSONResponse:
    """404 for a session the read models do not have, saying so if it was deleted."""
    cur = await conn.execute("SELECT deleted_at FROM deleted_sessions WHERE session_id = %s", (session_id,))
    row = await cur.fetchone()
    if row is None:
        return _not_found(session_id)
    return error_response(404, "not_found", f"session {session_id!r} was deleted at {_iso(row['deleted_at'])}")


# a speaker is shown by the name the user gave it, else its label ("Speaker 2", a recognised voice)
_SPEAKER_QUERY = (
    "SELECT speaker, number, label, name, color, role, role_confidence, is_user, voiceprint_id "
    "FROM speakers WHERE session_id = %s AND number IS NOT NULL ORDER BY number, speaker"
)


def _display(name: str | None, label: str | None) -> str | None:
    return name or label or None


def _speaker_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "speaker": row["speaker"],
        "number": row["number"],
        "label": row["label"],
        "name": row["name"] or None,
        "display": _display(row["name"], row["label"]),
        "color": row["color"],
        "role": row["role"],
        "role_confidence": row["role_confidence"],
        "is_user": bool(row["is_user"]),
    }


@requires_token
@_db_errors_as_503
async def get_session(request: Request) -> Response:
    """One session with its speakers (in order of appearance)."""
    session_id = request.path_params["session_id"]
    async with await _connect(request.state.database_url) as conn:
        row = await _load_session(conn, session_id)
        if row is None:
            return await _session_gone(conn, session_id)
        cur = await conn.execute(_SPEAKER_QUERY, (session_id,))
        speakers = await cur.fetchall()
    return JSONResponse({**_session_json(row), "speakers": [_speaker_json(s) for s in speakers]})


_FORMATS = ("json", "md", "srt")
# each utterance with the newest revision of its translation (re-translations append revisions)
# and its speaker's current name: a rename relabels the session's earlier lines too
_TRANSCRIPT_QUERY = (
    "SELECT u.utterance_id, u.idx, u.part, u.parts, u.parent_id, u.start_ms, u.end_ms, u.text, u.language, "
    "u.dropped, u.reason, u.speaker, sp.name AS speaker_name, sp.label AS speaker_label, "
    "sp.color AS speaker_color, "
    "t.revision, t.corrected, t.translation, t.status, t.corrections, t.idioms, t.model, "
    "t.source_language, t.target_language "
    "FROM utterances u LEFT JOIN LATERAL (SELECT * FROM translations tr WHERE tr.utterance_id = u.utterance_id "
    "ORDER BY tr.revision DESC LIMIT 1) t ON true "
    "LEFT JOIN speakers sp ON sp.session_id = u.session_id AND sp.speaker = u.speaker "
    "WHERE u.session_id = %s ORDER BY u.idx, u.part"
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
                        "part": r["part"],
                        "parts": r["parts"],
                        "utterance_id": r["utterance_id"],
                        "parent_id": r["parent_id"],
                        "speaker": r["speaker"],
                        "speaker_name": _display(r["speaker_name"], r["speaker_label"]),
                        "speaker_color": r["speaker_color"],
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
            speaker=_display(r["speaker_name"], r["speaker_label"]),
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


# The audio of a turn is its segmented utterance's: the first turn has the utterance's own
# id, a later turn names it as parent_id.
_AUDIO_QUERY = (
    "SELECT a.utterance_id AS audio_id, a.start_ms, a.end_ms, a.codec, a.data "
    "FROM utterances u LEFT JOIN utterance_audio a "
    "ON a.utterance_id = coalesce(u.parent_id, u.utterance_id) AND a.session_id = u.session_id "
    "WHERE u.session_id = %s AND u.utterance_id = %s"
)
_AUDIO_TYPES = {"opus": "audio/ogg"}


@requires_token
@_db_errors_as_503
async def get_utterance_audio(request: Request) -> Response:
    """``GET /api/sessions/{id}/utterances/{utterance_id}/audio``: the utterance's recorded audio
    (Ogg/Opus). A later speaker turn gets its whole segmented utterance; ``X-Audio-Start-Ms`` /
    ``X-Audio-End-Ms`` give the session time the audio spans."""
    session_id = request.path_params["session_id"]
    utterance_id = request.path_params["utterance_id"]
    async with await _connect(request.state.database_url) as conn:
        if await _load_session(conn, session_id) is None:
            return await _session_gone(conn, session_id)
        cur = await conn.execute(_AUDIO_QUERY, (session_id, utterance_id))
        row = await cur.fetchone()
    if row is None:
        return error_response(
            404,
            "not_found",
            f"session {session_id!r} has no utterance {utterance_id!r} (see GET /api/sessions/{{id}}/transcript)",
        )
    if row["audio_id"] is None:
        return error_response(
            404,
            "not_found",
            f"the audio of utterance {utterance_id!r} is not stored: it was deleted by the audio retention "
            "(AUDIO_RETENTION_DAYS), or recorded before audio was kept; the transcript is still there",
        )
    stem = "habla-" + re.sub(r"[^A-Za-z0-9._-]", "_", str(row["audio_id"]))
    return Response(
        bytes(row["data"]),
        media_type=_AUDIO_TYPES.get(row["codec"], "application/octet-stream"),
        headers={
            "Content-Disposition": f'inline; filename="{stem}.ogg"',
            "Cache-Control": "no-store",  # a deleted session's audio must not linger in caches
            "X-Audio-Start-Ms": str(row["start_ms"]),
            "X-Audio-End-Ms": str(row["end_ms"]),
        },
    )


@requires_token
@_db_errors_as_503
async def delete_session(request: Request) -> Response:
    """``DELETE /api/sessions/{id}`` with ``{"confirm": "<the same id>"}``: publishes
    session.deleted (202). Once recorded, the session's facts, read models, audio and Redis
    state are gone for good. Unknown session → 404; no or another confirm → 400."""
    session_id = request.path_params["session_id"]
    how = (
        f'send the JSON body {{"confirm": {json.dumps(session_id)}}} to delete session {session_id!r}: '
        "its transcript, translations, speakers and audio are deleted for good"
    )
    async with await _connect(request.state.database_url) as conn:
        if await _load_session(conn, session_id) is None:
            return await _session_gone(conn, session_id)
        recorded = await _recorded_seq(conn, ADMIN_SESSION)
    try:
        body = await _json_object(request)
    except _BadRequest as e:
        return error_response(400, "bad_request", f"{e}; {how}")
    if body.get("confirm") != session_id:
        got = "no confirm" if "confirm" not in body else f"confirm {body['confirm']!r}"
        return error_response(400, "bad_request", f"{how} (got {got})")
    event = SessionDeleted.of(session_id)
    await to_thread.run_sync(lambda: request.state.store.publish_after(event, recorded))
    log.info("session %s deletion requested", session_id)
    return JSONResponse({"status": "accepted", "event_id": event.event_id, "session_id": session_id}, status_code=202)


# --- speakers and voiceprints ----------------------------------------------------------

_MAX_BODY = 16 * 1024


async def _json_object(request: Request) -> dict[str, Any]:
    """The request's JSON object body (at most 16 KiB); raises _BadRequest."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_BODY:
            raise _BadRequest(f"the body is over {_MAX_BODY} bytes")
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise _BadRequest(f"the body must be a JSON object: {e}") from e
    if not isinstance(obj, dict):
        raise _BadRequest("the body must be a JSON object")
    return obj


async def _recorded_seq(conn: psycopg.AsyncConnection[dict[str, Any]], session_id: str) -> int:
    cur = await conn.execute("SELECT coalesce(max(seq), 0) AS seq FROM events WHERE session_id = %s", (session_id,))
    row = await cur.fetchone()
    return int(row["seq"]) if row else 0


@requires_token
@_db_errors_as_503
async def rename_speaker(request: Request) -> Response:
    """``POST /api/sessions/{id}/speakers/{speaker}`` ``{"name", "remember"?, "is_user"?}``:
    publishes speaker.renamed (202); the name shows on every line of the speaker."""
    session_id = request.path_params["session_id"]
    speaker = request.path_params["speaker"]
    async with await _connect(request.state.database_url) as conn:
        if await _load_session(conn, session_id) is None:
            return _not_found(session_id)
        cur = await conn.execute(
            "SELECT 1 FROM speakers WHERE session_id = %s AND speaker = %s AND number IS NOT NULL",
            (session_id, speaker),
        )
        if await cur.fetchone() is None:
            return error_response(
                404,
                "not_found",
                f"session {session_id!r} has no speaker {speaker!r} (see its speakers in GET /api/sessions/{{id}})",
            )
        recorded = await _recorded_seq(conn, session_id)
    try:
        msg = parse_rename({**await _json_object(request), "speaker": speaker})
    except _BadRequest as e:
        return error_response(400, "bad_request", str(e))
    except ProtocolError as e:
        return JSONResponse({"error": "bad_request", "message": e.message, **e.extra}, status_code=400)
    event = await to_thread.run_sync(lambda: request.state.store.rename_speaker(session_id, msg, recorded_seq=recorded))
    return JSONResponse(
        {
            "status": "accepted",
            "event_id": event.event_id,
            "session_id": session_id,
            "speaker": msg.speaker,
            "name": msg.name,
            "remember": msg.remember,
            "is_user": msg.is_user,
        },
        status_code=202,
    )


# live: saved after its newest deletion
_LIVE_VOICEPRINT = "saved_at IS NOT NULL AND (deleted_at IS NULL OR saved_at > deleted_at)"


@requires_token
@_db_errors_as_503
async def list_voiceprints(request: Request) -> Response:
    """The voices kept across sessions (never their embeddings): the user's own first."""
    async with await _connect(request.state.database_url) as conn:
        cur = await conn.execute(
            "SELECT voiceprint_id, name, is_user, backend, dim, speech_ms, session_id, speaker, saved_at "
            f"FROM voiceprints WHERE {_LIVE_VOICEPRINT} ORDER BY is_user DESC, name, voiceprint_id"
        )
        rows = await cur.fetchall()
    return JSONResponse(
        {
            "voiceprints": [
                {
                    "voiceprint_id": r["voiceprint_id"],
                    "name": r["name"],
                    "is_user": bool(r["is_user"]),
                    "backend": r["backend"],
                    "dim": r["dim"],
                    "speech_ms": r["speech_ms"],
                    "session_id": r["session_id"],
                    "speaker": r["speaker"],
                    "saved_at": _iso(r["saved_at"]),
                }
                for r in rows
            ]
        }
    )


@requires_token
@_db_errors_as_503
async def delete_voiceprint(request: Request) -> Response:
    """``DELETE /api/voiceprints/{id}``: publishes voiceprint.deleted (202); 404 if unknown or already deleted."""
    voiceprint_id = request.path_params["voiceprint_id"]
    async with await _connect(request.state.database_url) as conn:
        cur = await conn.execute(
            f"SELECT session_id, saved_at FROM voiceprints WHERE voiceprint_id = %s AND {_LIVE_VOICEPRINT}",
            (voiceprint_id,),
        )
        row = await cur.fetchone()
        if row is None:
            return error_response(404, "not_found", f"no voiceprint {voiceprint_id!r} (see GET /api/voiceprints)")
        session_id = row["session_id"] or "voiceprints"
        recorded = await _recorded_seq(conn, session_id)
    saved_at = _iso(row["saved_at"]) or ""
    event_id = await to_thread.run_sync(
        lambda: request.state.store.delete_voiceprint(session_id, voiceprint_id, saved_at, recorded_seq=recorded)
    )
    return JSONResponse({"status": "accepted", "event_id": event_id, "voiceprint_id": voiceprint_id}, status_code=202)
