"""The event log: every fact, appended once, in Postgres.

``append`` is idempotent by event id (a redelivered fact is a no-op and returns
None). Callers pass the transaction's connection so projections can be updated in
the same transaction as the append: a fact and its read models commit together.

Global positions come from a sequence, so two concurrent writers may commit them out
of order; nothing here follows the log live by position (read models are updated in
the appending transaction, and rebuilds run over a finished log), so no table lock
is taken.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import psycopg

from habla_contracts import Event, decode, encode

from .errors import StoreUnavailable

__all__ = ["EventStore", "PostgresEventStore", "Stored", "connect_pg"]


@dataclass(frozen=True)
class Stored:
    position: int
    event: Event


class EventStore(Protocol):
    def append(self, conn: psycopg.Connection, event: Event) -> int | None: ...

    def read(self, after: int = 0, limit: int = 1000) -> list[Stored]: ...

    def session_events(self, session_id: str, after: int = 0) -> list[Stored]: ...

    def events_of_kind(self, kind: str, after: int = 0) -> list[Stored]: ...


def connect_pg(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as e:
        raise StoreUnavailable(f"cannot reach Postgres at {url}: {e}. Set DATABASE_URL or start `habla up`.") from e


class PostgresEventStore:
    def __init__(self, url: str) -> None:
        self.url = url

    def append(self, conn: psycopg.Connection, event: Event) -> int | None:
        row = conn.execute(
            "INSERT INTO events (event_id, session_id, seq, kind, version, occurred_at, payload) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING RETURNING position",
            (
                event.event_id,
                event.session_id,
                event.seq,
                event.KIND,
                type(event).V,
                datetime.fromtimestamp(event.occurred_at, tz=UTC),
                encode(event),
            ),
        ).fetchone()
        return None if row is None else int(row[0])

    def _rows(self, query: str, params: tuple[object, ...]) -> list[Stored]:
        with connect_pg(self.url) as conn:
            rows = conn.execute(query, params).fetchall()
        return [Stored(int(pos), decode(kind, bytes(payload), seq=int(seq))) for pos, kind, seq, payload in rows]

    def read(self, after: int = 0, limit: int = 1000) -> list[Stored]:
        return self._rows(
            "SELECT position, kind, seq, payload FROM events WHERE position > %s ORDER BY position LIMIT %s",
            (after, limit),
        )

    def read_all(self, batch: int = 500) -> Iterator[Stored]:
        after = 0
        while chunk := self.read(after, batch):
            yield from chunk
            after = chunk[-1].position

    def session_events(self, session_id: str, after: int = 0) -> list[Stored]:
        return self._rows(
            "SELECT position, kind, seq, payload FROM events WHERE session_id = %s AND position > %s ORDER BY position",
            (session_id, after),
        )

    def events_of_kind(self, kind: str, after: int = 0) -> list[Stored]:
        """Every recorded event of one kind, in log order (e.g. all saved terms)."""
        return self._rows(
            "SELECT position, kind, seq, payload FROM events WHERE kind = %s AND position > %s ORDER BY position",
            (kind, after),
        )
