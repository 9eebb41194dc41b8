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
import urllib.error
import urllib.request
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
import redis

from habla.supervisor import Runtime, running
from habla_gateway import GatewayConfig, create_app
from tests.browser_kit import CHROMIUM, PHONE, UI_TOKEN, phone, wait_js, wait_until

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT.parent / "shared" / "eval" / "speech"
RATE = 16000
# Two clips whose finals hold idioms of the database: "Hoy en día, las personas escriben
# mensajes ..." (hoy en día) and "... también le rindieron homenaje." (rendir homenaje).
CLIPS = ("fleurs-es-005.wav", "fleurs-es-006.wav")
IDIOMS = {"hoy en día", "rendir homenaje"}
# --- servers for the whole module: one runtime, as `habla up` runs it ------------------------


@pytest.fixture(scope="module")
def module_redis(redis_url_for: Callable[[int], str]) -> Iterator[str]:
    """The runtime's own database: tests here that use the per-test ``redis_url`` (the lone
    gateway) empty theirs, which must not pull the streams from under the running services."""
    base = int(os.environ.get("HABLA_TEST_REDIS_DB", "14"))
    url = redis_url_for(base + 1 if base < 15 else base - 1)
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
        services=("recorder", "ingest", "diarize", "asr", "translate", "tts", "gateway"),
    ) as rt:
        yield rt


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


def translated_transcript(rt: Runtime, session_id: str) -> list[dict[str, Any]]:
    """The session's transcript lines once the read model has every spoken line translated."""
    return wait_until(
        lambda: (
            (lines := (api(rt, f"/api/sessions/{session_id}/transcript") or {}).get("utterances"))
            and all(line["translation"] for line in lines if line["text"])
            and lines
        ),
        60,
        "the transcript, translated, in the read model",
    )


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
        page.click("#speak")  # read translations aloud
        assert page.get_attribute("#speak", "aria-pressed") == "true"
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
        # every final translation of the session was read aloud: the tts stage's audio, played on the phone
        try:
            wait_js(
                page,
                "new Set(window.habla.spoken.map(s => s.spokenId)).size >= "
                "document.querySelectorAll('.card.final').length",
                60,
            )
        except AssertionError as e:
            voice = page.evaluate("({spoken: window.habla.spoken, skipped: window.habla.voice.skipped})")
            raise AssertionError(f"{e}; played and skipped: {voice}") from e

        # Save on the idiom card: the card says Saved, and the term reaches the session's read model
        idiom_card = page.query_selector_all(".card.final:has(.idiom-card)")[-1]
        phrase = idiom_card.eval_on_selector(".idiom-card .phrase", "e => e.textContent")
        idiom_card.eval_on_selector(".idiom-card .save", "e => e.click()")
        wait_js(
            page,
            "e => e.querySelector('.idiom-card .save').textContent.startsWith('Saved')",
            30,
            arg=idiom_card,
        )
        if page.is_visible("#jump"):
            page.click("#jump")  # back to the newest card
        idiom_card.eval_on_selector(".idiom-card", "e => e.scrollIntoView({block: 'end'})")
        page.wait_for_timeout(300)
        page.screenshot(path=str(artifacts / "phone-idiom-saved.png"))

        # tap a speaker chip, give the voice a name: every line of that speaker shows it
        chip = page.query_selector(".card.final .speaker")
        assert chip is not None
        speaker_id = chip.get_attribute("data-speaker")
        chip.click()
        page.wait_for_selector("#rename[open]")
        page.fill("#rename-name", "  Profesora   Marta ")
        page.screenshot(path=str(artifacts / "phone-rename.png"))
        page.click('#rename button[value="save"]')
        page.wait_for_selector("#rename:not([open])", state="attached")
        wait_js(
            page,
            f"""[...document.querySelectorAll('.card .speaker[data-speaker="{speaker_id}"]')]
                  .every(c => c.textContent.trim() === 'Profesora Marta')""",
            15,
        )

        cards = page.eval_on_selector_all(
            ".card.final",
            """els => els.map(e => ({id: e.dataset.utteranceId, source: e.querySelector('.source').textContent,
                                    target: e.querySelector('.target').textContent,
                                    idioms: [...e.querySelectorAll('.idiom-card .phrase')].map(p => p.textContent),
                                    underlined: [...e.querySelectorAll('.source .idiom')].map(u => u.textContent)}))""",
        )
        errors = list(page.errors)

    transcript = translated_transcript(runtime, session_id)
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
    stored = wait_until(lambda: api(runtime, f"/api/sessions/{session_id}"), 30, "the session")
    named = wait_until(
        lambda: [
            sp
            for sp in (api(runtime, f"/api/sessions/{session_id}") or stored)["speakers"]
            if sp["speaker"] == speaker_id and sp["name"] == "Profesora Marta"
        ],
        30,
        "the new name in the read model",
    )
    assert named[0]["display"] == "Profesora Marta"
    with psycopg.connect(runtime.env["DATABASE_URL"]) as conn:
        saved = wait_until(
            lambda: conn.execute(
                "SELECT term_kind, text, utterance_id FROM saved_terms WHERE session_id = %s", (session_id,)
            ).fetchall(),
            30,
            "the saved idiom in the read model",
        )
    assert [(kind, text) for kind, text, _ in saved] == [("idiom", phrase)]
    assert saved[0][2] in {c["id"] for c in cards}

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
    lines = translated_transcript(runtime, session_id)
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


def test_a_paused_microphone_is_shown_and_the_screen_stays_on(gateway_only: str, tmp_path: Path) -> None:
    """While listening the page holds a screen wake lock. When the phone mutes the microphone
    track (a call, the app in the background: the track's ``mute`` event) the mic pill and a
    banner say so; when it comes back a toast says how long it was off, and listening goes on."""
    mic = write_wav(tmp_path / "tone.wav", (np.sin(np.arange(RATE * 20) / 5) * 5000).astype(np.int16))
    with phone(mic) as page:
        page.context.grant_permissions(["screen-wake-lock"])  # a phone grants it to a visible page
        page.goto(f"{gateway_only}/#token={UI_TOKEN}")
        page.wait_for_selector("body[data-screen=app]", timeout=15000)
        page.click("#start")
        page.wait_for_selector("body[data-listening=true]", timeout=15000)
        wait_js(page, "window.habla.app.metrics.lastChunkAt", 15)
        wait_js(page, "(w => w && w.type === 'screen' && !w.released)(window.habla.app.wake)")
        track = "window.habla.app.mic.stream.getAudioTracks()[0]"
        page.evaluate(f"{track}.dispatchEvent(new Event('mute'))")
        page.wait_for_selector("#mic[data-state=error]", timeout=5000)
        assert page.inner_text("#mic-text") == "Mic paused"
        assert page.is_visible("#banner") and "microphone" in page.inner_text("#banner")
        page.wait_for_timeout(2500)  # silent chunks keep coming from a muted track: still paused
        assert page.inner_text("#mic-text") == "Mic paused"
        page.evaluate(f"{track}.dispatchEvent(new Event('unmute'))")
        page.wait_for_selector("#mic[data-state=on]", timeout=5000)
        toast = page.inner_text("#toast")
        assert re.search(r"paused for [2-9] s", toast), toast
        assert not page.is_visible("#banner")
        page.click("#start")
        page.wait_for_selector("body[data-listening=false]")
        wait_js(page, "window.habla.app.wake === null", 10)
        assert not page.errors, page.errors


@pytest.mark.slow
def test_audio_kept_on_the_phone_survives_a_reload(runtime: Runtime, tmp_path: Path, artifacts: Path) -> None:
    """The gateway goes down while the phone listens, a sentence is spoken, and the page is
    reloaded before the gateway is back (Android discarding a background tab does the same):
    the audio the server never confirmed was kept in IndexedDB. After the reload the page
    sends it into the same session by chunk index and ends that session; the sentence comes
    back as one final card with its translation, and its words are all there."""
    clip_name = "fleurs-es-003.wav"
    clip = read_clip(clip_name)
    mic = write_wav(tmp_path / "mic.wav", np.concatenate([silence(2.5), clip, silence(2.5)]))
    with phone(mic) as page:
        open_app(page, runtime)
        page.click("#start")
        wait_js(page, "window.habla.app.link && window.habla.app.link.status().state === 'live'", 30)
        started = wait_js(page, "window.habla.app.metrics.micStartedAt", 15)
        session_id = page.evaluate("window.habla.app.link.sessionId")
        runtime.kill("gateway")
        try:
            page.wait_for_selector("#conn[data-state=waiting]", timeout=15000)
            spoken_by = started + (2.5 + clip.size / RATE + 2.0) * 1000
            page.wait_for_timeout(max(0, spoken_by - page.evaluate("Date.now()")))
            held = page.evaluate("window.habla.app.link.chunks.length")
            assert held / 4 >= clip.size / RATE, held  # the whole sentence is on the phone
            kept = wait_until(
                lambda: (
                    page.evaluate(
                        """sid => new Promise(done => { const r = indexedDB.open('habla');
                         r.onsuccess = () => { const q = r.result.transaction('chunks').objectStore('chunks')
                           .count(IDBKeyRange.bound([sid, -Infinity], [sid, Infinity]));
                           q.onsuccess = () => done(q.result); }; })""",
                        session_id,
                    )
                    >= held
                ),
                10,
                "the held chunks in IndexedDB",
                page,
            )
            assert kept
            page.reload()  # the recording stops with the page; the socket is gone anyway
            page.wait_for_selector("body[data-screen=unreachable]", timeout=15000)
        finally:
            runtime.start("gateway")
            runtime.wait_healthy()
        page.wait_for_selector("body[data-screen=app]", timeout=30000)
        restored = wait_js(page, "window.habla.app.restored", 15)
        assert restored["sessionId"] == session_id and restored["chunks"] >= held
        assert page.evaluate("window.habla.app.listening") is False
        wait_until(
            lambda: page.evaluate(
                f"""() => {{ const s = window.habla.state.sessions.get('{session_id}');
                    const cards = [...window.habla.state.cards.values()]
                      .filter(c => c.sessionId === '{session_id}' && !c.hidden);
                    return s && s.ended && s.drained !== null && cards.length > 0
                           && cards.every(c => !c.live && c.translation); }}"""
            ),
            240,
            "the restored session's cards, final and translated",
            page,
        )
        cards = page.eval_on_selector_all(
            f'.card.final[data-session-id="{session_id}"]',
            "els => els.map(e => ({id: e.dataset.utteranceId, source: e.querySelector('.source').textContent}))",
        )
        page.screenshot(path=str(artifacts / "phone-after-reload.png"))
        # once drained, nothing is left to resend: IndexedDB and the reminder are cleared
        wait_js(page, "localStorage.getItem('habla.recording') === null", 30)
        unexpected = [e for e in page.errors if "Failed to load resource" not in e and "WebSocket" not in e]
        assert not unexpected, unexpected  # the gateway's absence is logged by the browser, nothing else
    lines = translated_transcript(runtime, session_id)
    spoken = [line for line in lines if line["text"]]
    assert sorted(c["id"] for c in cards) == sorted(line["utterance_id"] for line in spoken)
    heard = {w.strip(".,¿?¡!").lower() for line in spoken for w in line["text"].split()}
    with (SPEECH / "manifest.csv").open(newline="") as f:
        reference = next(row["transcript_es"] for row in csv.DictReader(f) if row["file"] == clip_name).split()
    found = sum(w in heard for w in reference) / len(reference)
    print(f"after the reload: {found:.0%} of {clip_name}'s words heard ({' / '.join(c['source'] for c in cards)})")
    assert found >= 0.8, (found, spoken)
