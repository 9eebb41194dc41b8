"""Study REST: the vocabulary, today's due cards, grading, deleting and clips, against the
vocab service's real read models (projected by its own store) on real Redis and Postgres."""

from __future__ import annotations

import wave
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from habla_contracts import VOCAB_SESSION, CardReviewed, VocabItemDeleted, VocabItemSaved, derived_id
from habla_vocab.audio import decode_mp3, encode_mp3
from habla_vocab.domain import item_id_for
from habla_vocab.store import VOCAB_TABLES, PostgresVocabStore

SPEECH = Path(__file__).resolve().parents[3] / "shared" / "eval" / "speech"
NOW = datetime.now(UTC)


@pytest.fixture
def auth(h: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {h.TOKEN}"}


@pytest.fixture
def store(database_url: str) -> Iterator[PostgresVocabStore]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE " + ", ".join(VOCAB_TABLES))
        conn.execute("UPDATE vocab_settings SET timezone = 'UTC', day_starts_at = 4, new_per_day = 2")
        yield PostgresVocabStore(database_url)
        conn.execute("TRUNCATE " + ", ".join(VOCAB_TABLES))
        conn.execute("UPDATE vocab_settings SET new_per_day = 20")


def clip_of(name: str, seconds: float) -> bytes:
    wav = SPEECH / f"{name}.wav"
    if not wav.is_file():
        pytest.skip(f"no evaluation audio at {SPEECH}")
    with wave.open(str(wav)) as w:
        pcm = w.readframes(int(16000 * seconds))
    return encode_mp3(pcm, 16000)


def save(store: PostgresVocabStore, canonical: str, *, at: datetime, clip: bytes = b"", **fields: Any) -> str:
    item_id = item_id_for("es", canonical)
    store.apply(
        VocabItemSaved(
            session_id="clase",
            event_id=derived_id("test", canonical, at.isoformat()),
            occurred_at=at.timestamp(),
            item_id=item_id,
            item_kind=fields.pop("kind", "word"),
            canonical=canonical,
            text=canonical,
            clip=clip,
            clip_format="mp3" if clip else "",
            start_ms=0,
            end_ms=3000 if clip else 0,
            band=3,
            **fields,
        )
    )
    return item_id


def test_due_cards_show_the_item_its_context_and_clip(
    client: Any, store: PostgresVocabStore, auth: dict[str, str]
) -> None:
    clip = clip_of("fleurs-es-006", 3.0)
    homenaje = save(
        store,
        "rendir homenaje",
        at=NOW - timedelta(minutes=30),
        kind="idiom",
        meaning="to pay tribute",
        literal="to render homage",
        heard="Los luchadores compañeros de Luna también le rindieron homenaje.",
        translation="Fellow wrestlers also paid tribute to Luna.",
        speaker_name="Profesora",
        clip=clip,
    )
    save(store, "sacapuntas", at=NOW - timedelta(minutes=20), meaning="pencil sharpener")
    save(store, "ventarrón", at=NOW - timedelta(minutes=10))  # third new card: over new_per_day = 2

    due = client.get("/api/vocab/due", headers=auth).json()
    assert [(c["canonical"], c["is_new"], c["position"]) for c in due["cards"]] == [
        ("rendir homenaje", True, 1),
        ("sacapuntas", True, 2),
    ]
    assert (due["new"], due["reviews"]) == (2, 0)
    assert due["day_start"] < NOW.isoformat() < due["day_end"]
    card = due["cards"][0]
    assert (card["kind"], card["meaning"], card["literal"]) == ("idiom", "to pay tribute", "to render homage")
    assert card["context"]["translation"] == "Fellow wrestlers also paid tribute to Luna."
    assert card["context"]["speaker_name"] == "Profesora"
    audio = client.get(card["context"]["clip_url"], headers=auth)
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/mpeg"
    assert audio.content == clip and abs(decode_mp3(audio.content).size - 48000) < 1600
    assert due["cards"][1]["context"]["clip_url"] is None

    listed = client.get("/api/vocab", headers=auth).json()
    assert listed["total"] == 3 and listed["items"][0]["canonical"] == "ventarrón"
    one = client.get(f"/api/vocab/{homenaje}", headers=auth).json()
    assert [c["heard"] for c in one["contexts"]] == ["Los luchadores compañeros de Luna también le rindieron homenaje."]
    assert one["history"] == [] and one["schedule"]["reviews"] == 0


def test_a_grade_is_published_once_and_moves_the_card(
    client: Any, store: PostgresVocabStore, auth: dict[str, str], r: Any, h: Any
) -> None:
    item_id = save(store, "sacapuntas", at=NOW - timedelta(hours=1))
    body = {"grade": 4, "answer_ms": 2300, "review_id": "phone-1"}
    first = client.post(f"/api/vocab/{item_id}/reviews", json=body, headers=auth)
    again = client.post(f"/api/vocab/{item_id}/reviews", json=body, headers=auth)  # a retry on a flaky network
    assert first.status_code == again.status_code == 202
    assert first.json()["event_id"] == again.json()["event_id"] == derived_id("vocab.reviewed", item_id, "phone-1")
    [event] = h.stream_events(r, "vocab.reviewed", VOCAB_SESSION)
    assert isinstance(event, CardReviewed) and (event.item_id, event.grade, event.answer_ms) == (item_id, 4, 2300)

    store.apply(event)  # what the vocab service does with it
    assert client.get("/api/vocab/due", headers=auth).json()["cards"] == []  # due again tomorrow
    one = client.get(f"/api/vocab/{item_id}", headers=auth).json()
    assert [(x["grade"], x["interval_days"]) for x in one["history"]] == [(4, 1)]
    assert one["schedule"]["due_at"] == store.item(item_id).due_at.isoformat()


def test_delete_publishes_and_the_item_goes(
    client: Any, store: PostgresVocabStore, auth: dict[str, str], r: Any, h: Any
) -> None:
    item_id = save(store, "ventarrón", at=NOW - timedelta(hours=1))
    answer = client.delete(f"/api/vocab/{item_id}", headers=auth)
    assert answer.status_code == 202
    [event] = h.stream_events(r, "vocab.deleted", VOCAB_SESSION)
    assert isinstance(event, VocabItemDeleted) and event.item_id == item_id
    store.apply(event)
    gone = client.get(f"/api/vocab/{item_id}", headers=auth)
    assert gone.status_code == 404 and "never saved, or deleted" in gone.json()["message"]
    assert client.delete(f"/api/vocab/{item_id}", headers=auth).status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"grade": 6}, "from 0"),
        ({"grade": "4"}, "from 0"),
        ({"grade": True}, "from 0"),
        ({}, "from 0"),
        ({"grade": 3, "answer_ms": -5}, "answer_ms"),
        ({"grade": 3, "review_id": ""}, "review_id"),
        ([3], "JSON object"),
    ],
)
def test_bad_grades_are_refused(
    client: Any, store: PostgresVocabStore, auth: dict[str, str], r: Any, h: Any, body: Any, message: str
) -> None:
    item_id = save(store, "sacapuntas", at=NOW)
    answer = client.post(f"/api/vocab/{item_id}/reviews", json=body, headers=auth)
    assert answer.status_code == 400 and answer.json()["error"] == "bad_request"
    assert message in answer.json()["message"]
    broken = client.post(f"/api/vocab/{item_id}/reviews", content=b"{grade: 4", headers=auth)
    assert broken.status_code == 400
    assert h.stream_events(r, "vocab.reviewed", VOCAB_SESSION) == []


def test_unknown_items_and_missing_tokens(client: Any, store: PostgresVocabStore, auth: dict[str, str]) -> None:
    for method, path in (
        ("get", "/api/vocab/nope"),
        ("get", "/api/vocab/nope/clip"),
        ("delete", "/api/vocab/nope"),
    ):
        answer = client.request(method, path, headers=auth)
        assert answer.status_code == 404 and "nope" in answer.json()["message"], path
    assert client.post("/api/vocab/nope/reviews", json={"grade": 3}, headers=auth).status_code == 404
    for path in ("/api/vocab", "/api/vocab/due", "/api/vocab/nope", "/api/vocab/nope/clip"):
        assert client.get(path).status_code == 401, path
    assert client.get("/api/vocab/due", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_words_saved_from_a_past_transcript(client: Any, db: Any, auth: dict[str, str], r: Any, h: Any) -> None:
    from habla_contracts import SessionStarted, TermSaved, TranscriptFinal, UtteranceSegmented
    from habla_recorder.projections import apply

    for n, text in enumerate(["Le rindieron homenaje.", "Otra vez le rindieron homenaje."]):
        uid = f"clase-u{n}"
        for e in (
            UtteranceSegmented(session_id="clase", seq=2 + 2 * n, utterance_id=uid, index=n, start_ms=0, end_ms=3000),
            TranscriptFinal(session_id="clase", seq=3 + 2 * n, utterance_id=uid, index=n, text=text, language="es"),
        ):
            apply(db, e)
    apply(db, SessionStarted(session_id="clase", seq=1))
    body = {"kind": "idiom", "text": "rendir homenaje", "meaning": "to pay tribute", "utterance_id": "clase-u0"}
    assert client.post("/api/sessions/clase/terms", json=body, headers=auth).status_code == 202
    assert client.post("/api/sessions/clase/terms", json=body, headers=auth).status_code == 202  # pressed twice
    other = client.post("/api/sessions/clase/terms", json={**body, "utterance_id": "clase-u1"}, headers=auth)
    assert other.status_code == 202
    saved = h.stream_events(r, "term.saved", "clase")
    assert [(e.utterance_id, e.term_kind, e.text) for e in saved if isinstance(e, TermSaved)] == [
        ("clase-u0", "idiom", "rendir homenaje"),  # once, though sent twice
        ("clase-u1", "idiom", "rendir homenaje"),  # the same idiom heard again: another context
    ]

    nowhere = client.post("/api/sessions/clase/terms", json={**body, "utterance_id": "clase-u9"}, headers=auth)
    assert nowhere.status_code == 404 and "clase-u9" in nowhere.json()["message"]
    assert client.post("/api/sessions/nope/terms", json=body, headers=auth).status_code == 404
    for bad in ({"kind": "idiom"}, {"kind": "poem", "text": "x"}, {"kind": "word", "text": "x", "language": "fr"}):
        answer = client.post("/api/sessions/clase/terms", json=bad, headers=auth)
        assert answer.status_code == 400 and answer.json()["message"], bad
    assert client.post("/api/sessions/clase/terms", json=body).status_code == 401
    assert len(h.stream_events(r, "term.saved", "clase")) == 2
