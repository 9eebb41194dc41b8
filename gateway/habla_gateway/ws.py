"""The ``/ws`` endpoint: audio and control in, session events out (see PROTOCOL.md).

One :class:`SocketSession` per socket. Its receive loop handles frames one at a time
(so audio keeps its order); a second task follows the session's outbox and sends
events. A refused frame gets an ``error`` frame and nothing else changes; only an
unreachable Redis closes the socket (1011), so the client reconnects and resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from anyio import to_thread
from starlette import status
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from habla_common.bus import Delivered
from habla_common.errors import BusUnavailable

from . import protocol as p
from .auth import UNAUTHORIZED_REASON, WS_4401_UNAUTHORIZED, is_authorized
from .config import GatewayConfig
from .errors import ProtocolError
from .metrics import SOCKETS, delivered
from .outbox import Outbox
from .sessions import Connection, SessionRecord, SessionStore

__all__ = ["Capacity", "SocketSession", "ws_endpoint"]

log = logging.getLogger("habla.gateway.ws")

T = TypeVar("T")


class Capacity:
    """How many sockets hold a session right now (for the ``busy`` reply)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    def try_take(self) -> bool:
        if self.active >= self.limit:
            return False
        self.active += 1
        return True

    def release(self) -> None:
        self.active = max(0, self.active - 1)


class _Closed(Exception):
    """The client is gone; stop quietly."""


class SocketSession:
    def __init__(
        self, ws: WebSocket, config: GatewayConfig, store: SessionStore, outbox: Outbox, capacity: Capacity
    ) -> None:
        self.ws = ws
        self.config = config
        self.store = store
        self.outbox = outbox
        self.capacity = capacity
        self.conn = Connection()
        self.pump: asyncio.Task[None] | None = None
        self.send_lock = asyncio.Lock()
        self.holds_capacity = False
        self.following_since = 0.0  # when this socket began following its session's events

    # --- sending ---------------------------------------------------------------------

    async def send(self, frame: dict[str, Any]) -> None:
        text = json.dumps(frame, ensure_ascii=False, separators=(",", ":"))
        async with self.send_lock:
            if self.ws.application_state != WebSocketState.CONNECTED:
                raise _Closed
            try:
                await self.ws.send_text(text)
            except (WebSocketDisconnect, RuntimeError, OSError) as e:
                raise _Closed from e

    async def send_error(self, err: ProtocolError) -> None:
        log.info("session %s: refused a frame: %s", self.conn.session_id, err)
        await self.send(err.frame())

    async def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        return await to_thread.run_sync(fn, *args)

    # --- main loop -------------------------------------------------------------------

    async def run(self) -> None:
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                try:
                    if message.get("bytes") is not None:
                        await self.on_audio(message["bytes"])
                    elif message.get("text") is not None:
                        await self.on_text(message["text"])
                except ProtocolError as e:
                    await self.send_error(e)
                except (BusUnavailable, redis.ConnectionError, redis.TimeoutError) as e:
                    log.error("session %s: Redis unavailable: %s", self.conn.session_id, e)
                    await self.send(
                        {
                            "type": "error",
                            "code": p.UNAVAILABLE,
                            "message": "the event bus is unreachable; reconnect and resume shortly",
                        }
                    )
                    with contextlib.suppress(RuntimeError, OSError):
                        await self.ws.close(status.WS_1011_INTERNAL_ERROR, "event bus unavailable; resume later")
                    return
                except _Closed:
                    raise
                except Exception:  # a bug must not cost the user the session: report and go on
                    log.exception("session %s: unexpected error handling a frame", self.conn.session_id)
                    await self.send(
                        {
                            "type": "error",
                            "code": p.INTERNAL,
                            "message": "the gateway failed on this frame (see its log); the session goes on",
                        }
                    )
        except _Closed:
            return
        finally:
            await self.stop()

    async def stop(self) -> None:
        if self.pump is not None:
            self.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, _Closed, Exception):
                await self.pump
            self.pump = None
        if self.holds_capacity:
            self.capacity.release()
            self.holds_capacity = False

    # --- text frames -----------------------------------------------------------------

    async def on_text(self, text: str) -> None:
        msg = p.parse_text(text, self.config.max_frame_bytes)
        if isinstance(msg, p.Ping):
            await self.send({"type": "pong"})
        elif isinstance(msg, p.SessionStart):
            await self.on_start(msg)
        elif isinstance(msg, p.SettingsChange):
            self._require_live_session()
            await self.run_sync(self.store.change_settings, self.conn.session_id, msg)
            self.conn.apply(msg)
        elif isinstance(msg, p.SaveTerm):
            if not self.conn.started:
                raise ProtocolError(p.NO_SESSION, "send session.start first")
            await self.run_sync(self.store.save_term, self.conn.session_id, msg)
        elif isinstance(msg, p.RenameSpeaker):  # allowed after session.end too: naming is for the record
            if not self.conn.started:
                raise ProtocolError(p.NO_SESSION, "send session.start first")
            await self.run_sync(self.store.rename_speaker, self.conn.session_id, msg)
        elif isinstance(msg, p.SessionEnd):
            if not self.conn.started:
                raise ProtocolError(p.NO_SESSION, "send session.start first")
            if self.conn.ended:
                return  # already ended: the events exist, nothing to do
            index = self.conn.next_chunk
            await self.run_sync(self.store.end, self.conn, index, msg.reason)
            self.conn.next_chunk = index + 1
            self.conn.ended = True

    def _require_live_session(self) -> None:
        if not self.conn.started:
            raise ProtocolError(p.NO_SESSION, "send session.start first")
        if self.conn.ended:
            raise ProtocolError(p.SESSION_ENDED, "this session has ended; start a new one")

    async def on_start(self, msg: p.SessionStart) -> None:
        if self.conn.started:
            raise ProtocolError(p.ALREADY_STARTED, f"this socket already carries session {self.conn.session_id}")
        if not self.holds_capacity:
            if not self.capacity.try_take():
                await self.send(
                    {
                        "type": "busy",
                        "retry_after": self.config.busy_retry_after_s,
                        "message": f"the gateway serves {self.capacity.limit} sessions at most; retry later",
                    }
                )
                return
            self.holds_capacity = True
        record = await self.run_sync(self.store.load, msg.session_id) if msg.session_id else None
        codec = msg.codec or (record.codec if record else "pcm16")
        c = Connection(codec=codec, sample_rate=p.resolve_sample_rate(codec, msg.sample_rate))  # may refuse
        gap = False
        if record is None:
            c.direction = msg.direction or "es-en"
            c.mode = msg.mode or "conversation"
            c.speak = msg.speak or "auto"
            c.topic = msg.topic or ""
            c.session_id = await self.run_sync(self.store.create, c, msg.title, msg.source)
        else:
            gap = await self._resume(c, record, msg)
        self.conn = c
        log.info(
            "session %s %s (codec %s, next chunk %d)",
            c.session_id,
            "resumed" if record else "started",
            c.codec,
            c.next_chunk,
        )
        await self.send(
            {
                "type": "ready",
                "session_id": c.session_id,
                "resumed": record is not None,
                "next_chunk_index": c.next_chunk,
                "direction": c.direction,
                "mode": c.mode,
                "speak": c.speak,
                "topic": c.topic,
                "codec": c.codec,
                "sample_rate": c.sample_rate,
                "ended": c.ended,
                "max_frame_bytes": self.config.max_frame_bytes,
            }
        )
        if gap:
            await self.send(
                {
                    "type": "error",
                    "code": p.RESUME_GAP,
                    "message": "events after last_event_id are no longer kept; "
                    "continuing from the oldest one still available",
                }
            )
        if record is not None and not c.ended:
            await self._apply_start_settings(msg)
        assert c.session_id is not None
        self.pump = asyncio.create_task(self._follow(c.session_id, c.cursor))

    async def _resume(self, c: Connection, record: SessionRecord, msg: p.SessionStart) -> bool:
        """Fill ``c`` from a known session; returns whether events after last_event_id were lost."""
        c.session_id, c.direction, c.mode = record.session_id, record.direction, record.mode
        c.speak, c.topic = record.speak, record.topic
        c.ended, c.webm_open = record.ended, record.webm_open
        c.next_chunk = record.next_chunk if msg.next_chunk_index is None else msg.next_chunk_index
        if c.codec != record.codec:  # a WebM stream must start over with its header
            await self.run_sync(self.store.change_codec, record.session_id, c.codec)
            c.webm_open = False
        if not msg.last_event_id:
            return False
        c.cursor, gap = await self.outbox.resume_from(record.session_id, msg.last_event_id)
        return gap

    async def _apply_start_settings(self, msg: p.SessionStart) -> None:
        """A resuming phone's settings win over the stored ones (published as a change)."""
        c = self.conn
        change = p.SettingsChange(
            direction=msg.direction if msg.direction not in (None, c.direction) else None,
            mode=msg.mode if msg.mode not in (None, c.mode) else None,
            speak=msg.speak if msg.speak not in (None, c.speak) else None,
            topic=msg.topic if msg.topic not in (None, c.topic) else None,
        )
        if change == p.SettingsChange():
            return
        await self.run_sync(self.store.change_settings, c.session_id, change)
        c.apply(change)

    async def _follow(self, session_id: str, cursor: str) -> None:
        self.following_since = time.time()

        async def deliver(d: Delivered) -> None:
            await self.send({"type": "event", "id": d.entry_id, "kind": d.event.KIND, "data": d.event.client_view()})
            self.conn.cursor = d.entry_id
            delivered(d.event, self.following_since)

        async def trouble(message: str) -> None:
            await self.send({"type": "error", "code": p.UNAVAILABLE, "message": message})

        try:
            await self.outbox.follow(session_id, cursor, deliver, trouble)
        except _Closed:
            return

    # --- binary frames ---------------------------------------------------------------

    async def on_audio(self, data: bytes) -> None:
        self._require_live_session()
        c = self.conn
        assert c.session_id is not None
        index = c.next_chunk
        try:
            starts_stream = p.check_audio(data, c.codec, max_bytes=self.config.max_frame_bytes, stream_open=c.webm_open)
        except ProtocolError as e:
            c.next_chunk = index + 1
            await self.run_sync(self.store.skip_chunk, c.session_id, index)
            e.extra["chunk_index"] = index
            raise
        if starts_stream:
            c.webm_open = True
        await self.run_sync(self.store.accept_chunk, c, index, data)
        c.next_chunk = index + 1


async def ws_endpoint(websocket: WebSocket) -> None:
    state = websocket.state
    config: GatewayConfig = state.config
    await websocket.accept()
    if not is_authorized(websocket, config.token):
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            frame = {"type": "error", "code": p.UNAUTHORIZED, "message": UNAUTHORIZED_REASON}
            await websocket.send_text(json.dumps(frame))
            await websocket.close(WS_4401_UNAUTHORIZED, UNAUTHORIZED_REASON)
        return
    SOCKETS.inc()
    try:
        await SocketSession(websocket, config, state.store, state.outbox, state.capacity).run()
    finally:
        SOCKETS.dec()
