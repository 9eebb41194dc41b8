"""Append a fact to the log and update the read models in one transaction.

* ``speech.segmented`` with PCM: the audio is stored compressed (Ogg/Opus) in
  ``utterance_audio`` in the same transaction, and the fact is logged without its PCM, so
  the append-only log stays small. If the audio cannot be encoded the fact keeps its PCM.
* ``session.deleted`` (recorded in session "admin"): in the same transaction the deleted
  session's facts leave the log, its rows leave the read models and its audio goes; a
  tombstone stays, and a fact that still arrives for that session is not recorded. After
  the commit the session's Redis keys are dropped.
* Retention: audio heard more than ``AUDIO_RETENTION_DAYS`` ago is deleted when the
  service starts and then at most once an hour, checked as facts arrive.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

import psycopg

from habla_common.eventlog import EventStore
from habla_contracts import Event, SessionDeleted, UtteranceSegmented, VoiceprintDeleted, VoiceprintSaved

from .audio import CODEC, AudioCodecError, encode_opus
from .config import RecorderConfig
from .projections import apply, deletable

__all__ = ["DELETE_LOCK", "KEPT_KINDS", "Recorder"]

log = logging.getLogger("habla.recorder")

# Facts a session deletion keeps in the log: a voice the user chose to remember belongs to
# the person, not to the session it was heard in (`habla voices forget` deletes it), and
# its later deletion must still be recordable.
KEPT_KINDS = (VoiceprintSaved.KIND, VoiceprintDeleted.KIND)
# advisory lock class (with hashtext(session_id)): a deletion holds it exclusively, every
# fact of that session shares it, so no fact commits into a session being deleted.
DELETE_LOCK = 7262


class SessionForgetter(Protocol):
    """The part of the bus a deletion needs (habla_common.bus.RedisBus has it)."""

    def forget_session(self, session_id: str) -> int: ...


class Recorder:
    def __init__(
        self,
        conn: psycopg.Connection,
        store: EventStore,
        config: RecorderConfig | None = None,
        *,
        bus: SessionForgetter | None = None,
        prune_every_s: float = 3600.0,
    ) -> None:
        self.conn = conn
        self.store = store
        self.config = config or RecorderConfig()
        self.bus = bus
        self.prune_every_s = prune_every_s
        self.appended = 0
        self.refused = 0  # facts of deleted sessions, not recorded
        self._next_prune = time.monotonic() + prune_every_s

    def handle(self, event: Event, _publish: Callable[[Event], Any] | None = None) -> None:
        if not type(event).FACT:
            return
        try:
            if isinstance(event, SessionDeleted):
                self._delete_session(event)
            else:
                self._record(event)
        except psycopg.OperationalError:
            self._reconnect()  # the message is retried
            raise
        if time.monotonic() >= self._next_prune:
            try:
                self.prune_audio()
            except psycopg.Error as e:  # the fact is recorded; retention tries again in an hour
                log.warning("audio retention failed: %s", e)
                if isinstance(e, psycopg.OperationalError):
                    self._reconnect()

    def _reconnect(self) -> None:
        self.conn = psycopg.connect(self.conn.info.dsn, autocommit=True)

    # --- facts -------------------------------------------------------------------

    def _record(self, event: Event) -> None:
        logged: Event = event
        audio: tuple[UtteranceSegmented, bytes] | None = None  # (the fact as logged, its Opus)
        if isinstance(event, UtteranceSegmented) and event.pcm:
            data = self._compress(event)
            if data is not None:
                segment = replace(event, pcm=b"")
                logged, audio = segment, (segment, data)
        sid = event.session_id
        guarded = deletable(sid) and event.KIND not in KEPT_KINDS
        with self.conn.transaction():
            if guarded:
                self.conn.execute(f"SELECT pg_advisory_xact_lock_shared({DELETE_LOCK}, hashtext(%s))", (sid,))
                if self.conn.execute("SELECT 1 FROM deleted_sessions WHERE session_id = %s", (sid,)).fetchone():
                    log.warning("not recording %s %s: session %s was deleted", event.KIND, event.event_id, sid)
                    self.refused += 1
                    return
            if self.store.append(self.conn, logged) is None:
                return  # redelivered: recorded already, with its audio
            if audio is not None:
                self._store_audio(*audio)
            apply(self.conn, logged)
            self.appended += 1

    def _compress(self, e: UtteranceSegmented) -> bytes | None:
        try:
            return encode_opus(e.pcm, e.sample_rate, self.config.audio_bitrate_kbps)
        except AudioCodecError as err:
            log.error("keeping the PCM of utterance %s in the log: %s", e.utterance_id, err)
            return None

    def _store_audio(self, e: UtteranceSegmented, data: bytes) -> None:
        self.conn.execute(
            "INSERT INTO utterance_audio (utterance_id, session_id, start_ms, end_ms, sample_rate, codec, data, "
            "recorded_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (utterance_id) DO NOTHING",
            (
                e.utterance_id,
                e.session_id,
                e.start_ms,
                e.end_ms,
                e.sample_rate,
                CODEC,
                data,
                datetime.fromtimestamp(e.occurred_at, tz=UTC),
            ),
        )

    # --- deletion ----------------------------------------------------------------

    def _delete_session(self, e: SessionDeleted) -> None:
        sid = e.deleted_session
        if not deletable(sid):
            log.warning(
                "session.deleted %s names %r, which cannot be deleted: recorded, nothing deleted", e.event_id, sid
            )
        new, facts, audio = False, 0, 0
        with self.conn.transaction():
            if deletable(sid):
                self.conn.execute(f"SELECT pg_advisory_xact_lock({DELETE_LOCK}, hashtext(%s))", (sid,))
            # a redelivered deletion was done already (only Redis may still need forgetting)
            if self.store.append(self.conn, e) is not None:
                new = True
                if deletable(sid):
                    self.conn.execute("SELECT set_config('habla.allow_delete', 'on', true)")
                    facts = self.conn.execute(
                        "DELETE FROM events WHERE session_id = %s AND kind <> ALL(%s)", (sid, list(KEPT_KINDS))
                    ).rowcount
                    audio = self.conn.execute("DELETE FROM utterance_audio WHERE session_id = %s", (sid,)).rowcount
                apply(self.conn, e)
                self.appended += 1
        if not deletable(sid):
            return
        if new:
            log.info("deleted session %s: %d facts and the audio of %d utterances (%s)", sid, facts, audio, e.reason)
        if self.bus is not None:
            self.bus.forget_session(sid)

    # --- retention ---------------------------------------------------------------

    def prune_audio(self) -> int:
        """Delete audio heard more than AUDIO_RETENTION_DAYS ago (none when it is 0); returns rows deleted."""
        self._next_prune = time.monotonic() + self.prune_every_s
        days = self.config.audio_retention_days
        if days <= 0:
            return 0
        with self.conn.transaction():
            n = self.conn.execute(
                "DELETE FROM utterance_audio WHERE recorded_at < now() - make_interval(days => %s)", (days,)
            ).rowcount
        if n:
            log.info("deleted the audio of %d utterances heard over %d days ago (AUDIO_RETENTION_DAYS)", n, days)
        return n
