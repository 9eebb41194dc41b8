"""REST: an utterance's stored audio, and deleting a session for good (confirmed), against real
Redis and Postgres with the real recorder consuming the bus; real FLEURS speech."""

from __future__ import annotations

import io
import os
import wave
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import av
import pytest
import redis
from starlette.testclient import TestClient

from habla_common.bus import RedisBus
from habla_common.consumer import Consumer
from habla_common.eventlog import PostgresEventStore, connect_pg
from habla_contracts import (
    ADMIN_SESSION,
    Event,
    SessionStarted,
    SpeakerAssigned,
    SpeakerJoined,
    TranscriptFinal,
    TranslationFinal,
    UtteranceSegmented,
    derived_id,
    outbox_key,
)
from habla_contracts.streams import fact_kinds
from habla_gateway import create_app
from habla_recorder.handlers import Recorder
from habla_recorder.projections import SESSION_TABLES


def speech(name: str) -> bytes:
    env = os.environ.get("HABLA_EVAL_DIR")
    folder = (Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "eval") / "speech"
    if not folder.is_dir():
        pytest.skip(f"no evaluation audio at {folder} (set HABLA_EVAL_DIR)")
    with wave.open(str(folder / f"{name}.wav")) as w:
        return w.readframes(w.getnframes())


@pytest.fixture
def rurl(redis_url_for: Any) -> Iterator[str]:
    """This run's own Redis database (HABLA_TEST_REDIS_DB), emptied before and after."""
    url: str = redis_url_for(int(os.environ.get("HABLA_TEST_REDIS_DB", "14")))
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def rbus(rurl: str, h: Any) -> RedisBus:
    b = RedisBus(redis.Redis.from_url(rurl), h.PARTITIONS)
    b.ensure_topology()
    return b


@pytest.fixture
def gw(rurl: str, pg_url: str, h: Any) -> Iterator[TestClient]:
    with TestClient(create_app(h.make_config(), rurl, pg_url)) as c:
        yield c


@pytest.fixture
def auth(h: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {h.TOKEN}"}


class RecorderOnBus:
    """The recorder as `habla up` runs it: a consumer of every fact kind on the bus."""

    def __init__(self, bus: RedisBus, url: str) -> None:
        self.recorder = Recorder(connect_pg(url, autocommit=True), PostgresEventStore(url), bus=bus)
        self.consumer = Consumer(bus, "recorder", fact_kinds(), self.recorder.handle, name="recorder-test", block_ms=50)
        self.consumer.maintain_leases()

    def publish(self, bus: RedisBus, events: list[Event]) -> None:
        for e in events:
            bus.publish(e)
        self.drain()

    def drain(self) -> None:
        idle = 0
        while idle < 2:
            idle = idle + 1 if self.consumer.poll() == 0 else 0


@pytest.fixture
def recorder(rbus: RedisBus, pg_url: str) -> Iterator[RecorderOnBus]:
    rec = RecorderOnBus(rbus, pg_url)
    yield rec
    rec.consumer.release_all()


def a_session(sid: str, pcm: bytes) -> tuple[list[Event], str, str]:
    """One utterance split into two speaker turns; returns the facts and the turns' ids."""
    u0 = derived_id(sid, "utt", 0)
    t1 = derived_id(u0, "turn", 1)
    end = len(pcm) // 32
    half = end // 2
    turns = (
        {"utterance_id": u0, "part": 0, "start_ms": 1000, "end_ms": 1000 + half, "speaker": "S1"},
        {"utterance_id": t1, "part": 1, "start_ms": 1000 + half, "end_ms": 1000 + end, "speaker": "S2"},
    )
    facts: list[Event] = [
        SessionStarted(session_id=sid, event_id=derived_id(sid, "started"), title=f"clase {sid}"),
        UtteranceSegmented(session_id=sid, utterance_id=u0, index=0, start_ms=1000, end_ms=1000 + end, pcm=pcm),
        SpeakerJoined(session_id=sid, speaker="S1", number=1, label="Speaker 1"),
        SpeakerJoined(session_id=sid, speaker="S2", number=2, label="Speaker 2"),
        SpeakerAssigned(session_id=sid, utterance_id=u0, index=0, speaker="S1", turns=turns),
        TranscriptFinal(session_id=sid, utterance_id=u0, index=0, parts=2, speaker="S1", text="hola"),
        TranscriptFinal(
            session_id=sid, utterance_id=t1, index=0, part=1, parts=2, parent_id=u0, speaker="S2", text="¿qué tal?"
        ),
        TranslationFinal(session_id=sid, utterance_id=t1, index=0, translation="how are you?"),
    ]
    return facts, u0, t1


def decoded_seconds(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as container:
        return sum(f.samples / f.sample_rate for f in container.decode(audio=0))


def test_utterance_audio_route(gw: TestClient, rbus: RedisBus, recorder: RecorderOnBus, auth: dict[str, str]) -> None:
    pcm = speech("fleurs-es-009")
    facts, u0, t1 = a_session("c1", pcm)
    recorder.publish(rbus, facts)
    seconds = len(pcm) / 32000

    res = gw.get(f"/api/sessions/c1/utterances/{u0}/audio", headers=auth)
    assert res.status_code == 200, res.text
    assert res.headers["content-type"] == "audio/ogg"
    assert res.content[:4] == b"OggS" and len(res.content) < len(pcm) / 8
    assert decoded_seconds(res.content) == pytest.approx(seconds, abs=0.03)
    assert (res.headers["x-audio-start-ms"], res.headers["x-audio-end-ms"]) == ("1000", str(1000 + len(pcm) // 32))
    # a later turn gets its segmented utterance's audio, by token in the query too
    turn = gw.get(f"/api/sessions/c1/utterances/{t1}/audio?token={auth['Authorization'][7:]}")
    assert turn.status_code == 200 and turn.content == res.content

    session = gw.get("/api/sessions/c1", headers=auth).json()
    assert session["audio_ms"] == len(pcm) // 32
    assert gw.get("/api/sessions", headers=auth).json()["sessions"][0]["audio_ms"] == len(pcm) // 32

    for path, words in (
        ("/api/sessions/nope/utterances/x/audio", "no session 'nope'"),
        ("/api/sessions/c1/utterances/nope/audio", "has no utterance 'nope'"),
    ):
        missing = gw.get(path, headers=auth)
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"
        assert words in missing.json()["message"]

    assert gw.get(f"/api/sessions/c1/utterances/{u0}/audio").status_code == 401
    wrong = gw.get(f"/api/sessions/c1/utterances/{u0}/audio", headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "unauthorized"

    # gone by retention: the transcript stays, the audio answers 404 saying why
    recorder.recorder.config = replace(recorder.recorder.config, audio_retention_days=1)
    with connect_pg(recorder.recorder.conn.info.dsn) as conn:
        conn.execute("UPDATE utterance_audio SET recorded_at = now() - interval '2 days'")
    assert recorder.recorder.prune_audio() == 1
    gone = gw.get(f"/api/sessions/c1/utterances/{t1}/audio", headers=auth)
    assert gone.status_code == 404 and "AUDIO_RETENTION_DAYS" in gone.json()["message"]
    assert gw.get("/api/sessions/c1", headers=auth).json()["audio_ms"] == 0
    assert len(gw.get("/api/sessions/c1/transcript", headers=auth).json()["utterances"]) == 2


def test_deleting_a_session_needs_its_id_confirmed(
    gw: TestClient, rbus: RedisBus, recorder: RecorderOnBus, auth: dict[str, str], pg_url: str
) -> None:
    pcm = speech("fleurs-es-001")
    facts_a, a0, _ = a_session("A", pcm)
    facts_b, b0, _ = a_session("B", pcm)
    recorder.publish(rbus, facts_a + facts_b)
    rbus.set_session_settings("A", direction="es-en")
    rbus.set_session_settings("B", direction="es-en")
    b_before = gw.get("/api/sessions/B/transcript", headers=auth).json()
    b_audio = gw.get(f"/api/sessions/B/utterances/{b0}/audio", headers=auth).content

    for body in (None, b"not json", {"confirm": "B"}, {"confirm": ""}, {"yes": True}, ["A"]):
        kw: dict[str, Any] = {"content": body} if isinstance(body, bytes | None) else {"json": body}
        res = gw.request("DELETE", "/api/sessions/A", headers=auth, **kw)
        assert res.status_code == 400, (body, res.text)
        assert res.json()["error"] == "bad_request"
        assert '{"confirm": "A"}' in res.json()["message"]
    unknown = gw.request("DELETE", "/api/sessions/nope", headers=auth, json={"confirm": "nope"})
    assert unknown.status_code == 404 and "no session 'nope'" in unknown.json()["message"]
    assert gw.request("DELETE", "/api/sessions/A", json={"confirm": "A"}).status_code == 401
    assert gw.get("/api/sessions/A", headers=auth).status_code == 200  # nothing happened yet

    # an earlier deletion, then the admin session's counter expired in Redis while the log
    # holds its fact: the gateway lifts it, so the next deletion is recordable
    facts_c, _, _ = a_session("C", pcm[:64000])
    recorder.publish(rbus, facts_c)
    assert gw.request("DELETE", "/api/sessions/C", headers=auth, json={"confirm": "C"}).status_code == 202
    recorder.drain()
    rbus.r.delete(f"session:{ADMIN_SESSION}:seq")
    res = gw.request("DELETE", "/api/sessions/A", headers=auth, json={"confirm": "A"})
    assert res.status_code == 202, res.text
    assert res.json()["status"] == "accepted" and res.json()["session_id"] == "A"
    recorder.drain()

    with connect_pg(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM events WHERE session_id = 'A'").fetchone() == (0,)
        for table in (*SESSION_TABLES, "utterance_audio"):
            assert conn.execute(f"SELECT count(*) FROM {table} WHERE session_id = 'A'").fetchone() == (0,), table
        tomb = conn.execute("SELECT event_id::text FROM deleted_sessions WHERE session_id = 'A'").fetchone()
        admin = conn.execute("SELECT seq FROM events WHERE session_id = %s ORDER BY seq", (ADMIN_SESSION,)).fetchall()
    assert tomb == (res.json()["event_id"],)
    assert admin == [(1,), (2,)]
    assert not rbus.r.exists(outbox_key("A"), "session:A:seq", "session:A:settings")
    assert rbus.r.exists(outbox_key("B"), "session:B:seq", "session:B:settings") == 3

    gone = gw.get("/api/sessions/A", headers=auth)
    assert gone.status_code == 404 and "was deleted" in gone.json()["message"]
    assert gw.get(f"/api/sessions/A/utterances/{a0}/audio", headers=auth).status_code == 404
    again = gw.request("DELETE", "/api/sessions/A", headers=auth, json={"confirm": "A"})
    assert again.status_code == 404 and "was deleted" in again.json()["message"]
    assert [s["session_id"] for s in gw.get("/api/sessions", headers=auth).json()["sessions"]] == ["B"]
    assert gw.get("/api/sessions/B/transcript", headers=auth).json() == b_before
    assert gw.get(f"/api/sessions/B/utterances/{b0}/audio", headers=auth).content == b_audio

    # a late fact of A (still in a stream somewhere) does not bring it back
    recorder.publish(rbus, [TranscriptFinal(session_id="A", utterance_id="late", index=5, text="¿hola?")])
    assert recorder.recorder.refused == 1
    assert gw.get("/api/sessions/A", headers=auth).status_code == 404
