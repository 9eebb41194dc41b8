"""Exports as rq jobs: real saved items (FLEURS speech through the vocab consumer), the real
rq SimpleWorker (burst mode, in this process) on real Redis, the files read back (the
.apkg as an Anki collection with sqlite3, the CSV with csv)."""

from __future__ import annotations

import csv
import json
import os
import re
import sqlite3
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue, SimpleWorker

from habla_common.jobs import JOB_QUEUE
from habla_contracts import TermSaved, derived_id
from habla_vocab.errors import ExportFailed
from habla_vocab.export import CSV_COLUMNS
from habla_vocab.jobs import QUEUE, enqueue_export, export_filename, prune_exports, run_export

from .conftest import Clip, EventLog, Pipeline


def save(p: Pipeline, session: str, text: str, utterance_id: str = "", meaning: str = "") -> None:
    p.publish(
        TermSaved(
            session_id=session,
            event_id=derived_id("term.saved", session, text.lower()),
            term_kind="phrase",
            text=text,
            meaning=meaning,
            utterance_id=utterance_id,
        )
    )
    p.drain()


@pytest.fixture
def saved(pipeline: Pipeline, event_log: EventLog, speech: dict[str, Clip]) -> str:
    """Three items, two of them with a clip; returns the database URL."""
    u1 = event_log.heard("s1", speech["fleurs-es-002"])
    u2 = event_log.heard("s2", speech["fleurs-es-003"])
    save(pipeline, "s1", "la Plaza de San Pedro", u1, "St Peter's Square")
    save(pipeline, "s2", "tener sentido", u2, "to make sense")
    save(pipeline, "s2", "la fianza", meaning="the deposit")  # typed in: no clip
    return str(event_log.url)


@pytest.fixture
def r(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


def work(r: redis.Redis) -> None:
    """The real rq worker, in this process, until the queue is empty."""
    SimpleWorker([Queue(QUEUE, connection=r)], connection=r).work(burst=True, with_scheduler=False)


def anki_notes(path: Path, tmp: Path) -> tuple[list[list[str]], dict[str, str], zipfile.ZipFile]:
    archive = zipfile.ZipFile(path)
    archive.extract("collection.anki2", tmp)
    with sqlite3.connect(tmp / "collection.anki2") as db:
        notes = [flds.split("\x1f") for (flds,) in db.execute("SELECT flds FROM notes ORDER BY id")]
        (cards,) = db.execute("SELECT count(*) FROM cards").fetchone()
    assert cards == len(notes)
    return notes, json.loads(archive.read("media")), archive


def test_queue_is_the_job_workers_queue() -> None:
    assert QUEUE == JOB_QUEUE == "habla"


def test_apkg_job_writes_the_package_and_reports_progress(
    saved: str, r: redis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", saved)  # the worker's database, as `habla up` sets it
    out = tmp_path / "exports"
    job = enqueue_export(r, "apkg", out_dir=str(out))
    assert job.get_meta() == {"stage": "queued", "done": 0, "total": 0, "format": "apkg"}
    work(r)

    job.refresh()
    assert job.get_status() == "finished"
    result = job.return_value()
    path = Path(result["path"])
    assert path.parent == out and path.name == export_filename("apkg", job.id)
    assert re.fullmatch(rf"habla-vocab-\d{{4}}-\d\d-\d\d-{job.id}\.apkg", path.name)
    assert (result["format"], result["items"], result["clips"]) == ("apkg", 3, 2)
    assert result["bytes"] == path.stat().st_size > 20_000  # two MP3 clips of several seconds
    assert [p.name for p in out.iterdir()] == [path.name]  # no .part left behind
    assert job.get_meta() == {"stage": "finished", "done": 3, "total": 3, "format": "apkg"}

    notes, media, archive = anki_notes(path, tmp_path)
    assert sorted(n[0] for n in notes) == ["la fianza", "la plaza de san pedro", "tener sentido"]
    sounds = sorted(n[2].removeprefix("[sound:").removesuffix("]") for n in notes if n[2])
    assert sorted(media.values()) == sounds and len(sounds) == 2
    assert all(archive.read(k)[:3] == b"ID3" for k in media)


def test_progress_goes_item_by_item_through_the_stages(saved: str, tmp_path: Path) -> None:
    seen: list[tuple[int, int, str]] = []
    result = run_export("csv", str(tmp_path), database_url=saved, progress=lambda *a: seen.append(a))
    assert result["items"] == 3 and Path(result["path"]).name.startswith("habla-vocab-")
    assert result["path"].endswith(".csv") and "-local-" in result["path"]
    assert seen[0] == (0, 0, "reading")
    assert seen[1:] == [
        (0, 3, "exporting"),
        (1, 3, "exporting"),
        (2, 3, "exporting"),
        (3, 3, "writing"),
        (3, 3, "finished"),
    ]


def test_csv_job_writes_one_row_per_item(
    saved: str, r: redis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HABLA_DATA_DIR", str(tmp_path / "data"))  # the default folder: <data dir>/exports
    job = enqueue_export(r, "csv", database_url=saved)
    work(r)
    job.refresh()
    assert job.get_status() == "finished", job.latest_result().exc_string
    result: dict[str, Any] = job.return_value()
    path = Path(result["path"])
    assert path.parent == tmp_path / "data" / "exports" and path.suffix == ".csv"
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == result["items"] == 3
    row = next(x for x in rows if x["canonical"] == "tener sentido")
    assert row["meaning"] == "to make sense" and row["sentence"].startswith("Esto parece tener sentido")
    assert job.get_meta()["done"] == job.get_meta()["total"] == 3


@pytest.mark.parametrize("fmt", ["apkg", "csv"])
def test_an_empty_vocabulary_exports_an_empty_deck(
    fmt: str, pg_url: str, r: redis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", pg_url)
    job = enqueue_export(r, fmt, out_dir=str(tmp_path / "out"))
    work(r)
    job.refresh()
    assert job.get_status() == "finished", job.latest_result().exc_string
    result = job.return_value()
    assert (result["items"], result["clips"]) == (0, 0)
    assert job.get_meta() == {"stage": "finished", "done": 0, "total": 0, "format": fmt}
    path = Path(result["path"])
    if fmt == "apkg":
        notes, media, _ = anki_notes(path, tmp_path)
        assert notes == [] and media == {}
    else:
        assert path.read_text(encoding="utf-8").splitlines() == [",".join(CSV_COLUMNS)]


def test_exports_older_than_a_day_are_removed_when_a_new_one_starts(saved: str, tmp_path: Path) -> None:
    out = tmp_path / "exports"
    out.mkdir()
    day = 24 * 3600
    old = out / "habla-vocab-2020-01-01-export-old.apkg"
    stale_part = out / "habla-vocab-2020-01-01-export-crashed.csv.part"
    recent = out / "habla-vocab-2020-01-02-export-recent.csv"
    mine = out / "notes.txt"  # not an export: never touched
    for path, age in ((old, 2 * day), (stale_part, day + 60), (recent, day - 600), (mine, 30 * day)):
        path.write_text("x")
        os.utime(path, (time.time() - age, time.time() - age))
    result = run_export("csv", str(out), database_url=saved)
    assert sorted(p.name for p in out.iterdir()) == sorted([recent.name, mine.name, Path(result["path"]).name])
    assert prune_exports(out, now=time.time() + 601) == [recent]  # ten minutes later it is a day old


def test_a_failed_export_says_why_in_the_job(
    saved: str, r: redis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", saved)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    job = enqueue_export(r, "apkg", out_dir=str(blocker / "exports"))
    work(r)
    job.refresh()
    assert job.get_status() == "failed"
    meta = job.get_meta()
    assert meta["stage"] == "failed" and meta["error"].startswith(f"cannot create the export folder {blocker}")
    assert "ExportFailed" in job.latest_result().exc_string


def test_an_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="cannot reach Postgres at"):
        run_export("csv", str(tmp_path), database_url="postgresql://postgres@127.0.0.1:1/nothing")
    assert list(tmp_path.iterdir()) == []  # no half-written file


def test_unknown_format_is_refused(r: redis.Redis, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown export format 'pdf'"):
        enqueue_export(r, "pdf")
    with pytest.raises(ExportFailed, match="unknown export format 'pdf'"):
        run_export("pdf", str(tmp_path))


def test_export_filename_has_the_date_and_the_job_id() -> None:
    day = datetime(2025, 3, 9, 23, 59, tzinfo=UTC)
    assert export_filename("apkg", "export-abc", day) == "habla-vocab-2025-03-09-export-abc.apkg"
