"""Read models (sessions, utterances) computed from facts.

Each function sets only the columns its event owns, with upserts, so applying the
facts in any order gives the same rows; that is what lets the recorder read several
streams at once and lets ``habla rebuild`` replay the log by position.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import psycopg

from habla_contracts import (
    Event,
    SessionEnded,
    SessionSettingsChanged,
    SessionStarted,
    TranscriptFinal,
    UtteranceSegmented,
)

__all__ = ["PROJECTION_TABLES", "apply", "rebuild"]

PROJECTION_TABLES = ("sessions", "utterances")


def _ts(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=UTC)


def _started(conn: psycopg.Connection, e: SessionStarted) -> None:
    conn.execute(
        "INSERT INTO sessions (session_id, started_at, direction, mode, codec, source, title, settings_seq) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (session_id) DO UPDATE SET "
        "started_at = EXCLUDED.started_at, codec = EXCLUDED.codec, source = EXCLUDED.source, "
        "title = EXCLUDED.title, "
        "direction = CASE WHEN sessions.settings_seq > EXCLUDED.settings_seq THEN sessions.direction "
        "ELSE EXCLUDED.direction END, "
        "mode = CASE WHEN sessions.settings_seq > EXCLUDED.settings_seq THEN sessions.mode ELSE EXCLUDED.mode END, "
        "settings_seq = GREATEST(sessions.settings_seq, EXCLUDED.settings_seq)",
        (e.session_id, _ts(e.occurred_at), e.direction, e.mode, e.codec, e.source, e.title, e.seq),
    )


def _settings(conn: psycopg.Connection, e: SessionSettingsChanged) -> None:
    conn.execute(
        "INSERT INTO sessions (session_id, direction, mode, settings_seq) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (session_id) DO UPDATE SET "
        "direction = CASE WHEN EXCLUDED.settings_seq > sessions.settings_seq "
        "THEN COALESCE(EXCLUDED.direction, sessions.direction) ELSE sessions.direction END, "
        "mode = CASE WHEN EXCLUDED.settings_seq > sessions.settings_seq "
        "THEN COALESCE(EXCLUDED.mode, sessions.mode) ELSE sessions.mode END, "
        "settings_seq = GREATEST(sessions.settings_seq, EXCLUDED.settings_seq)",
        (e.session_id, e.direction, e.mode, e.seq),
    )


def _ended(conn: psycopg.Connection, e: SessionEnded) -> None:
    conn.execute(
        "INSERT INTO sessions (session_id, ended_at, end_reason) VALUES (%s, %s, %s) "
        "ON CONFLICT (session_id) DO UPDATE SET ended_at = EXCLUDED.ended_at, end_reason = EXCLUDED.end_reason",
        (e.session_id, _ts(e.occurred_at), e.reason),
    )


def _segmented(conn: psycopg.Connection, e: UtteranceSegmented) -> None:
    conn.execute(
        "INSERT INTO utterances (utterance_id, session_id, idx, start_ms, end_ms, reason) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (utterance_id) DO UPDATE SET "
        "start_ms = EXCLUDED.start_ms, end_ms = EXCLUDED.end_ms, reason = EXCLUDED.reason",
        (e.utterance_id, e.session_id, e.index, e.start_ms, e.end_ms, e.reason),
    )


def _final(conn: psycopg.Connection, e: TranscriptFinal) -> None:
    conn.execute(
        "INSERT INTO utterances (utterance_id, session_id, idx, start_ms, end_ms, text, language, dropped, "
        "avg_logprob, asr_ms, model) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (utterance_id) DO UPDATE SET text = EXCLUDED.text, language = EXCLUDED.language, "
        "dropped = EXCLUDED.dropped, avg_logprob = EXCLUDED.avg_logprob, asr_ms = EXCLUDED.asr_ms, "
        "model = EXCLUDED.model",
        (
            e.utterance_id,
            e.session_id,
            e.index,
            e.start_ms,
            e.end_ms,
            e.text,
            e.language,
            e.dropped,
            e.avg_logprob,
            e.asr_ms,
            e.model,
        ),
    )


_APPLY: dict[type[Event], Callable[[psycopg.Connection, Event], None]] = {
    SessionStarted: _started,  # type: ignore[dict-item]
    SessionSettingsChanged: _settings,  # type: ignore[dict-item]
    SessionEnded: _ended,  # type: ignore[dict-item]
    UtteranceSegmented: _segmented,  # type: ignore[dict-item]
    TranscriptFinal: _final,  # type: ignore[dict-item]
}


def apply(conn: psycopg.Connection, event: Event) -> None:
    fn = _APPLY.get(type(event))
    if fn is not None:
        fn(conn, event)


def rebuild(url: str, progress: Callable[[int, int], None] | None = None) -> int:
    """Drop the read models and recompute them from the whole log; returns events applied."""
    from habla_common.eventlog import PostgresEventStore, connect_pg

    store = PostgresEventStore(url)
    with connect_pg(url) as conn:
        total = int(conn.execute("SELECT count(*) FROM events").fetchone()[0])  # type: ignore[index]
        conn.execute("TRUNCATE " + ", ".join(PROJECTION_TABLES))
        n = 0
        for stored in store.read_all():
            apply(conn, stored.event)
            n += 1
            if progress is not None:
                progress(n, total)
        conn.commit()
    return n
