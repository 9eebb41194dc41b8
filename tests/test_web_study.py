"""The Study page (web/study.js) in headless Chromium at 360×800 against the real gateway,
real Postgres and Redis: cards saved by the vocab service's own store (a clip of FLEURS
speech), the vocab service's real consumer applying the grades the page posts, and the real
rq worker building the CSV export the page downloads.

Screenshots of the card's front and back go to the ``artifacts`` folder (and, the ones the
README shows, to docs/screenshots/).
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import threading
import time
import urllib.request
import wave
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from rq import Queue, SimpleWorker

from habla_common.bus import RedisBus
from habla_common.jobs import JOB_QUEUE
from habla_common.service import build_consumer
from habla_common.settings import Settings
from habla_contracts import VocabItemSaved, derived_id
from habla_vocab.audio import encode_mp3
from habla_vocab.config import VocabConfig
from habla_vocab.domain import item_id_for
from habla_vocab.main import KINDS, build
from habla_vocab.store import PostgresVocabStore
from tests.browser_kit import CHROMIUM, UI_TOKEN, phone, wait_js, wait_until

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT.parent / "shared" / "eval" / "speech"
SHOTS = ROOT / "docs" / "screenshots"
NOW = datetime.now(UTC)
HOMENAJE = "Los luchadores compañeros de Luna también le rindieron homenaje."
SACAPUNTAS = "¿Me prestas el sacapuntas, por favor?"


def seed(pg_url: str) -> dict[str, str]:
    """Two new cards, as the vocab service saves them: an idiom with its speaker's clip
    (3 s of real speech, MP3) and a word without one. Returns canonical -> item id."""
    wav = SPEECH / "fleurs-es-006.wav"
    if not wav.is_file():
        pytest.skip(f"no evaluation audio at {SPEECH}")
    with wave.open(str(wav)) as w:
        clip = encode_mp3(w.readframes(16000 * 3), 16000)
    store = PostgresVocabStore(pg_url)
    cards = (
        (
            "rendir homenaje",
            "idiom",
            "to pay tribute",
            "to render homage",
            HOMENAJE,
            "Fellow wrestlers also paid tribute to Luna.",
            clip,
        ),
        (
            "sacapuntas",
            "word",
            "pencil sharpener",
            "",
            SACAPUNTAS,
            "Can you lend me the pencil sharpener, please?",
            b"",
        ),
    )
    ids = {}
    for n, (canonical, kind, meaning, literal, heard, translation, audio) in enumerate(cards):
        ids[canonical] = item_id_for("es", canonical)
        store.apply(
            VocabItemSaved(
                session_id="clase",
                event_id=derived_id("test", canonical),
                occurred_at=(NOW - timedelta(minutes=30 - n)).timestamp(),
                item_id=ids[canonical],
                item_kind=kind,
                canonical=canonical,
                text=canonical,
                meaning=meaning,
                literal=literal,
                heard=heard,
                translation=translation,
                speaker_name="Profesora",
                clip=audio,
                clip_format="mp3" if audio else "",
                end_ms=3000 if audio else 0,
                band=3,
            )
        )
    return ids


@pytest.fixture
def vocab_service(redis_url: str, pg_url: str) -> Iterator[None]:
    """The vocab service's consumer (as ``python -m habla_vocab`` runs it) in a thread."""
    settings = Settings("vocab", redis_url, pg_url, 2, 5, 200, 5000, "INFO")
    bus = RedisBus(redis.Redis.from_url(redis_url), settings.partitions)
    bus.ensure_topology()
    consumer = build_consumer(
        bus, settings, group="vocab", kinds=KINDS, build=lambda _bus: build(VocabConfig(), pg_url)
    )
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(10)


def get(gateway: str, path: str) -> Any:
    req = urllib.request.Request(gateway + path, headers={"Authorization": f"Bearer {UI_TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def graded(gateway: str, item_id: str) -> Any:
    """The item once the vocab service has applied its grade (its schedule and its history:
    the gateway reads them with two statements, so wait for both)."""
    item = get(gateway, f"/api/vocab/{item_id}")
    return item if item["history"] and item["schedule"]["reviews"] else None


def text(page: Any, selector: str) -> str:
    return str(page.eval_on_selector(selector, "e => e.textContent.trim()"))


def test_study_reviews_the_due_cards_and_exports_the_deck(
    gateway_only: str,
    pg_url: str,
    redis_url: str,
    vocab_service: None,
    artifacts: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An empty deck says how cards are made. Then, with two cards due: the front shows the
    term in its sentence, Space shows the meaning, the literal sense and the translation, the
    speaker's clip plays; "Good" (key 3) posts grade 4, retried once with the same review id
    after a dropped connection and stored once, moving the card to tomorrow; the next card has
    no clip and says so; after it, the done state. A CSV export started meanwhile waits for the
    job worker (and says so after a while); the real rq worker builds it and the page downloads
    a file with one row per card."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    monkeypatch.setenv("DATABASE_URL", pg_url)  # the job worker's environment, as `habla up` gives it
    monkeypatch.setenv("HABLA_DATA_DIR", str(tmp_path / "data"))
    with phone() as page:
        page.goto(f"{gateway_only}/#token={UI_TOKEN}")
        page.wait_for_selector("body[data-screen=app]", timeout=15000)
        page.click(".tabs a[data-page=study]")
        wait_js(page, "document.querySelector('.study-note h3')?.textContent === 'No cards yet'", 10)
        assert "tap Save on an idiom" in text(page, ".study-note")

        ids = seed(pg_url)
        posts: list[dict[str, Any]] = []

        def drop_the_first(route: Any) -> None:  # the phone's network fails once
            posts.append(json.loads(route.request.post_data))
            route.abort("internetdisconnected") if len(posts) == 1 else route.continue_()

        page.route("**/api/vocab/*/reviews", drop_the_first)
        page.click(".tabs a[data-page=live]")
        page.click(".tabs a[data-page=study]")  # opening the page again asks for the due cards
        wait_js(page, "document.querySelector('.study-term')?.textContent === 'rendir homenaje'", 10)
        assert text(page, "#due-badge") == "2 due"
        assert text(page, ".study-count") == "1 of 2"
        assert text(page, ".study-kind") == "Idiom · new"
        assert text(page, ".study-context") == HOMENAJE
        assert text(page, ".study-context mark") == "homenaje"  # "rendir" is conjugated there
        assert page.evaluate("document.activeElement.classList.contains('study-reveal')")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.screenshot(path=str(artifacts / "phone-review-front.png"))

        page.keyboard.press("Space")
        page.wait_for_selector(".study-meaning")
        assert text(page, ".study-meaning") == "to pay tribute"
        assert text(page, ".study-literal") == "literally to render homage"
        assert text(page, ".study-translation") == "Fellow wrestlers also paid tribute to Luna."
        labels = page.eval_on_selector_all(".study-grade", "bs => bs.map(b => b.textContent)")
        assert labels == ["Again1 day", "Hard1 day", "Good1 day", "Easy1 day"]  # SM-2: a new card's first step
        page.wait_for_selector(".study-play:not([disabled])", timeout=10000)
        page.click(".study-play")
        wait_js(page, "document.querySelector('.study-audio').currentTime > 0.5", 10)
        assert abs(page.evaluate("document.querySelector('.study-audio').duration") - 3.0) < 0.2
        assert text(page, ".study-play") == "❚❚ Pause"
        page.screenshot(path=str(artifacts / "phone-review.png"))
        page.emulate_media(color_scheme="dark")
        page.screenshot(path=str(artifacts / "phone-review-dark.png"))
        page.emulate_media(color_scheme="light")
        page.click(".study-export-button[data-format=csv]")  # runs while we study; no worker yet
        export_started = time.monotonic()

        page.keyboard.press("3")  # Good
        wait_js(page, "document.querySelector('.study-term')?.textContent === 'sacapuntas'", 10)
        assert page.evaluate("document.querySelector('.study-audio').paused")
        assert text(page, ".study-count") == "2 of 2" and text(page, "#due-badge") == "1 due"
        assert len(posts) == 2 and posts[0] == posts[1] and posts[0]["grade"] == 4
        assert re.fullmatch(r"web-[0-9a-f]{32}", posts[0]["review_id"])
        homenaje = wait_until(lambda: graded(gateway_only, ids["rendir homenaje"]), 10, "the grade applied")
        assert [(r["grade"], r["interval_days"]) for r in homenaje["history"]] == [(4, 1)]  # one review
        due = datetime.fromisoformat(homenaje["schedule"]["due_at"])
        assert abs(due - datetime.now(UTC) - timedelta(days=1)) < timedelta(minutes=2)
        with psycopg.connect(pg_url) as conn:
            assert conn.execute(
                "SELECT last_grade, reviews FROM vocab_items WHERE item_id = %s", (ids["rendir homenaje"],)
            ).fetchone() == (4, 1)

        page.click(".study-reveal")
        assert text(page, ".study-meaning") == "pencil sharpener"
        wait_js(page, "document.querySelector('.study-noclip')?.textContent === 'No recording of this one.'", 5)
        page.click(".grade-easy")
        wait_js(page, "document.querySelector('.study-done h3')?.textContent === 'All done for today'", 10)
        assert text(page, ".study-done p") == "You reviewed 2 cards."
        wait_js(page, "document.querySelector('.study-next').textContent.startsWith('Next review tomorrow')", 5)
        assert page.evaluate("document.getElementById('due-badge').hidden")
        sacapuntas = wait_until(lambda: graded(gateway_only, ids["sacapuntas"]), 10, "the grade applied")
        assert [r["grade"] for r in sacapuntas["history"]] == [5]
        assert get(gateway_only, "/api/vocab/due")["cards"] == []

        # the export: queued with no worker, then said to be stuck, then built by the real worker
        assert text(page, ".study-export-status").startswith(("Waiting for the job worker", "Still queued"))
        wait_js(page, "document.querySelector('.study-export-status').textContent.startsWith('Still queued')", 15)
        assert time.monotonic() - export_started > 9
        page.screenshot(path=str(artifacts / "phone-review-waiting.png"))
        r = redis.Redis.from_url(redis_url)
        assert Queue(JOB_QUEUE, connection=r).count == 1
        with page.expect_download(timeout=15000) as download:
            SimpleWorker([Queue(JOB_QUEUE, connection=r)], connection=r).work(burst=True, with_scheduler=False)
        saved = download.value
        assert re.fullmatch(r"habla-vocabulary-\d{4}-\d\d-\d\d\.csv", saved.suggested_filename)
        target = artifacts / saved.suggested_filename
        saved.save_as(target)
        rows = list(csv.DictReader(io.StringIO(target.read_text("utf-8"))))
        assert sorted((x["canonical"], x["meaning"], x["sentence"]) for x in rows) == [
            ("rendir homenaje", "to pay tribute", HOMENAJE),
            ("sacapuntas", "pencil sharpener", SACAPUNTAS),
        ]
        wait_js(page, "document.querySelector('.study-export').dataset.state === 'done'", 5)
        assert text(page, ".study-export-status") == f"Saved {saved.suggested_filename}: 2 cards."
        assert page.evaluate("document.querySelector('.study-export-bar').hidden")
        page.screenshot(path=str(artifacts / "phone-review-done.png"))
        assert [e for e in page.errors if "ERR_INTERNET_DISCONNECTED" not in e] == []

    SHOTS.mkdir(parents=True, exist_ok=True)
    for name in ("phone-review.png", "phone-review-front.png"):
        shutil.copyfile(artifacts / name, SHOTS / name)
