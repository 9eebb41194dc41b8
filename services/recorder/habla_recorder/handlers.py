"""Append a fact to the log and update the read models in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from habla_common.eventlog import EventStore
from habla_contracts import Event

from .projections import apply

__all__ = ["Recorder"]


class Recorder:
    def __init__(self, conn: psycopg.Connection, store: EventStore) -> None:
        self.conn = conn
        self.store = store
        self.appended = 0

    def handle(self, event: Event, _publish: Callable[[Event], Any] | None = None) -> None:
        if not type(event).FACT:
            return
        try:
            with self.conn.transaction():
                if self.store.append(self.conn, event) is not None:
                    apply(self.conn, event)
                    self.appended += 1
        except psycopg.OperationalError:
            self.conn = psycopg.connect(self.conn.info.dsn, autocommit=True)  # reconnect; the message is retried
            raise
