"""Speech to speech through the real pipeline: PARLE's SSE and WebSocket protocols and
practice mode, against the runtime as `habla up` starts it (real Redis, Postgres, Silero,
Whisper, the bundled LLM, espeak-ng and Piper).

The spoken answer is checked by ear, the machine's: the audio chunks are decoded and the
same Whisper model transcribes them back, which must come close to the response text.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import time
import wave
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import redis
import websockets

from habla.evaluation import corpus_wer, load_manifest
from habla.speech_bench import sse_events
from habla.supervisor import Runtime, running
from habla_common.audio import pcm16_to_float32
from habla_common.eventlog import connect_pg
from habla_contracts import decode

pytestmark = pytest.mark.slow

TTS_SERVICES = ("recorder", "ingest", "diarize", "asr", "translate", "tts", "vocab", "gateway")


@pytest.fixture(scope="module")
def speech_runtime(
    tmp_path_factory: pytest.TempPathFactory,
    redis_url_for: Callable[[int], str],
    database_factory: Callable[[str], AbstractContextManager[str]],
) -> Iterator[tuple[Runtime, str]]:
    """Every service the speech API goes through, started once for the module: (runtime, Postgres URL)."""
    url = redis_url_for(int(os.environ.get("HABLA_TEST_REDIS_DB", "14")))
    client = redis.Redis.from_url(url)
    client.flushdb()
    with database_factory("habla_speech") as pg:
        env = {"REDIS_URL": url, "DATABASE_URL": pg, "HABLA_LEASE_MS": "3000"}
        with running(data_dir=tmp_path_factory.mktemp("speech") / "data", extra_env=env, services=TTS_SERVICES) as rt:
            yield rt, pg
    client.flushdb()
    client.close()


@pytest.fixture(scope="module")
def whisper() -> Any:
    """The bundled Whisper, to listen to what the tts stage said."""
    from habla_asr.adapters import FasterWhisperTranscriber
    from habla_asr.config import AsrConfig

    return FasterWhisperTranscriber.from_config(AsrConfig())


@pytest.fixture(scope="module")
def language_of() -> Callable[[str], str]:
    from lingua import Language, LanguageDetectorBuilder

    detector = LanguageDetectorBuilder.from_languages(Language.ENGLISH, Language.SPANISH).build()

    def detect(text: str) -> str:
        found = detector.detect_language_of(text)
        return {Language.ENGLISH: "en", Language.SPANISH: "es"}.get(found, "") if found else ""

    return detect


def wav_to_16k(data: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(data)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        rate, frames = w.getframerate(), w.readframes(w.getnframes())
    return pcm16_to_float32(frames, rate)


def heard_back(whisper: Any, chunks: list[bytes], language: str) -> str:
    audio = np.concatenate([wav_to_16k(c) for c in chunks])
    assert float(np.abs(audio).max()) > 0.05, "the spoken answer is silent"
    return str(whisper.transcribe(audio, language=language, beam_size=5, partial=False).text).strip()


def log_events(pg: str, session_id: str, kind: str) -> list[Any]:
    with connect_pg(pg) as conn:
        rows = conn.execute(
            "SELECT payload FROM events WHERE session_id = %s AND kind = %s ORDER BY position", (session_id, kind)
        ).fetchall()
    return [decode(kind, bytes(r[0])) for r in rows]


def wait_for(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def stage_order(names: list[str]) -> list[str]:
    """Names with runs of audio collapsed, for checking PARLE's order."""
    out: list[str] = []
    for n in names:
        if not (n == "audio" and out and out[-1] == "audio"):
            out.append(n)
    return out


PARLE_ORDER = ["status", "transcript", "status", "response", "status", "audio", "complete"]


def test_sse_round_trip(speech_runtime: tuple[Runtime, str], whisper: Any, language_of: Callable[[str], str]) -> None:
    rt, pg = speech_runtime
    clip = load_manifest()[3].path
    t0 = time.monotonic()
    received: list[tuple[str, dict[str, Any], float]] = []
    with (
        httpx.Client(base_url=rt.url, verify=False, timeout=300) as client,
        client.stream(
            "POST",
            "/api/stream-audio",
            headers={"Authorization": f"Bearer {rt.token}"},
            files={"audio": (clip.name, clip.read_bytes(), "audio/wav")},
            data={"direction": "es-en"},
        ) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        received = [(name, data, time.monotonic()) for name, data in sse_events(response)]
    names = [n for n, _d, _t in received]
    assert stage_order(names) == PARLE_ORDER, names
    stages = [d["stage"] for n, d, _t in received if n == "status"]
    assert stages == ["stt", "llm", "tts"]
    data = {n: d for n, d, _t in received if n != "audio"}
    complete = data["complete"]
    session_id = complete["session_id"]

    # the transcript is the ASR's output, as the event log holds it
    finals = [f.text.strip() for f in log_events(pg, session_id, "asr.final") if f.text.strip()]
    assert data["transcript"]["transcript"] == " ".join(finals) != ""
    assert data["transcript"]["stt_ms"] > 0
    # the response is the English translation
    english = data["response"]["response"]
    assert language_of(english) == "en", english
    assert data["response"]["llm_ms"] > 0 and data["response"]["kind"] == "translation"
    translations = log_events(pg, session_id, "translation.final")
    assert english == " ".join(t.translation.strip() for t in translations)

    # audio chunks, indexed from 0, base64 WAV that Whisper hears as the response
    audio = [d for n, d, _t in received if n == "audio"]
    assert [a["index"] for a in audio] == list(range(len(audio))) and audio
    import base64

    chunks = [base64.b64decode(a["chunk"]) for a in audio]
    said = heard_back(whisper, chunks, "en")
    wer = corpus_wer([english], [said])
    first_audio = next(t for n, _d, t in received if n == "audio") - t0
    print(f"\nSSE: {clip.name}: {english!r}\n  heard back: {said!r} (WER {wer:.2f})")
    print(f"  timing {complete['timing']}; first audio {first_audio:.2f} s after the POST")
    assert wer <= 0.35
    assert complete["transcript"] == data["transcript"]["transcript"] and complete["response"] == english
    timing = complete["timing"]
    assert timing["stt_ms"] > 0 and timing["llm_ms"] > 0 and timing["tts_ms"] > 0
    assert 0 < timing["first_audio_ms"] <= timing["total_ms"]
    # one-shot: the session ended with the request
    assert wait_for(lambda: log_events(pg, session_id, "session.ended"), 30, "session.ended")


async def ws_turn(ws: Any, recording: bytes, timeout: float = 300) -> tuple[list[dict[str, Any]], list[bytes]]:
    """Send one recording over /ws/stream; the JSON messages and binary audio until ``complete``."""
    await ws.send(recording)
    messages: list[dict[str, Any]] = []
    binaries: list[bytes] = []
    deadline = time.monotonic() + timeout
    while True:
        msg = await asyncio.wait_for(ws.recv(), deadline - time.monotonic())
        if isinstance(msg, bytes):
            binaries.append(msg)
            continue
        frame = json.loads(msg)
        messages.append(frame)
        if frame["type"] in ("complete", "error"):
            return messages, binaries


def test_websocket_round_trip(
    speech_runtime: tuple[Runtime, str], whisper: Any, language_of: Callable[[str], str]
) -> None:
    rt, pg = speech_runtime
    clip = load_manifest()[5].path

    async def talk() -> tuple[list[dict[str, Any]], list[bytes]]:
        ssl_ctx = None
        async with websockets.connect(f"{rt.ws_url}/stream?token={rt.token}", ssl=ssl_ctx, max_size=2**24) as ws:
            await ws.send(json.dumps({"type": "config", "direction": "es-en", "speak": "on"}))
            assert json.loads(await ws.recv()) == {"type": "config", "ok": True}
            return await ws_turn(ws, clip.read_bytes())

    messages, binaries = asyncio.run(talk())
    names = [m["type"] for m in messages]
    assert stage_order(names) == PARLE_ORDER, names
    by = {m["type"]: m for m in messages if m["type"] != "audio"}
    session_id = by["complete"]["session_id"]
    finals = [f.text.strip() for f in log_events(pg, session_id, "asr.final") if f.text.strip()]
    assert by["transcript"]["transcript"] == " ".join(finals) != ""
    english = by["response"]["response"]
    assert language_of(english) == "en", english
    audio_meta = [m for m in messages if m["type"] == "audio"]
    assert len(binaries) == len(audio_meta) >= 1  # each audio message is followed by its WAV
    said = heard_back(whisper, binaries, "en")
    wer = corpus_wer([english], [said])
    print(f"\nWS: {english!r}\n  heard back: {said!r} (WER {wer:.2f}); timing {by['complete']['timing']}")
    assert wer <= 0.35
    # the socket closed: its session ends
    assert wait_for(lambda: log_events(pg, session_id, "session.ended"), 30, "session.ended")


def espeak_spanish(text: str, tmp: Path) -> bytes:
    """A learner's line, said by espeak-ng's Spanish voice (a WAV file's bytes)."""
    out = tmp / f"{abs(hash(text))}.wav"
    subprocess.run(["espeak-ng", "-v", "es", "-s", "150", "-w", str(out), text], check=True, timeout=60)
    return out.read_bytes()


PRACTICE_TURNS = (
    "Hola, me llamo Pedro y yo tiene dos hermanos.",  # planted: yo tiene -> yo tengo
    "Me gusta mucho cocinar paella con mi familia los domingos.",
    "Ayer fui al mercado con mi madre y compramos fruta.",
)


def test_practice_partner_three_turns(
    speech_runtime: tuple[Runtime, str],
    whisper: Any,
    language_of: Callable[[str], str],
    tmp_path: Path,
) -> None:
    rt, pg = speech_runtime
    recordings = [espeak_spanish(t, tmp_path) for t in PRACTICE_TURNS]

    async def talk() -> list[tuple[list[dict[str, Any]], list[bytes]]]:
        async with websockets.connect(f"{rt.ws_url}/stream?token={rt.token}", max_size=2**24) as ws:
            await ws.send(json.dumps({"type": "config", "mode": "practice", "topic": "la familia y la comida"}))
            assert json.loads(await ws.recv())["ok"] is True
            return [await ws_turn(ws, r) for r in recordings]

    turns = asyncio.run(talk())
    replies: list[dict[str, Any]] = []
    session_ids = set()
    for (messages, binaries), line in zip(turns, PRACTICE_TURNS, strict=True):
        names = [m["type"] for m in messages]
        assert stage_order(names) == PARLE_ORDER, names
        by = {m["type"]: m for m in messages if m["type"] != "audio"}
        reply = by["response"]
        session_ids.add(by["complete"]["session_id"])
        print(f"\nlearner: {by['transcript']['transcript']!r} (said {line!r})")
        print(f"  tutor [{reply['level']}]: {reply['response']!r} / {reply.get('translation')!r}")
        print(f"  corrections: {reply['corrections']}; timing {by['complete']['timing']}")
        assert reply["kind"] == "reply" and reply["response"]
        assert language_of(reply["response"]) == "es", reply["response"]
        assert reply["level"] in ("A1", "A2", "B1", "B2", "C1", "C2")
        assert binaries, "the reply was not spoken"
        said = heard_back(whisper, binaries, "es")
        print(f"  heard back: {said!r}")
        assert language_of(said) == "es"
        replies.append(reply)
    assert len(session_ids) == 1  # one conversation
    (session_id,) = session_ids

    # the planted mistake became a correction card and a study card
    fixed = [c for r in replies for c in r["corrections"] if "tengo" in c["correct"].lower()]
    assert fixed, [r["corrections"] for r in replies]
    cards = log_events(pg, session_id, "correction.detected")
    assert any("tengo" in c.correct.lower() and c.cue == "practice" for c in cards)
    saved = wait_for(
        lambda: [v for v in log_events(pg, session_id, "vocab.saved") if v.item_kind == "correction"],
        60,
        "the correction's study card",
    )
    assert any("tengo" in v.text.lower() for v in saved)
    assert len(log_events(pg, session_id, "tutor.replied")) == 3
