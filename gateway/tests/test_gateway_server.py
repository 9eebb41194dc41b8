"""The gateway under a real uvicorn server (as ``python -m habla_gateway`` runs it)."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from habla_common.errors import ConfigError
from habla_gateway.config import GatewayConfig
from habla_gateway.main import server_config


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def server(r: Any, redis_url: str, database_url: str, h: Any) -> Iterator[tuple[str, _Capture]]:
    cfg = server_config(h.make_config(host="127.0.0.1", port=0), redis_url, database_url)
    capture = _Capture()
    logging.getLogger("uvicorn.error").addHandler(capture)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    srv = uvicorn.Server(cfg)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    h.wait_for(lambda: srv.started, timeout=10)
    try:
        yield f"ws://127.0.0.1:{sock.getsockname()[1]}/ws", capture
    finally:
        srv.should_exit = True
        thread.join(10)
        sock.close()
        logging.getLogger("uvicorn.error").removeHandler(capture)
        assert not thread.is_alive()


def recv_type(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        msg = json.loads(ws.recv(timeout=10))
        if msg["type"] == kind:
            return msg  # type: ignore[no-any-return]


def test_transport_limits_are_explicit(redis_url: str, database_url: str, h: Any) -> None:
    cfg = server_config(h.make_config(), redis_url, database_url)
    assert cfg.ws_max_size == 16 * 1024 * 1024 and cfg.ws_ping_interval == 20.0
    assert h.make_config().max_frame_bytes == 256 * 1024


def test_token_is_required_to_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HABLA_TOKEN", raising=False)
    monkeypatch.delenv("GATEWAY_HABLA_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="HABLA_TOKEN"):
        GatewayConfig.from_env()
    monkeypatch.setenv("HABLA_TOKEN", "t0k")
    monkeypatch.setenv("GATEWAY_PORT", "8123")
    cfg = GatewayConfig.from_env()
    assert cfg.token == "t0k" and cfg.port == 8123 and "t0k" not in repr(cfg)


def test_real_server_frames_and_limits(server: tuple[str, _Capture], r: Any, h: Any) -> None:
    url, capture = server
    with connect(f"{url}?token={h.TOKEN}", max_size=2**24) as ws:
        ws.send(json.dumps({"type": "session.start", "codec": "pcm16"}))
        ready = recv_type(ws, "ready")
        sid = ready["session_id"]
        ws.send(b"\x00" * (300 * 1024))  # over the app limit, under the transport limit
        err = recv_type(ws, "error")
        assert err["code"] == "frame_too_large"
        ws.send(b"\x01\x00" * 4000)
        ws.send(json.dumps({"type": "ping"}))
        recv_type(ws, "pong")
        assert [c.chunk_index for c in h.stream_events(r, "audio.chunk", sid)] == [1]
        ws.send(b"\x00" * (17 * 1024 * 1024))  # over ws_max_size: the transport closes with 1009
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    with connect(f"{url}?token={h.TOKEN}") as ws:  # the session resumes on a new socket
        ws.send(json.dumps({"type": "session.start", "session_id": sid}))
        ready = recv_type(ws, "ready")
        assert ready["resumed"] is True and ready["next_chunk_index"] == 2
    logged = "\n".join(capture.lines)
    assert "WebSocket /ws?token=***" in logged and h.TOKEN not in logged


def test_real_server_rejects_a_wrong_token(server: tuple[str, _Capture]) -> None:
    url, _ = server
    with connect(f"{url}?token=wrong") as ws:
        assert json.loads(ws.recv(timeout=10))["code"] == "unauthorized"
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    assert "unauthorized" in closed.value.rcvd.reason
