"""The ops board (/ops) in headless Chromium while a real replay runs through the runtime.

The runtime starts as ``habla up`` starts it (real processes, Redis, Postgres, Whisper; the
gateway scrapes every service's metrics endpoint, GATEWAY_OPS_TARGETS from the supervisor).
Three FLEURS sentences stream at real-time pace while Debian's chromium (driven by
playwright, as in the phone tests) shows the board at a desktop size; once the board shows
live values (a speech end → transcript p50, throughput, CPU, the health badge) the test
checks them and saves the screenshots the README shows: ``docs/screenshots/ops.png``
(1280×900) and ``docs/screenshots/ops-phone.png`` (360×800), both taken during the replay.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from habla.replay import ReplayResult, replay_pcm
from habla.supervisor import Runtime
from tests.browser_kit import CHROMIUM, CHROMIUM_ARGS, UI_TOKEN, wait_js

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT.parent / "shared" / "eval" / "speech"
SCREENSHOTS = ROOT / "docs" / "screenshots"
RATE = 16000
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 800}


def clip(name: str) -> np.ndarray:
    with wave.open(str(SPEECH / name)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2), name
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), dtype=np.int16)


@pytest.fixture
def runtime(captioning_runtime: Runtime) -> Runtime:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    return captioning_runtime


@contextmanager
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def open_board(b: Any, url: str, viewport: dict[str, int], token: str | None = None, **context: Any) -> Any:
    """A page of the board in a fresh browser context (with ``token`` already stored, as after pairing)."""
    ctx = b.new_context(viewport=viewport, **context)
    if token is not None:
        ctx.add_init_script(f"localStorage.setItem('habla.token', {json.dumps(token)})")
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "favicon" not in m.text else None)
    page.errors = errors
    page.goto(url)
    return page


def tile(page: Any, name: str) -> tuple[str, float | None]:
    """A stat tile's text and its number (None when it has none)."""
    text = page.inner_text(f"#tile-{name}-value")
    raw = page.get_attribute(f"#tile-{name}", "data-value")
    return text, (float(raw) if raw else None)


def chart_points(page: Any, chart: str) -> int:
    return int(page.get_attribute(f"#panel-{chart}", "data-points") or 0)


@pytest.mark.slow
def test_the_ops_board_shows_live_values_during_a_replay(runtime: Runtime) -> None:
    audio = np.concatenate(
        [
            silence(0.5),
            clip("fleurs-es-006.wav"),
            silence(1.0),
            clip("fleurs-es-003.wav"),
            silence(1.0),
            clip("fleurs-es-002.wav"),
            silence(2.0),
        ]
    )
    assert "asr=http://127.0.0.1:" in runtime.env["GATEWAY_OPS_TARGETS"]
    with browser() as b:
        page = open_board(b, f"{runtime.ops_url}#token={runtime.token}", DESKTOP)
        # the board is up, with the token taken from the address and dropped from it
        wait_js(page, "window.ops && window.ops.polls > 0", 30)
        assert page.evaluate("location.hash") == ""
        assert page.evaluate("localStorage.getItem('habla.token')") == runtime.token
        assert page.evaluate("Boolean(window.uPlot)"), "uPlot did not load"

        result: dict[str, ReplayResult] = {}
        replay = threading.Thread(
            target=lambda: result.setdefault(
                "r", asyncio.run(replay_pcm(runtime.ws_url, runtime.token, audio, realtime=True, title="ops"))
            )
        )
        started = time.monotonic()
        replay.start()
        try:
            # live values: a final's latency on the phone, messages flowing, CPU readings
            wait_js(
                page,
                """() => {
                  const v = (id) => parseFloat(document.getElementById(id).dataset.value || "0");
                  const pts = (id) => parseInt(document.getElementById(id).dataset.points || "0");
                  return v("tile-transcript") > 0 && v("tile-throughput") > 0 && v("tile-sockets") >= 1
                    && pts("panel-latency-phone") > 0 && pts("panel-cpu") > 0 && pts("panel-throughput") > 0;
                }""",
                timeout=90,
            )
            seen_at = time.monotonic() - started
            page.wait_for_timeout(4500)  # two more polls: the charts draw a few more points
            assert replay.is_alive(), "the replay ended before the board showed live values"

            status = page.inner_text("#health-status")
            assert re.fullmatch(
                r"keeping up( · thinning partials)?|falling behind|GPU near its limit|down: .+", status
            ), status
            assert status != "starting" and page.inner_text("#health-reason").strip()
            level = page.get_attribute("#health", "data-level")
            assert level in ("ok", "warn", "bad")
            # a scrape may time out on a busy machine: every process answers within a few polls
            wait_js(page, "document.querySelectorAll('#targets li.up').length === 5", 20)
            up = page.eval_on_selector_all("#targets li.up", "els => els.map(e => e.textContent.trim())")
            assert set(up) == {"gateway", "recorder", "ingest", "diarize", "asr"}, up

            text, p50 = tile(page, "transcript")
            assert p50 is not None and 0 < p50 < 30 and re.fullmatch(r"\d+ ms|\d+\.\d+ s", text), text
            _, throughput = tile(page, "throughput")
            assert throughput is not None and throughput > 0
            _, sockets = tile(page, "sockets")
            assert sockets == 1  # the replay's socket
            for chart in ("latency-phone", "latency-stages", "lag", "throughput", "cpu", "memory", "errors"):
                assert chart_points(page, chart) > 0, chart
            # uPlot drew them: a canvas per chart, and a legend naming the series
            assert page.locator("#panel-latency-phone canvas").count() >= 1
            legend = page.inner_text("#panel-latency-phone .u-legend")
            assert "end → transcript on phone p50" in legend, legend
            assert page.inner_text("#panel-gpu .panel-empty") == "no GPU"  # this machine has none
            assert page.errors == [], page.errors

            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "ops.png"), full_page=True)
            phone = open_board(
                b, runtime.ops_url, PHONE, runtime.token, device_scale_factor=2, is_mobile=True, has_touch=True
            )
            wait_js(phone, "document.getElementById('tile-transcript').dataset.value > 0", 30)
            phone.wait_for_timeout(600)
            assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "wider than a phone"
            phone.screenshot(path=str(SCREENSHOTS / "ops-phone.png"))
            assert phone.errors == [], phone.errors
            shot_at = time.monotonic() - started
            assert replay.is_alive(), "the screenshots were not taken during the replay"
        finally:
            replay.join(120)
    assert result["r"].finals(), "nothing was transcribed"
    print(f"\nlive values on the board {seen_at:.1f} s into the replay; screenshots at {shot_at:.1f} s")


def test_the_board_asks_for_the_token_and_takes_the_phones(gateway_only: str) -> None:
    """No token: the token screen; a refused one says so; pasting the right one shows the board.
    A browser paired as a phone (the app's stored token) opens the board at once."""
    with browser() as b:
        page = open_board(b, f"{gateway_only}/ops", PHONE)
        wait_js(page, "!document.getElementById('gate').hidden", 15)
        assert page.inner_text("#gate-title") == "Token needed"
        page.fill("#token-input", "wrong")
        page.click("#token-form button")
        wait_js(page, "document.getElementById('gate-title').textContent === 'This token was refused'", 15)
        page.fill("#token-input", UI_TOKEN)
        page.click("#token-form button")
        wait_js(page, "document.getElementById('gate').hidden && window.ops.polls > 0", 15)
        assert page.inner_text("#health-status") == "keeping up"
        assert page.eval_on_selector_all("#targets li.up", "els => els.map(e => e.textContent.trim())") == ["gateway"]
        assert page.inner_text("#tile-sockets-value") == "0"
        assert [e for e in page.errors if "401 (Unauthorized)" not in e] == [], page.errors  # the wrong token's

        paired = open_board(b, f"{gateway_only}/ops", DESKTOP, UI_TOKEN)
        wait_js(paired, "window.ops.polls > 0 && document.getElementById('gate').hidden", 15)
        assert paired.evaluate("document.body.dataset.screen") == "board"
