"""Speech to speech, compatible with PARLE's two protocols (see PROTOCOL.md, "Speech API").

* ``POST /api/stream-audio``: a multipart form with one audio file (any container FFmpeg
  reads) and optional fields ``direction``, ``mode`` (``practice`` for the conversation
  partner), ``speak``, ``topic``, ``session_id`` (continue that session: a conversation over
  several requests) and ``keep`` (``1``: leave the session open for the next request).
  The answer is Server-Sent Events: ``status``, ``transcript``, ``response``, ``audio``
  (base64 WAV, indexed), ``complete``; ``error`` if the turn fails midway.
* ``/ws/stream``: a WebSocket. Each binary message is one recording; the answer is JSON
  text messages (``{"type": "status" | "transcript" | "response" | "audio" | "complete" |
  "error", ...}``) and, after each ``audio`` message, the WAV as a binary message. A text
  message ``{"type": "config", ...}`` sets the same options. One session per socket, so a
  practice conversation keeps its context; it ends when the socket closes.

Both are thin: a recording becomes a turn of a session in the live pipeline
(:mod:`habla_gateway.turns`). Refusals before any work are plain HTTP errors (401, 400,
404, 409, 413, 415) or an ``error`` message on the socket, which stays open.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis
from anyio import to_thread
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from habla_common.audio import SAMPLE_RATE, AudioDecodeError, decode_audio
from habla_common.errors import BusUnavailable
from habla_contracts import outbox_key

from . import protocol as p
from .auth import UNAUTHORIZED_REASON, WS_4401_UNAUTHORIZED, is_authorized, requires_token
from .config import GatewayConfig
from .errors import ProtocolError
from .outbox import Outbox
from .rest import error_response
from .sessions import Connection, SessionStore
from .turns import Stage, TurnTimeout, run_turn

__all__ = ["stream_audio", "stream_ws"]

log = logging.getLogger("habla.gateway.speech")

_FORM_FIELDS = ("direction", "mode", "speak", "topic", "session_id", "keep", "title")


@dataclass(frozen=True)
class TurnRequest:
    """What a client asked for, validated."""

    settings: p.SettingsChange
    session_id: str | None = None
    keep: bool = False
    title: str = ""


class RequestError(Exception):
    """A request refused before any work: HTTP ``status``, error ``code``, ``message``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def parse_options(fields: dict[str, Any]) -> TurnRequest:
    """Form fields or a ``config`` message: the session's settings and how to treat it."""
    try:
        settings = p.parse_settings(fields)
    except ProtocolError as e:
        raise RequestError(400, e.code, str(e)) from e
    session_id = fields.get("session_id") or None
    if session_id is not None and not p.valid_session_id(session_id):
        raise RequestError(400, p.BAD_VALUE, "'session_id' must be a session id as returned in 'complete'")
    keep = fields.get("keep", False)
    if isinstance(keep, str):
        keep = keep.strip().lower() in ("1", "true", "yes", "on")
    title = fields.get("title") or ""
    return TurnRequest(settings, session_id, bool(keep), " ".join(str(title).split())[:200])


def decode_recording(data: bytes, config: GatewayConfig) -> np.ndarray:
    """The upload as 16 kHz mono PCM16, or a RequestError that says what is wrong with it."""
    if not data:
        raise RequestError(400, p.EMPTY_FRAME, "the audio file is empty")
    try:
        pcm = decode_audio(data)
    except AudioDecodeError as e:
        raise RequestError(415, p.UNDECODABLE_AUDIO, str(e)) from e
    seconds = len(pcm) / SAMPLE_RATE
    if seconds < 0.1:
        raise RequestError(400, p.UNDECODABLE_AUDIO, "the recording holds no audio (under 0.1 s)")
    if seconds > config.max_turn_s:
        raise RequestError(
            413,
            p.FRAME_TOO_LARGE,
            f"the recording is {seconds:.0f} s long; a turn takes at most {config.max_turn_s:.0f} s "
            "(GATEWAY_MAX_TURN_S); stream longer audio over /ws as a live session",
        )
    return pcm


class Turns:
    """Opens or continues the session a turn belongs to, and runs turns in it."""

    def __init__(self, config: GatewayConfig, store: SessionStore, outbox: Outbox) -> None:
        self.config, self.store, self.outbox = config, store, outbox

    async def session(self, req: TurnRequest, source_title: str) -> tuple[Connection, str, int]:
        """``(connection, outbox cursor, first utterance index)`` for the request's session."""
        s = req.settings
        if req.session_id is None:
            conn = Connection(
                direction=s.direction or "es-en",
                mode=s.mode or "conversation",
                speak=s.speak or "on",  # PARLE's clients always get audio back
                topic=s.topic or "",
            )
            conn.session_id = await to_thread.run_sync(self.store.create, conn, req.title or source_title, "api")
            return conn, "0-0", 0
        record = await to_thread.run_sync(self.store.load, req.session_id)
        if record is None:
            raise RequestError(404, "unknown_session", f"no open session {req.session_id!r} (it may have expired)")
        if record.ended:
            raise RequestError(409, p.SESSION_ENDED, f"session {req.session_id} has ended; start a new one")
        conn = Connection(
            session_id=record.session_id,
            direction=record.direction,
            mode=record.mode,
            speak=record.speak,
            topic=record.topic,
            codec="pcm16",
            next_chunk=record.next_chunk,
        )
        if record.codec != "pcm16":
            await to_thread.run_sync(self.store.change_codec, record.session_id, "pcm16")
        if s != p.SettingsChange():
            await to_thread.run_sync(self.store.change_settings, record.session_id, s)
            conn.apply(s)
        return conn, await self._last_entry(record.session_id), record.turn_base

    async def _last_entry(self, session_id: str) -> str:
        last: Any = await self.outbox.r.xrevrange(outbox_key(session_id), count=1)
        if not last:
            return "0-0"
        entry_id = last[0][0]
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    def stages(
        self, conn: Connection, pcm: np.ndarray, cursor: str, first: int, *, started: float, end: bool, decode_ms: int
    ) -> AsyncIterator[Stage]:
        return run_turn(
            self.store,
            self.outbox,
            conn,
            pcm,
            cursor=cursor,
            first_index=first,
            started=started,
            end=end,
            timeout_s=self.config.turn_timeout_s,
            decode_ms=decode_ms,
        )


def _sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()


def _turns(request: Request) -> Turns:
    state = request.state
    return Turns(state.config, state.store, state.outbox)


async def _form(request: Request, config: GatewayConfig) -> tuple[UploadFile, dict[str, str]]:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise RequestError(
            415, "unsupported_media_type", "send multipart/form-data with the recording as a file field (e.g. 'audio')"
        )
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > config.max_upload_bytes:
        raise RequestError(413, p.FRAME_TOO_LARGE, f"the upload is over {config.max_upload_bytes} bytes")
    try:
        form = await request.form(max_files=1, max_fields=len(_FORM_FIELDS) + 2)
    except Exception as e:
        raise RequestError(400, "bad_form", f"cannot read the form: {e}") from e
    files = [v for v in form.values() if isinstance(v, UploadFile)]
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    if not files:
        raise RequestError(400, "no_audio", "the form holds no file; send the recording as a file field ('audio')")
    unknown = sorted(set(fields) - set(_FORM_FIELDS))
    if unknown:
        raise RequestError(
            400, p.BAD_VALUE, f"unknown form field(s) {', '.join(unknown)}; known: {', '.join(_FORM_FIELDS)}"
        )
    return files[0], fields


@requires_token
async def stream_audio(request: Request) -> Response:
    """``POST /api/stream-audio``: one recording in, Server-Sent Events out."""
    config: GatewayConfig = request.state.config
    turns = _turns(request)
    try:
        upload, fields = await _form(request, config)
        req = parse_options(fields)
        data = await upload.read(config.max_upload_bytes + 1)
        await upload.close()
        if len(data) > config.max_upload_bytes:
            raise RequestError(413, p.FRAME_TOO_LARGE, f"the upload is over {config.max_upload_bytes} bytes")
        started = time.time()
        pcm = await to_thread.run_sync(decode_recording, data, config)
        decode_ms = int((time.time() - started) * 1000)
        conn, cursor, first = await turns.session(req, upload.filename or "")
    except RequestError as e:
        return error_response(e.status, e.code, e.message)
    except (BusUnavailable, redis.ConnectionError, redis.TimeoutError) as e:
        return error_response(503, p.UNAVAILABLE, f"the event bus is unreachable: {e}")
    end = not req.keep

    async def events() -> AsyncIterator[bytes]:
        try:
            async for stage in turns.stages(conn, pcm, cursor, first, started=started, end=end, decode_ms=decode_ms):
                data = dict(stage.data)
                if stage.name == "audio":
                    data = {"chunk": _b64(stage.audio), **data}
                yield _sse(stage.name, data)
        except TurnTimeout as e:
            yield _sse("error", {"code": "timeout", "message": str(e), "session_id": conn.session_id})
        except (BusUnavailable, redis.ConnectionError, redis.TimeoutError) as e:
            yield _sse("error", {"code": p.UNAVAILABLE, "message": f"the event bus is unreachable: {e}"})

    log.info("speech turn in session %s (%.1f s of audio)", conn.session_id, len(pcm) / SAMPLE_RATE)
    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- WebSocket -------------------------------------------------------------------------


class _SpeechSocket:
    """One ``/ws/stream`` socket: a session created at the first recording, ended at close."""

    def __init__(self, ws: WebSocket, turns: Turns) -> None:
        self.ws, self.turns = ws, turns
        self.request = TurnRequest(p.SettingsChange())
        self.conn: Connection | None = None

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send_text(json.dumps(frame, ensure_ascii=False, separators=(",", ":")))

    async def error(self, code: str, message: str) -> None:
        await self.send({"type": "error", "code": code, "message": message})

    async def run(self) -> None:
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("bytes") is not None:
                    await self.on_recording(message["bytes"])
                elif message.get("text") is not None:
                    await self.on_text(message["text"])
        except (WebSocketDisconnect, RuntimeError, OSError):
            return  # the client left (a send to a closed socket raises too)
        except (BusUnavailable, redis.ConnectionError, redis.TimeoutError) as e:
            log.error("speech socket: Redis unavailable: %s", e)
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                await self.error(p.UNAVAILABLE, "the event bus is unreachable; try again shortly")
                await self.ws.close(1011, "event bus unavailable")
            return
        finally:
            await self.close_session()

    async def on_text(self, text: str) -> None:
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            await self.error(p.BAD_JSON, f"text messages must be JSON objects: {e}")
            return
        if not isinstance(obj, dict) or obj.get("type") not in ("config", "ping"):
            await self.error(p.UNKNOWN_TYPE, "text messages are {'type': 'config', ...} or {'type': 'ping'}")
            return
        if obj["type"] == "ping":
            await self.send({"type": "pong"})
            return
        try:
            req = parse_options({k: v for k, v in obj.items() if k != "type"})
        except RequestError as e:
            await self.error(e.code, e.message)
            return
        self.request = req  # applies from the next recording
        await self.send({"type": "config", "ok": True})

    async def on_recording(self, data: bytes) -> None:
        config = self.turns.config
        started = time.time()
        try:
            if len(data) > config.max_upload_bytes:
                raise RequestError(413, p.FRAME_TOO_LARGE, f"the recording is over {config.max_upload_bytes} bytes")
            pcm = await to_thread.run_sync(decode_recording, data, config)
            decode_ms = int((time.time() - started) * 1000)
            # the first recording opens the socket's session (or the one config named); later ones continue it
            session_id = self.conn.session_id if self.conn is not None else self.request.session_id
            req = TurnRequest(self.request.settings, session_id, True, self.request.title)
            self.conn, cursor, first = await self.turns.session(req, "ws/stream")
            self.request = TurnRequest(p.SettingsChange())  # settings given are applied now
        except RequestError as e:
            await self.error(e.code, e.message)
            return
        conn = self.conn
        try:
            async for stage in self.turns.stages(
                conn, pcm, cursor, first, started=started, end=False, decode_ms=decode_ms
            ):
                await self.send({"type": stage.name, **stage.data})
                if stage.name == "audio" and stage.audio:
                    await self.ws.send_bytes(stage.audio)
        except TurnTimeout as e:
            await self.error("timeout", str(e))

    async def close_session(self) -> None:
        conn = self.conn
        if conn is None or conn.ended:
            return
        try:
            await to_thread.run_sync(self.turns.store.end, conn, conn.next_chunk, "closed")
            conn.ended = True
        except (BusUnavailable, redis.RedisError) as e:
            log.warning("session %s: could not end it: %s", conn.session_id, e)


async def stream_ws(websocket: WebSocket) -> None:
    """``/ws/stream``: PARLE's WebSocket protocol (token as ``?token=``)."""
    await websocket.accept()
    state = websocket.state
    if not is_authorized(websocket, state.config.token):
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            frame = {"type": "error", "code": p.UNAUTHORIZED, "message": UNAUTHORIZED_REASON}
            await websocket.send_text(json.dumps(frame))
            await websocket.close(WS_4401_UNAUTHORIZED, UNAUTHORIZED_REASON)
        return
    await _SpeechSocket(websocket, Turns(state.config, state.store, state.outbox)).run()
