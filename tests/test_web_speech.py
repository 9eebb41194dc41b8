"""The phone client speaking out loud (web/speech.js) and practice mode, in headless Chromium.

Debian's chromium driven by playwright in a 360×800 phone viewport (tests/browser_kit.py), the
page under its real Content-Security-Policy.

Quick, against the gateway alone (no models):

* event frames fed to the page (``window.habla.feed``) render practice mode: the learner's line
  with its slip marked, the partner's card with the Spanish reply, its English hidden until
  "Show English", the corrections ("better: tengo (not tiene)") and the level chip; a failed
  reply shows its apology; fresh `tts.audio` frames play, stale ones (a resumed socket's
  backlog) and repeated ones do not;
* a real session recorded by the page, with `tts.audio` events published on the bus as the tts
  stage publishes them (espeak-ng WAVs): the sentences play one after another in arrival order;
  while they play the page shows "Speaking…" and the chunks that reach the gateway are silence
  (every other chunk carries the fake microphone's tone); tapping the speaking bar stops the
  voice and the rest of that text; words selected in a reply reach the bus as a saved term with
  the reply as its example; after a reload the restored session's audio is not played again.

Slow: the one-machine runtime with the tts stage and practice mode, the fake microphone saying
an espeak-ng learner line with a planted mistake: the partner's card comes back with Spanish and
a level, the mistake is corrected, and the reply is spoken on the phone. It saves the README's
screenshot, docs/screenshots/phone-practice.png.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import redis

from habla.supervisor import Runtime, running
from habla_common.bus import RedisBus, decode_entry
from habla_contracts import (
    AudioChunkReceived,
    Event,
    SpeechSynthesized,
    TermSaved,
    TranscriptFinal,
    TranslationFinal,
    TutorReplied,
    stream_key,
)
from tests.browser_kit import CHROMIUM, PHONE, SELECT_TEXT, UI_TOKEN, phone, wait_js, wait_until

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "docs" / "screenshots"
RATE = 16000
PARTITIONS = 2  # the gateway_only fixture's

LEARNER_LINE = "Hola, me llamo Pedro y yo tiene dos hermanos."
REPLY = "¡Qué bien, Pedro! Yo también tengo dos hermanos. ¿Cómo se llaman?"
REPLY_EN = "How nice, Pedro! I also have two brothers. What are their names?"
FIX = {"said": "tiene", "correct": "tengo", "why": "with «yo» the verb is «tengo»"}
EVIDENCE = {"words": 9, "rare_share": 0.11, "mean_length": 9.0, "errors_per_utterance": 1.0}


# --- helpers -------------------------------------------------------------------------------


def espeak(text: str, path: Path, voice: str = "es") -> bytes:
    """A WAV file of ``text`` spoken by espeak-ng (22.05 kHz PCM16 mono)."""
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(path), text], check=True, timeout=30)
    return path.read_bytes()


def wav_ms(data: bytes, path: Path) -> int:
    path.write_bytes(data)
    with wave.open(str(path)) as w:
        return int(1000 * w.getnframes() / w.getframerate())


def as_mic(data: bytes, path: Path, lead_s: float, tail_s: float) -> Path:
    """A WAV at 16 kHz for Chromium's fake microphone: ``lead_s`` of silence, the speech, ``tail_s``."""
    src = path.with_suffix(".src.wav")
    src.write_bytes(data)
    with wave.open(str(src)) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    t = np.arange(0, len(pcm) / rate, 1 / RATE)
    speech = np.interp(t, np.arange(len(pcm)) / rate, pcm)
    out = np.concatenate([np.zeros(int(lead_s * RATE)), speech, np.zeros(int(tail_s * RATE))])
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(out.astype("<i2").tobytes())
    return path


def tone(path: Path, seconds: float) -> Path:
    """A steady tone for the fake microphone: no chunk of it is silent."""
    pcm = (np.sin(np.arange(int(RATE * seconds)) * 2 * np.pi * 330 / RATE) * 6000).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    return path


def now_id(offset_ms: int = 0) -> str:
    return f"{int(time.time() * 1000) + offset_ms}-0"


def bus_events(r: redis.Redis, kind: str, session_id: str) -> list[Event]:
    """The events of one kind the bus holds for ``session_id``, from every partition's stream."""
    out: list[Event] = []
    for p in range(PARTITIONS):
        key = stream_key(kind, p)
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]], r.xrange(key))
        out += [e for eid, f in entries if (e := decode_entry(key, eid, f).event).session_id == session_id]
    return out


def chunks_of(r: redis.Redis, session_id: str) -> dict[int, bytes]:
    """The audio chunks the gateway put on the bus for ``session_id``: index -> PCM."""
    events = bus_events(r, "audio.chunk", session_id)
    return {e.chunk_index: e.data for e in events if isinstance(e, AudioChunkReceived) and e.data}


def saved_terms(r: redis.Redis, session_id: str) -> list[TermSaved]:
    return [e for e in bus_events(r, "term.saved", session_id) if isinstance(e, TermSaved)]


def open_page(page: Any, url: str, token: str) -> None:
    page.goto(f"{url}/#token={token}")
    page.wait_for_selector("body[data-screen=app]", timeout=15000)


def practice_frames() -> list[dict[str, Any]]:
    """A practice session's frames as the gateway sends them, ids from now (live)."""
    out: list[dict[str, Any]] = []
    base = int(time.time() * 1000) - 50

    def add(kind: str, **data: Any) -> None:
        out.append({"type": "event", "id": f"{base}-{len(out)}", "kind": kind, "data": data})

    add("session.started", direction="es-en", mode="practice", speak="auto", topic="mi familia")
    add("speaker.joined", speaker="S1", label="Speaker 1", color="#0072B2", number=1, is_user=True)
    add("speech.started", utterance_id="u0", index=0)
    add("asr.final", utterance_id="u0", index=0, text=LEARNER_LINE, language="es", speaker="S1")
    add("correction.detected", utterance_id="u0", index=0, cue="practice", speaker="S1", **FIX)
    add(
        "tutor.replied",
        utterance_id="u0",
        index=0,
        said=LEARNER_LINE,
        reply=REPLY,
        reply_translation=REPLY_EN,
        corrections=[FIX],
        level="A2",
        level_evidence=EVIDENCE,
        topic="mi familia",
        status="ok",
        llm_ms=900,
        speaker="S1",
    )
    add("speech.started", utterance_id="u1", index=1)
    add("asr.final", utterance_id="u1", index=1, text="Se llama Ana y Luis.", language="es", speaker="S1")
    slip = {"said": "Se llama", "correct": "Se llaman", "why": "two people: plural"}
    add("correction.detected", utterance_id="u1", index=1, cue="practice", speaker="S1", **slip)
    add(
        "tutor.replied",
        utterance_id="u1",
        index=1,
        said="Se llama Ana y Luis.",
        reply="Perdona, ahora no puedo contestar. ¿Lo intentamos otra vez?",
        status="failed",
        speaker="S1",
    )
    return out


def tts_frame(frame_id: str, spoken_id: str, chunk: int, audio: bytes, *, last: bool = False) -> dict[str, Any]:
    return {
        "type": "event",
        "id": frame_id,
        "kind": "tts.audio",
        "data": {
            "utterance_id": "u0",
            "index": 0,
            "spoken_id": spoken_id,
            "spoken_kind": "tutor.replied",
            "chunk": chunk,
            "last": last,
            "text": "Qué bien.",
            "language": "es",
            "engine": "espeak",
            "voice": "es",
            "sample_rate": 22050,
            "audio": base64.b64encode(audio).decode(),
            "audio_ms": 800,
            "synth_ms": 20,
            "error": "",
            "received_at": time.time(),
        },
    }


# --- quick: scripted events ------------------------------------------------------------------


def test_practice_cards_and_spoken_frames_from_scripted_events(
    gateway_only: str, tmp_path: Path, artifacts: Path
) -> None:
    """Practice chosen (topic field, Spanish, speaker on): the learner's line with its slip marked,
    the partner's card under it (reply, English hidden then shown, "better: tengo (not tiene)",
    level chip with its evidence), a failed reply's apology; fed again, nothing changes. A fresh
    `tts.audio` frame plays once; one from a resumed socket's backlog (published a minute ago)
    and a repeated one do not; a sentence that failed to synthesise is said by the browser."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    audio = espeak("Qué bien.", tmp_path / "reply.wav")
    with phone() as page:
        open_page(page, gateway_only, UI_TOKEN)
        assert page.is_visible("#direction") and not page.is_visible("#topic-form")
        assert page.get_attribute("#speak", "aria-pressed") == "false"  # auto, in ES→EN: silent
        page.click('[data-mode="practice"]')
        assert page.get_attribute('[data-mode="practice"]', "aria-pressed") == "true"
        assert page.is_visible("#topic-form") and not page.is_visible("#direction")
        assert page.evaluate("document.activeElement.id") == "topic"  # asks what to talk about
        page.fill("#topic", "  mi   familia ")
        page.press("#topic", "Enter")
        assert page.evaluate("localStorage.getItem('habla.topic')") == "mi familia"
        assert page.get_attribute("#speak", "aria-pressed") == "true"  # auto speaks the partner
        assert page.get_attribute("#speak", "data-speak") == "auto"
        assert page.is_visible(".practice-only") and not page.is_visible(".not-practice")

        frames = practice_frames()
        for f in frames:
            page.evaluate("f => window.habla.feed('p1', f)", f)
        page.wait_for_selector('.card.tutor[data-utterance-id="u1~reply"]')
        order = page.eval_on_selector_all("#cards > li.card", "els => els.map(e => e.dataset.utteranceId)")
        assert order == ["u0", "u0~reply", "u1", "u1~reply"]

        learner = '.card[data-utterance-id="u0"]'
        assert page.inner_text(f"{learner} mark.slip") == "tiene"
        assert "better: tengo" in (page.get_attribute(f"{learner} mark.slip", "title") or "")
        assert page.query_selector(f"{learner} .slips") is None  # listed on the partner's card
        assert page.query_selector(f"{learner} .target") is None  # answered, not translated

        reply = '.card.tutor[data-utterance-id="u0~reply"]'
        assert page.inner_text(f"{reply} .reply") == REPLY
        assert page.get_attribute(f"{reply} .reply", "lang") == "es"
        assert not page.is_visible(f"{reply} .reply-en")  # practice: the English waits
        assert page.inner_text(f"{reply} .reveal") == "Show English"
        chip = page.inner_text(f"{reply} .level-chip")
        assert chip == "your level: A2"
        title = page.get_attribute(f"{reply} .level-chip", "title") or ""
        assert "rare share: 0.11" in title and "errors per utterance: 1" in title and "words: 9" in title
        better = page.inner_text(f"{reply} .better li")
        assert better == f"better: tengo (not tiene) — {FIX['why']}"
        page.screenshot(path=str(artifacts / "phone-practice-scripted.png"))
        page.click(f"{reply} .reveal")
        assert page.is_visible(f"{reply} .reply-en") and page.inner_text(f"{reply} .reply-en") == REPLY_EN
        assert page.get_attribute(f"{reply} .reveal", "aria-expanded") == "true"
        page.click(f"{reply} .level-chip")
        assert "estimated from your lines" in page.inner_text("#toast")

        failed = '.card.tutor[data-utterance-id="u1~reply"]'
        assert "failed" in (page.get_attribute(failed, "class") or "")
        assert page.inner_text(f"{failed} .reply").startswith("Perdona")
        assert page.inner_text(f"{failed} .flag") == "no answer"
        assert page.query_selector(f"{failed} .level-chip") is None and page.query_selector(f"{failed} .reveal") is None
        # the slip of a line whose reply lists nothing stays on the learner's card
        slips = page.inner_text('.card[data-utterance-id="u1"] .slips')
        assert "Se llaman" in slips and "plural" in slips
        page.screenshot(path=str(artifacts / "phone-practice-scripted-open.png"))

        html = page.inner_html("#cards")
        for f in frames:  # the same frames again (a replay): nothing changes
            page.evaluate("f => window.habla.feed('p1', f)", f)
        page.wait_for_timeout(200)
        assert page.inner_html("#cards") == html
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

        # spoken audio: a fresh frame plays; its repeat and a minute-old backlog frame do not
        fresh = tts_frame(now_id(), "reply-1", 0, audio, last=True)
        page.evaluate("f => window.habla.feed('p1', f)", fresh)
        page.evaluate("f => window.habla.feed('p1', f)", fresh)
        wait_js(page, "window.habla.spoken.length === 1", 10)
        stale = tts_frame(now_id(-60000), "reply-0", 0, audio, last=True)
        page.evaluate("f => window.habla.feed('p-resumed', f)", stale)
        wait_js(page, f"window.habla.voice.skipped.some(s => s.id === '{stale['id']}' && s.why === 'stale')", 5)
        # a sentence the server could not synthesise: the browser's own voice says it
        failed_frame = tts_frame(now_id(), "reply-2", 0, b"", last=True)
        failed_frame["data"].update(audio="", error="espeak-ng exited with 1", text="¿Cómo se llaman?")
        page.evaluate("f => window.habla.feed('p1', f)", failed_frame)
        wait_js(page, "window.habla.spoken.length === 2", 10)
        wait_js(page, "document.body.dataset.speaking === 'false'", 15)
        spoken = page.evaluate("window.habla.spoken")
        assert [(s["id"], s["via"], s["spokenKind"]) for s in spoken] == [
            (fresh["id"], "audio", "tutor.replied"),
            (failed_frame["id"], "browser", "tutor.replied"),
        ]
        assert not page.errors, page.errors


# --- quick: a real session, events published on the bus ------------------------------------


def test_spoken_audio_plays_in_order_and_the_microphone_sends_silence(
    gateway_only: str, redis_url: str, tmp_path: Path, artifacts: Path
) -> None:
    """A session the page records (fake microphone: a steady tone) gets a partner's reply and its
    three sentences of audio, then another text's, published as the tts stage does: they play in
    arrival order, each after the one before ends; meanwhile the page says "Speaking…" and the
    chunks it sends are silence, the same count as the page silenced and no others. Tapping the
    speaking bar stops the voice, and a later sentence of that text stays silent while a new text
    plays. The speaker button turns speaking off for the session (audio still arriving stays
    silent) and back to auto. Words selected in the reply are saved with the reply as their example. After a reload
    the restored session's events come back, and none of its audio plays again."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    r = redis.Redis.from_url(redis_url)
    bus = RedisBus(r, partitions=PARTITIONS)
    sentences = ["¡Qué bien, Pedro!", "Yo también tengo dos hermanos.", "¿Cómo se llaman?"]
    wavs = [espeak(text, tmp_path / f"s{n}.wav") for n, text in enumerate(sentences)]
    lengths = [wav_ms(w, tmp_path / f"check{n}.wav") for n, w in enumerate(wavs)]
    other = espeak("Hasta luego.", tmp_path / "other.wav")
    long_one = espeak("Esta frase es bastante larga para poder pararla a la mitad sin prisa.", tmp_path / "l.wav")

    def synthesized(session_id: str, spoken: Any, n: int, text: str, wav: bytes, *, last: bool) -> SpeechSynthesized:
        return SpeechSynthesized(
            session_id=session_id,
            utterance_id=spoken.utterance_id,
            index=spoken.index,
            spoken_id=spoken.event_id,
            spoken_kind=spoken.KIND,
            chunk=n,
            last=last,
            text=text,
            language="es",
            engine="espeak",
            voice="es",
            sample_rate=22050,
            audio=wav,
            audio_ms=wav_ms(wav, tmp_path / "x.wav"),
            synth_ms=10,
            received_at=time.time(),
        )

    with phone(tone(tmp_path / "tone.wav", 120)) as page:
        open_page(page, gateway_only, UI_TOKEN)
        page.click('[data-mode="practice"]')
        page.click("#start")
        wait_js(page, "window.habla.app.link && window.habla.app.link.status().state === 'live'", 30)
        wait_js(page, "window.habla.app.capture.chunks >= 4", 15)
        sid = page.evaluate("window.habla.app.link.sessionId")

        bus.publish(TranscriptFinal(session_id=sid, utterance_id="u0", index=0, text=LEARNER_LINE, language="es"))
        reply = TutorReplied(
            session_id=sid,
            utterance_id="u0",
            index=0,
            said=LEARNER_LINE,
            reply=REPLY,
            reply_translation=REPLY_EN,
            corrections=(FIX,),
            level="A2",
            level_evidence=EVIDENCE,
            status="ok",
        )
        bus.publish(reply)
        first = [synthesized(sid, reply, n, sentences[n], wavs[n], last=n == 2) for n in range(3)]
        for event in first:
            bus.publish(event)
        translation = TranslationFinal(session_id=sid, utterance_id="u9", index=9, translation="Hasta luego.")
        second = synthesized(sid, translation, 0, "Hasta luego.", other, last=True)
        bus.publish(second)

        page.wait_for_selector("body[data-speaking=true]", timeout=10000)
        assert page.is_visible("#speaking") and page.inner_text("#mic-text") == "Speaking…"
        card = page.wait_for_selector('.card.tutor.speaking[data-utterance-id="u0~reply"]', timeout=5000)
        assert card is not None
        box = card.bounding_box()
        assert box and box["x"] > 0 and box["x"] + box["width"] <= PHONE["width"]  # marked, still in its place
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.screenshot(path=str(artifacts / "phone-speaking.png"))
        wait_js(page, "window.habla.spoken.length === 4", 30)
        page.wait_for_selector("body[data-speaking=false]", timeout=10000)
        played = page.evaluate("window.habla.spoken")
        assert [(p["spokenId"], p["chunk"]) for p in played] == [
            (reply.event_id, 0),
            (reply.event_id, 1),
            (reply.event_id, 2),
            (translation.event_id, 0),
        ]
        for before, after, ms in zip(played, played[1:], lengths, strict=False):
            assert after["at"] - before["at"] >= ms - 100, (played, lengths)  # queued behind, not over
        assert page.inner_text("#mic-text") == "Listening"

        # the chunks sent while Habla spoke are silence; every other one carries the tone
        page.wait_for_timeout(800)
        capture = page.evaluate("({...window.habla.app.capture})")
        assert capture["silenced"] >= sum(lengths) / 250, capture
        stored = wait_until(
            lambda: (c := chunks_of(r, sid)) and len(c) >= capture["chunks"] and c, 20, "the chunks on the bus", page
        )
        indices = sorted(stored)
        assert indices == list(range(len(indices)))  # cadence and numbering kept
        first_sound = next(i for i in indices if any(np.frombuffer(stored[i], "<i2")))
        silent = [i for i in indices[first_sound:] if not np.frombuffer(stored[i], "<i2").any()]
        assert len(silent) == page.evaluate("window.habla.app.capture.silenced"), (silent, capture)
        assert all(len(stored[i]) == 8000 for i in silent)

        # stop: the voice ends at once; the rest of that text stays silent, a new text plays
        long_reply = TutorReplied(session_id=sid, utterance_id="u1", index=1, said="x", reply="y", status="ok")
        bus.publish(synthesized(sid, long_reply, 0, "larga", long_one, last=False))
        page.wait_for_selector("body[data-speaking=true]", timeout=10000)
        page.wait_for_timeout(300)
        page.click("#speaking")
        page.wait_for_selector("body[data-speaking=false]", timeout=1500)
        rest = synthesized(sid, long_reply, 1, "resto", other, last=True)
        bus.publish(rest)
        wait_js(page, f"window.habla.voice.skipped.some(s => s.spokenId === '{long_reply.event_id}')", 10)
        new_text = TutorReplied(session_id=sid, utterance_id="u2", index=2, said="x", reply="z", status="ok")
        bus.publish(synthesized(sid, new_text, 0, "Hasta luego.", other, last=True))
        wait_js(page, f"window.habla.spoken.some(s => s.spokenId === '{new_text.event_id}')", 10)
        assert [p["spokenId"] for p in page.evaluate("window.habla.spoken")].count(long_reply.event_id) == 1

        # the speaker button: auto speaks the partner, a tap turns it off (for the session too)
        page.wait_for_selector("body[data-speaking=false]", timeout=10000)  # a tap while speaking stops it
        assert page.get_attribute("#speak", "aria-pressed") == "true"
        page.click("#speak")
        assert page.get_attribute("#speak", "aria-pressed") == "false"
        assert page.get_attribute("#speak", "data-speak") == "off"
        wait_js(page, f"window.habla.state.sessions.get('{sid}').speak === 'off'", 10)  # settings_changed
        muted = TutorReplied(session_id=sid, utterance_id="u3", index=3, said="x", reply="w", status="ok")
        bus.publish(synthesized(sid, muted, 0, "Hasta luego.", other, last=True))
        wait_js(page, f"window.habla.voice.skipped.some(s => s.spokenId === '{muted.event_id}' && s.why === 'off')")
        page.click("#speak")  # back to auto
        assert page.get_attribute("#speak", "data-speak") == "auto"
        wait_js(page, f"window.habla.state.sessions.get('{sid}').speak === 'auto'", 10)

        # words of the reply saved: the reply is their example sentence
        start = REPLY.index("hermanos")
        assert page.evaluate(SELECT_TEXT, ['.card.tutor[data-utterance-id="u0~reply"] .reply', start, start + 8])
        save = page.wait_for_selector(".selection-save:not([hidden])")
        assert save.inner_text() == "Save “hermanos”"
        save.tap()
        wait_js(page, "document.getElementById('toast').textContent.startsWith('Saved “hermanos”')", 10)
        terms = wait_until(lambda: saved_terms(r, sid), 10, "the saved term on the bus", page)
        assert [(t.text, t.term_kind, t.utterance_id, t.example, t.language) for t in terms] == [
            ("hermanos", "word", "", REPLY, "es")
        ]

        # a reload while listening: the session is restored and ended; its audio is not replayed
        count = len(first) + 5  # the tts.audio events published above
        page.reload()
        page.wait_for_selector("body[data-screen=app]", timeout=15000)
        wait_js(page, "window.habla.app.restored", 15)
        wait_js(page, f"window.habla.voice.skipped.filter(s => s.why === 'replayed').length === {count}", 20)
        page.wait_for_selector('.card.tutor[data-utterance-id="u0~reply"]')
        assert page.evaluate("window.habla.spoken.length") == 0
        assert not [e for e in page.errors if "WebSocket" not in e], page.errors
    r.close()


# --- slow: the runtime, practice mode, spoken replies ---------------------------------------


@pytest.fixture(scope="module")
def speech_runtime(
    tmp_path_factory: pytest.TempPathFactory, redis_url_for: Any, database_factory: Any
) -> Iterator[Runtime]:
    base = int(os.environ.get("HABLA_TEST_REDIS_DB", "14"))
    url = redis_url_for(base + 1 if base < 15 else base - 1)
    client = redis.Redis.from_url(url)
    client.flushdb()
    with (
        database_factory("habla_web_speech") as pg,
        running(
            data_dir=tmp_path_factory.mktemp("speech") / "data",
            extra_env={"REDIS_URL": url, "DATABASE_URL": pg, "HABLA_LEASE_MS": "3000"},
            services=("recorder", "ingest", "diarize", "asr", "translate", "tts", "vocab", "gateway"),
        ) as rt,
    ):
        yield rt
    client.flushdb()
    client.close()


@pytest.mark.slow
def test_practice_partner_answers_corrects_and_speaks(speech_runtime: Runtime, tmp_path: Path) -> None:
    """Practice with a topic, the fake microphone saying a learner's line with a planted mistake
    (espeak-ng: "yo tiene"): the partner's card comes back under the line with a Spanish reply
    and a level chip, the mistake is corrected, the reply is spoken on the phone (and the
    microphone sent silence meanwhile). Saves docs/screenshots/phone-practice.png (360×800)."""
    rt = speech_runtime
    line = espeak(LEARNER_LINE, tmp_path / "learner.wav")
    mic = as_mic(line, tmp_path / "mic.wav", lead_s=0.5, tail_s=60)
    with phone(mic) as page:
        sent: list[dict[str, Any]] = []
        page.on(
            "websocket",
            lambda ws: ws.on(
                "framesent", lambda payload: sent.append(json.loads(payload)) if isinstance(payload, str) else None
            ),
        )
        open_page(page, rt.url, rt.token)
        page.click('[data-mode="practice"]')
        page.fill("#topic", "mi familia")
        page.press("#topic", "Enter")
        started = time.monotonic()
        page.click("#start")
        wait_js(page, "window.habla.app.link && window.habla.app.link.status().state === 'live'", 30)
        start = next(f for f in sent if f.get("type") == "session.start")
        assert (start["mode"], start["direction"], start["topic"], start["speak"]) == (
            "practice",
            "es-en",
            "mi familia",
            "auto",
        )
        sid = page.evaluate("window.habla.app.link.sessionId")
        tutor = page.wait_for_selector(".card.tutor", timeout=150000)
        assert tutor is not None
        replied_s = time.monotonic() - started
        reply_text = page.inner_text(".card.tutor .reply")
        assert reply_text.strip() and page.get_attribute(".card.tutor .reply", "lang") == "es"
        level = page.inner_text(".card.tutor .level-chip")
        assert level.startswith("your level: ") and level.split(": ")[1] in {"A1", "A2", "B1", "B2", "C1", "C2"}
        learner = page.inner_text(".card.final .source")
        print(f"\nlearner: {learner!r}\npartner ({replied_s:.1f} s after Start): {reply_text!r} [{level}]")
        # the planted mistake, corrected: on the partner's card, or marked on the learner's line
        fixes = page.eval_on_selector_all(
            ".card.tutor .better li, .card.final .slips li, .card.final mark.slip",
            "els => els.map(e => e.textContent + ' ' + (e.title || ''))",
        )
        print(f"corrections: {fixes}")
        assert any("tengo" in f for f in fixes), fixes
        wait_js(page, "window.habla.spoken.some(s => s.spokenKind === 'tutor.replied')", 60)
        spoken_s = time.monotonic() - started
        page.wait_for_selector("body[data-speaking=true]", timeout=5000)
        if page.is_visible(".card.tutor .reveal"):
            page.click(".card.tutor .reveal")
        page.evaluate("document.getElementById('transcript').scrollTop = 1e6")  # the whole reply in view
        page.wait_for_timeout(300)
        page.screenshot(path=str(SCREENSHOTS / "phone-practice.png"))
        assert page.viewport_size == PHONE
        assert page.evaluate("window.habla.app.capture.silenced") > 0
        played = page.evaluate("window.habla.spoken")
        print(f"spoken ({spoken_s:.1f} s after Start): {[(p['chunk'], p['via']) for p in played]}")
        page.click("#start")  # Stop
        page.wait_for_selector("body[data-listening=false]")
        # the recording path saw practice: no translation of the learner's own line
        assert page.evaluate(f"window.habla.state.sessions.get('{sid}').mode") == "practice"
        assert not [e for e in page.errors if "WebSocket" not in e], page.errors
