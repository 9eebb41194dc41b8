"""Read models (sessions, utterances, translations, speakers, voiceprints, ...) computed from facts.

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
    ADMIN_SESSION,
    VOCAB_SESSION,
    CorrectionDetected,
    Event,
    SessionDeleted,
    SessionEnded,
    SessionSettingsChanged,
    SessionStarted,
    SpeakerAssigned,
    SpeakerJoined,
    SpeakerRenamed,
    SpeakerRoleSuggested,
    TermSaved,
    TopicSummarized,
    TranscriptFinal,
    TranslationFinal,
    UtteranceSegmented,
    VoiceprintDeleted,
    VoiceprintSaved,
)

__all__ = ["PROJECTION_TABLES", "SESSION_TABLES", "apply", "deletable", "rebuild"]

PROJECTION_TABLES = (
    "sessions",
    "utterances",
    "translations",
    "corrections",
    "saved_terms",
    "speakers",
    "voiceprints",
    "deleted_sessions",
)
# The read models whose rows belong to one session (by session_id): a deleted session's
# rows go. Voiceprints stay: a voice the user chose to remember is forgotten on its own
# (`habla voices forget`), and its facts are kept in the log (see handlers.KEPT_KINDS).
SESSION_TABLES = ("sessions", "utterances", "translations", "corrections", "saved_terms", "speakers")
# sessions that hold other facts than one conversation's: never deleted as a whole
_RESERVED_SESSIONS = (ADMIN_SESSION, VOCAB_SESSION)


def deletable(session_id: str) -> bool:
    """Whether a session.deleted may delete ``session_id`` (not empty, not a reserved session)."""
    return bool(session_id) and session_id not in _RESERVED_SESSIONS


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


# Which fact set an utterance row's times and speaker (utterances.times_from / speaker_from):
# the highest wins whatever the arrival order. A segmented utterance's times cover every
# turn, so they give way to its first turn's own times (from speaker.assigned or asr.final).
_FROM_SEGMENTED, _FROM_ASSIGNED, _FROM_FINAL = 1, 2, 3

# SET clauses for an upsert into utterances whose VALUES carry times_from / speaker_from.
_TIMES_SET = (
    "start_ms = CASE WHEN EXCLUDED.times_from >= utterances.times_from THEN EXCLUDED.start_ms "
    "ELSE utterances.start_ms END, "
    "end_ms = CASE WHEN EXCLUDED.times_from >= utterances.times_from THEN EXCLUDED.end_ms "
    "ELSE utterances.end_ms END, "
    "times_from = GREATEST(utterances.times_from, EXCLUDED.times_from)"
)
_SPEAKER_SET = (
    "speaker = CASE WHEN EXCLUDED.speaker_from >= utterances.speaker_from THEN EXCLUDED.speaker "
    "ELSE utterances.speaker END, "
    "speaker_from = GREATEST(utterances.speaker_from, EXCLUDED.speaker_from)"
)
# part, parts and parent_id come from the turn facts (asr.final, speaker.assigned), which agree
_TURN_SET = (
    "part = EXCLUDED.part, parts = GREATEST(utterances.parts, EXCLUDED.parts), "
    "parent_id = COALESCE(EXCLUDED.parent_id, utterances.parent_id)"
)


def _segmented(conn: psycopg.Connection, e: UtteranceSegmented) -> None:
    conn.execute(
        "INSERT INTO utterances (utterance_id, session_id, idx, start_ms, end_ms, reason, times_from) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (utterance_id) DO UPDATE SET "
        f"reason = EXCLUDED.reason, {_TIMES_SET}",
        (e.utterance_id, e.session_id, e.index, e.start_ms, e.end_ms, e.reason, _FROM_SEGMENTED),
    )


def _final(conn: psycopg.Connection, e: TranscriptFinal) -> None:
    """One turn's transcript (a whole utterance when it was not split): its row's text,
    its own times and speaker. A later turn's row exists only through its final or the
    speaker.assigned that announced it."""
    speaker = e.speaker or None
    conn.execute(
        "INSERT INTO utterances (utterance_id, session_id, idx, part, parts, parent_id, speaker, speaker_from, "
        "start_ms, end_ms, times_from, text, language, dropped, avg_logprob, asr_ms, model) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (utterance_id) DO UPDATE SET text = EXCLUDED.text, language = EXCLUDED.language, "
        "dropped = EXCLUDED.dropped, avg_logprob = EXCLUDED.avg_logprob, asr_ms = EXCLUDED.asr_ms, "
        f"model = EXCLUDED.model, {_TURN_SET}, {_SPEAKER_SET}, {_TIMES_SET}",
        (
            e.utterance_id,
            e.session_id,
            e.index,
            e.part,
            max(1, e.parts),
            e.parent_id if e.parent_id and e.parent_id != e.utterance_id else None,
            speaker,
            _FROM_FINAL if speaker else 0,
            e.start_ms,
            e.end_ms,
            _FROM_FINAL,
            e.text,
            e.language,
            e.dropped,
            e.avg_logprob,
            e.asr_ms,
            e.model,
        ),
    )


def _assigned(conn: psycopg.Connection, e: SpeakerAssigned) -> None:
    """Who spoke each turn of segmented utterance ``e.index``; makes the rows of later turns
    (their text comes with their finals)."""
    turns = [t for t in e.turns if isinstance(t, dict) and t.get("utterance_id")]
    if not turns:  # no split given: the utterance is one turn of e.speaker
        turns = [{"utterance_id": e.utterance_id, "part": 0, "speaker": e.speaker}]
    rows = []
    for n, t in enumerate(turns):
        uid = str(t["utterance_id"])
        speaker = str(t.get("speaker") or "") or None
        start, end = t.get("start_ms"), t.get("end_ms")
        has_times = isinstance(start, int) and isinstance(end, int)
        rows.append(
            (
                uid,
                e.session_id,
                e.index,
                int(t.get("part", n)),
                len(turns),
                e.utterance_id if uid != e.utterance_id and e.utterance_id else None,
                speaker,
                _FROM_ASSIGNED if speaker else 0,
                start if has_times else None,
                end if has_times else None,
                _FROM_ASSIGNED if has_times else 0,
            )
        )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO utterances (utterance_id, session_id, idx, part, parts, parent_id, speaker, speaker_from, "
            "start_ms, end_ms, times_from) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            f"ON CONFLICT (utterance_id) DO UPDATE SET {_TURN_SET}, {_SPEAKER_SET}, {_TIMES_SET}",
            rows,
        )


# speakers: each of name / is_user / role is set by the newest fact (the session's seq) that carries it
def _newest(column: str, seq: str, *, also: tuple[str, ...] = ()) -> str:
    cols = (column, *also)
    sets = [f"{c} = CASE WHEN EXCLUDED.{seq} >= speakers.{seq} THEN EXCLUDED.{c} ELSE speakers.{c} END" for c in cols]
    return ", ".join([*sets, f"{seq} = GREATEST(speakers.{seq}, EXCLUDED.{seq})"])


def _joined(conn: psycopg.Connection, e: SpeakerJoined) -> None:
    conn.execute(
        "INSERT INTO speakers (session_id, speaker, number, label, color, voiceprint_id, similarity, joined_at, "
        "is_user, user_seq) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (session_id, speaker) DO UPDATE SET number = EXCLUDED.number, label = EXCLUDED.label, "
        "color = EXCLUDED.color, voiceprint_id = EXCLUDED.voiceprint_id, similarity = EXCLUDED.similarity, "
        f"joined_at = EXCLUDED.joined_at, {_newest('is_user', 'user_seq')}",
        (
            e.session_id,
            e.speaker,
            e.number,
            e.label,
            e.color,
            e.voiceprint_id or None,
            e.similarity,
            _ts(e.occurred_at),
            e.is_user,
            e.seq,
        ),
    )


def _renamed(conn: psycopg.Connection, e: SpeakerRenamed) -> None:
    conn.execute(
        "INSERT INTO speakers (session_id, speaker, name, name_source, remember, name_seq, is_user, user_seq) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (session_id, speaker) DO UPDATE SET "
        f"{_newest('name', 'name_seq', also=('name_source', 'remember'))}, {_newest('is_user', 'user_seq')}",
        (e.session_id, e.speaker, e.name, e.source, e.remember, e.seq, e.is_user, e.seq),
    )


def _role(conn: psycopg.Connection, e: SpeakerRoleSuggested) -> None:
    conn.execute(
        "INSERT INTO speakers (session_id, speaker, role, role_confidence, role_evidence, role_seq) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (session_id, speaker) DO UPDATE SET "
        f"{_newest('role', 'role_seq', also=('role_confidence', 'role_evidence'))}",
        (e.session_id, e.speaker, e.role, e.confidence, Jsonb(dict(e.evidence)), e.seq),
    )


# voiceprints: the newest save (by time) sets the columns; a voiceprint is live while it was
# saved after its newest deletion, and a deletion forgets the embedding.
_VOICEPRINT_COLUMNS = ("name", "is_user", "backend", "dim", "speech_ms", "session_id", "speaker")


def _voiceprint_saved(conn: psycopg.Connection, e: VoiceprintSaved) -> None:
    newer = "(voiceprints.saved_at IS NULL OR EXCLUDED.saved_at >= voiceprints.saved_at)"
    sets = [f"{c} = CASE WHEN {newer} THEN EXCLUDED.{c} ELSE voiceprints.{c} END" for c in _VOICEPRINT_COLUMNS]
    conn.execute(
        "INSERT INTO voiceprints (voiceprint_id, name, is_user, backend, dim, speech_ms, session_id, speaker, "
        "embedding, saved_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        f"ON CONFLICT (voiceprint_id) DO UPDATE SET {', '.join(sets)}, "
        f"embedding = CASE WHEN NOT {newer} THEN voiceprints.embedding "
        "WHEN voiceprints.deleted_at IS NULL OR EXCLUDED.saved_at > voiceprints.deleted_at "
        "THEN EXCLUDED.embedding END, "
        "saved_at = GREATEST(voiceprints.saved_at, EXCLUDED.saved_at)",
        (
            e.voiceprint_id,
            e.name,
            e.is_user,
            e.backend,
            e.dim,
            e.speech_ms,
            e.session_id,
            e.speaker or None,
            e.embedding,
            _ts(e.occurred_at),
        ),
    )


def _voiceprint_deleted(conn: psycopg.Connection, e: VoiceprintDeleted) -> None:
    conn.execute(
        "INSERT INTO voiceprints (voiceprint_id, deleted_at) VALUES (%s, %s) "
        "ON CONFLICT (voiceprint_id) DO UPDATE SET "
        "deleted_at = GREATEST(voiceprints.deleted_at, EXCLUDED.deleted_at), "
        "embedding = CASE WHEN voiceprints.saved_at > GREATEST(voiceprints.deleted_at, EXCLUDED.deleted_at) "
        "THEN voiceprints.embedding END",
        (e.voiceprint_id, _ts(e.occurred_at)),
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


def _session_deleted(conn: psycopg.Connection, e: SessionDeleted) -> None:
    """The session's rows leave every read model and its tombstone is kept (the earliest
    deletion's, whatever the order). The recorder deletes its facts and audio itself."""
    sid = e.deleted_session
    if not deletable(sid):
        return
    for table in SESSION_TABLES:
        conn.execute(f"DELETE FROM {table} WHERE session_id = %s", (sid,))
    conn.execute(
        "INSERT INTO deleted_sessions (session_id, deleted_at, event_id) VALUES (%s, %s, %s) "
        "ON CONFLICT (session_id) DO UPDATE SET "
        "event_id = CASE WHEN EXCLUDED.deleted_at < deleted_sessions.deleted_at THEN EXCLUDED.event_id "
        "ELSE deleted_sessions.event_id END, "
        "deleted_at = LEAST(deleted_sessions.deleted_at, EXCLUDED.deleted_at)",
        (sid, _ts(e.occurred_at), e.event_id),
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
    SpeakerAssigned: _assigned,  # type: ignore[dict-item]
    SpeakerJoined: _joined,  # type: ignore[dict-item]
    SpeakerRenamed: _renamed,  # type: ignore[dict-item]
    SpeakerRoleSuggested: _role,  # type: ignore[dict-item]
    VoiceprintSaved: _voiceprint_saved,  # type: ignore[dict-item]
    VoiceprintDeleted: _voiceprint_deleted,  # type: ignore[dict-item]
    SessionDeleted: _session_deleted,  # type: ignore[dict-item]
}


def apply(conn: psycopg.Connection, event: Event) -> None:
    fn = _APPLY.get(type(event))
    if fn is not None:
        fn(conn, event)


def rebuild(url: str, progress: Callable[[int, int], None] | None = None) -> int:
    """Drop the read models and recompute them from the whole log; returns events applied.

    Stored utterance audio (``utterance_audio``) is not a read model and is kept."""
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
