"""The speech API's own behaviour (real Redis and Postgres; TestClient): refusals, and how a
turn's events become PARLE's stages.

For the stage mapping, ``ScriptedPipeline`` stands in for the services (ingest, asr,
translate, tts), which would need the models: it waits for the turn's flush chunk on the
real bus and publishes the events they would. The real pipeline's round trips are in
tests/test_speech_api.py.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import wave
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import redis
from starlette.testclient import TestClient

from habla_common.bus import RedisBus
from habla_contracts import (
    AudioChunkReceived,
    AudioFlushed,
    Event,
    SpeechSynthesized,
    TranscriptFinal,
    TranslationFinal,
    TutorReplied,
)
from habla_gateway import create_app

TOKEN = "test-token-1234"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def wav_bytes(seconds: float, rate: int = 16000, tone: bool = True) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    pcm = (0.3 * np.sin(2 * np.pi * 220 * t) * 32767 if tone else np.zeros_like(t)).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


@pytest.fixture
def speech_client(r: redis.Redis, redis_url: str, database_url: str, h: Any) -> Iterator[TestClient]:
    app = create_app(h.make_config(max_turn_s=10.0, turn_timeout_s=20.0), redis_url, database_url)
    with TestClient(app) as c:
        yield c


def post(client: TestClient, audio: bytes | None, token: str | None = TOKEN, **fields: str) -> Any:
    files = {"audio": ("turn.wav", audio, "audio/wav")} if audio is not None else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/api/stream-audio", files=files, data=fields or None, headers=headers)


# --- refusals --------------------------------------------------------------------------


def test_refusals_before_any_work(speech_client: TestClient, r: redis.Redis) -> None:
    good = wav_bytes(1.0)
    for token in (None, "wrong"):
        assert post(speech_client, good, token=token).status_code == 401
    res = speech_client.post("/api/stream-audio", content=good, headers={**AUTH, "Content-Type": "audio/wav"})
    assert res.status_code == 415 and res.json()["error"] == "unsupported_media_type"
    res = speech_client.post("/api/stream-audio", data={"direction": "es-en"}, headers=AUTH)
    assert res.status_code == 415  # a form with no file is urlencoded, not multipart
    cases: list[tuple[dict[str, Any], int, str, str]] = [
        ({"audio": b"not audio at all" * 50}, 415, "undecodable_audio", "cannot decode"),
        ({"audio": b""}, 400, "empty_frame", "empty"),
        ({"audio": wav_bytes(0.02)}, 400, "undecodable_audio", "no audio"),
        ({"audio": wav_bytes(11.0)}, 413, "frame_too_large", "at most 10 s"),
        ({"audio": good, "direction": "es-fr"}, 400, "bad_value", "direction"),
        ({"audio": good, "mode": "karaoke"}, 400, "bad_value", "mode"),
        ({"audio": good, "speak": "loud"}, 400, "bad_value", "speak"),
        ({"audio": good, "voice": "x"}, 400, "bad_value", "unknown form field"),
        ({"audio": good, "session_id": "no such session"}, 400, "bad_value", "session_id"),
        ({"audio": good, "session_id": "nosuchsession"}, 404, "unknown_session", "no open session"),
    ]
    for fields, status, code, words in cases:
        audio = fields.pop("audio")
        res = post(speech_client, audio, **fields)
        assert res.status_code == status, (fields, res.text)
        assert res.json()["error"] == code and words in res.json()["message"], res.json()
    assert not [k for k in r.scan_iter("audio.chunk:*") if r.xlen(k)]  # nothing reached the pipeline


def test_ended_session_is_refused(speech_client: TestClient, h: Any) -> None:
    with speech_client.websocket_connect(h.ws_path()) as ws:
        sid = h.start(ws)["session_id"]
        ws.send_json({"type": "session.end"})
        h.events_until(ws, "session.ended")
    res = post(speech_client, wav_bytes(1.0), session_id=sid)
    assert res.status_code == 409 and res.json()["error"] == "session_ended"


def test_socket_refusals_keep_it_open(speech_client: TestClient) -> None:
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect) as closed, speech_client.websocket_connect("/ws/stream?token=bad") as ws:
        assert ws.receive_json()["code"] == "unauthorized"
        ws.receive_json()
    assert closed.value.code == 4401
    with speech_client.websocket_connect(f"/ws/stream?token={TOKEN}") as ws:
        ws.send_bytes(b"\x00\x01garbage" * 100)
        err = ws.receive_json()
        assert err["type"] == "error" and err["code"] == "undecodable_audio"
        ws.send_text("{not json")
        assert ws.receive_json()["code"] == "bad_json"
        ws.send_json({"type": "config", "mode": "karaoke"})
        assert ws.receive_json()["code"] == "bad_value"
        ws.send_json({"type": "dance"})
        assert ws.receive_json()["code"] == "unknown_type"
        ws.send_json({"type": "ping"})
        assert ws.receive_json() == {"type": "pong"}


# --- stages, with the services scripted ------------------------------------------------


class ScriptedPipeline:
    """A stand-in for ingest, asr, translate and tts (named a fake: they need models).

    Waits for a session's flush chunk on the real bus, then publishes what the services
    would for ``lines`` (one utterance each): audio.flushed, the finals, the responses and
    two spoken sentences per response, with the first utterance's audio published before
    the second utterance's final (as a fast tts and a slow asr would)."""

    def __init__(self, bus: RedisBus, lines: list[str], *, practice: bool = False, first: int = 0) -> None:
        self.bus, self.lines, self.practice, self.first = bus, lines, practice, first
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.error: BaseException | None = None

    def flush_chunk(self) -> AudioChunkReceived:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for key in self.bus.r.scan_iter("audio.chunk:*"):
                for _id, fields in self.bus.r.xrange(key):
                    from habla_common.bus import decode_entry

                    e = decode_entry(key.decode(), _id, fields).event
                    if isinstance(e, AudioChunkReceived) and e.flush:
                        return e
            time.sleep(0.05)
        raise AssertionError("no flush chunk")

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e

    def _run(self) -> None:
        flush = self.flush_chunk()
        sid = flush.session_id
        pub = self.bus.publish
        count = self.first + len(self.lines)
        pub(AudioFlushed(session_id=sid, chunk_index=flush.chunk_index, utterances=count, audio_ms=1000))
        spoken: list[Event] = []
        for i, line in enumerate(self.lines, start=self.first):
            final = TranscriptFinal(session_id=sid, utterance_id=f"u{i}", index=i, text=line, language="es")
            pub(final)
            response: Event
            if self.practice:
                response = TutorReplied(
                    session_id=sid, utterance_id=f"u{i}", index=i, said=line, reply=f"¿Y tú? {i}", level="A2"
                )
            else:
                response = TranslationFinal(
                    session_id=sid, utterance_id=f"u{i}", index=i, translation=f"Line {i}.", target_language="en"
                )
            if spoken:  # the previous response's audio overtakes this final
                self.say(spoken[-1], i - 1)
            pub(response)
            spoken.append(response)
        self.say(spoken[-1], count - 1)

    def say(self, response: Event, index: int) -> None:
        """Two spoken sentences of ``response`` (utterance ``index``), as the tts stage would."""
        for n in range(2):
            self.bus.publish(
                SpeechSynthesized(
                    session_id=response.session_id,
                    utterance_id=f"u{index}",
                    index=index,
                    spoken_id=response.event_id,
                    chunk=n,
                    last=n == 1,
                    text=f"sentence {n}",
                    sample_rate=16000,
                    audio=wav_bytes(0.2),
                    synth_ms=10,
                )
            )


def sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def test_stages_in_parle_order_with_audio_held_until_the_response(speech_client: TestClient, bus: RedisBus) -> None:
    pipeline = ScriptedPipeline(bus, ["Hola.", "¿Qué tal?"])
    pipeline.thread.start()
    res = post(speech_client, wav_bytes(1.0))
    pipeline.thread.join(5)
    assert pipeline.error is None
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/event-stream")
    events = sse(res.text)
    names = [n for n, _ in events]
    assert names == ["status", "transcript", "status", "response", "status", *["audio"] * 4, "complete"]
    data = dict(events)
    assert data["transcript"]["transcript"] == "Hola. ¿Qué tal?"
    assert data["response"]["response"] == "Line 0. Line 1." and data["response"]["kind"] == "translation"
    audio = [d for n, d in events if n == "audio"]
    assert [a["index"] for a in audio] == [0, 1, 2, 3]
    assert all(base64.b64decode(a["chunk"])[:4] == b"RIFF" for a in audio)
    timing = data["complete"]["timing"]
    assert set(timing) >= {"stt_ms", "llm_ms", "tts_ms", "first_audio_ms", "total_ms"} and timing["tts_ms"] == 40


def test_practice_turns_continue_one_session_over_the_socket(speech_client: TestClient, bus: RedisBus) -> None:
    with speech_client.websocket_connect(f"/ws/stream?token={TOKEN}") as ws:
        ws.send_json({"type": "config", "mode": "practice", "topic": "la comida"})
        assert ws.receive_json() == {"type": "config", "ok": True}
        sessions = set()
        for turn in range(2):
            pipeline = ScriptedPipeline(bus, [f"Frase {turn}."], practice=True, first=turn)
            pipeline.thread.start()
            ws.send_bytes(wav_bytes(1.0))
            frames: list[dict[str, Any]] = []
            binaries = 0
            while not frames or frames[-1]["type"] != "complete":
                message = ws.receive()
                if message.get("bytes") is not None:
                    binaries += 1
                    assert frames[-1]["type"] == "audio"  # each WAV follows its audio message
                else:
                    frames.append(json.loads(message["text"]))
            pipeline.thread.join(5)
            assert pipeline.error is None
            by = {f["type"]: f for f in frames}
            assert by["response"]["kind"] == "reply" and by["response"]["level"] == "A2"
            assert by["transcript"]["transcript"] == f"Frase {turn}." and binaries == 2
            sessions.add(by["complete"]["session_id"])
            bus.r.delete(*bus.r.keys("audio.chunk:*"))  # the next turn's flush is the only one
        assert len(sessions) == 1
