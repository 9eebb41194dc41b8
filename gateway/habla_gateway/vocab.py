"""REST for studying: vocabulary items, the day's due cards, grades, deletions, clips.

Read from the vocab service's read models (``vocab_items``, ``vocab_contexts``,
``vocab_reviews``) and the SQL function ``vocab_due``, which applies SM-2's due dates and
the daily limits the vocab service configured. Grades and deletions are published as
facts (``vocab.reviewed``, ``vocab.deleted`` in session ``vocab``) and answered 202; the
queue and the schedule show them once the vocab service has applied them.

A grade may carry a ``review_id`` chosen by the client (any string of 1-100 characters):
the fact's id derives from it, so a retried POST is one review.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from habla_contracts import REVIEW_GRADES, VOCAB_SESSION, CardReviewed, VocabItemDeleted, derived_id, new_id

from .auth import requires_token
from .errors import ProtocolError
from .protocol import parse_save
from .rest import (
    _BadRequest,
    _connect,
    _db_errors_as_503,
    _int_param,
    _iso,
    _json_object,
    _load_session,
    _not_found,
    _recorded_seq,
    error_response,
)

__all__ = ["delete_item", "due_cards", "get_item", "item_clip", "list_items", "review_item", "save_term"]

_ITEM = (
    "i.item_id, i.canonical, i.item_kind, i.language, i.meaning, i.literal, i.zipf, i.band, i.contexts, "
    "i.first_saved_at, i.last_saved_at, i.ease, i.interval_days, i.repetitions, i.reviews, i.lapses, "
    "i.last_grade, i.last_reviewed_at, i.due_at"
)
# the newest live context of each item, and whether any context has a clip
_NEWEST = (
    "LEFT JOIN LATERAL (SELECT c.context_id, c.session_id, c.text, c.heard, c.corrected, c.translation, "
    "c.speaker_name, c.saved_at, c.clip IS NOT NULL AS has_clip FROM vocab_contexts c "
    "WHERE c.item_id = i.item_id AND c.live ORDER BY (c.clip IS NOT NULL) DESC, c.saved_at DESC, c.context_id "
    "LIMIT 1) n ON true"
)
_NEWEST_COLUMNS = (
    "n.context_id, n.session_id, n.text, n.heard, n.corrected, n.translation, n.speaker_name, n.saved_at, n.has_clip"
)


def _context_json(r: dict[str, Any], item_id: str) -> dict[str, Any]:
    return {
        "context_id": r["context_id"],
        "session_id": r["session_id"],
        "text": r["text"],
        "heard": r["heard"],
        "corrected": r["corrected"],
        "translation": r["translation"],
        "speaker_name": r["speaker_name"] or "",
        "saved_at": _iso(r["saved_at"]),
        "clip_url": f"/api/vocab/{item_id}/clip?context={r['context_id']}" if r["has_clip"] else None,
    }


def _item_json(r: dict[str, Any]) -> dict[str, Any]:
    out = {
        "item_id": r["item_id"],
        "canonical": r["canonical"],
        "kind": r["item_kind"],
        "language": r["language"],
        "meaning": r["meaning"],
        "literal": r["literal"],
        "band": r["band"],
        "zipf": r["zipf"],
        "contexts": r["contexts"],
        "first_saved_at": _iso(r["first_saved_at"]),
        "last_saved_at": _iso(r["last_saved_at"]),
        "schedule": {
            "ease": r["ease"],
            "interval_days": r["interval_days"],
            "repetitions": r["repetitions"],
            "reviews": r["reviews"],
            "lapses": r["lapses"],
            "last_grade": r["last_grade"],
            "last_reviewed_at": _iso(r["last_reviewed_at"]),
            "due_at": _iso(r["due_at"]),
        },
    }
    if "context_id" in r:
        out["context"] = _context_json(r, r["item_id"]) if r["context_id"] else None
    return out


def _unknown(item_id: str) -> JSONResponse:
    return error_response(404, "not_found", f"no vocabulary item {item_id!r} (never saved, or deleted)")


@asynccontextmanager
async def _snapshot(url: str) -> AsyncIterator[psycopg.AsyncConnection[dict[str, Any]]]:
    """A connection whose reads all see one snapshot: an item, its contexts and its reviews (or
    a page and its total) agree even while the vocab service applies a grade in between."""
    async with await _connect(url) as conn, conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield conn


@requires_token
@_db_errors_as_503
async def list_items(request: Request) -> Response:
    """``GET /api/vocab``: every live item, newest saved first, with its newest context.
    ``?limit=`` (1-1000, default 200), ``?offset=``."""
    try:
        limit = _int_param(request, "limit", 200, 1, 1000)
        offset = _int_param(request, "offset", 0, 0, 10**9)
    except _BadRequest as e:
        return error_response(400, "bad_request", str(e))
    async with _snapshot(request.state.database_url) as conn:
        cur = await conn.execute(
            f"SELECT {_ITEM}, {_NEWEST_COLUMNS} FROM vocab_items i {_NEWEST} "
            "ORDER BY i.last_saved_at DESC, i.item_id LIMIT %s OFFSET %s",
            (limit, offset),
        )
        rows = await cur.fetchall()
        total = await (await conn.execute("SELECT count(*) AS n FROM vocab_items")).fetchone()
    return JSONResponse(
        {"items": [_item_json(r) for r in rows], "total": total["n"] if total else 0, "limit": limit, "offset": offset}
    )


@requires_token
@_db_errors_as_503
async def due_cards(request: Request) -> Response:
    """``GET /api/vocab/due``: today's study queue in order (reviews, then new cards), each
    with its item and the context to show; the study day's bounds and what is left."""
    now = datetime.now(UTC)
    async with _snapshot(request.state.database_url) as conn:
        cur = await conn.execute(
            f"SELECT q.place, q.is_new, {_ITEM}, {_NEWEST_COLUMNS} FROM vocab_due(%s) q "
            f"JOIN vocab_items i ON i.item_id = q.item_id {_NEWEST} ORDER BY q.place",
            (now,),
        )
        rows = await cur.fetchall()
        day = await (await conn.execute("SELECT * FROM vocab_study_day(%s)", (now,))).fetchone()
    cards = [{"position": r["place"], "is_new": r["is_new"], **_item_json(r)} for r in rows]
    return JSONResponse(
        {
            "cards": cards,
            "new": sum(1 for c in cards if c["is_new"]),
            "reviews": sum(1 for c in cards if not c["is_new"]),
            "day_start": _iso(day["day_start"]) if day else None,
            "day_end": _iso(day["day_end"]) if day else None,
        }
    )


@requires_token
@_db_errors_as_503
async def get_item(request: Request) -> Response:
    """``GET /api/vocab/{item_id}``: the item, every live context and its review history."""
    item_id = request.path_params["item_id"]
    async with _snapshot(request.state.database_url) as conn:
        row = await (
            await conn.execute(f"SELECT {_ITEM} FROM vocab_items i WHERE i.item_id = %s", (item_id,))
        ).fetchone()
        if row is None:
            return _unknown(item_id)
        contexts = await (
            await conn.execute(
                "SELECT context_id, session_id, text, heard, corrected, translation, speaker_name, saved_at, "
                "clip IS NOT NULL AS has_clip FROM vocab_contexts WHERE item_id = %s AND live "
                "ORDER BY saved_at, context_id",
                (item_id,),
            )
        ).fetchall()
        reviews = await (
            await conn.execute(
                "SELECT review_id, grade, answer_ms, reviewed_at, review_no, ease, interval_days, due_at "
                "FROM vocab_reviews WHERE item_id = %s AND live ORDER BY reviewed_at, review_id",
                (item_id,),
            )
        ).fetchall()
    return JSONResponse(
        {
            **_item_json(row),
            "contexts": [_context_json(c, item_id) for c in contexts],
            "history": [
                {
                    "review_id": r["review_id"],
                    "grade": r["grade"],
                    "answer_ms": r["answer_ms"],
                    "reviewed_at": _iso(r["reviewed_at"]),
                    "review_no": r["review_no"],
                    "ease": r["ease"],
                    "interval_days": r["interval_days"],
                    "due_at": _iso(r["due_at"]),
                }
                for r in reviews
            ],
        }
    )


@requires_token
@_db_errors_as_503
async def item_clip(request: Request) -> Response:
    """``GET /api/vocab/{item_id}/clip[?context=ID]``: the original speech (MP3) of the
    given context, or of the newest context that has one."""
    item_id = request.path_params["item_id"]
    context = request.query_params.get("context")
    async with await _connect(request.state.database_url) as conn:
        query = (
            "SELECT clip, clip_format FROM vocab_contexts WHERE item_id = %s AND live AND clip IS NOT NULL "
            + ("AND context_id = %s " if context else "")
            + "ORDER BY saved_at DESC, context_id LIMIT 1"
        )
        row = await (await conn.execute(query, (item_id, context) if context else (item_id,))).fetchone()
    if row is None:
        return error_response(
            404,
            "not_found",
            f"vocabulary item {item_id!r} has no audio clip" + (f" in context {context!r}" if context else ""),
        )
    media = {"mp3": "audio/mpeg"}.get(row["clip_format"] or "", "application/octet-stream")
    return Response(bytes(row["clip"]), media_type=media, headers={"Cache-Control": "private, max-age=86400"})


async def _publish_study_fact(request: Request, conn: psycopg.AsyncConnection[dict[str, Any]], event: Any) -> None:
    recorded = await _recorded_seq(conn, VOCAB_SESSION)
    await to_thread.run_sync(lambda: request.state.store.publish_after(event, recorded))


async def _live_item(conn: psycopg.AsyncConnection[dict[str, Any]], item_id: str) -> bool:
    return await (await conn.execute("SELECT 1 FROM vocab_items WHERE item_id = %s", (item_id,))).fetchone() is not None


@requires_token
@_db_errors_as_503
async def review_item(request: Request) -> Response:
    """``POST /api/vocab/{item_id}/reviews`` ``{"grade": 0-5, "answer_ms"?, "review_id"?}``:
    publishes vocab.reviewed (202)."""
    item_id = request.path_params["item_id"]
    try:
        body = await _json_object(request)
        grade = body.get("grade")
        if isinstance(grade, bool) or not isinstance(grade, int) or grade not in REVIEW_GRADES:
            raise _BadRequest(f"'grade' must be an integer from 0 (forgotten) to 5 (perfect recall); got {grade!r}")
        answer_ms = body.get("answer_ms", 0)
        if isinstance(answer_ms, bool) or not isinstance(answer_ms, int) or not 0 <= answer_ms <= 86_400_000:
            raise _BadRequest("'answer_ms' must be a whole number of milliseconds from 0 to 86400000")
        token = body.get("review_id")
        if token is not None and (not isinstance(token, str) or not 1 <= len(token) <= 100):
            raise _BadRequest("'review_id' must be a string of 1 to 100 characters (it makes a retried grade one)")
    except _BadRequest as e:
        return error_response(400, "bad_request", str(e))
    async with await _connect(request.state.database_url) as conn:
        if not await _live_item(conn, item_id):
            return _unknown(item_id)
        event = CardReviewed(
            session_id=VOCAB_SESSION,
            event_id=derived_id("vocab.reviewed", item_id, token) if token else new_id(),
            item_id=item_id,
            grade=grade,
            answer_ms=answer_ms,
        )
        await _publish_study_fact(request, conn, event)
    return JSONResponse(
        {"status": "accepted", "event_id": event.event_id, "item_id": item_id, "grade": grade}, status_code=202
    )


@requires_token
@_db_errors_as_503
async def delete_item(request: Request) -> Response:
    """``DELETE /api/vocab/{item_id}``: publishes vocab.deleted (202); 404 if unknown or gone."""
    item_id = request.path_params["item_id"]
    async with await _connect(request.state.database_url) as conn:
        if not await _live_item(conn, item_id):
            return _unknown(item_id)
        event = VocabItemDeleted(session_id=VOCAB_SESSION, item_id=item_id)
        await _publish_study_fact(request, conn, event)
    return JSONResponse({"status": "accepted", "event_id": event.event_id, "item_id": item_id}, status_code=202)


@requires_token
@_db_errors_as_503
async def save_term(request: Request) -> Response:
    """``POST /api/sessions/{id}/terms`` ``{"kind", "text", "utterance_id"?, "meaning"?, ...}``:
    save words from a session's transcript to study, as the ``save`` frame does live
    (publishes term.saved, 202; the vocab service makes the card)."""
    session_id = request.path_params["session_id"]
    try:
        term = parse_save(await _json_object(request))
    except _BadRequest as e:
        return error_response(400, "bad_request", str(e))
    except ProtocolError as e:
        return JSONResponse({"error": "bad_request", "message": e.message, **e.extra}, status_code=400)
    async with await _connect(request.state.database_url) as conn:
        if await _load_session(conn, session_id) is None:
            return _not_found(session_id)
        if term.utterance_id:
            cur = await conn.execute(
                "SELECT 1 FROM utterances WHERE session_id = %s AND utterance_id = %s", (session_id, term.utterance_id)
            )
            if await cur.fetchone() is None:
                return error_response(
                    404,
                    "not_found",
                    f"session {session_id!r} has no utterance {term.utterance_id!r} (see its transcript)",
                )
        recorded = await _recorded_seq(conn, session_id)
    event = await to_thread.run_sync(lambda: request.state.store.save_term(session_id, term, recorded_seq=recorded))
    return JSONResponse(
        {
            "status": "accepted",
            "event_id": event.event_id,
            "session_id": session_id,
            "kind": term.term_kind,
            "text": term.text,
        },
        status_code=202,
    )
