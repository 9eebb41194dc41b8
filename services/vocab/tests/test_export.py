"""Anki and CSV exports of real saved items: the .apkg is read back as an Anki collection
with sqlite3 (notes, cards, the note type and deck, the MP3 clips in its media), exporting
again keeps every note's GUID, and the CSV has one row per item."""

from __future__ import annotations

import csv
import json
import sqlite3
import zipfile
from pathlib import Path

import pytest

from habla_contracts import TermSaved, derived_id
from habla_vocab.audio import decode_mp3
from habla_vocab.domain import item_id_for
from habla_vocab.errors import ExportFailed
from habla_vocab.export import ANKI_DECK_ID, ANKI_MODEL_ID, CSV_COLUMNS, export_apkg, export_csv, note_guid
from habla_vocab.store import PostgresVocabStore

from .conftest import Clip, EventLog, Pipeline


def save(p: Pipeline, session: str, text: str, kind: str, utterance_id: str = "", meaning: str = "") -> None:
    p.publish(
        TermSaved(
            session_id=session,
            event_id=derived_id("term.saved", session, kind, text.lower()),
            term_kind=kind,
            text=text,
            meaning=meaning,
            utterance_id=utterance_id,
        )
    )
    p.drain()


@pytest.fixture
def saved_items(pipeline: Pipeline, event_log: EventLog, speech: dict[str, Clip]) -> PostgresVocabStore:
    u1 = event_log.heard("s1", speech["fleurs-es-002"], speaker_name="Profesora <García>")
    u2 = event_log.heard("s2", speech["fleurs-es-003"])
    save(pipeline, "s1", "la Plaza de San Pedro", "phrase", u1, "St Peter's Square")
    save(pipeline, "s2", "tener sentido", "phrase", u2, "to make sense")
    save(pipeline, "s2", "la fianza", "phrase", meaning="the deposit")  # typed in: no sentence, no clip
    return PostgresVocabStore(event_log.url)


def read_apkg(path: Path, tmp: Path) -> tuple[sqlite3.Connection, dict[str, str], zipfile.ZipFile]:
    archive = zipfile.ZipFile(path)
    archive.extract("collection.anki2", tmp)
    media = json.loads(archive.read("media"))
    return sqlite3.connect(tmp / "collection.anki2"), media, archive


def test_apkg_is_an_anki_collection_with_notes_cards_and_audio(saved_items: PostgresVocabStore, tmp_path: Path) -> None:
    result = export_apkg(saved_items, tmp_path / "out" / "habla.apkg")
    assert (result.items, result.clips) == (3, 2)
    db, media, archive = read_apkg(result.path, tmp_path)
    with db:
        notes = db.execute("SELECT id, guid, mid, flds FROM notes ORDER BY id").fetchall()
        cards = db.execute("SELECT nid, did FROM cards").fetchall()
        models = json.loads(db.execute("SELECT models FROM col").fetchone()[0])
        decks = json.loads(db.execute("SELECT decks FROM col").fetchone()[0])
    assert len(notes) == 3 and len(cards) == 3
    assert {mid for _, _, mid, _ in notes} == {ANKI_MODEL_ID}
    assert str(ANKI_MODEL_ID) in models and str(ANKI_DECK_ID) in decks
    assert {did for _, did in cards} == {ANKI_DECK_ID}
    assert {nid for nid, _ in cards} == {nid for nid, _, _, _ in notes}

    by_canonical = {flds.split("\x1f")[0]: (guid, flds.split("\x1f")) for _, guid, _, flds in notes}
    guid, fields = by_canonical["la plaza de san pedro"]
    assert guid == note_guid(item_id_for("es", "la plaza de san pedro"))
    assert fields[1].startswith("Fue tanta la cantidad de gente")
    assert fields[3] == "St Peter&#x27;s Square" and fields[7] == "Profesora &lt;García&gt;"
    sound = fields[2].removeprefix("[sound:").removesuffix("]")
    assert fields[2].startswith("[sound:") and sound.endswith(".mp3")

    assert sorted(media.values()) == sorted(
        f[2].removeprefix("[sound:").removesuffix("]") for _, f in by_canonical.values() if f[2]
    )
    number = next(k for k, v in media.items() if v == sound)
    clip = archive.read(number)
    assert clip[:3] == b"ID3" and decode_mp3(clip).size > 16000 * 5  # the 9.7 s turn, as MP3
    assert by_canonical["la fianza"][1][2] == ""  # no clip, no sound tag


def test_exporting_twice_keeps_the_note_guids(saved_items: PostgresVocabStore, tmp_path: Path) -> None:
    first = export_apkg(saved_items, tmp_path / "a.apkg")
    second = export_apkg(saved_items, tmp_path / "b.apkg")
    guids = []
    for n, result in enumerate((first, second)):
        db, _, _ = read_apkg(result.path, tmp_path / str(n))
        with db:
            guids.append(sorted(g for (g,) in db.execute("SELECT guid FROM notes")))
            assert {m for (m,) in db.execute("SELECT mid FROM notes")} == {ANKI_MODEL_ID}
    assert guids[0] == guids[1] and len(set(guids[0])) == 3


def test_csv_has_one_row_per_item(
    saved_items: PostgresVocabStore, pipeline: Pipeline, event_log: EventLog, speech: dict[str, Clip], tmp_path: Path
) -> None:
    # a second context of an item already saved: still one row for it
    u3 = event_log.heard("s3", speech["fleurs-es-003"])
    save(pipeline, "s3", "tener sentido", "phrase", u3)
    result = export_csv(saved_items, tmp_path / "vocab.csv")
    with result.path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == result.items == 3
    row = next(r for r in rows if r["canonical"] == "tener sentido")
    assert (row["contexts"], row["meaning"], row["session_id"]) == ("2", "to make sense", "s2")
    assert row["sentence"].startswith("Esto parece tener sentido")


def test_unwritable_destination_is_a_clear_error(saved_items: PostgresVocabStore, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ExportFailed, match="cannot write the Anki package"):
        export_apkg(saved_items, blocker / "habla.apkg")
    with pytest.raises(ExportFailed, match="cannot write the CSV export"):
        export_csv(saved_items, blocker / "vocab.csv")
