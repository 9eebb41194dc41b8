"""The /ws protocol against real Redis: sessions, audio, control, fan-out, resume."""

from __future__ import annotations

from typing import Any

from habla_contracts import AudioChunkReceived, SessionEnded, TranscriptFinal, TranscriptPartial, derived_id

PCM = b"\x01\x00" * 4000  # 250 ms of 16 kHz PCM16


def final(session_id: str, index: int, text: str) -> TranscriptFinal:
    return TranscriptFinal(
        session_id=session_id,
        utterance_id=derived_id(session_id, "utt", index),
        index=index,
        start_ms=index * 1000,
        end_ms=index * 1000 + 900,
        text=text,
        language="es",
    )


def test_start_replies_ready_and_announces_the_session(client: Any, r: Any, h: Any) -> None:
    with client.websocket_connect(h.ws_path()) as ws:
        ready = h.start(ws, direction="en-es", mode="classroom", title="Clase 1")
        assert ready["resumed"] is False and ready["next_chunk_index"] == 0
        assert ready["direction"] == "en-es" and ready["mode"] == "classroom" and ready["codec"] == "pcm16"
        sid = ready["session_id"]
        [ev] = h.events_until(ws, "session.started")
        assert ev["data"]["session_id"] == sid and ev["data"]["title"] == "Clase 1"
        assert ev["data"]["direction"] == "en-es" and ev["id"]
    settings = {k.decode(): v.decode() for k, v in r.hgetall(f"session:{sid}:settings").items()}
    assert settings == {"direction": "en-es", "mode": "classroom", "codec": "pcm16", "speak": "auto", "topic": ""}


def test_defaults_when_start_names_only_the_type(client: Any, h: Any) -> None:
    with client.websocket_connect(h.ws_path()) as ws:
        ws.send_json({"type": "session.start"})
        ready = ws.receive_json()
        assert ready["type"] == "ready"
        assert (ready["direction"], ready["mode"], ready["codec"], ready["sample_rate"]) == (
            "es-en",
            "conversation",
            "pcm16",
            16000,
        )


def test_pcm_chunks_land_in_the_audio_stream_in_order(client: Any, r: Any, h: Any) -> None:
    with client.websocket_connect(h.ws_path()) as ws:
        sid = h.start(ws)["session_id"]
        for i in range(3):
            ws.send_bytes(PCM[: 2 * (i + 1)] + PCM)
        ws.send_json({"type": "ping"})
        h.receive_until(ws, lambda m: m["type"] == "pong")
    chunks = h.stream_events(r, "audio.chunk", sid)
    assert [c.chunk_index for c in chunks] == [0, 1, 2]
    for i, c in enumerate(chunks):
        assert isinstance(c, AudioChunkReceived)
        assert c.data == PCM[: 2 * (i + 1)] + PCM and c.codec == "pcm16" and c.sample_rate == 16000
        assert c.event_id == derived_id(sid, "chunk", i) and c.received_at > 0 and not c.final


def test_settings_change_is_published_and_stored(client: Any, r: Any, h: Any) -> None:
    with client.websocket_connect(h.ws_path()) as ws:
        sid = h.start(ws)["session_id"]
        ws.send_json({"type": "settings", "direction": "auto"})
        ev = h.events_until(ws, "session.settings_changed")[-1]
        assert ev["data"]["direction"] == "auto" and ev["data"]["mode"] is None
        ws.send_json({"type": "settings", "mode": "classroom"})
        ev = h.events_until(ws, "session.settings_changed")[-1]
        assert ev["data"]["mode"] == "classroom"
    assert r.hget(f"session:{sid}:settings", "direction") == b"auto"
    assert r.hget(f"session:{sid}:settings", "mode") == b"classroom"


def test_saving_a_term_publishes_it_once(client: Any, r: Any, h: Any) -> None:
    save = {"type": "save", "kind": "idiom", "text": "estar  en la gloria", "meaning": "to be blissfully happy"}
    with client.websocket_connect(h.ws_path()) as ws:
        sid = h.start(ws)["session_id"]
        ws.send_json(save)
        ev = h.events_until(ws, "term.saved")[-1]
        assert ev["data"]["text"] == "estar en la gloria" and ev["data"]["term_kind"] == "idiom"
        assert ev["data"]["meaning"] == "to be blissfully happy" and ev["data"]["language"] == "es"
        ws.send_json(save)  # saving twice is one save
        ws.send_json({"type": "ping"})
        h.receive_until(ws, lambda m: m["type"] == "pong")
    assert len(h.stream_events(r, "term.saved", sid)) == 1


def test_session_end_publishes_final_chunk_and_ended(client: Any, r: Any, h: Any) -> None:
    with client.websocket_connect(h.ws_path()) as ws:
        sid = h.start(ws)["session_id"]
        ws.send_bytes(PCM)
        ws.send_json({"type": "session.end"})
        ended = h.events_until(ws, "session.ended")[-1]
        assert ended["data"]["reason"] == "client"
        ws.send_json({"type": "session.end"})  # idempotent: nothing new
        ws.send_bytes(PCM)
        err = ws.receive_json()
        assert err["type"] == "error" and err["code"] == "session_ended"
    chunks = h.stream_events(r, "audio.chunk", sid)
    assert [(c.chunk_index, c.final) for c in chunks] == [(0, False), (1, True)]
    assert chunks[1].data == b""
    assert len([e for e in h.stream_events(r, "session.ended", sid) if isinstance(e, SessionEnded)]) == 1


def test_events_reach_every_socket_of_the_session_in_order(client: Any, bus: Any, h: Any) -> None:
    with client.websocket_connect(h.ws_path()) as a:
        sid = h.start(a)["session_id"]
        with client.websocket_connect(h.ws_path()) as b:
            ready_b = h.start(b, session_id=sid)
            assert ready_b["resumed"] is True and ready_b["session_id"] == sid
            for i in range(5):
                bus.publish(final(sid, i, f"frase {i}"))
                bus.publish(TranscriptPartial(session_id=sid, utterance_id="u", index=i, committed=f"p{i}"))
            got_a = h.events_until(a, "asr.partial", index=4)
            got_b = h.events_until(b, "asr.partial", index=4)
    want = ["session.started"] + ["asr.final", "asr.partial"] * 5
    assert [e["kind"] for e in got_a] == want
    assert got_a == got_b
    assert [e["data"]["text"] for e in got_a if e["kind"] == "asr.final"] == [f"frase {i}" for i in range(5)]
    ids = [e["id"] for e in got_a]
    assert len(set(ids)) == len(ids)


def test_reconnect_with_last_event_id_gets_exactly_the_missed_events(client: Any, bus: Any, h: Any) -> None:
    with client.websocket_connect(h.ws_path()) as ws:
        sid = h.start(ws)["session_id"]
        bus.publish(final(sid, 0, "uno"))
        seen = h.events_until(ws, "asr.final", index=0)
        last = seen[-1]["id"]
        ws.send_bytes(PCM)
        ws.send_bytes(PCM)
        ws.send_json({"type": "ping"})
        h.receive_until(ws, lambda m: m["type"] == "pong")
    # while the phone is away
    for i in (1, 2, 3):
        bus.publish(final(sid, i, f"missed {i}"))
    with client.websocket_connect(h.ws_path()) as ws:
        ready = h.start(ws, session_id=sid, last_event_id=last)
        assert ready["resumed"] is True and ready["next_chunk_index"] == 2
        bus.publish(final(sid, 4, "live"))
        got = h.events_until(ws, "asr.final", index=4)
    assert [e["data"]["text"] for e in got] == ["missed 1", "missed 2", "missed 3", "live"]


def test_resent_chunks_after_reconnect_are_dropped_as_duplicates(client: Any, r: Any, h: Any) -> None:
    chunks = [bytes([i]) * 320 for i in range(6)]
    with client.websocket_connect(h.ws_path()) as ws:
        sid = h.start(ws)["session_id"]
        for c in chunks[:4]:
            ws.send_bytes(c)
        ws.send_json({"type": "ping"})
        h.receive_until(ws, lambda m: m["type"] == "pong")
    with client.websocket_connect(h.ws_path()) as ws:
        ready = h.start(ws, session_id=sid, next_chunk_index=2)  # the phone resends from its chunk 2
        assert ready["next_chunk_index"] == 2
        for c in chunks[2:]:
            ws.send_bytes(c)
        ws.send_json({"type": "ping"})
        h.receive_until(ws, lambda m: m["type"] == "pong")
    with client.websocket_connect(h.ws_path()) as ws:
        assert h.start(ws, session_id=sid)["next_chunk_index"] == 6
    got = h.stream_events(r, "audio.chunk", sid)
    assert [c.chunk_index for c in got] == [0, 1, 2, 3, 4, 5]
    assert [c.data for c in got] == chunks


def test_unknown_session_id_starts_a_new_session(client: Any, h: Any) -> None:
    with client.websocket_connect(h.ws_path()) as ws:
        ready = h.start(ws, session_id="no-such-session", last_event_id="1-0", next_chunk_index=9)
        assert ready["resumed"] is False and ready["session_id"] != "no-such-session"
        assert ready["next_chunk_index"] == 0


def test_resume_gap_when_the_outbox_was_trimmed(client: Any, r: Any, bus: Any, h: Any) -> None:
    with client.websocket_connect(h.ws_path()) as ws:
        sid = h.start(ws)["session_id"]
        bus.publish(final(sid, 0, "old"))
        last = h.events_until(ws, "asr.final", index=0)[-1]["id"]
    for i in (1, 2, 3):
        bus.publish(final(sid, i, f"t{i}"))
    r.xtrim(f"session:{sid}:events", maxlen=2, approximate=False)  # drops the events after `last` but the last two
    with client.websocket_connect(h.ws_path()) as ws:
        h.start(ws, session_id=sid, last_event_id=last)
        err = ws.receive_json()
        assert err["type"] == "error" and err["code"] == "resume_gap"
        got = h.events_until(ws, "asr.final", index=3)
    assert [e["data"]["text"] for e in got] == ["t2", "t3"]


def test_resume_changes_direction_when_the_phone_says_so(client: Any, r: Any, h: Any) -> None:
    with client.websocket_connect(h.ws_path()) as ws:
        sid = h.start(ws)["session_id"]
        last = h.events_until(ws, "session.started")[-1]["id"]
    with client.websocket_connect(h.ws_path()) as ws:
        ready = h.start(ws, session_id=sid, last_event_id=last, direction="en-es")
        assert ready["resumed"] is True
        ev = h.events_until(ws, "session.settings_changed")[-1]
        assert ev["data"]["direction"] == "en-es"
    assert r.hget(f"session:{sid}:settings", "direction") == b"en-es"


def test_second_start_on_a_socket_is_refused(client: Any, h: Any) -> None:
    with client.websocket_connect(h.ws_path()) as ws:
        h.start(ws)
        ws.send_json({"type": "session.start"})
        err = h.receive_until(ws, lambda m: m["type"] == "error")[-1]
        assert err["code"] == "already_started"


def test_busy_when_the_gateway_is_full(r: Any, redis_url: str, database_url: str, h: Any) -> None:
    from starlette.testclient import TestClient

    from habla_gateway import create_app

    app = create_app(h.make_config(max_sockets=1), redis_url, database_url)
    with TestClient(app) as client, client.websocket_connect(h.ws_path()) as a:
        h.start(a)
        with client.websocket_connect(h.ws_path()) as b:
            b.send_json({"type": "session.start"})
            busy = b.receive_json()
            assert busy["type"] == "busy" and busy["retry_after"] > 0
        with client.websocket_connect(h.ws_path()) as c:
            c.send_json({"type": "session.start"})
            assert c.receive_json()["type"] == "busy"


def test_resuming_an_ended_session_replays_but_takes_no_audio(client: Any, bus: Any, h: Any) -> None:
    with client.websocket_connect(h.ws_path()) as ws:
        sid = h.start(ws)["session_id"]
        ws.send_json({"type": "session.end"})
        h.events_until(ws, "session.ended")
    bus.publish(final(sid, 0, "late final"))  # the pipeline finishes after the phone left
    with client.websocket_connect(h.ws_path()) as ws:
        ready = h.start(ws, session_id=sid)
        assert ready["resumed"] is True and ready["ended"] is True
        kinds = [e["kind"] for e in h.events_until(ws, "asr.final", index=0)]
        assert kinds == ["session.started", "session.ended", "asr.final"]
        ws.send_bytes(PCM)
        assert h.receive_until(ws, lambda m: m["type"] == "error")[-1]["code"] == "session_ended"
        ws.send_json({"type": "settings", "mode": "classroom"})
        assert h.receive_until(ws, lambda m: m["type"] == "error")[-1]["code"] == "session_ended"
