"""Vocabulary exports over REST: POST queues the job, the real rq worker (SimpleWorker in burst
mode, in this process) runs habla_vocab.jobs.run_export on real saved items (clips encoded
from FLEURS speech), the status route follows it and the file route sends the package."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import sqlite3
import wave
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue, SimpleWorker
from starlette.testclient import TestClient

from habla.embedded import embedded_redis
from habla_common.jobs import JOB_QUEUE
from habla_contracts import VocabItemSaved, derived_id
from habla_gateway import create_app
from habla_vocab.audio import encode_mp3
from habla_vocab.domain import item_id_for
from habla_vocab.store import PostgresVocabStore

TEST_REDIS_DB = int(os.environ.get("HABLA_TEST_REDIS_DB", "13"))
SPEECH = (
    Path(os.environ["HABLA_EVAL_DIR"])
    if os.environ.get("HABLA_EVAL_DIR")
    else Path(__file__).resolve().parents[3] / "shared" / "eval"
) / "speech"
ITEMS = (
    ("ponerse las pilas", "to get one's act together", "fleurs-es-000.wav"),
    ("tener sentido", "to make sense", "fleurs-es-003.wav"),
    ("la fianza", "the deposit", None),
)


# this module's own Redis database and a fresh Postgres database per test
@pytest.fixture
def redis_url(redis_url_for: Any) -> str:
    return redis_url_for(TEST_REDIS_DB)  # type: ignore[no-any-return]


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    assert client.connection_pool.connection_kwargs.get("db") == TEST_REDIS_DB
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def database_url(pg_url: str) -> str:
    return pg_url


@pytest.fixture
def worker_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The job worker's environment, as `habla up` gives it; returns its data dir."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("HABLA_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def saved(database_url: str) -> None:
    """Three vocabulary items, two with a clip of real speech, projected by the vocab store."""
    if not (SPEECH / "manifest.csv").is_file():
        pytest.skip(f"no evaluation audio at {SPEECH} (set HABLA_EVAL_DIR)")
    store = PostgresVocabStore(database_url)
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
                translation=f"A sentence with {meaning}.",
                clip=clip,
                clip_format="mp3" if clip else "",
                end_ms=5000 if clip else 0,
                zipf=3.0,
                band=3,
            )
        )


@pytest.fixture
def auth(h: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {h.TOKEN}"}


def work(r: redis.Redis) -> None:
    """The real rq worker on the worker's queue, in this process, until the queue is empty."""
    SimpleWorker([Queue(JOB_QUEUE, connection=r)], connection=r).work(burst=True, with_scheduler=False)


def start_export(client: TestClient, auth: dict[str, str], fmt: str) -> str:
    res = client.post("/api/exports", json={"format": fmt}, headers=auth)
    assert res.status_code == 202, res.text
    body = res.json()
    assert body["format"] == fmt and re.fullmatch(r"export-[0-9a-f]{32}", body["job_id"])
    assert body["status_url"] == f"/api/exports/{body['job_id']}"
    return str(body["job_id"])


def test_apkg_export_from_post_to_download(
    client: TestClient, r: redis.Redis, saved: None, worker_env: Path, auth: dict[str, str], tmp_path: Path
) -> None:
    job_id = start_export(client, auth, "apkg")
    queued = client.get(f"/api/exports/{job_id}", headers=auth).json()
    assert queued["status"] == "queued" and (queued["done"], queued["total"], queued["progress"]) == (0, 0, 0.0)
    assert "download_url" not in queued
    assert client.get(f"/api/exports/{job_id}/file", headers=auth).status_code == 404  # not finished yet

    work(r)
    status = client.get(f"/api/exports/{job_id}", headers=auth).json()
    assert status["status"] == "finished" and status["stage"] == "finished"
    assert (status["done"], status["total"], status["progress"], status["items"], status["clips"]) == (3, 3, 1.0, 3, 2)
    assert status["download_url"] == f"/api/exports/{job_id}/file" and "error" not in status
    assert status["filename"].endswith(f"-{job_id}.apkg")

    res = client.get(status["download_url"], headers=auth)
    assert res.status_code == 200
    assert res.headers["content-type"] == "application/apkg"
    assert f'filename="{status["filename"]}"' in res.headers["content-disposition"]
    assert len(res.content) == status["bytes"]
    assert (worker_env / "exports" / status["filename"]).read_bytes() == res.content

    archive = zipfile.ZipFile(io.BytesIO(res.content))
    assert "collection.anki2" in archive.namelist()
    (tmp_path / "col").mkdir()
    archive.extract("collection.anki2", tmp_path / "col")
    with sqlite3.connect(tmp_path / "col" / "collection.anki2") as db:
        notes = sorted(flds.split("\x1f")[0] for (flds,) in db.execute("SELECT flds FROM notes"))
    assert notes == sorted(c for c, _, _ in ITEMS)
    media = json.loads(archive.read("media"))
    assert len(media) == 2 and all(archive.read(k)[:3] == b"ID3" for k in media)


def test_csv_export_has_one_row_per_item(
    client: TestClient, r: redis.Redis, saved: None, worker_env: Path, h: Any
) -> None:
    auth = {"Authorization": f"Bearer {h.TOKEN}"}
    job_id = start_export(client, auth, "csv")
    work(r)
    status = client.get(f"/api/exports/{job_id}", headers=auth).json()
    assert status["status"] == "finished" and status["items"] == 3
    res = client.get(f"/api/exports/{job_id}/file?token={h.TOKEN}")  # a plain link in a browser works too
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(res.content.decode("utf-8"))))
    assert sorted((x["canonical"], x["meaning"]) for x in rows) == sorted((c, m) for c, m, _ in ITEMS)


def test_an_empty_vocabulary_exports_an_empty_deck(
    client: TestClient, r: redis.Redis, worker_env: Path, auth: dict[str, str]
) -> None:
    job_id = start_export(client, auth, "csv")
    work(r)
    status = client.get(f"/api/exports/{job_id}", headers=auth).json()
    assert (status["status"], status["items"], status["progress"]) == ("finished", 0, 1.0)
    assert client.get(status["download_url"], headers=auth).text.count("\n") == 1  # the header only


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"format": "pdf"}', b"{}", b'{"format": 3}'],
)
def test_bad_requests_are_400(client: TestClient, r: redis.Redis, auth: dict[str, str], body: bytes) -> None:
    res = client.post("/api/exports", content=body, headers={**auth, "Content-Type": "application/json"})
    assert res.status_code == 400
    assert res.json()["error"] == "bad_request" and res.json()["message"]
    assert Queue(JOB_QUEUE, connection=r).count == 0


def test_unknown_and_unfinished_jobs_are_404(
    client: TestClient, r: redis.Redis, saved: None, worker_env: Path, auth: dict[str, str]
) -> None:
    for path in ("/api/exports/export-" + "0" * 32, "/api/exports/whatever", "/api/exports/x/file"):
        res = client.get(path, headers=auth)
        assert res.status_code == 404 and res.json()["error"] == "not_found", path
    job_id = start_export(client, auth, "apkg")
    res = client.get(f"/api/exports/{job_id}/file", headers=auth)
    assert res.status_code == 404 and "queued, not finished" in res.json()["message"]
    work(r)
    status = client.get(f"/api/exports/{job_id}", headers=auth).json()
    (worker_env / "exports" / status["filename"]).unlink()  # pruned after a day
    res = client.get(f"/api/exports/{job_id}/file", headers=auth)
    assert res.status_code == 404 and "is gone" in res.json()["message"]


def test_a_failed_export_reports_a_clear_error(
    client: TestClient, r: redis.Redis, worker_env: Path, auth: dict[str, str]
) -> None:
    worker_env.parent.mkdir(parents=True, exist_ok=True)
    worker_env.write_text("a file where the data folder should be")
    job_id = start_export(client, auth, "apkg")
    work(r)
    status = client.get(f"/api/exports/{job_id}", headers=auth).json()
    assert status["status"] == "failed" and "download_url" not in status
    assert status["error"].startswith(f"cannot create the export folder {worker_env / 'exports'}")
    assert client.get(f"/api/exports/{job_id}/file", headers=auth).status_code == 404


def test_exports_need_the_token(client: TestClient, r: redis.Redis, h: Any) -> None:
    job = "export-" + "0" * 32
    for res in (
        client.post("/api/exports", json={"format": "csv"}),
        client.post("/api/exports", json={"format": "csv"}, headers={"Authorization": "Bearer wrong"}),
        client.get(f"/api/exports/{job}"),
        client.get(f"/api/exports/{job}/file?token=wrong"),
    ):
        assert res.status_code == 401 and res.json()["error"] == "unauthorized"
    assert Queue(JOB_QUEUE, connection=r).count == 0


def test_redis_down_is_503(tmp_path: Path, database_url: str, h: Any) -> None:
    auth = {"Authorization": f"Bearer {h.TOKEN}"}
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(embedded_redis(tmp_path / "redis"))
        client = TestClient(create_app(h.make_config(), url, database_url))
        with client:
            job_id = start_export(client, auth, "csv")
            stack.close()  # Redis stops
            for res in (
                client.post("/api/exports", json={"format": "csv"}, headers=auth),
                client.get(f"/api/exports/{job_id}", headers=auth),
                client.get(f"/api/exports/{job_id}/file", headers=auth),
            ):
                assert res.status_code == 503 and res.json()["error"] == "unavailable", res.text
