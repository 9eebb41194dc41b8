"""Speakers: the ``rename`` frame, the REST rename and voiceprint routes, and transcripts that
show each line's speaker by its current name (real Redis and Postgres)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from habla_common.eventlog import PostgresEventStore
from habla_contracts import (
    SessionStarted,
    SpeakerAssigned,
    SpeakerJoined,
    SpeakerRenamed,
    TranscriptFinal,
    TranslationFinal,
    UtteranceSegmented,
    VoiceprintDeleted,
    VoiceprintSaved,
    derived_id,
)
from habla_recorder.projections import apply

PCM = b"\x00\x01" * 2000
T0 = 1_760_000_000.0
SID = "clase"
EMB = np.ones(8, dtype="<f4").tobytes()


@pytest.fixture
def auth(h: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {h.TOKEN}"}


def error_then_pong(ws: Any) -> dict[str, Any]:
    while (err := ws.receive_json())["type"] == "event":
        pass
    assert err["type"] == "error", err
    assert err["message"]
    ws.send_json({"type": "ping"})
    while (pong := ws.receive_json())["type"] == "event":
        pass
    assert pong == {"type": "pong"}
    return err  # type: ignore[no-any-return]


def uid(i: int) -> str:
    return derived_id(SID, "utt", i)


def record_class(db: Any) -> None:
    """A session as the recorder projects it: utterance 0 split between S1 and S2 (the second
    turn has its own id, index 0 and part 1), then utterance 1 by S2; S2 is named only at the end."""
    turn1 = derived_id(uid(0), "turn", 1)
    facts = [
        SessionStarted(session_id=SID, seq=1, occurred_at=T0, title="Clase", mode="classroom"),
        SpeakerJoined(session_id=SID, seq=2, speaker="S1", number=1, label="Speaker 1", color="#0072B2"),
        SpeakerJoined(session_id=SID, seq=3, speaker="S2", number=2, label="Speaker 2", color="#D55E00"),
        UtteranceSegmented(session_id=SID, seq=4, utterance_id=uid(0), index=0, start_ms=0, end_ms=4000),
        SpeakerAssigned(
            session_id=SID,
            seq=5,
            utterance_id=uid(0),
            index=0,
            speaker="S1",
            turns=(
                {"utterance_id": uid(0), "part": 0, "start_ms": 0, "end_ms": 2000, "speaker": "S1", "similarity": 1.0},
                {
                    "utterance_id": turn1,
                    "part": 1,
                    "start_ms": 2000,
                    "end_ms": 4000,
                    "speaker": "S2",
                    "similarity": 1.0,
                },
            ),
        ),
        # the later turn's final arrives first: order is the (idx, part) key's job
        TranscriptFinal(
            session_id=SID,
            seq=7,
            utterance_id=turn1,
            parent_id=uid(0),
            index=0,
            part=1,
            parts=2,
            start_ms=2000,
            end_ms=4000,
            speaker="S2",
            text="Buenos días, clase.",
            language="es",
        ),
        TranscriptFinal(
            session_id=SID,
            seq=6,
            utterance_id=uid(0),
            index=0,
            part=0,
            parts=2,
            start_ms=0,
            end_ms=2000,
            speaker="S1",
            text="Hola.",
            language="es",
        ),
        TranslationFinal(
            session_id=SID,
            seq=8,
            utterance_id=turn1,
            index=0,
            source_text="Buenos días, clase.",
            corrected="Buenos días, clase.",
            translation="Good morning, class.",
            speaker="S2",
            source_language="es",
            target_language="en",
        ),
        UtteranceSegmented(session_id=SID, seq=9, utterance_id=uid(1), index=1, start_ms=5000, end_ms=7000),
        TranscriptFinal(
            session_id=SID,
            seq=10,
            utterance_id=uid(1),
            index=1,
            start_ms=5000,
            end_ms=7000,
            speaker="S2",
            text="Abrid el libro.",
            language="es",
        ),
    ]
    for e in facts:
        apply(db, e)


# --- the rename frame --------------------------------------------------------------------


def test_rename_frame_publishes_speaker_renamed(client: Any, r: Any, h: Any) -> None:
    with client.websocket_connect(h.ws_path()) as ws:
        sid = h.start(ws)["session_id"]
        ws.send_json({"type": "rename", "speaker": "S2", "name": "  Profesora   García ", "remember": True})
        ev = h.events_until(ws, "speaker.renamed")[-1]
        assert ev["data"]["speaker"] == "S2" and ev["data"]["name"] == "Profesora García"
        assert ev["data"]["remember"] is True and ev["data"]["is_user"] is False and ev["data"]["source"] == "user"
        ws.send_json({"type": "session.end"})
        h.events_until(ws, "session.ended")
        ws.send_json({"type": "rename", "speaker": "S1", "name": "Yo", "is_user": True})  # after the end too
        ev = h.events_until(ws, "speaker.renamed")[-1]
        assert ev["data"]["speaker"] == "S1" and ev["data"]["is_user"] is True
    [first, second] = h.stream_events(r, "speaker.renamed", sid)
    assert isinstance(first, SpeakerRenamed) and first.name == "Profesora García" and first.remember
    assert second.name == "Yo" and second.is_user and second.seq > first.seq


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ({"name": "Ana"}, "speaker"),
        ({"speaker": "X1", "name": "Ana"}, "speaker"),
        ({"speaker": "S1234", "name": "Ana"}, "speaker"),
        ({"speaker": "s1", "name": "Ana"}, "speaker"),
        ({"speaker": 2, "name": "Ana"}, "speaker"),
        ({"speaker": "S1"}, "name"),
        ({"speaker": "S1", "name": "   "}, "name"),
        ({"speaker": "S1", "name": 5}, "name"),
        ({"speaker": "S1", "name": "A" * 61}, "name"),
        ({"speaker": "S1", "name": "Ana\u0000"}, "name"),
        ({"speaker": "S1", "name": "Ana", "remember": "yes"}, "remember"),
        ({"speaker": "S1", "name": "Ana", "is_user": 1}, "is_user"),
    ],
)
def test_bad_rename_frames_are_refused_and_the_socket_goes_on(
    client: Any, r: Any, h: Any, frame: dict[str, Any], field: str
) -> None:
    with client.websocket_connect(h.ws_path()) as ws:
        sid = h.start(ws)["session_id"]
        ws.send_json({"type": "rename", **frame})
        err = error_then_pong(ws)
        assert err["code"] == "bad_value" and err["field"] == field, err
        if field == "name" and isinstance(frame.get("name"), str) and len(frame["name"]) > 60:
            assert err["limit"] == 60 and "60" in err["message"]
        ws.send_bytes(PCM)  # audio still lands, and a good rename still works
        ws.send_json({"type": "rename", "speaker": "S1", "name": "Ana"})
        h.events_until(ws, "speaker.renamed")
    assert [e.name for e in h.stream_events(r, "speaker.renamed", sid)] == ["Ana"]  # type: ignore[attr-defined]
    assert [c.chunk_index for c in h.stream_events(r, "audio.chunk", sid)] == [0]


def test_rename_before_session_start(client: Any, h: Any) -> None:
    with client.websocket_connect(h.ws_path()) as ws:
        ws.send_json({"type": "rename", "speaker": "S1", "name": "Ana"})
        assert error_then_pong(ws)["code"] == "no_session"
        assert h.start(ws)["type"] == "ready"


def test_a_renamed_speaker_names_the_transcript_end_to_end(client: Any, r: Any, db: Any, h: Any, auth: Any) -> None:
    """The frame's fact, projected as the recorder does, relabels the session's lines."""
    with client.websocket_connect(h.ws_path()) as ws:
        sid = h.start(ws)["session_id"]
        apply(db, SessionStarted(session_id=sid, seq=1))
        apply(db, SpeakerJoined(session_id=sid, seq=2, speaker="S1", number=1, label="Speaker 1"))
        apply(db, TranscriptFinal(session_id=sid, seq=3, utterance_id="x", index=0, speaker="S1", text="Hola."))
        ws.send_json({"type": "rename", "speaker": "S1", "name": "Lucía"})
        h.events_until(ws, "speaker.renamed")
    for e in h.stream_events(r, "speaker.renamed", sid):
        apply(db, e)
    body = client.get(f"/api/sessions/{sid}/transcript", headers=auth).json()
    assert [(u["speaker"], u["speaker_name"]) for u in body["utterances"]] == [("S1", "Lucía")]


# --- the session view ------------------------------------------------------------------------


def test_session_lists_its_speakers(client: Any, db: Any, auth: Any) -> None:
    record_class(db)
    apply(db, SpeakerRenamed(session_id=SID, seq=20, speaker="S2", name="Profesora García"))
    res = client.get(f"/api/sessions/{SID}", headers=auth)
    assert res.status_code == 200
    body = res.json()
    assert body["utterances"] == 2 and body["transcribed"] == 2  # segmented utterances, not turns
    assert body["lines"] == 3  # the transcript shows utterance 0 as two speaker turns
    assert body["speakers"] == [
        {
            "speaker": "S1",
            "number": 1,
            "label": "Speaker 1",
            "name": None,
            "display": "Speaker 1",
            "color": "#0072B2",
            "role": None,
            "role_confidence": None,
            "is_user": False,
        },
        {
            "speaker": "S2",
            "number": 2,
            "label": "Speaker 2",
            "name": "Profesora García",
            "display": "Profesora García",
            "color": "#D55E00",
            "role": None,
            "role_confidence": None,
            "is_user": False,
        },
    ]


def test_transcript_shows_the_new_name_on_earlier_lines(client: Any, db: Any, auth: Any) -> None:
    record_class(db)
    before = client.get(f"/api/sessions/{SID}/transcript", headers=auth).json()["utterances"]
    assert [(u["index"], u["part"], u["speaker"], u["speaker_name"]) for u in before] == [
        (0, 0, "S1", "Speaker 1"),
        (0, 1, "S2", "Speaker 2"),
        (1, 0, "S2", "Speaker 2"),
    ]
    assert before[1]["parent_id"] == uid(0) and before[1]["parts"] == 2 and before[1]["speaker_color"] == "#D55E00"
    assert (before[0]["start_ms"], before[0]["end_ms"]) == (0, 2000)  # the turn's, not the utterance's 4000
    assert before[1]["translation"]["text"] == "Good morning, class."

    apply(db, SpeakerRenamed(session_id=SID, seq=20, speaker="S2", name="Profesora García"))
    after = client.get(f"/api/sessions/{SID}/transcript", headers=auth).json()["utterances"]
    assert [u["speaker_name"] for u in after] == ["Speaker 1", "Profesora García", "Profesora García"]

    md = client.get(f"/api/sessions/{SID}/transcript?format=md", headers=auth).text
    assert md.splitlines()[2:] == [
        "`00:00:00` **Speaker 1:** Hola.",
        "",
        "`00:00:02` **Profesora García:** Buenos días, clase.",
        "",
        "> Good morning, class.",
        "",
        "`00:00:05` **Profesora García:** Abrid el libro.",
    ]
    assert "Speaker 2" not in md
    srt = client.get(f"/api/sessions/{SID}/transcript?format=srt", headers=auth).text
    assert srt == (
        "1\n00:00:00,000 --> 00:00:02,000\nSpeaker 1: Hola.\n\n"
        "2\n00:00:02,000 --> 00:00:04,000\nProfesora García: Buenos días, clase.\nGood morning, class.\n\n"
        "3\n00:00:05,000 --> 00:00:07,000\nProfesora García: Abrid el libro.\n"
    )
    # the newest name wins, even when an older rename is recorded after it
    apply(db, SpeakerRenamed(session_id=SID, seq=30, speaker="S2", name="Ana"))
    apply(db, SpeakerRenamed(session_id=SID, seq=25, speaker="S2", name="Profe"))
    names = [
        u["speaker_name"] for u in client.get(f"/api/sessions/{SID}/transcript", headers=auth).json()["utterances"]
    ]
    assert names == ["Speaker 1", "Ana", "Ana"]


def test_lines_without_a_known_speaker_show_none(client: Any, db: Any, auth: Any) -> None:
    apply(db, SessionStarted(session_id="s", seq=1))
    apply(db, TranscriptFinal(session_id="s", seq=2, utterance_id="a", index=0, speaker="S9", text="¿Eh?"))
    [line] = client.get("/api/sessions/s/transcript", headers=auth).json()["utterances"]
    assert line["speaker"] == "S9" and line["speaker_name"] is None
    assert "`00:00:00` ¿Eh?" in client.get("/api/sessions/s/transcript?format=md", headers=auth).text


# --- REST rename -----------------------------------------------------------------------------


def test_rest_rename_publishes_after_what_the_log_holds(client: Any, r: Any, db: Any, h: Any, auth: Any) -> None:
    record_class(db)
    store = PostgresEventStore("")
    for seq in (1, 2, 40):  # the log holds seq 40; Redis has forgotten the session's counter
        store.append(db, SessionStarted(session_id=SID, seq=seq))
    res = client.post(
        f"/api/sessions/{SID}/speakers/S2", json={"name": " Profesora  García", "remember": True}, headers=auth
    )
    assert res.status_code == 202, res.text
    body = res.json()
    assert body["status"] == "accepted" and body["name"] == "Profesora García" and body["speaker"] == "S2"
    [ev] = h.stream_events(r, "speaker.renamed", SID)
    assert isinstance(ev, SpeakerRenamed) and ev.event_id == body["event_id"]
    assert ev.seq == 41 and ev.name == "Profesora García" and ev.remember and not ev.is_user and ev.source == "user"
    apply(db, ev)
    names = [
        u["speaker_name"] for u in client.get(f"/api/sessions/{SID}/transcript", headers=auth).json()["utterances"]
    ]
    assert names == ["Speaker 1", "Profesora García", "Profesora García"]
    assert client.post(f"/api/sessions/{SID}/speakers/S1", json={"name": "Yo"}, headers=auth).status_code == 202
    assert [e.seq for e in h.stream_events(r, "speaker.renamed", SID)] == [41, 42]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 61}, "name"),
        ({"name": ["Ana"]}, "name"),
        ({"name": "Ana", "remember": "no"}, "remember"),
        ({"name": "Ana", "is_user": None, "remember": 0}, "remember"),
    ],
)
def test_rest_rename_bad_values_are_400(
    client: Any, r: Any, db: Any, h: Any, auth: Any, body: dict[str, Any], field: str
) -> None:
    record_class(db)
    res = client.post(f"/api/sessions/{SID}/speakers/S1", json=body, headers=auth)
    assert res.status_code == 400
    assert res.json()["error"] == "bad_request" and res.json()["field"] == field and res.json()["message"]
    assert h.stream_events(r, "speaker.renamed", SID) == []


@pytest.mark.parametrize(
    "content", [b"{name", b"[1]", b'"Ana"', b"", b"\xff\xfe", b'{"name": "' + b"x" * 20000 + b'"}']
)
def test_rest_rename_bad_json_is_400(client: Any, r: Any, db: Any, h: Any, auth: Any, content: bytes) -> None:
    record_class(db)
    res = client.post(f"/api/sessions/{SID}/speakers/S1", content=content, headers=auth)
    assert res.status_code == 400 and res.json()["error"] == "bad_request", res.text
    assert h.stream_events(r, "speaker.renamed", SID) == []


def test_rest_rename_unknown_session_or_speaker_is_404(client: Any, r: Any, db: Any, h: Any, auth: Any) -> None:
    record_class(db)
    for path in (
        "/api/sessions/nope/speakers/S1",
        f"/api/sessions/{SID}/speakers/S3",
        f"/api/sessions/{SID}/speakers/x",
    ):
        res = client.post(path, json={"name": "Ana"}, headers=auth)
        assert res.status_code == 404 and res.json()["error"] == "not_found", path
    assert h.stream_events(r, "speaker.renamed", SID) == []
    assert client.get(f"/api/sessions/{SID}/speakers/S1", headers=auth).status_code == 405


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/sessions/x/speakers/S1"),
        ("get", "/api/voiceprints"),
        ("delete", "/api/voiceprints/vp"),
    ],
)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
def test_speaker_routes_need_the_token(client: Any, r: Any, h: Any, method: str, path: str, headers: Any) -> None:
    res = client.request(method.upper(), path, json={"name": "Ana"}, headers=headers)
    assert res.status_code == 401 and res.json()["error"] == "unauthorized"
    assert h.stream_events(r, "speaker.renamed", "x") == []


# --- voiceprints -----------------------------------------------------------------------------


def saved(vp: str, name: str, session: str, at: float, *, is_user: bool = False, seq: int = 1) -> VoiceprintSaved:
    return VoiceprintSaved(
        session_id=session,
        seq=seq,
        occurred_at=at,
        voiceprint_id=vp,
        name=name,
        is_user=is_user,
        backend="test",
        dim=8,
        embedding=EMB,
        speech_ms=12000,
        speaker="S2" if session != "enrolment" else "",
    )


def test_voiceprints_list_without_embeddings(client: Any, db: Any, auth: Any) -> None:
    apply(db, saved("vp-ana", "Ana", SID, T0 + 1, seq=50))
    apply(db, saved("vp-me", "You", "enrolment", T0, is_user=True))
    apply(db, saved("vp-old", "Old", SID, T0 + 2, seq=51))
    apply(db, VoiceprintDeleted(session_id=SID, seq=52, occurred_at=T0 + 3, voiceprint_id="vp-old"))
    res = client.get("/api/voiceprints", headers=auth)
    assert res.status_code == 200
    vps = res.json()["voiceprints"]
    assert [v["voiceprint_id"] for v in vps] == ["vp-me", "vp-ana"]  # the user's own first; deleted ones gone
    assert vps[1] == {
        "voiceprint_id": "vp-ana",
        "name": "Ana",
        "is_user": False,
        "backend": "test",
        "dim": 8,
        "speech_ms": 12000,
        "session_id": SID,
        "speaker": "S2",
        "saved_at": vps[1]["saved_at"],
    }
    assert vps[1]["saved_at"].startswith("2025-10-09T")
    assert "embedding" not in res.text


def test_delete_voiceprint(client: Any, r: Any, db: Any, h: Any, auth: Any) -> None:
    apply(db, saved("vp-ana", "Ana", SID, T0 + 1, seq=50))
    PostgresEventStore("").append(db, saved("vp-ana", "Ana", SID, T0 + 1, seq=50))
    apply(db, saved("vp-me", "You", "enrolment", T0, is_user=True))
    res = client.delete("/api/voiceprints/vp-ana", headers=auth)
    assert res.status_code == 202, res.text
    assert res.json()["status"] == "accepted" and res.json()["voiceprint_id"] == "vp-ana"
    [ev] = h.stream_events(r, "voiceprint.deleted", SID)  # under the session the voice came from
    assert isinstance(ev, VoiceprintDeleted) and ev.voiceprint_id == "vp-ana" and ev.event_id == res.json()["event_id"]
    assert ev.seq == 51  # after what the log holds for that session
    assert client.delete("/api/voiceprints/vp-ana", headers=auth).status_code == 202  # not recorded yet: same event
    assert len(h.stream_events(r, "voiceprint.deleted", SID)) == 1
    apply(db, ev)
    assert [v["voiceprint_id"] for v in client.get("/api/voiceprints", headers=auth).json()["voiceprints"]] == ["vp-me"]
    again = client.delete("/api/voiceprints/vp-ana", headers=auth)
    assert again.status_code == 404 and again.json()["error"] == "not_found"
    assert db.execute("SELECT embedding FROM voiceprints WHERE voiceprint_id = 'vp-ana'").fetchone() == (None,)
    unknown = client.delete("/api/voiceprints/nope", headers=auth)
    assert unknown.status_code == 404 and "nope" in unknown.json()["message"]
    enrolled = client.delete("/api/voiceprints/vp-me", headers=auth)
    assert enrolled.status_code == 202
    assert [e.voiceprint_id for e in h.stream_events(r, "voiceprint.deleted", "enrolment")] == ["vp-me"]  # type: ignore[attr-defined]
