"""End to end: the one-machine runtime (real processes, Redis, Postgres, Whisper) on real speech."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from habla.evaluation import corpus_wer, cut_chunks_like_mediarecorder, encode_webm_opus, load_manifest
from habla.replay import replay_chunks, replay_pcm
from habla.supervisor import Runtime
from habla_common.eventlog import connect_pg
from habla_ingest.adapters import decode_file

pytestmark = pytest.mark.slow

SILENCE = np.zeros(16000, dtype=np.int16)


@pytest.fixture
def runtime(captioning_runtime: Runtime) -> Runtime:
    return captioning_runtime


def utterance_rows(url: str, session_id: str) -> list[tuple[int, str | None, str | None]]:
    with connect_pg(url) as conn:
        return conn.execute(
            "SELECT idx, text, dropped FROM utterances WHERE session_id = %s ORDER BY idx", (session_id,)
        ).fetchall()


def final_events(url: str, session_id: str) -> int:
    with connect_pg(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM events WHERE session_id = %s AND kind = 'asr.final'", (session_id,)
        ).fetchone()
    return int(row[0]) if row else 0


def wait_for(cond: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_fleurs_replay_matches_offline_wer(runtime: Runtime, pg_url: str) -> None:
    """Every FLEURS clip through the live pipeline: one final per utterance in the log, WER ≤ 1.10 × offline."""
    from habla_asr.adapters import FasterWhisperTranscriber
    from habla_asr.config import AsrConfig

    clips = load_manifest()
    hyps, offline = [], []
    cfg = AsrConfig.from_env()
    whisper = FasterWhisperTranscriber.from_config(cfg)
    for clip in clips:
        pcm = decode_file(clip.path)
        res = asyncio.run(
            replay_pcm(runtime.ws_url, runtime.token, np.concatenate([pcm, SILENCE]), title=clip.path.name)
        )
        drained = res.of_kind("audio.drained")[0].data["utterances"]
        assert drained >= 1 and len(res.finals()) == drained
        session, expected = res.session_id, drained
        wait_for(lambda: final_events(pg_url, session) == expected)  # noqa: B023 - called right here
        rows = utterance_rows(pg_url, res.session_id)
        assert [r[0] for r in rows] == list(range(drained))
        assert [r[1] for r in rows] == [f["text"] for f in res.finals()]
        hyps.append(" ".join(r[1] or "" for r in rows))
        offline.append(
            whisper.transcribe(
                pcm.astype(np.float32) / 32768.0, language="es", beam_size=cfg.beam_size, partial=False
            ).text
        )
    refs = [c.reference for c in clips]
    wer_pipeline, wer_offline = corpus_wer(refs, hyps), corpus_wer(refs, offline)
    print(f"\ncorpus WER: pipeline {wer_pipeline:.3f}, offline whole clips {wer_offline:.3f}")
    assert wer_pipeline <= 1.10 * wer_offline + 1e-9


def test_killing_asr_mid_replay_loses_nothing_and_duplicates_nothing(runtime: Runtime, pg_url: str) -> None:
    clips = load_manifest()[:5]
    audio = np.concatenate([np.concatenate([decode_file(c.path), SILENCE]) for c in clips])
    killed = threading.Event()

    def on_event(ev: object) -> None:
        if getattr(ev, "kind", "") == "asr.final" and not killed.is_set():
            killed.set()
            runtime.kill("asr")  # SIGKILL in the middle of the replay
            threading.Timer(1.0, runtime.start, args=("asr",)).start()

    res = asyncio.run(replay_pcm(runtime.ws_url, runtime.token, audio, on_event=on_event, drain_timeout_s=300))
    assert killed.is_set()
    drained = res.of_kind("audio.drained")[0].data["utterances"]
    assert drained >= len(clips)
    wait_for(lambda: final_events(pg_url, res.session_id) == drained)
    time.sleep(1.0)
    assert final_events(pg_url, res.session_id) == drained  # no duplicate facts
    rows = utterance_rows(pg_url, res.session_id)
    assert [r[0] for r in rows] == list(range(drained))
    assert all(r[1] for r in rows), "every utterance got its transcript"


def test_webm_opus_from_a_phone_transcribes_as_well_as_pcm(runtime: Runtime) -> None:
    """FLEURS clips as Chrome's MediaRecorder sends them (WebM/Opus at 64 kbit/s, 250 ms timeslices
    cut at arbitrary bytes) vs the same clips as PCM, each over the WebSocket."""
    clips = load_manifest()
    refs, via_pcm, via_webm = [], [], []
    for clip in clips:
        pcm = np.concatenate([decode_file(clip.path), SILENCE])
        seconds = len(pcm) / 16000
        chunks = cut_chunks_like_mediarecorder(encode_webm_opus(pcm, bit_rate=64000), seconds)
        assert len(chunks) >= 4 * int(seconds) - 1  # about one chunk per 250 ms, cut at arbitrary bytes
        webm = asyncio.run(
            replay_chunks(runtime.ws_url, runtime.token, chunks, codec="webm-opus", audio_ms=int(seconds * 1000))
        )
        plain = asyncio.run(replay_pcm(runtime.ws_url, runtime.token, pcm))
        assert not webm.errors and not plain.errors
        assert len(webm.finals()) == len(plain.finals())
        for a, b in zip(webm.finals(), plain.finals(), strict=True):
            assert abs(a["start_ms"] - b["start_ms"]) <= 150 and abs(a["end_ms"] - b["end_ms"]) <= 150
        refs.append(clip.reference)
        via_pcm.append(" ".join(f["text"] for f in plain.finals()))
        via_webm.append(" ".join(f["text"] for f in webm.finals()))
    wer_pcm, wer_webm = corpus_wer(refs, via_pcm), corpus_wer(refs, via_webm)
    print(f"\nWER over the socket: PCM {wer_pcm:.3f}, WebM/Opus {wer_webm:.3f}")
    assert wer_webm <= 1.10 * wer_pcm + 0.01


def test_bad_input_mid_session_gets_clear_errors_and_the_session_goes_on(runtime: Runtime) -> None:
    """Garbage bytes inside a phone's WebM stream, a 10 MB frame and broken JSON, then more speech."""
    import os

    clip = next(c for c in load_manifest() if c.path.name == "fleurs-es-008.wav")
    pcm = np.concatenate([SILENCE, decode_file(clip.path), SILENCE])
    seconds = len(pcm) / 16000
    good = cut_chunks_like_mediarecorder(encode_webm_opus(pcm, bit_rate=64000), seconds)
    frames: list[bytes | str] = [
        *good[:4],  # the stream's header and the leading silence
        os.urandom(3000),  # random bytes inside the WebM stream
        b"\x00" * (10 * 2**20),  # a 10 MB frame
        "{not json",
        '{"type": "no.such.thing"}',
        *good[4:],
    ]
    res = asyncio.run(
        replay_chunks(runtime.ws_url, runtime.token, frames, codec="webm-opus", audio_ms=int(seconds * 1000))
    )
    codes = {e["code"] for e in res.errors}
    assert {"frame_too_large", "bad_json", "unknown_type"} <= codes, res.errors
    rejected = res.of_kind("audio.rejected")
    assert rejected and rejected[0].data["code"] == "undecodable_audio" and rejected[0].data["message"]
    text = " ".join(f["text"] for f in res.finals())
    assert corpus_wer([clip.reference], [text]) < 0.2, text
