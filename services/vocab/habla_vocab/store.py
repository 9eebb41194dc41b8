"""The vocabulary read models in Postgres (``infra/migrations/0004_vocab.sql``, ``0006_study.sql``).

Each vocab fact adds one row to its detail table (idempotent by event id), then the
item's row is recomputed from all of its rows (:meth:`PostgresVocabStore.apply`), under a
per-item advisory lock so two workers never interleave on one item. Two facts of other
stages are projected too: ``translation.final`` (the newest translation of a turn fills in
the contexts heard in it, also when it comes after the save) and ``session.deleted`` (the
session's contexts go). So the order the facts arrive in never matters, and
:func:`rebuild` from the log gives the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import psycopg
from psycopg.rows import dict_row

from habla_common.eventlog import connect_pg
from habla_contracts import (
    REVIEW_GRADES,
    CardReviewed,
    Event,
    SessionDeleted,
    TranslationFinal,
    VocabItemDeleted,
    VocabItemSaved,
    decode,
)

from .errors import UnknownItem
from .srs import fold

__all__ = [
    "PROJECTED_KINDS",
    "VOCAB_KINDS",
    "VOCAB_TABLES",
    "Context",
    "DueCard",
    "Item",
    "PostgresVocabStore",
    "Review",
    "VocabStore",
    "rebuild",
]

VOCAB_KINDS = (VocabItemSaved.KIND, CardReviewed.KIND, VocabItemDeleted.KIND)
# every kind the projection reads (what a rebuild replays)
PROJECTED_KINDS = (*VOCAB_KINDS, TranslationFinal.KIND, SessionDeleted.KIND)
VOCAB_TABLES = ("vocab_items", "vocab_contexts", "vocab_reviews", "vocab_deletions", "vocab_translations")


def _ts(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=UTC)


@dataclass(frozen=True)
class Item:
    item_id: str
    canonical: str
    item_kind: str
    language: str
    meaning: str
    literal: str
    zipf: float
    band: int
    contexts: int
    first_saved_at: datetime
    last_saved_at: datetime
    ease: float
    interval_days: int
    repetitions: int
    reviews: int
    lapses: int
    last_grade: int | None
    last_reviewed_at: datetime | None
    due_at: datetime


@dataclass(frozen=True)
class Context:
    context_id: str
    item_id: str
    session_id: str
    item_kind: str
    text: str
    utterance_id: str | None
    heard: str
    corrected: str
    translation: str
    speaker: str | None
    speaker_name: str | None
    start_ms: int | None
    end_ms: int | None
    clip: bytes | None
    clip_format: str | None
    saved_at: datetime


@dataclass(frozen=True)
class DueCard:
    """One card of the day's queue (``place`` 1 is studied first)."""

    place: int
    item_id: str
    is_new: bool
    due_at: datetime
    first_saved_at: datetime


@dataclass(frozen=True)
class Review:
    review_id: str
    item_id: str
    grade: int
    reviewed_at: datetime
    review_no: int | None
    ease: float | None
    interval_days: int | None
    due_at: datetime | None


class VocabStore(Protocol):
    def apply(self, event: Event) -> None: ...

    def item(self, item_id: str) -> Item: ...

    def items(self) -> list[Item]: ...

    def contexts(self, item_id: str) -> list[Context]: ...

    def reviews(self, item_id: str) -> list[Review]: ...

    def due(self, at: datetime) -> list[DueCard]: ...

    def study_day(self, at: datetime) -> tuple[datetime, datetime]: ...

    def items_only_in(self, session_id: str) -> list[str]: ...

    def save_settings(self, timezone: str, day_starts_at: int, new_per_day: int, reviews_per_day: int) -> None: ...


class PostgresVocabStore:
    """The read models; ``apply`` commits each fact with its item's new row."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url

    # --- writing -------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        with connect_pg(self.url) as conn:
            apply(conn, event)
            conn.commit()

    # --- reading -------------------------------------------------------------------

    def _all(self, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with connect_pg(self.url) as conn, conn.cursor(row_factory=dict_row) as cur:
            rows: list[dict[str, Any]] = cur.execute(query, params).fetchall()
        return rows

    def item(self, item_id: str) -> Item:
        rows = self._all("SELECT * FROM vocab_items WHERE item_id = %s", (item_id,))
        if not rows:
            raise UnknownItem(f"no vocabulary item {item_id!r} (never saved, or deleted)")
        return Item(**rows[0])

    def items(self) -> list[Item]:
        return [Item(**r) for r in self._all("SELECT * FROM vocab_items ORDER BY first_saved_at, item_id")]

    def contexts(self, item_id: str) -> list[Context]:
        fields = ", ".join(Context.__dataclass_fields__)
        rows = self._all(
            f"SELECT {fields} FROM vocab_contexts WHERE item_id = %s AND live ORDER BY saved_at, context_id",
            (item_id,),
        )
        return [Context(**{**r, "clip": bytes(r["clip"]) if r["clip"] is not None else None}) for r in rows]

    def reviews(self, item_id: str) -> list[Review]:
        fields = ", ".join(Review.__dataclass_fields__)
        rows = self._all(
            f"SELECT {fields} FROM vocab_reviews WHERE item_id = %s AND live ORDER BY reviewed_at, review_id",
            (item_id,),
        )
        return [Review(**r) for r in rows]

    def due(self, at: datetime) -> list[DueCard]:
        """The study queue at ``at`` within the daily limits (SQL function ``vocab_due``)."""
        return [DueCard(**r) for r in self._all("SELECT * FROM vocab_due(%s) ORDER BY place", (at,))]

    def study_day(self, at: datetime) -> tuple[datetime, datetime]:
        """Start and end of the study day ``at`` falls in."""
        row = self._all("SELECT * FROM vocab_study_day(%s)", (at,))[0]
        return row["day_start"], row["day_end"]

    def items_only_in(self, session_id: str) -> list[str]:
        """Live items every live context of which was heard in ``session_id``."""
        rows = self._all(
            "SELECT item_id FROM vocab_contexts WHERE live GROUP BY item_id "
            "HAVING bool_and(session_id = %s) ORDER BY item_id",
            (session_id,),
        )
        return [r["item_id"] for r in rows]

    def save_settings(self, timezone: str, day_starts_at: int, new_per_day: int, reviews_per_day: int) -> None:
        """The study settings ``vocab_due`` reads (the service writes its own at start)."""
        with connect_pg(self.url) as conn:
            conn.execute(
                "UPDATE vocab_settings SET timezone = %s, day_starts_at = %s, new_per_day = %s, "
                "reviews_per_day = %s, updated_at = now()",
                (timezone, day_starts_at, new_per_day, reviews_per_day),
            )
            conn.commit()


# --- the projection ------------------------------------------------------------------


def _saved(conn: psycopg.Connection, e: VocabItemSaved) -> None:
    conn.execute(
        "INSERT INTO vocab_contexts (context_id, item_id, session_id, term_id, item_kind, canonical, text, language, "
        "meaning, literal, utterance_id, heard, corrected, translation, speaker, speaker_name, start_ms, end_ms, "
        "clip, clip_format, zipf, band, saved_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (context_id) DO NOTHING",
        (
            e.event_id,
            e.item_id,
            e.session_id,
            e.term_id or None,
            e.item_kind,
            e.canonical,
            e.text,
            e.language,
            e.meaning,
            e.literal,
            e.utterance_id or None,
            e.heard,
            e.corrected,
            e.translation,
            e.speaker or None,
            e.speaker_name or None,
            e.start_ms if e.clip else None,
            e.end_ms if e.clip else None,
            e.clip or None,
            e.clip_format or None,
            e.zipf,
            e.band,
            _ts(e.occurred_at),
        ),
    )
    _fill_translation(conn, "c.context_id = %(id)s", {"id": e.event_id})


def _fill_translation(conn: psycopg.Connection, where: str, params: dict[str, Any]) -> None:
    """Contexts matching ``where`` take the newest translation recorded for their turn."""
    conn.execute(
        "UPDATE vocab_contexts c SET translation = t.translation, corrected = t.corrected "
        "FROM vocab_translations t WHERE t.session_id = c.session_id AND t.utterance_id = c.utterance_id "
        f"AND {where}",
        params,
    )


def _translated(conn: psycopg.Connection, e: TranslationFinal) -> None:
    """The newest revision of a turn's translation (an equal one is a redelivery)."""
    conn.execute(
        "INSERT INTO vocab_translations (session_id, utterance_id, revision, translation, corrected) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (session_id, utterance_id) DO UPDATE SET "
        "revision = EXCLUDED.revision, translation = EXCLUDED.translation, corrected = EXCLUDED.corrected "
        "WHERE vocab_translations.revision < EXCLUDED.revision",
        (e.session_id, e.utterance_id, e.revision, e.translation, e.corrected),
    )
    _fill_translation(
        conn,
        "c.session_id = %(session)s AND c.utterance_id = %(utterance)s",
        {"session": e.session_id, "utterance": e.utterance_id},
    )


def _session_deleted(conn: psycopg.Connection, e: SessionDeleted) -> list[str]:
    """Forget the deleted session's contexts and translations; returns the items touched."""
    rows = conn.execute(
        "DELETE FROM vocab_contexts WHERE session_id = %s RETURNING item_id", (e.deleted_session,)
    ).fetchall()
    conn.execute("DELETE FROM vocab_translations WHERE session_id = %s", (e.deleted_session,))
    return sorted({r[0] for r in rows})


def _reviewed(conn: psycopg.Connection, e: CardReviewed) -> None:
    conn.execute(
        "INSERT INTO vocab_reviews (review_id, item_id, grade, answer_ms, reviewed_at) VALUES (%s, %s, %s, %s, %s) "
        "ON CONFLICT (review_id) DO NOTHING",
        (e.event_id, e.item_id, e.grade, e.answer_ms, _ts(e.occurred_at)),
    )


def _deleted(conn: psycopg.Connection, e: VocabItemDeleted) -> None:
    conn.execute(
        "INSERT INTO vocab_deletions (event_id, item_id, deleted_at) VALUES (%s, %s, %s) "
        "ON CONFLICT (event_id) DO NOTHING",
        (e.event_id, e.item_id, _ts(e.occurred_at)),
    )


_ITEM_COLUMNS = (
    "item_id, canonical, item_kind, language, meaning, literal, zipf, band, contexts, first_saved_at, last_saved_at, "
    "ease, interval_days, repetitions, reviews, lapses, last_grade, last_reviewed_at, due_at"
)


def _refresh(conn: psycopg.Connection, item_id: str) -> None:
    """Recompute the item's row and its contexts' and reviews' derived columns."""
    deleted = conn.execute("SELECT max(deleted_at) FROM vocab_deletions WHERE item_id = %s", (item_id,)).fetchone()
    since = deleted[0] if deleted else None
    live = "(%(since)s::timestamptz IS NULL OR {col} > %(since)s::timestamptz)"
    params = {"item": item_id, "since": since}
    conn.execute(f"UPDATE vocab_contexts SET live = {live.format(col='saved_at')} WHERE item_id = %(item)s", params)
    conn.execute(f"UPDATE vocab_reviews SET live = {live.format(col='reviewed_at')} WHERE item_id = %(item)s", params)
    conn.execute(
        "UPDATE vocab_reviews SET review_no = NULL, ease = NULL, interval_days = NULL, due_at = NULL "
        "WHERE item_id = %s",
        (item_id,),
    )
    with conn.cursor(row_factory=dict_row) as cur:
        contexts = cur.execute(
            "SELECT canonical, item_kind, language, meaning, literal, zipf, band, saved_at FROM vocab_contexts "
            "WHERE item_id = %s AND live ORDER BY saved_at, context_id",
            (item_id,),
        ).fetchall()
        reviews = cur.execute(
            "SELECT review_id, grade, reviewed_at FROM vocab_reviews WHERE item_id = %s AND live "
            "AND grade = ANY(%s) ORDER BY reviewed_at, review_id",
            (item_id, list(REVIEW_GRADES)),
        ).fetchall()
    if not contexts:
        conn.execute("DELETE FROM vocab_items WHERE item_id = %s", (item_id,))
        return
    first, newest = contexts[0], contexts[-1]
    schedules = fold(first["saved_at"], [(r["grade"], r["reviewed_at"]) for r in reviews])
    with conn.cursor() as cur:
        cur.executemany(
            "UPDATE vocab_reviews SET review_no = %s, ease = %s, interval_days = %s, due_at = %s WHERE review_id = %s",
            [
                (n, s.ease, s.interval_days, s.due, r["review_id"])
                for n, (r, s) in enumerate(zip(reviews, schedules, strict=True), start=1)
            ],
        )
    now = schedules[-1] if schedules else None
    meaning = next((c["meaning"] for c in reversed(contexts) if c["meaning"]), "")
    literal = next((c["literal"] for c in reversed(contexts) if c["literal"]), "")
    values = (
        item_id,
        newest["canonical"],
        newest["item_kind"],
        newest["language"],
        meaning,
        literal,
        newest["zipf"],
        newest["band"],
        len(contexts),
        first["saved_at"],
        newest["saved_at"],
        now.ease if now else 2.5,
        now.interval_days if now else 0,
        now.repetitions if now else 0,
        now.reviews if now else 0,
        now.lapses if now else 0,
        now.last_grade if now else None,
        now.last_reviewed if now else None,
        now.due if now else first["saved_at"],
    )
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in _ITEM_COLUMNS.split(", ")[1:])
    conn.execute(
        f"INSERT INTO vocab_items ({_ITEM_COLUMNS}) VALUES ({', '.join(['%s'] * len(values))}) "
        f"ON CONFLICT (item_id) DO UPDATE SET {updates}",
        values,
    )


_APPLY: dict[type[Event], Callable[[psycopg.Connection, Any], None]] = {
    VocabItemSaved: _saved,
    CardReviewed: _reviewed,
    VocabItemDeleted: _deleted,
}


def apply(conn: psycopg.Connection, event: Event, *, lock: bool = True) -> None:
    """Project one fact (kinds it does not read are ignored) inside the caller's
    transaction; ``lock`` takes the item's advisory lock (a rebuild, alone on the tables,
    does not)."""
    if isinstance(event, TranslationFinal):
        _translated(conn, event)
        return
    if isinstance(event, SessionDeleted):
        for item_id in _session_deleted(conn, event):
            if lock:
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ("vocab:" + item_id,))
            _refresh(conn, item_id)
        return
    fn = _APPLY.get(type(event))
    if fn is None:
        return
    item_id = getattr(event, "item_id", "")
    if lock:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ("vocab:" + item_id,))
    fn(conn, event)
    _refresh(conn, item_id)


def _vocab_facts(conn: psycopg.Connection, batch: int = 200) -> Iterator[Event]:
    with conn.cursor(name="vocab_rebuild") as cur:
        cur.itersize = batch
        cur.execute(
            "SELECT kind, seq, payload FROM events WHERE kind = ANY(%s) ORDER BY position", (list(PROJECTED_KINDS),)
        )
        for kind, seq, payload in cur:
            yield decode(kind, bytes(payload), seq=int(seq))


def rebuild(database_url: str, progress: Callable[[int], None] | None = None) -> int:
    """Empty the vocabulary read models and recompute them from the log; returns facts applied."""
    n = 0
    with connect_pg(database_url) as read, connect_pg(database_url) as write:
        write.execute("TRUNCATE " + ", ".join(VOCAB_TABLES))
        for event in _vocab_facts(read):
            apply(write, event, lock=False)
            n += 1
            if progress is not None:
                progress(n)
        write.commit()
    return n
