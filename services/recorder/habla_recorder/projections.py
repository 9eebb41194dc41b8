"""Read models (sessions, utterances) computed from facts.

Each function sets only the columns its event owns, with upserts, so applying the
facts in any order gives the same rows; that is what lets the recorder read several
streams at once and lets ``habla rebuild`` replay the log by position.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
from psycopg.types.json import Jsonb

from habla_contracts import (
    CorrectionDetected,
    Event,
    SessionEnded,
    SessionSettingsChanged,
    SessionStarted,
    TermSaved,
    TopicSummarized,
    TranscriptFinal,
    TranslationFinal,
    UtteranceSegmented,
)

__all__ = ["PROJECTION_TABLES", "apply", "rebuild"]

PROJECTION_TABLES = ("sessions", "utterances", "translations", "corrections", "saved_terms")


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


def _translation(conn: psycopg.Connection, e: TranslationFinal) -> None:
    conn.execute(
        "INSERT INTO translations (utterance_id, revision, session_id, idx, source_text, corrected, translation, "
        "status, source_language, target_language, corrections, idioms, model, translate_ms, event_id) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (utterance_id, revision) DO NOTHING",
        (
            e.utterance_id,
            e.revision,
            e.session_id,
            e.index,
            e.source_text,
            e.corrected,
            e.translation,
            e.status,
            e.source_language,
            e.target_language,
            Jsonb(list(e.corrections)),
            Jsonb(list(e.idioms)),
            e.model,
            e.translate_ms,
            e.event_id,
        ),
    )


def _correction(conn: psycopg.Connection, e: CorrectionDetected) -> None:
    conn.execute(
        "INSERT INTO corrections (event_id, session_id, utterance_id, corrected_utterance_id, idx, said, correct, "
        "why, cue) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING",
        (e.event_id, e.session_id, e.utterance_id, e.corrected_utterance_id, e.index, e.said, e.correct, e.why, e.cue),
    )


def _topic(conn: psycopg.Connection, e: TopicSummarized) -> None:
    conn.execute(
        "INSERT INTO sessions (session_id, topic, topic_index) VALUES (%s, %s, %s) "
        "ON CONFLICT (session_id) DO UPDATE SET "
        "topic = CASE WHEN EXCLUDED.topic_index >= sessions.topic_index THEN EXCLUDED.topic ELSE sessions.topic END, "
        "topic_index = GREATEST(sessions.topic_index, EXCLUDED.topic_index)",
        (e.session_id, e.summary, e.upto_index),
    )


def _term(conn: psycopg.Connection, e: TermSaved) -> None:
    conn.execute(
        "INSERT INTO saved_terms (term_id, session_id, term_kind, text, meaning, literal, example, utterance_id, "
        "language, saved_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (term_id) DO NOTHING",
        (
            e.term_id or e.event_id,
            e.session_id,
            e.term_kind,
            e.text,
            e.meaning,
            e.literal,
            e.example,
            e.utterance_id,
            e.language,
            _ts(e.occurred_at),
        ),
    )


_APPLY: dict[type[Event], Callable[[psycopg.Connection, Event], None]] = {
    SessionStarted: _started,  # type: ignore[dict-item]
    SessionSettingsChanged: _settings,  # type: ignore[dict-item]
    SessionEnded: _ended,  # type: ignore[dict-item]
    UtteranceSegmented: _segmented,  # type: ignore[dict-item]
    TranscriptFinal: _final,  # type: ignore[dict-item]
    TranslationFinal: _translation,  # type: ignore[dict-item]
    CorrectionDetected: _correction,  # type: ignore[dict-item]
    TopicSummarized: _topic,  # type: ignore[dict-item]
    TermSaved: _term,  # type: ignore[dict-item]
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
