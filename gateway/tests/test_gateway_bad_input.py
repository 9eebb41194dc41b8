"""Bad input gets a clear error, and the same socket and session keep working."""

from __future__ import annotations

import os
from typing import Any

import pytest

PCM = b"\x00\x01" * 2000
WEBM_HEADER = bytes.fromhex("1A45DFA3") + os.urandom(200)  # EBML magic, then whatever


def error_then_pong(ws: Any) -> dict[str, Any]:
    """The next error frame (events may come first); then proves the socket still answers."""
    while (err := ws.receive_json())["type"] == "event":
        pass
    assert err["type"] == "error", err
    assert err["message"]
    ws.send_json({"type": "ping"})
    while (pong := ws.receive_json())["type"] == "event":
        pass
    assert pong == {"type": "pong"}
    return err  # type: ignore[no-any-return]


def assert_chunk_lands(ws: Any, r: Any, h: Any, sid: str, data: bytes) -> None:
    ws.send_bytes(data)
    ws.send_json({"type": "ping"})
    h.receive_until(ws, lambda m: m["type"] == "pong")
    assert data in [c.data for c in h.stream_events(r, "audio.chunk", sid)]


def test_random_bytes_as_first_webm_chunk(client: Any, r: Any, h: Any) -> None:
    with client.websocket_connect(h.ws_path()) as ws:
        ready = h.start(ws, codec="webm-opus")
        sid = ready["session_id"]
        assert ready["codec"] == "webm-opus"
        ws.send_bytes(os.urandom(4000))
        err = error_then_pong(ws)
        assert err["code"] == "undecodable_audio" and err["chunk_index"] == 0
        assert_chunk_lands(ws, r, h, sid, WEBM_HEADER)
        assert_chunk_lands(ws, r, h, sid, os.urandom(3000))  # continuation of an open stream
    chunks = h.stream_events(r, "audio.chunk", sid)
    assert [c.chunk_index for c in chunks] == [1, 2]  # the refused frame used index 0
    assert all(c.codec == "webm-opus" and c.sample_rate == 48000 for c in chunks)


def test_webm_stream_continues_after_reconnect_but_restarts_on_codec_change(client: Any, r: Any, h: Any) -> None:
    with client.websocket_connect(h.ws_path()) as ws:
        sid = h.start(ws, codec="webm-opus")["session_id"]
        assert_chunk_lands(ws, r, h, sid, WEBM_HEADER)
    with client.websocket_connect(h.ws_path()) as ws:
        h.start(ws, session_id=sid)  # same codec: the stream goes on
        assert_chunk_lands(ws, r, h, sid, os.urandom(500))
    with client.websocket_connect(h.ws_path()) as ws:
        h.start(ws, session_id=sid, codec="pcm16")
        assert_chunk_lands(ws, r, h, sid, PCM)
    assert r.hget(f"session:{sid}:settings", "codec") == b"pcm16"
    with client.websocket_connect(h.ws_path()) as ws:
        h.start(ws, session_id=sid, codec="webm-opus")  # back to webm: a new stream, header first
        ws.send_bytes(os.urandom(500))
        assert error_then_pong(ws)["code"] == "undecodable_audio"
        assert_chunk_lands(ws, r, h, sid, WEBM_HEADER[:100])


def test_oversized_frame_is_dropped(client: Any, r: Any, h: Any) -> None:
    with client.websocket_connect(h.ws_path()) as ws:
        sid = h.start(ws)["session_id"]
        ws.send_bytes(b"\x00" * (10 * 1024 * 1024))
        err = error_then_pong(ws)
        assert err["code"] == "frame_too_large" and err["limit"] == 256 * 1024
        assert_chunk_lands(ws, r, h, sid, PCM)
    assert [len(c.data) for c in h.stream_events(r, "audio.chunk", sid)] == [len(PCM)]


def test_odd_length_pcm_and_empty_frames(client: Any, r: Any, h: Any) -> None:
    with client.websocket_connect(h.ws_path()) as ws:
        sid = h.start(ws)["session_id"]
        ws.send_bytes(b"\x00" * 333)
        assert error_then_pong(ws)["code"] == "bad_pcm_frame"
        ws.send_bytes(b"")
        assert error_then_pong(ws)["code"] == "empty_frame"
        assert_chunk_lands(ws, r, h, sid, PCM)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "bad_json"),
        ("[1, 2, 3]", "bad_json"),
        ('"session.start"', "bad_json"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"kind": "ping"}', "unknown_type"),
        ('{"type": "settings", "direction": "fr-de"}', "bad_value"),
        ('{"type": "settings"}', "bad_value"),
        ('{"type": "settings", "mode": 3}', "bad_value"),
        ('{"type": "save", "kind": "idiom"}', "bad_value"),
        ('{"type": "save", "kind": "poem", "text": "x"}', "bad_value"),
        ('{"type": "save", "kind": "word", "text": 5}', "bad_value"),
        ('{"type": "session.start"}', "already_started"),
    ],
)
def test_bad_text_frames_after_start(client: Any, r: Any, h: Any, frame: str, code: str) -> None:
    with client.websocket_connect(h.ws_path()) as ws:
        sid = h.start(ws)["session_id"]
        h.events_until(ws, "session.started")
        ws.send_text(frame)
        assert error_then_pong(ws)["code"] == code
        assert_chunk_lands(ws, r, h, sid, PCM)


def test_oversized_text_frame(client: Any, r: Any, h: Any) -> None:
    with client.websocket_connect(h.ws_path()) as ws:
        sid = h.start(ws)["session_id"]
        ws.send_text('{"type": "ping", "pad": "' + "x" * 300_000 + '"}')
        assert error_then_pong(ws)["code"] == "frame_too_large"
        assert_chunk_lands(ws, r, h, sid, PCM)


@pytest.mark.parametrize(
    ("start", "code"),
    [
        ({"codec": "mp3"}, "unsupported_codec"),
        ({"codec": 7}, "bad_value"),
        ({"codec": "pcm16", "sample_rate": 44100}, "unsupported_sample_rate"),
        ({"sample_rate": "fast"}, "bad_value"),
        ({"direction": "es-fr"}, "bad_value"),
        ({"mode": "lecture"}, "bad_value"),
        ({"session_id": "../../etc"}, "bad_value"),
        ({"session_id": "abc", "last_event_id": "yesterday"}, "bad_value"),
        ({"next_chunk_index": -1}, "bad_value"),
        ({"next_chunk_index": True}, "bad_value"),
    ],
)
def test_bad_session_start_leaves_the_socket_waiting_for_a_good_one(
    client: Any, r: Any, h: Any, start: dict[str, Any], code: str
) -> None:
    with client.websocket_connect(h.ws_path()) as ws:
        ws.send_json({"type": "session.start", **start})
        assert error_then_pong(ws)["code"] == code
        sid = h.start(ws)["session_id"]
        assert_chunk_lands(ws, r, h, sid, PCM)


def test_frames_before_session_start(client: Any, r: Any, h: Any) -> None:
    with client.websocket_connect(h.ws_path()) as ws:
        ws.send_bytes(PCM)
        assert error_then_pong(ws)["code"] == "no_session"
        ws.send_json({"type": "settings", "mode": "classroom"})
        assert error_then_pong(ws)["code"] == "no_session"
        ws.send_json({"type": "session.end"})
        assert error_then_pong(ws)["code"] == "no_session"
        sid = h.start(ws)["session_id"]
        assert_chunk_lands(ws, r, h, sid, PCM)
    assert [c.chunk_index for c in h.stream_events(r, "audio.chunk", sid)] == [0]


def test_garbage_storm_then_normal_session(client: Any, r: Any, h: Any) -> None:
    with client.websocket_connect(h.ws_path()) as ws:
        sid = h.start(ws)["session_id"]
        for i in range(30):
            ws.send_bytes(os.urandom(2 * i + 1))
            ws.send_text(os.urandom(20).hex()[: i + 1])
        codes: list[str] = []
        while len(codes) < 60:
            m = ws.receive_json()
            if m["type"] == "error":
                codes.append(m["code"])
        assert set(codes) == {"bad_pcm_frame", "bad_json"}
        assert_chunk_lands(ws, r, h, sid, PCM)
