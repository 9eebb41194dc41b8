"""End to end: the phone client (web/) in headless Chromium against the one-machine runtime.

Debian's chromium (``/usr/bin/chromium``; never a downloaded browser) is driven through the
``playwright`` package, in a 360×800 phone viewport. Its fake audio capture plays a real
FLEURS recording into the page's microphone (``--use-file-for-fake-audio-capture``, with
``%noloop`` so it plays once, from the moment ``getUserMedia`` opens); the page records it
with its AudioWorklet and streams 16 kHz PCM16 to the real gateway, the real services
transcribe and translate it, and the page shows what came back. Screenshots of the phone
view go to ``$HABLA_ARTIFACTS_DIR`` (default: the test's tmp folder; the path is printed).

The first test is quick: the gateway serves web/ as the page and its service worker expect.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from habla.supervisor import Runtime, free_port, running
from habla_gateway import GatewayConfig, create_app

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT.parent / "shared" / "eval" / "speech"
CHROMIUM = Path("/usr/bin/chromium")
PHONE = {"width": 360, "height": 800}
RATE = 16000
# Two clips whose finals hold idioms of the database: "Hoy en día, las personas escriben
# mensajes ..." (hoy en día) and "... también le rindieron homenaje." (rendir homenaje).
CLIPS = ("fleurs-es-005.wav", "fleurs-es-006.wav")
IDIOMS = {"hoy en día", "rendir homenaje"}
# Chromium in a closed network: nothing that phones home, no GPU, a fresh profile (playwright
# makes a new empty user data dir for each launch).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]


# --- servers for the whole module: one runtime, as `habla up` runs it ------------------------


@pytest.fixture(scope="module")
def module_redis(redis_url_for: Callable[[int], str]) -> Iterator[str]:
    url = redis_url_for(int(os.environ.get("HABLA_TEST_REDIS_DB", "14")))
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture(scope="module")
def module_pg(database_factory: Any) -> Iterator[str]:
    with database_factory("habla_web") as url:
        yield url


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory, module_redis: str, module_pg: str) -> Iterator[Runtime]:
    assert CHROMIUM.exists(), (
        f"{CHROMIUM} is missing: the web client's tests need Debian's chromium (apt-get install chromium; "
        "scripts/test installs it when run as root)"
    )
    with running(
        data_dir=tmp_path_factory.mktemp("web") / "data",
        extra_env={"REDIS_URL": module_redis, "DATABASE_URL": module_pg, "HABLA_LEASE_MS": "3000"},
        services=("recorder", "ingest", "diarize", "asr", "translate", "gateway"),
    ) as rt:
        yield rt


@pytest.fixture
def artifacts(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    base = os.environ.get("HABLA_ARTIFACTS_DIR")
    folder = (Path(base) / request.node.name) if base else tmp_path / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nartefacts: {folder}")
    return folder


# --- helpers -----------------------------------------------------------------------------


def read_clip(name: str) -> np.ndarray:
    with wave.open(str(SPEECH / name)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2), name
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), dtype=np.int16)


def write_wav(path: Path, pcm: np.ndarray) -> Path:
    """16-bit mono PCM WAV, as Chromium's fake capture reads it (it resamples to the device rate)."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.asarray(pcm, dtype="<i2").tobytes())
    return path


def api(rt: Runtime, path: str) -> Any:
    """GET a REST path as JSON; None while it is 404 (the recorder has not stored it yet)."""
    req = urllib.request.Request(rt.url + path, headers={"Authorization": f"Bearer {rt.token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


def wait_until(cond: Callable[[], Any], timeout: float, what: str, page: Any = None) -> Any:
    """Poll ``cond``; with a ``page``, wait through it, so its event handlers (socket frames) run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        if page is not None:
            page.wait_for_timeout(250)
        else:
            time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_js(page: Any, expression: str, timeout: float = 30, arg: Any = None) -> Any:
    """Poll a JavaScript expression (or function, with ``arg``) until it is truthy. Through
    ``page.evaluate``, which the page's Content-Security-Policy (no eval) allows, unlike
    ``wait_for_function``: the tests run the page with its real CSP."""
    if arg is None:
        return wait_until(lambda: page.evaluate(expression), timeout, expression, page)
    return wait_until(lambda: page.evaluate(expression, arg), timeout, expression, page)


@contextmanager
def phone(mic_wav: Path | None = None) -> Iterator[Any]:
    """A page in a 360×800 phone viewport; ``mic_wav`` plays once into its microphone."""
    from playwright.sync_api import sync_playwright

    args = list(CHROMIUM_ARGS)
    if mic_wav is not None:
        args.append(f"--use-file-for-fake-audio-capture={mic_wav}%noloop")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        try:
            context = browser.new_context(
                viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, permissions=["microphone"]
            )
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on(
                "console", lambda m: errors.append(m.text) if m.type == "error" and "favicon" not in m.text else None
            )
            page.errors = errors
            yield page
        finally:
            browser.close()


# Times (Date.now()) at which the page first showed a live caption and a final translation,
# recorded by a MutationObserver in the page (the test's own polling would add its latency).
OBSERVE = """() => {
  window.seen = {};
  const check = () => {
    const now = Date.now();
    for (const c of document.querySelectorAll('.card.live')) {
      if (!window.seen.live && c.querySelector('.source').textContent.trim() && !c.querySelector('.listening')) {
        window.seen.live = now;
        window.seen.liveId = c.dataset.utteranceId;
      }
    }
    for (const c of document.querySelectorAll('.card.final')) {
      window.seen.heard = window.seen.heard || {};
      window.seen.heard[c.dataset.utteranceId] ??= now;  // the final transcript, translation pending
      const t = c.querySelector('.target:not(.pending)');
      if (t && t.textContent.trim()) {
        window.seen.finals = window.seen.finals || {};
        window.seen.finals[c.dataset.utteranceId] ??= now;
      }
    }
  };
  new MutationObserver(check).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def open_app(page: Any, rt: Runtime, token: str | None = None) -> None:
    page.goto(f"{rt.url}/#token={token or rt.token}")
    page.wait_for_selector("body[data-screen=app]", timeout=15000)


# --- tests ---------------------------------------------------------------------------------


def test_the_gateway_serves_the_web_client(redis_url: str, pg_url: str, tmp_path: Path) -> None:
    """web/ at ``/`` without a token, revalidated on every load; every file of the service
    worker's app shell is there; the API keeps its token, its JSON 404 and its 405."""
    from starlette.testclient import TestClient

    config = GatewayConfig(token="web-test-token", partitions=2)
    assert Path(config.web_dir) == ROOT / "web"
    with TestClient(create_app(config, redis_url, pg_url)) as client:
        page = client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="app.js"></script>' in page.text
        assert page.headers["cache-control"] == "no-cache"
        sw = client.get("/sw.js")
        assert sw.status_code == 200 and "javascript" in sw.headers["content-type"]
        assert sw.headers["cache-control"] == "no-cache"
        shell = json.loads(sw.text.split("const SHELL = ", 1)[1].split(";", 1)[0].replace(",\n]", "]"))
        for path in shell:
            assert client.get("/" + path.removeprefix("./")).status_code == 200, path
        manifest = client.get("/manifest.webmanifest")
        assert manifest.headers["content-type"].startswith("application/manifest+json")
        for icon in manifest.json()["icons"]:
            assert client.get("/" + icon["src"]).status_code == 200, icon
        assert client.get("/nope.html").status_code == 404
        missing = client.get("/api/nope")
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"
        assert client.get("/api/sessions").status_code == 401
        assert client.get("/api/sessions/x/speakers/S1").status_code == 405  # a POST route
    bare = GatewayConfig(token="web-test-token", partitions=2, web_dir=str(tmp_path / "none"))
    with TestClient(create_app(bare, redis_url, pg_url)) as client:
        assert client.get("/").status_code == 404
        assert client.get("/api/health").status_code == 200


@pytest.fixture
def gateway_only(redis_url: str, pg_url: str) -> Iterator[str]:
    """The gateway alone (no services), served by uvicorn in a thread: its URL."""
    import uvicorn

    port = free_port()
    config = GatewayConfig(token=UI_TOKEN, partitions=2, port=port)
    server = uvicorn.Server(uvicorn.Config(create_app(config, redis_url, pg_url), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 30, "the gateway")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


UI_TOKEN = "ui-test-token"


def frames_of(n: int) -> list[dict[str, Any]]:
    """Event frames of a session with ``n`` lines, as the gateway sends them (ids in order)."""
    out: list[dict[str, Any]] = []

    def add(kind: str, **data: Any) -> None:
        out.append({"type": "event", "id": f"{1000 + len(out)}-0", "kind": kind, "data": data})

    add("session.started", direction="es-en", mode="conversation")
    add("speaker.joined", speaker="S1", label="Speaker 1", color="#D55E00", number=1)
    for i in range(n):
        u = f"u{i}"
        add("speech.started", utterance_id=u, index=i)
        add("asr.partial", utterance_id=u, index=i, window_index=0, committed="", tentative="Me importa")
        add("asr.partial", utterance_id=u, index=i, window_index=1, committed="Me importa", tentative="un pepino")
        add("translation.partial", utterance_id=u, index=i, window_index=1, text="It matters")
        add("speaker.assigned", utterance_id=u, index=i, speaker="S1", turns=[{"utterance_id": u, "speaker": "S1"}])
        add("asr.final", utterance_id=u, index=i, text=f"Me importa un pepino lo que diga {i}.", speaker="S1")
        add(
            "translation.final",
            utterance_id=u,
            index=i,
            revision=0,
            corrected=f"Me importa un pepino lo que digan {i}.",
            translation=f"I couldn't care less what they say {i}.",
            corrections=[{"heard": "diga", "fixed": "digan", "reason": "plural subject"}],
            idioms=[
                {
                    "phrase": "Me importa un pepino",
                    "canonical": "importar un pepino",
                    "literal": "it matters a cucumber to me",
                    "meaning": "I couldn't care less",
                    "start": 0,
                    "end": 20,
                    "origin": "db",
                }
            ],
            status="ok",
        )
    return out


def test_the_view_is_a_pure_function_of_the_events(gateway_only: str, artifacts: Path) -> None:
    """In Chromium at 360×800, event frames fed to the page: a live card (committed solid,
    tentative faded) becomes its final card in place; the idiom is underlined with its card and
    the correction marked; the same frames again change nothing; scrolling up stops the
    auto-scroll and "Jump to live" brings it back; nothing is wider than the phone."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    frames = frames_of(12)
    with phone() as page:
        page.goto(f"{gateway_only}/#token={UI_TOKEN}")
        page.wait_for_selector("body[data-screen=app]", timeout=15000)

        first = [f for f in frames if f["data"].get("utterance_id") in (None, "u0")]
        for f in first[:5]:  # up to the second partial: live
            page.evaluate("f => window.habla.feed('s1', f)", f)
        card = page.wait_for_selector('.card.live[data-utterance-id="u0"]')
        assert card is not None
        wait_js(page, "document.querySelector('.card.live .tentative').textContent.trim() === 'un pepino'")
        assert card.eval_on_selector(".committed", "e => e.textContent") == "Me importa"
        faded = card.eval_on_selector(".tentative", "e => getComputedStyle(e).fontStyle")
        assert faded == "italic"
        for f in frames:
            page.evaluate("f => window.habla.feed('s1', f)", f)
        wait_js(page, "document.querySelectorAll('.card.final').length === 12")
        assert card.evaluate("e => e.isConnected && e.classList.contains('final')")  # the same element
        assert card.eval_on_selector(".source .idiom", "e => e.textContent") == "Me importa un pepino"
        assert card.eval_on_selector(".source mark.fix", "e => e.textContent") == "digan"
        assert "couldn't care less" in card.eval_on_selector(".idiom-card .meaning", "e => e.textContent")
        assert card.eval_on_selector(".speaker", "e => e.textContent") == "Speaker 1"
        html = page.inner_html("#cards")

        for f in frames:  # a replay (a reconnect resuming too early, a second socket): no change
            page.evaluate("f => window.habla.feed('s1', f)", f)
        for f in frames:  # and even without the ids that filter replays, the same cards
            page.evaluate("f => window.habla.feed('s1', f)", {**f, "id": None})
        page.wait_for_timeout(300)
        assert page.inner_html("#cards") == html

        at_bottom = "(() => { const t = document.getElementById('transcript');"
        at_bottom += " return t.scrollHeight - t.scrollTop - t.clientHeight < 48; })()"
        wait_js(page, at_bottom)  # it followed the newest card
        page.evaluate("document.getElementById('transcript').scrollTop = 0")
        page.wait_for_selector("#jump", state="visible")
        more = [dict(f, id=f"{5000 + n}-0") for n, f in enumerate(frames_of(13)[-7:])]  # a 13th line
        for f in more:
            page.evaluate("f => window.habla.feed('s1', f)", f)
        wait_js(page, "document.querySelectorAll('.card.final').length === 13")
        assert page.evaluate("document.getElementById('transcript').scrollTop") == 0  # stayed where the user was
        page.screenshot(path=str(artifacts / "phone-scrolled-up.png"))
        page.click("#jump")
        wait_js(page, at_bottom)
        assert not page.is_visible("#jump")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.screenshot(path=str(artifacts / "phone-cards.png"))
        assert not page.errors, page.errors


def test_pairing_links_carry_the_token_after_the_hash(tmp_path: Path) -> None:
    from habla.embedded import Infra

    rt = Runtime(Infra("redis://x", "postgresql://x", ()), {}, "0.0.0.0", 8000, "t0k/en+", tmp_path)
    links = rt.pairing_urls()
    assert links and all(re.fullmatch(r"http://[0-9.]+:8000/#token=t0k%2Fen%2B", link) for link in links)
    assert "127.0.0.1" not in " ".join(links) or links == ["http://127.0.0.1:8000/#token=t0k%2Fen%2B"]
    assert rt.pairing_urls("pc.vpn") == ["http://pc.vpn:8000/#token=t0k%2Fen%2B"]
    assert rt.pairing_urls("https://pc.tailnet.ts.net/") == ["https://pc.tailnet.ts.net/#token=t0k%2Fen%2B"]
    local = Runtime(Infra("redis://x", "postgresql://x", ()), {}, "127.0.0.1", 9000, "abc", tmp_path)
    assert local.pairing_urls() == ["http://127.0.0.1:9000/#token=abc"]


@pytest.mark.slow
def test_live_card_becomes_the_final_card_with_translation_and_idioms(
    runtime: Runtime, tmp_path: Path, artifacts: Path
) -> None:
    """Two FLEURS clips spoken into the phone: a live card (committed words solid, the tentative
    tail faded) appears while the first plays and turns, in place, into its final card with a
    translation; both lines end as final cards with translations, an idiom underlined with its
    card, and as many cards as the session has transcribed lines (none twice, none missing)."""
    lead = 0.5
    first, second = (read_clip(name) for name in CLIPS)
    # the clips, a pause between them, and trailing silence so the last utterance ends on a pause
    mic = write_wav(tmp_path / "mic.wav", np.concatenate([silence(lead), first, silence(1.5), second, silence(6)]))
    first_end_s = lead + first.size / RATE
    with phone(mic) as page:
        open_app(page, runtime)
        assert "token" not in page.url  # the pairing link's token left the address bar...
        assert page.evaluate("localStorage.getItem('habla.token')") == runtime.token  # ...for the phone's storage
        page.evaluate(OBSERVE)
        page.click("#start")
        page.wait_for_selector("body[data-listening=true]", timeout=15000)
        audio_at = wait_until(lambda: page.evaluate("window.habla.app.metrics.firstChunkAt"), 10, "the first chunk")

        # a live card while the first clip plays
        live_at = wait_js(page, "window.seen.live", 60)
        live_id = page.evaluate("window.seen.liveId")
        live_card = page.query_selector(f'.card[data-utterance-id="{live_id}"]')
        assert live_card is not None and "live" in (live_card.get_attribute("class") or "")
        assert page.query_selector(".card.live .tentative, .card.live .committed") is not None
        page.screenshot(path=str(artifacts / "phone-live.png"))
        with contextlib.suppress(AssertionError):  # a fuller live card, if it is still live then
            wait_js(
                page,
                "[...document.querySelectorAll('.card.live')].some(c => c.querySelector('.committed').textContent"
                " && c.querySelector('.rough').textContent)",
                10,
            )
            page.screenshot(path=str(artifacts / "phone-live-translated.png"))

        # the same element becomes the final card, with a translation
        wait_js(
            page,
            "e => e.classList.contains('final') && e.querySelector('.target:not(.pending)')?.textContent.trim()",
            180,
            arg=live_card,
        )
        assert live_card.evaluate("e => e.isConnected")  # replaced in place, not removed and added
        first_final_at = page.evaluate(f"window.seen.finals['{live_id}']")
        first_heard_at = page.evaluate(f"window.seen.heard['{live_id}']")

        # the whole recording: every line final and translated, an idiom with its card
        def session_done() -> Any:
            return page.evaluate(
                """() => { const s = [...window.habla.state.sessions.values()][0];
                           const cards = [...window.habla.state.cards.values()].filter(c => !c.hidden);
                           return s && s.drained !== null && s.drained >= 2 && cards.length >= 2
                                  && cards.every(c => !c.live && c.translation) ? s.id : null; }"""
            )

        # Stop once the second clip has played and a pause followed: the session ends after the last chunk
        stop_at = audio_at + (lead + (first.size + second.size) / RATE + 1.5 + 2.0) * 1000
        page.wait_for_timeout(max(0, stop_at - page.evaluate("Date.now()")))
        page.click("#start")
        session_id = wait_until(session_done, 240, "every card final and translated")
        page.wait_for_selector(".card.final .idiom-card", timeout=30000)
        wait_js(page, "!document.querySelector('.card.live')", 30)
        page.screenshot(path=str(artifacts / "phone-final.png"))
        idiom_card = page.query_selector(".card.final:has(.idiom-card)")
        assert idiom_card is not None
        idiom_card.evaluate("e => e.scrollIntoView({block: 'start'})")
        page.screenshot(path=str(artifacts / "phone-final-card.png"))

        cards = page.eval_on_selector_all(
            ".card.final",
            """els => els.map(e => ({id: e.dataset.utteranceId, source: e.querySelector('.source').textContent,
                                    target: e.querySelector('.target').textContent,
                                    idioms: [...e.querySelectorAll('.idiom-card .phrase')].map(p => p.textContent),
                                    underlined: [...e.querySelectorAll('.source .idiom')].map(u => u.textContent)}))""",
        )
        errors = list(page.errors)

    transcript = wait_until(
        lambda: (
            (lines := (api(runtime, f"/api/sessions/{session_id}/transcript") or {}).get("utterances"))
            and all(line["translation"] for line in lines if line["text"])
            and lines
        ),
        60,
        "the transcript in the read model",
    )
    spoken = [line for line in transcript if line["text"]]
    print(json.dumps(cards, ensure_ascii=False, indent=1))
    assert sorted(c["id"] for c in cards) == sorted(line["utterance_id"] for line in spoken)  # none twice or missing
    by_id = {line["utterance_id"]: line for line in spoken}
    for c in cards:
        assert c["target"].strip() == by_id[c["id"]]["translation"]["text"].strip()
    shown = {i for c in cards for i in c["idioms"]}
    assert shown & IDIOMS, f"idiom cards shown: {shown}"
    assert all(c["underlined"] for c in cards if c["idioms"])  # each idiom underlined in its source line
    assert not errors, errors

    timings = {
        "first_live_card_s": round((live_at - audio_at) / 1000, 2),
        "first_final_transcript_card_s": round((first_heard_at - audio_at) / 1000, 2),
        "first_final_card_with_translation_s": round((first_final_at - audio_at) / 1000, 2),
        "first_clip_speech_ends_s": round(first_end_s, 2),
        "final_after_speech_end_s": round((first_final_at - audio_at) / 1000 - first_end_s, 2),
    }
    (artifacts / "timings.json").write_text(json.dumps(timings, indent=2))
    print(f"from the first audio chunk: {timings}")
    assert timings["first_live_card_s"] < first_end_s  # live while the first clip still plays


@pytest.mark.slow
def test_direction_toggle_sends_settings_and_the_session_follows(runtime: Runtime, tmp_path: Path) -> None:
    """EN→ES and Classroom tapped while listening: the page sends a `settings` frame, the
    session's `session.settings_changed` comes back, and the stored session says en-es."""
    mic = write_wav(tmp_path / "quiet.wav", silence(30))
    with phone(mic) as page:
        sent: list[dict[str, Any]] = []

        def on_socket(ws: Any) -> None:
            ws.on("framesent", lambda payload: sent.append(json.loads(payload)) if isinstance(payload, str) else None)

        page.on("websocket", on_socket)
        open_app(page, runtime)
        assert page.get_attribute('[data-direction="es-en"]', "aria-pressed") == "true"
        page.click("#start")
        page.wait_for_selector("body[data-session-direction=es-en]", timeout=30000)
        session_id = page.evaluate("window.habla.app.link.sessionId")
        page.click('[data-direction="en-es"]')
        page.click('[data-mode="classroom"]')
        assert page.get_attribute('[data-direction="en-es"]', "aria-pressed") == "true"
        page.wait_for_selector("body[data-session-direction=en-es][data-session-mode=classroom]", timeout=30000)
        frames = [f for f in sent if f.get("type") == "settings"]
        assert {"type": "settings", "direction": "en-es"} in frames and {
            "type": "settings",
            "mode": "classroom",
        } in frames
        start = next(f for f in sent if f.get("type") == "session.start")
        assert (start["codec"], start["sample_rate"], start["direction"]) == ("pcm16", 16000, "es-en")
        stored = wait_until(
            lambda: (s := api(runtime, f"/api/sessions/{session_id}")) and s["direction"] == "en-es" and s,
            30,
            "the session's direction in the read model",
        )
        assert stored["mode"] == "classroom"
        page.click("#start")  # Stop
        page.wait_for_selector("body[data-listening=false]")
        wait_until(lambda: any(f.get("type") == "session.end" for f in sent), 15, "session.end", page)
        # the choice is the phone's default for the next session
        assert page.evaluate("localStorage.getItem('habla.direction')") == "en-es"


@pytest.mark.slow
def test_wrong_token_and_unreachable_server_get_a_clear_screen(runtime: Runtime, artifacts: Path) -> None:
    """A wrong token: a full screen that says so, with a field for the right one (which then
    works). The server gone: the app shell still opens (service worker) and says it cannot reach
    Habla, then carries on by itself when the server is back."""
    with phone() as page:
        page.goto(f"{runtime.url}/#token=not-the-token")
        page.wait_for_selector("body[data-screen=unauthorized]", timeout=15000)
        assert page.is_visible("#gate") and "refused" in page.inner_text("#gate-title")
        assert page.is_visible("#token-input")
        page.screenshot(path=str(artifacts / "phone-wrong-token.png"))
        page.fill("#token-input", runtime.token)
        page.press("#token-input", "Enter")
        page.wait_for_selector("body[data-screen=app]", timeout=15000)
        assert not page.is_visible("#gate")

        wait_js(page, "navigator.serviceWorker.ready.then(r => Boolean(r.active))", 15)
        wait_js(page, "Boolean(navigator.serviceWorker.controller)", 15)
        runtime.stop("gateway")
        try:
            page.reload()
            page.wait_for_selector("body[data-screen=unreachable]", timeout=15000)
            assert "reach" in page.inner_text("#gate-title") and page.is_visible("#retry")
            page.screenshot(path=str(artifacts / "phone-unreachable.png"))
        finally:
            runtime.start("gateway")
            runtime.wait_healthy()
        page.wait_for_selector("body[data-screen=app]", timeout=20000)  # it retries by itself


@pytest.mark.slow
def test_audio_recorded_while_the_gateway_is_down_is_sent_on_reconnect(
    runtime: Runtime, tmp_path: Path, artifacts: Path
) -> None:
    """The gateway is killed while the phone records and comes back seconds later: the phone
    keeps recording, shows the connection lost and the audio it holds, resumes the same session
    and resends what the gateway had not taken. Every line ends as one final card (none twice,
    none missing) and the words of both clips are there, those spoken during the outage too."""
    clips = ("fleurs-es-002.wav", "fleurs-es-003.wav")
    first, second = (read_clip(name) for name in clips)
    mic = write_wav(tmp_path / "mic.wav", np.concatenate([silence(0.5), first, silence(1.5), second, silence(6)]))
    with phone(mic) as page:
        open_app(page, runtime)
        page.evaluate(OBSERVE)
        page.click("#start")
        audio_at = wait_until(lambda: page.evaluate("window.habla.app.metrics.firstChunkAt"), 20, "audio", page)
        wait_js(page, "window.seen.live", 60)
        session_id = page.evaluate("window.habla.app.link.sessionId")

        runtime.kill("gateway")  # abruptly, as a dropped network would
        page.wait_for_selector("#conn[data-state=waiting]", timeout=15000)
        page.wait_for_timeout(3000)  # recording on, into the phone's buffer
        kept = page.evaluate("window.habla.app.link.bufferedSeconds")
        assert kept >= 2, kept
        assert page.is_visible("#banner") and "Connection lost" in page.inner_text("#banner")
        page.screenshot(path=str(artifacts / "phone-reconnecting.png"))
        runtime.start("gateway")
        runtime.wait_healthy()
        page.wait_for_selector("#conn[data-state=live]", timeout=30000)
        assert page.evaluate("window.habla.app.link.sessionId") == session_id  # the same session, resumed
        assert page.evaluate("window.habla.app.link.resumed") >= 1

        stop_at = audio_at + (0.5 + (first.size + second.size) / RATE + 1.5 + 2.0) * 1000
        page.wait_for_timeout(max(0, stop_at - page.evaluate("Date.now()")))
        page.click("#start")
        wait_until(
            lambda: page.evaluate(
                f"""() => {{ const s = window.habla.state.sessions.get('{session_id}');
                    const cards = [...window.habla.state.cards.values()].filter(c => c.sessionId === s.id && !c.hidden);
                    return s.drained !== null && cards.length > 0 && cards.every(c => !c.live && c.translation); }}"""
            ),
            240,
            "every card final and translated",
            page,
        )
        cards = page.eval_on_selector_all(
            ".card.final",
            "els => els.map(e => ({id: e.dataset.utteranceId, source: e.querySelector('.source').textContent}))",
        )
        assert page.evaluate("window.habla.app.link === null")  # stopped
    lines = wait_until(
        lambda: (
            (u := (api(runtime, f"/api/sessions/{session_id}/transcript") or {}).get("utterances"))
            and all(line["translation"] for line in u if line["text"])
            and u
        ),
        60,
        "the transcript",
    )
    spoken = [line for line in lines if line["text"]]
    assert sorted(c["id"] for c in cards) == sorted(line["utterance_id"] for line in spoken)
    heard = " ".join(line["text"] for line in spoken)
    words = {w.strip(".,¿?¡!").lower() for w in heard.split()}
    with (SPEECH / "manifest.csv").open(newline="") as f:
        manifest = {row["file"]: row["transcript_es"] for row in csv.DictReader(f)}
    for clip in clips:
        reference = manifest[clip].split()
        found = sum(w in words for w in reference) / len(reference)
        print(f"{clip}: {found:.0%} of its words heard ({heard!r})")
        assert found >= 0.8, (clip, heard)
