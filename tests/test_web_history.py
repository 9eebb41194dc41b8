"""The phone client's History page in headless Chromium (360×800) against the real gateway,
real Redis and Postgres, and the real recorder consuming the bus; real FLEURS speech.

Two conversations are recorded as the services would record them (their facts published on
the bus, the recorder projecting them and storing the audio as Ogg/Opus): "Café con Luna", with
two speakers, one line split into two speaker turns, an idiom and a line whose translation
failed and whose audio was never stored; and an older one. The page lists them newest first,
shows the transcript line by line with speakers and translations, replays the recording line by
line with the playing line highlighted (a later turn seeks inside its utterance's audio, a line
without audio is skipped), saves selected words to the study deck (they reach Postgres through
the bus and the recorder), downloads the Markdown, and deletes the conversation after a
confirmation. Screenshots go to the ``artifacts`` folder; the best are kept in docs/screenshots.
"""

from __future__ import annotations

import shutil
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from habla_common.bus import RedisBus
from habla_common.consumer import Consumer
from habla_common.eventlog import PostgresEventStore, connect_pg
from habla_contracts import (
    Event,
    SessionEnded,
    SessionStarted,
    SpeakerAssigned,
    SpeakerJoined,
    SpeakerRenamed,
    TranscriptFinal,
    TranslationFinal,
    UtteranceSegmented,
    derived_id,
)
from habla_contracts.streams import fact_kinds
from habla_recorder.handlers import Recorder
from tests.browser_kit import CHROMIUM, PHONE, SELECT_TEXT, UI_TOKEN, phone, wait_js, wait_until

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT.parent / "shared" / "eval" / "speech"
SCREENSHOTS = ROOT / "docs" / "screenshots"
AUDIO = "document.querySelector('audio.history-audio')"

SID = "cafe-con-luna"
OLD = "mercado"
U0 = derived_id(SID, "utt", 0)  # one speaker, one idiom
U1 = derived_id(SID, "utt", 1)  # split: Speaker 2 ...
T1 = derived_id(U1, "turn", 1)  # ... then Luna, in the same recording
U2 = derived_id(SID, "utt", 2)  # translation failed, no audio stored
SPLIT_MS = 2300  # where the second turn starts in U1's recording
HOMENAJE = "Los luchadores compañeros de Luna también le rindieron homenaje."
LINES = {
    U0: ("Luna", HOMENAJE, "Fellow wrestlers also paid tribute to Luna."),
    U1: ("Speaker 2", "Esto parece tener sentido,", "This seems to make sense,"),
    T1: (
        "Luna",
        "ya que en la Tierra no se percibe su movimiento, ¿cierto?",
        "since on Earth you can't feel it move, right?",
    ),
    U2: ("Speaker 2", "Carpanedo participó en dos carreras individuales del campeonato.", None),
}


def speech(name: str) -> bytes:
    path = SPEECH / f"{name}.wav"
    if not path.is_file():
        pytest.skip(f"no evaluation audio at {SPEECH}")
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        return w.readframes(w.getnframes())


class RecorderOnBus:
    """The recorder as `habla up` runs it: a consumer of every fact kind on the bus."""

    def __init__(self, bus: RedisBus, url: str) -> None:
        self.recorder = Recorder(connect_pg(url, autocommit=True), PostgresEventStore(url), bus=bus)
        self.consumer = Consumer(bus, "recorder", fact_kinds(), self.recorder.handle, name="recorder-test", block_ms=50)
        self.consumer.maintain_leases()

    def publish(self, bus: RedisBus, events: list[Event]) -> None:
        for e in events:
            bus.publish(e)
        self.drain()

    def drain(self) -> None:
        idle = 0
        while idle < 2:
            idle = idle + 1 if self.consumer.poll() == 0 else 0


@pytest.fixture
def recorder(bus: RedisBus, pg_url: str) -> Iterator[RecorderOnBus]:
    rec = RecorderOnBus(bus, pg_url)
    yield rec
    rec.consumer.release_all()


def conversation() -> list[Event]:
    """Café con Luna: its facts as the pipeline publishes them, ten minutes ago."""
    t0 = time.time() - 600
    pcm0, pcm1 = speech("fleurs-es-006"), speech("fleurs-es-003")
    s0, e0 = 500, 500 + len(pcm0) // 32
    s1 = e0 + 1500
    e1 = s1 + len(pcm1) // 32
    s2, e2 = e1 + 1000, e1 + 4000
    idiom_at = HOMENAJE.index("rindieron homenaje")
    turns = (
        {"utterance_id": U1, "part": 0, "start_ms": s1, "end_ms": s1 + SPLIT_MS, "speaker": "S2"},
        {"utterance_id": T1, "part": 1, "start_ms": s1 + SPLIT_MS, "end_ms": e1, "speaker": "S1"},
    )

    def translated(uid: str, index: int, **fields: Any) -> TranslationFinal:
        _, text, english = LINES[uid]
        return TranslationFinal(
            session_id=SID,
            utterance_id=uid,
            index=index,
            source_text=text,
            corrected=text,
            translation=english or "",
            source_language="es",
            target_language="en",
            model="test",
            **fields,
        )

    return [
        SessionStarted(session_id=SID, occurred_at=t0, title="Café con Luna", direction="es-en", mode="conversation"),
        SpeakerJoined(session_id=SID, speaker="S1", number=1, label="Speaker 1", color="#D55E00"),
        SpeakerJoined(session_id=SID, speaker="S2", number=2, label="Speaker 2", color="#0072B2"),
        SpeakerRenamed(session_id=SID, speaker="S1", name="Luna"),
        UtteranceSegmented(session_id=SID, utterance_id=U0, index=0, start_ms=s0, end_ms=e0, pcm=pcm0),
        TranscriptFinal(
            session_id=SID, utterance_id=U0, index=0, start_ms=s0, end_ms=e0, speaker="S1", text=HOMENAJE, language="es"
        ),
        translated(
            U0,
            0,
            idioms=(
                {
                    "phrase": "rindieron homenaje",
                    "canonical": "rendir homenaje",
                    "literal": "to render homage",
                    "meaning": "to pay tribute",
                    "start": idiom_at,
                    "end": idiom_at + len("rindieron homenaje"),
                    "origin": "db",
                },
            ),
        ),
        UtteranceSegmented(session_id=SID, utterance_id=U1, index=1, start_ms=s1, end_ms=e1, pcm=pcm1),
        SpeakerAssigned(session_id=SID, utterance_id=U1, index=1, speaker="S2", turns=turns),
        TranscriptFinal(
            session_id=SID,
            utterance_id=U1,
            index=1,
            parts=2,
            start_ms=s1,
            end_ms=s1 + SPLIT_MS,
            speaker="S2",
            text=LINES[U1][1],
            language="es",
        ),
        TranscriptFinal(
            session_id=SID,
            utterance_id=T1,
            index=1,
            part=1,
            parts=2,
            parent_id=U1,
            start_ms=s1 + SPLIT_MS,
            end_ms=e1,
            speaker="S1",
            text=LINES[T1][1],
            language="es",
        ),
        translated(U1, 1),
        translated(T1, 1),
        # no speech.segmented: its audio was never stored (recorded before audio was kept)
        TranscriptFinal(
            session_id=SID, utterance_id=U2, index=2, start_ms=s2, end_ms=e2, speaker="S2", text=LINES[U2][1]
        ),
        translated(U2, 2, status="untranslated"),
        SessionEnded(session_id=SID, occurred_at=t0 + e2 / 1000 + 60, reason="client"),
    ]


def older() -> list[Event]:
    t0 = time.time() - 86400 * 3
    u = derived_id(OLD, "utt", 0)
    return [
        SessionStarted(session_id=OLD, occurred_at=t0, title="Mercado", direction="es-en", mode="conversation"),
        TranscriptFinal(session_id=OLD, utterance_id=u, index=0, start_ms=0, end_ms=1500, text="Hola, ¿qué tal?"),
        SessionEnded(session_id=OLD, occurred_at=t0 + 300),
    ]


def rows(pg_url: str, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        return conn.execute(query, args).fetchall()


# Which line the page highlighted, in order, with where the audio was then, and which clips the
# audio element loaded: observers in the page (polling from the test would miss a short turn).
WATCH_PLAYING = """() => {
  window.playedLines = [];
  window.clipsLoaded = [];
  const audio = document.querySelector('audio.history-audio');
  audio.addEventListener('loadstart', () => audio.src && window.clipsLoaded.push(audio.src));
  new MutationObserver(() => {
    const on = document.querySelector('.hline.playing');
    const id = on ? on.dataset.utteranceId : null;
    const last = window.playedLines[window.playedLines.length - 1];
    if (id && (!last || last.id !== id) && on.getAttribute('aria-current') === 'true') {
      window.playedLines.push({id, at: audio.currentTime});
    }
  }).observe(document.querySelector('.history-lines'), {subtree: true, attributes: true, attributeFilter: ['class']});
}"""

# a transcript line's Spanish, for SELECT_TEXT (words selected as a finger would)
LINE_SOURCE = '.hline[data-utterance-id="{}"] .source'


def test_history_lists_replays_saves_and_deletes(
    gateway_only: str, bus: RedisBus, recorder: RecorderOnBus, pg_url: str, artifacts: Path
) -> None:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    recorder.publish(bus, older() + conversation())
    assert rows(pg_url, "SELECT count(*) FROM utterance_audio WHERE session_id = %s", SID) == [(2,)]

    with phone() as page:
        page.goto(f"{gateway_only}/#token={UI_TOKEN}")
        page.wait_for_selector("body[data-screen=app]", timeout=15000)
        page.click(".tabs a[data-page=history]")

        # the list: newest first, with when, how long, how many lines, direction and mode
        page.wait_for_selector(".session-row")
        listed = page.eval_on_selector_all(".session-row", "els => els.map(e => e.dataset.sessionId)")
        assert listed == [SID, OLD]
        first = page.inner_text(f'.session-row[data-session-id="{SID}"]')
        assert "Café con Luna" in first and "Today" in first and "4 lines" in first, first
        assert "ES→EN" in first and "Chat" in first
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.screenshot(path=str(artifacts / "phone-history-list.png"))

        # one conversation: every line in order, with its speaker and translation
        page.click(f'.session-row[data-session-id="{SID}"]')
        page.wait_for_selector(".hline")
        assert page.evaluate("location.hash") == f"#/history/{SID}"
        shown = page.eval_on_selector_all(
            ".hline",
            """els => els.map(e => ({
                id: e.dataset.utteranceId,
                session: e.dataset.sessionId,
                speaker: e.querySelector('.speaker')?.textContent,
                source: e.querySelector('.source').textContent,
                target: e.querySelector('.target').textContent,
                flag: e.querySelector('.flag.warn')?.textContent || null,
            }))""",
        )
        assert [line["id"] for line in shown] == list(LINES)
        for line in shown:
            speaker, text, english = LINES[line["id"]]
            assert (line["session"], line["speaker"], line["source"]) == (SID, speaker, text)
            if english:
                assert (line["target"], line["flag"]) == (english, None)
            else:
                assert line["flag"] == "not translated" and "failed" in line["target"]
        assert page.inner_text(".hline .source .idiom") == "rindieron homenaje"
        assert "to pay tribute" in page.inner_text(f'.hline[data-utterance-id="{U0}"] .idioms')
        assert page.eval_on_selector(
            f'.hline[data-utterance-id="{U0}"] .speaker', "e => e.style.getPropertyValue('--speaker')"
        ) == ("#D55E00")

        assert page.evaluate("document.activeElement.className") == "session-title"  # for a screen reader
        page.screenshot(path=str(artifacts / "phone-history-session.png"))

        # replay: the first line plays, highlighted, then the next ones, one after the other
        page.evaluate(WATCH_PLAYING)
        page.click(".player-play")
        page.wait_for_selector(f'.hline.playing[aria-current="true"][data-utterance-id="{U0}"]')
        wait_js(page, f"{AUDIO}.currentTime > 0.4", 10)
        at = page.evaluate(f"{AUDIO}.currentTime")
        wait_js(page, f"{AUDIO}.currentTime > {at} + 0.3", 10)
        assert page.get_attribute(".player-play", "aria-pressed") == "true"
        assert page.inner_text(".player-text") == "Pause"
        page.screenshot(path=str(artifacts / "phone-history-playing.png"))
        # faster than life, so the test stays short (a new clip keeps the default rate)
        page.evaluate(f"(() => {{ const a = {AUDIO}; a.defaultPlaybackRate = 3; a.playbackRate = 3; }})()")
        wait_js(page, "document.querySelector('.player-status').textContent.includes('Played to the end')", 20)
        played = page.evaluate("window.playedLines")
        assert [p["id"] for p in played] == [U0, U1, T1, U2], played
        # two recordings loaded: the second turn went on in its utterance's recording, from
        # where the first turn ended
        assert len(set(page.evaluate("window.clipsLoaded"))) == 2
        assert SPLIT_MS / 1000 - 0.1 <= played[2]["at"] <= SPLIT_MS / 1000 + 1.2, played
        assert page.is_visible(f'.hline[data-utterance-id="{U2}"] .no-audio')  # skipped, said quietly
        assert page.eval_on_selector_all(".hline.playing", "els => els.length") == 0
        assert page.inner_text(".player-text") == "Play"
        # the clips' object URLs are let go once played past
        assert page.evaluate(f"{AUDIO}.getAttribute('src')") is None

        # a line's own play button plays that line
        page.click(f'.hline[data-utterance-id="{T1}"] .hline-play')
        page.wait_for_selector(f'.hline.playing[data-utterance-id="{T1}"]')
        wait_js(page, f"{AUDIO}.currentTime > {SPLIT_MS / 1000}", 10)
        assert page.get_attribute(f'.hline[data-utterance-id="{T1}"] .hline-play', "aria-pressed") == "true"
        page.wait_for_timeout(400)  # the line scrolled into view
        page.screenshot(path=str(artifacts / "phone-history.png"))
        page.click(".player-play")  # pause
        wait_js(page, f"{AUDIO}.paused", 5)
        assert page.inner_text(".player-text") == "Resume"

        # selected words: a floating Save, then a study card (term.saved reaches Postgres)
        start = HOMENAJE.index("homenaje")
        assert page.evaluate(SELECT_TEXT, [LINE_SOURCE.format(U0), start, start + len("homenaje")]) == "homenaje"
        save = page.wait_for_selector(".selection-save:not([hidden])")
        assert save.inner_text() == "Save “homenaje”"
        box = save.bounding_box()
        assert box and box["height"] >= 44 and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        page.screenshot(path=str(artifacts / "phone-history-select.png"))
        save.tap()
        wait_js(page, "document.getElementById('toast').textContent === 'Saved “homenaje” to your study deck'", 10)
        # a drag that cuts words is widened to whole words: "ieron homen" saves a phrase
        cut = HOMENAJE.index("ieron homen")
        assert page.evaluate(SELECT_TEXT, [LINE_SOURCE.format(U0), cut, cut + len("ieron homen")]) == "ieron homen"
        save = page.wait_for_selector(".selection-save:not([hidden])")
        assert save.inner_text() == "Save “rindieron homenaje”"
        save.click()
        wait_js(page, "document.getElementById('toast').textContent.startsWith('Saved “rindieron homenaje”')", 10)
        page.wait_for_selector(".selection-save", state="hidden")

        def saved() -> list[tuple[Any, ...]]:
            recorder.drain()
            return rows(
                pg_url,
                "SELECT term_kind, text, utterance_id, language FROM saved_terms WHERE session_id = %s ORDER BY text",
                SID,
            )

        terms = wait_until(lambda: len(saved()) == 2 and saved(), 15, "the saved terms in Postgres")
        assert terms == [("word", "homenaje", U0, "es"), ("phrase", "rindieron homenaje", U0, "es")]

        page.emulate_media(color_scheme="dark")
        page.wait_for_timeout(300)  # the cards' colour transition
        page.screenshot(path=str(artifacts / "phone-history-dark.png"))
        page.emulate_media(color_scheme="light")
        page.set_viewport_size({"width": 1280, "height": 800})  # a desktop
        page.wait_for_timeout(300)
        page.screenshot(path=str(artifacts / "desktop-history.png"))
        page.set_viewport_size(PHONE)

        # the transcript downloads as Markdown
        with page.expect_download() as download:
            page.click(".history-action >> text=Markdown")
        assert download.value.suggested_filename.endswith("-cafe-con-luna.md")
        markdown = Path(download.value.path()).read_text()
        assert markdown.startswith("# Café con Luna") and "rindieron homenaje" in markdown

        # delete, confirmed: back to the list without it, and gone from the server
        page.click(".history-action.danger")
        page.wait_for_selector("dialog.history-confirm[open]")
        assert "Café con Luna" in page.inner_text("dialog.history-confirm")
        page.click("dialog.history-confirm >> text=Keep it")  # changed their mind
        assert not page.is_visible("dialog.history-confirm")
        page.click(".history-action.danger")
        page.click("dialog.history-confirm >> text=Delete for good")
        wait_js(page, "location.hash === '#/history'", 10)
        page.wait_for_selector(f'.session-row[data-session-id="{OLD}"]')
        assert page.eval_on_selector_all(".session-row", "els => els.map(e => e.dataset.sessionId)") == [OLD]

        def gone() -> bool:
            recorder.drain()
            return rows(pg_url, "SELECT count(*) FROM sessions WHERE session_id = %s", SID) == [(0,)]

        wait_until(gone, 15, "the recorder to delete the session")
        assert rows(pg_url, "SELECT count(*) FROM utterance_audio WHERE session_id = %s", SID) == [(0,)]
        page.reload()
        page.wait_for_selector(f'.session-row[data-session-id="{OLD}"]')
        assert page.eval_on_selector_all(".session-row", "els => els.map(e => e.dataset.sessionId)") == [OLD]
        # the line without audio answered 404, which Chromium logs; nothing else went wrong
        errors = [e for e in page.errors if "404" not in e]
        assert not errors, errors

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(artifacts / "phone-history.png", SCREENSHOTS / "phone-history.png")
    shutil.copyfile(artifacts / "phone-history-list.png", SCREENSHOTS / "phone-history-list.png")
