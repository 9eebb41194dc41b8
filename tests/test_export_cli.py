"""`habla export`: the command as a user runs it, on real Redis and Postgres with real saved
items (clips encoded from FLEURS speech): in this process when no job worker runs, through
the real job worker (`python -m habla.worker`) when one does."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import wave
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner, Result
from rq import Queue, Worker

from habla.cli import main as cli
from habla_common.jobs import JOB_QUEUE
from habla_contracts import VocabItemSaved, derived_id
from habla_vocab.audio import encode_mp3
from habla_vocab.domain import item_id_for
from habla_vocab.export import CSV_COLUMNS
from habla_vocab.store import PostgresVocabStore

ROOT = Path(__file__).resolve().parents[1]
SPEECH = (
    Path(os.environ["HABLA_EVAL_DIR"]) if os.environ.get("HABLA_EVAL_DIR") else ROOT.parent / "shared" / "eval"
) / ("speech")
ITEMS = (
    ("ponerse las pilas", "to get one's act together", "fleurs-es-000.wav"),
    ("tener sentido", "to make sense", "fleurs-es-003.wav"),
    ("la fianza", "the deposit", None),
)


@pytest.fixture
def saved(pg_url: str) -> str:
    """Three vocabulary items, two with a clip of real speech; returns the database URL."""
    if not (SPEECH / "manifest.csv").is_file():
        pytest.skip(f"no evaluation audio at {SPEECH} (set HABLA_EVAL_DIR)")
    store = PostgresVocabStore(pg_url)
    for n, (canonical, meaning, wav) in enumerate(ITEMS):
        clip = b""
        if wav:
            with wave.open(str(SPEECH / wav)) as w:
                clip = encode_mp3(w.readframes(w.getnframes()), w.getframerate())
        store.apply(
            VocabItemSaved(
                session_id="s1",
                event_id=derived_id("test", "vocab", n),
                occurred_at=1_760_000_000.0 + n,
                item_id=item_id_for("es", canonical),
                item_kind="phrase",
                canonical=canonical,
                text=canonical,
                meaning=meaning,
                heard=f"Una frase con {canonical}.",
                clip=clip,
                clip_format="mp3" if clip else "",
                end_ms=5000 if clip else 0,
            )
        )
    return pg_url


def run(args: list[str], redis_url: str, database_url: str) -> Result:
    return CliRunner().invoke(cli, ["export", *args], env={"REDIS_URL": redis_url, "DATABASE_URL": database_url})


def read_apkg(path: Path, tmp: Path) -> tuple[list[str], dict[str, str]]:
    archive = zipfile.ZipFile(path)
    archive.extract("collection.anki2", tmp)
    with sqlite3.connect(tmp / "collection.anki2") as db:
        notes = sorted(flds.split("\x1f")[0] for (flds,) in db.execute("SELECT flds FROM notes"))
    media = json.loads(archive.read("media"))
    assert all(archive.read(k)[:3] == b"ID3" for k in media)
    return notes, media


def test_the_worker_serves_the_export_queue() -> None:
    from habla_translate.jobs import QUEUE as TRANSLATE_QUEUE  # what habla.worker serves
    from habla_vocab.jobs import QUEUE as VOCAB_QUEUE

    assert VOCAB_QUEUE == TRANSLATE_QUEUE == JOB_QUEUE


def test_export_without_a_worker_runs_here_and_writes_path(saved: str, redis_url: str, tmp_path: Path) -> None:
    out = tmp_path / "deck" / "vocab.apkg"
    result = run(["--format", "apkg", "--out", str(out), "--data-dir", str(tmp_path / "data")], redis_url, saved)
    assert result.exit_code == 0, result.output
    assert f"exported 3 items, 2 clips to {out}" in result.stdout
    notes, media = read_apkg(out, tmp_path)
    assert notes == sorted(c for c, _, _ in ITEMS) and len(media) == 2
    assert list((tmp_path / "data" / "exports").iterdir()) == []  # moved to PATH, not left behind
    assert [p.name for p in out.parent.iterdir()] == ["vocab.apkg"]


def test_export_csv_into_a_folder(saved: str, redis_url: str, tmp_path: Path) -> None:
    result = run(["--format", "csv", "--out", str(tmp_path), "--data-dir", str(tmp_path / "data")], redis_url, saved)
    assert result.exit_code == 0, result.output
    with (tmp_path / "habla-vocab.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert sorted((r["canonical"], r["meaning"]) for r in rows) == sorted((c, m) for c, m, _ in ITEMS)


@pytest.fixture
def worker(redis_url: str, pg_url: str, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The real job worker, as `habla up` starts it."""
    env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": pg_url, "HABLA_DATA_DIR": str(tmp_path / "w")}
    proc = subprocess.Popen([sys.executable, "-m", "habla.worker"], cwd=ROOT, env=env)
    r = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 60
    while not Worker.all(queue=Queue(JOB_QUEUE, connection=r)):
        assert proc.poll() is None, "the worker exited"
        assert time.monotonic() < deadline, "the worker did not register in 60 s"
        time.sleep(0.2)
    yield proc
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)


@pytest.mark.slow
def test_export_with_a_running_worker_goes_through_the_job(
    saved: str, worker: subprocess.Popen[bytes], redis_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "vocab.apkg"
    data = tmp_path / "data"
    result = run(["--format", "apkg", "--out", str(out), "--data-dir", str(data)], redis_url, saved)
    assert result.exit_code == 0, result.output
    assert "queued the export as job export-" in result.stderr
    assert f"exported 3 items, 2 clips to {out}" in result.stdout
    [kept] = (data / "exports").iterdir()  # the worker's file stays for a day; PATH is a copy
    assert kept.read_bytes() == out.read_bytes()
    notes, media = read_apkg(out, tmp_path)
    assert len(notes) == 3 and len(media) == 2


def test_unknown_format_is_a_usage_error(redis_url: str, pg_url: str, tmp_path: Path) -> None:
    result = run(["--format", "pdf", "--out", str(tmp_path / "x.pdf")], redis_url, pg_url)
    assert result.exit_code == 2 and "'pdf' is not one of 'apkg', 'csv'" in result.output


def test_unwritable_path_is_a_clear_error(redis_url: str, pg_url: str, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = blocker / "vocab.apkg"
    result = run(["--format", "apkg", "--out", str(out), "--data-dir", str(tmp_path)], redis_url, pg_url)
    assert result.exit_code == 1 and f"cannot write {out}" in result.output


def test_unreachable_database_is_a_clear_error(redis_url: str, tmp_path: Path) -> None:
    nowhere = "postgresql://postgres@127.0.0.1:1/habla"
    result = run(["--format", "csv", "--out", str(tmp_path / "v.csv"), "--data-dir", str(tmp_path)], redis_url, nowhere)
    assert result.exit_code == 1 and "cannot reach Postgres at" in result.output
    assert not (tmp_path / "v.csv").exists()
