"""REST over the Postgres read models, filled by the recorder's own projection code."""

from __future__ import annotations

from typing import Any

import pytest

from habla_contracts import (
    SessionEnded,
    SessionStarted,
    TranscriptFinal,
    TranslationFinal,
    UtteranceSegmented,
    derived_id,
)
from habla_recorder.projections import apply

T0 = 1_760_000_000.0


def record_session(db: Any, sid: str, started: float, utterances: list[tuple[int, int, str]], title: str = "") -> None:
    """Project a session's facts the way the recorder does (finals deliberately before segments)."""
    apply(db, SessionStarted(session_id=sid, seq=1, occurred_at=started, title=title, direction="es-en"))
    for i, (start_ms, end_ms, text) in enumerate(utterances):
        uid = derived_id(sid, "utt", i)
        apply(
            db,
            TranscriptFinal(
                session_id=sid,
                seq=10 + 2 * i,
                utterance_id=uid,
                index=i,
                start_ms=start_ms,
                end_ms=end_ms,
                text=text,
                language="es",
                dropped="" if text else "no_speech",
            ),
        )
        apply(
            db,
            UtteranceSegmented(
                session_id=sid, seq=11 + 2 * i, utterance_id=uid, index=i, start_ms=start_ms, end_ms=end_ms
            ),
        )


@pytest.fixture
def auth(h: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {h.TOKEN}"}


@pytest.fixture
def recorded(db: Any) -> None:
    record_session(db, "older", T0, [(0, 1500, "Hola, ¿qué tal?")], title="Mercado")
    record_session(
        db,
        "newer",
        T0 + 3600,
        [
            (500, 2500, "Me importa un pepino."),
            (3000, 3400, ""),
            (4000, 6250, "No, se dice tengo calor."),
        ],
        title="Clase de español",
    )
    pepino = derived_id("newer", "utt", 0)
    idiom = {"phrase": "Me importa un pepino", "canonical": "importar un pepino", "meaning": "to not care at all"}
    for revision, english in ((0, "I don't care."), (1, "I couldn't care less.")):  # a re-translation
        apply(
            db,
            TranslationFinal(
                session_id="newer",
                seq=40 + revision,
                utterance_id=pepino,
                index=0,
                revision=revision,
                source_text="Me importa un pepino.",
                corrected="Me importa un pepino.",
                translation=english,
                idioms=({**idiom, "start": 0, "end": 20, "origin": "db"},),
                source_language="es",
                target_language="en",
                model="test",
            ),
        )
    apply(db, SessionEnded(session_id="newer", seq=99, occurred_at=T0 + 7200, reason="client"))


def test_sessions_newest_first_with_counts(client: Any, recorded: None, auth: dict[str, str]) -> None:
    res = client.get("/api/sessions", headers=auth)
    assert res.status_code == 200
    sessions = res.json()["sessions"]
    assert [s["session_id"] for s in sessions] == ["newer", "older"]
    newer = sessions[0]
    assert newer["utterances"] == 3 and newer["transcribed"] == 2 and newer["lines"] == 2
    assert newer["title"] == "Clase de español" and newer["end_reason"] == "client"
    assert newer["started_at"].startswith("2025-10-09T") and newer["ended_at"]
    assert sessions[1]["ended_at"] is None
    assert [s["session_id"] for s in client.get("/api/sessions?limit=1&offset=1", headers=auth).json()["sessions"]] == [
        "older"
    ]
    assert client.get("/api/sessions?limit=0", headers=auth).status_code == 400


def test_one_session(client: Any, recorded: None, auth: dict[str, str]) -> None:
    res = client.get("/api/sessions/older", headers=auth)
    assert res.status_code == 200
    assert res.json()["session_id"] == "older" and res.json()["utterances"] == 1


def test_transcript_json(client: Any, recorded: None, auth: dict[str, str]) -> None:
    res = client.get("/api/sessions/newer/transcript", headers=auth)
    assert res.status_code == 200
    body = res.json()
    assert body["session"]["session_id"] == "newer"
    utts = body["utterances"]
    assert [u["index"] for u in utts] == [0, 1, 2]
    assert utts[0] == {
        "index": 0,
        "part": 0,
        "parts": 1,
        "utterance_id": derived_id("newer", "utt", 0),
        "parent_id": None,
        "speaker": None,
        "speaker_name": None,
        "speaker_color": None,
        "start_ms": 500,
        "end_ms": 2500,
        "start": 0.5,
        "end": 2.5,
        "text": "Me importa un pepino.",
        "language": "es",
        "dropped": None,
        "translation": {
            "revision": 1,
            "text": "I couldn't care less.",
            "corrected": "Me importa un pepino.",
            "status": "ok",
            "source_language": "es",
            "target_language": "en",
            "corrections": [],
            "idioms": [
                {
                    "phrase": "Me importa un pepino",
                    "canonical": "importar un pepino",
                    "meaning": "to not care at all",
                    "start": 0,
                    "end": 20,
                    "origin": "db",
                }
            ],
            "model": "test",
        },
    }
    assert utts[1]["text"] == "" and utts[1]["dropped"] == "no_speech" and utts[1]["translation"] is None


def test_transcript_markdown_and_srt(client: Any, recorded: None, auth: dict[str, str]) -> None:
    md = client.get("/api/sessions/newer/transcript?format=md", headers=auth)
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    assert md.text.startswith("# Clase de español\n")
    assert "`00:00:00` Me importa un pepino." in md.text and "`00:00:04` No, se dice tengo calor." in md.text
    assert "> I couldn't care less." in md.text and "I don't care." not in md.text  # the newest revision
    assert "*Me importa un pepino*: to not care at all" in md.text
    srt = client.get("/api/sessions/newer/transcript?format=srt", headers=auth)
    assert srt.status_code == 200 and srt.headers["content-type"].startswith("application/x-subrip")
    assert srt.text == (
        "1\n00:00:00,500 --> 00:00:02,500\nMe importa un pepino.\nI couldn't care less.\n\n"
        "2\n00:00:04,000 --> 00:00:06,250\nNo, se dice tengo calor.\n"
    )
    bad = client.get("/api/sessions/newer/transcript?format=docx", headers=auth)
    assert bad.status_code == 400 and bad.json()["error"] == "bad_request"


@pytest.mark.parametrize(
    "path", ["/api/sessions/nope", "/api/sessions/nope/transcript", "/api/sessions/nope/transcript?format=srt"]
)
def test_unknown_session_is_404(client: Any, db: Any, auth: dict[str, str], path: str) -> None:
    res = client.get(path, headers=auth)
    assert res.status_code == 404
    assert res.json()["error"] == "not_found" and "nope" in res.json()["message"]


def test_unknown_route_is_json_404(client: Any, auth: dict[str, str]) -> None:
    res = client.get("/api/nothing-here", headers=auth)
    assert res.status_code == 404 and res.json()["error"] == "not_found"


def test_empty_list(client: Any, db: Any, auth: dict[str, str]) -> None:
    assert client.get("/api/sessions", headers=auth).json()["sessions"] == []
