"""Session state: the per-connection object and the gateway's Redis-held session record.

A socket's state lives in a :class:`Connection` (never on the app). What must
outlive a socket, so a reconnecting phone carries on, is kept in Redis next to the
bus's own session keys:

* ``session:<id>:settings`` (the bus's hash: direction, mode, codec): its presence
  is what makes a session id *known*;
* ``session:<id>:gateway``: ``next_chunk`` (index the next audio frame gets),
  ``webm_open`` (a WebM stream's header has been received), ``ended``.

:class:`SessionStore` is synchronous (it shares the bus's Redis client); the socket
handler calls it through a worker thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import redis

from habla_common.bus import SESSION_TTL_S, RedisBus
from habla_common.errors import BusUnavailable
from habla_contracts import (
    AudioChunkReceived,
    Event,
    SessionEnded,
    SessionSettingsChanged,
    SessionStarted,
    SpeakerRenamed,
    TermSaved,
    VoiceprintDeleted,
    derived_id,
    new_id,
)

from .protocol import RenameSpeaker, SaveTerm, SettingsChange

__all__ = ["Connection", "SessionRecord", "SessionStore", "chunk_event_id"]

T = TypeVar("T")


def chunk_event_id(session_id: str, chunk_index: int) -> str:
    """Audio chunk ids derive from their index, so a resent chunk is a duplicate."""
    return derived_id(session_id, "chunk", chunk_index)


@dataclass
class Connection:
    """Everything one socket knows. ``session_id`` is None until ``session.start``."""

    session_id: str | None = None
    direction: str = "es-en"
    mode: str = "conversation"
    speak: str = "auto"
    topic: str = ""
    codec: str = "pcm16"
    sample_rate: int = 16000
    next_chunk: int = 0
    webm_open: bool = False
    ended: bool = False
    cursor: str = "0-0"  # outbox entry id of the last event sent to this socket

    @property
    def started(self) -> bool:
        return self.session_id is not None

    def apply(self, change: SettingsChange) -> None:
        """Take the settings ``change`` gives (None: unchanged)."""
        self.direction = change.direction or self.direction
        self.mode = change.mode or self.mode
        self.speak = change.speak or self.speak
        self.topic = self.topic if change.topic is None else change.topic


@dataclass(frozen=True)
class SessionRecord:
    """A known session as Redis remembers it."""

    session_id: str
    direction: str
    mode: str
    codec: str
    next_chunk: int
    webm_open: bool
    ended: bool
    speak: str = "auto"
    topic: str = ""
    turn_base: int = 0  # the session's utterances before its next speech-API turn


def _gw_key(session_id: str) -> str:
    return f"session:{session_id}:gateway"


# The bus numbers a session's events with this counter (habla_common.bus); it expires a
# week after the session's last event. Publishing to an older session (a REST rename)
# first lifts it past what the log already holds, or the new fact would reuse a recorded
# (session_id, seq) and the recorder could never store it.
class SessionStore:
    def __init__(self, bus: RedisBus) -> None:
        self.bus = bus
        self.r = bus.r

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as e:
            raise BusUnavailable(f"cannot {what}: {e}") from e

    def publish(self, event: Event) -> int | None:
        return self._call(f"publish {event.KIND}", self.bus.publish, event)

    def load(self, session_id: str) -> SessionRecord | None:
        """The session if Redis knows it (it has settings), else None."""
        settings = self._call("read session settings", self.bus.session_settings, session_id)
        if not settings:
            return None
        raw: Any = self._call("read session state", self.r.hgetall, _gw_key(session_id))
        gw = {k.decode(): v.decode() for k, v in raw.items()}
        return SessionRecord(
            session_id=session_id,
            direction=settings.get("direction", "es-en"),
            mode=settings.get("mode", "conversation"),
            codec=settings.get("codec", "pcm16"),
            next_chunk=int(gw.get("next_chunk", "0")),
            webm_open=gw.get("webm_open") == "1",
            ended=gw.get("ended") == "1",
            speak=settings.get("speak", "auto"),
            topic=settings.get("topic", ""),
            turn_base=int(gw.get("turn_base", "0")),
        )

    def _save(self, session_id: str, **fields: str | int) -> None:
        def write() -> None:
            pipe = self.r.pipeline(transaction=False)
            pipe.hset(_gw_key(session_id), mapping=cast(Any, fields))
            pipe.expire(_gw_key(session_id), SESSION_TTL_S)
            pipe.execute()

        self._call("save session state", write)

    def create(self, conn: Connection, title: str, source: str) -> str:
        """A new session: settings first (services read them), then SessionStarted."""
        session_id = new_id()
        self._call(
            "save session settings",
            self.bus.set_session_settings,
            session_id,
            direction=conn.direction,
            mode=conn.mode,
            codec=conn.codec,
            speak=conn.speak,
            topic=conn.topic,
        )
        self._save(session_id, next_chunk=0, webm_open=0, ended=0)
        self.publish(
            SessionStarted(
                session_id=session_id,
                event_id=derived_id(session_id, "started"),
                direction=conn.direction,
                mode=conn.mode,
                codec=conn.codec,
                source=source,
                title=title,
                speak=conn.speak,
                topic=conn.topic,
            )
        )
        return session_id

    def change_settings(self, session_id: str, change: SettingsChange) -> None:
        values = {k: v for k, v in vars(change).items() if v is not None}
        if not values:
            return
        self._call("save session settings", self.bus.set_session_settings, session_id, **values)
        self.publish(SessionSettingsChanged(session_id=session_id, **values))

    def save_term(self, session_id: str, term: SaveTerm, *, recorded_seq: int = 0) -> TermSaved:
        """Publish what the user saved; its id derives from what it is and where it was heard,
        so pressing Save twice is one save, and the same words saved from another turn are
        another context."""
        event = TermSaved(
            session_id=session_id,
            event_id=derived_id("term.saved", session_id, term.term_kind, term.text.lower(), term.utterance_id),
            term_id=derived_id("term", term.term_kind, term.text.lower()),
            term_kind=term.term_kind,
            text=term.text,
            meaning=term.meaning,
            literal=term.literal,
            example=term.example,
            utterance_id=term.utterance_id,
            language=term.language,
        )
        self.publish_after(event, recorded_seq)
        return event

    def rename_speaker(self, session_id: str, msg: RenameSpeaker, *, recorded_seq: int = 0) -> SpeakerRenamed:
        """Publish the user's name for a speaker. ``recorded_seq``: the highest seq the log
        holds for the session (from Postgres), for sessions the bus may have forgotten."""
        event = SpeakerRenamed(
            session_id=session_id,
            speaker=msg.speaker,
            name=msg.name,
            remember=msg.remember,
            is_user=msg.is_user,
            source="user",
        )
        self.publish_after(event, recorded_seq)
        return event

    def delete_voiceprint(self, session_id: str, voiceprint_id: str, saved_at: str, *, recorded_seq: int = 0) -> str:
        """Publish the deletion of a stored voice (under the session it came from, so it
        follows its save on the same shard); returns the event id. Deleting one save twice
        is one deletion."""
        event = VoiceprintDeleted.of_save(session_id, voiceprint_id, saved_at)
        self.publish_after(event, recorded_seq)
        return event.event_id

    def publish_after(self, event: Event, recorded_seq: int) -> None:
        """Publish ``event`` with a seq above ``recorded_seq`` (the highest its session has in
        the log), for sessions such as ``vocab`` whose counter the bus may have forgotten."""
        if recorded_seq > 0:
            self.ensure_seq_after(event.session_id, recorded_seq)
        self.publish(event)

    def ensure_seq_after(self, session_id: str, seq: int) -> None:
        """The session's next event gets a seq above ``seq`` even if its counter expired."""
        self._call("lift the session's sequence", self.bus.ensure_seq_after, session_id, seq)

    def change_codec(self, session_id: str, codec: str) -> None:
        """A resumed session switched codec: a WebM stream must start over with its header."""
        self._call("save session settings", self.bus.set_session_settings, session_id, codec=codec)
        self._save(session_id, webm_open=0)

    def _publish_chunk(self, conn: Connection, index: int, **fields: Any) -> str:
        """Publish the session's chunk ``index`` (audio ``data``, or a ``flush`` / ``final`` marker)."""
        assert conn.session_id is not None
        self.publish(
            AudioChunkReceived(
                session_id=conn.session_id,
                event_id=chunk_event_id(conn.session_id, index),
                chunk_index=index,
                codec=conn.codec,
                sample_rate=conn.sample_rate,
                received_at=time.time(),
                **fields,
            )
        )
        return conn.session_id

    def accept_chunk(self, conn: Connection, index: int, data: bytes, *, live: bool = True) -> None:
        """Publish one audio frame (index ``index``) and remember where numbering stands.
        ``live=False``: part of a recording sent whole (no live captions are cut from it)."""
        sid = self._publish_chunk(conn, index, data=data, live=live)
        self._save(sid, next_chunk=index + 1, webm_open=int(conn.webm_open))

    def flush(self, conn: Connection, index: int) -> None:
        """The end of a turn (chunk ``index``, no audio): ingest ends the utterance in
        progress and reports the count (``audio.flushed``); the session goes on."""
        sid = self._publish_chunk(conn, index, flush=True)
        self._save(sid, next_chunk=index + 1)

    def set_turn_base(self, session_id: str, utterances: int) -> None:
        """The session's utterance count at the end of a speech-API turn (the next turn's first index)."""
        self._save(session_id, turn_base=utterances)

    def skip_chunk(self, session_id: str, index: int) -> None:
        """A refused frame still uses its index (client and server keep counting alike)."""
        self._save(session_id, next_chunk=index + 1)

    def end(self, conn: Connection, index: int, reason: str) -> None:
        """The final (empty) audio chunk, then SessionEnded; both idempotent by id."""
        sid = self._publish_chunk(conn, index, final=True)
        self._save(sid, next_chunk=index + 1, ended=1)
        self.publish(SessionEnded(session_id=sid, event_id=derived_id(sid, "ended"), reason=reason))
