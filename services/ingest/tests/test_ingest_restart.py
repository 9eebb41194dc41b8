"""A crash of the ingest mid-session: a brand-new handler on the same Redis continues the
session from its checkpoint (real Redis, real Silero, real FLEURS audio)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
import redis

from habla_contracts import (
    AudioChunkReceived,
    AudioDrained,
    Event,
    SpeechStarted,
    UtteranceSegmented,
    derived_id,
)
from habla_ingest.adapters import Checkpoint, RedisCheckpointStore
from habla_ingest.config import IngestConfig
from habla_ingest.handlers import IngestHandler

Pcm = npt.NDArray[np.int16]
SILENCE = np.zeros(24_000, np.int16)  # 1.5 s


@pytest.fixture(scope="module")
def two_clips(fleurs: Callable[[int], Pcm]) -> Pcm:
    return np.concatenate([SILENCE, fleurs(2), SILENCE, fleurs(6), SILENCE])


@pytest.fixture
def store(redis_url: str) -> RedisCheckpointStore:
    return RedisCheckpointStore(redis.Redis.from_url(redis_url))


def pcm_chunks(session: str, audio: Pcm) -> list[AudioChunkReceived]:
    data = audio.astype("<i2").tobytes()
    chunks = [
        AudioChunkReceived(session_id=session, chunk_index=k, codec="pcm16", data=data[i : i + 8000])
        for k, i in enumerate(range(0, len(data), 8000))
    ]
    return [*chunks, AudioChunkReceived(session_id=session, chunk_index=len(chunks), codec="pcm16", final=True)]


def webm_chunks(
    session: str, audio: Pcm, encode: Callable[..., bytes], cut: Callable[..., list[bytes]]
) -> list[AudioChunkReceived]:
    pieces = cut(encode(audio), len(audio) / 16000)
    chunks = [
        AudioChunkReceived(session_id=session, chunk_index=k, codec="webm-opus", sample_rate=48000, data=p)
        for k, p in enumerate(pieces)
    ]
    final = AudioChunkReceived(
        session_id=session, chunk_index=len(chunks), codec="webm-opus", sample_rate=48000, final=True
    )
    return [*chunks, final]


def crash_and_resume(
    store: RedisCheckpointStore, chunks: list[AudioChunkReceived], crash_after: Callable[[list[Event]], bool]
) -> tuple[list[Event], list[Event], int, Checkpoint | None]:
    """Handler A until ``crash_after(events so far)``; then a new handler B gets the last
    chunk A handled again (a redelivery) and the rest. Returns A's events, B's, the crash
    chunk and the checkpoint B started from."""
    a_events: list[Event] = []
    a = IngestHandler(IngestConfig(), checkpoints=store)
    k = -1
    while not crash_after(a_events):
        k += 1
        a.handle(chunks[k], a_events.append)
    del a  # SIGKILL: its memory is gone, its checkpoint in Redis is not
    saved = store.load(chunks[k].session_id)
    assert saved is not None and saved.last_chunk == k
    b_events: list[Event] = []
    b = IngestHandler(IngestConfig(), checkpoints=store)
    b.handle(chunks[k], b_events.append)  # redelivered: published already, skipped
    assert b_events == [] and b.live_sessions == []
    for chunk in chunks[k + 1 :]:
        b.handle(chunk, b_events.append)
    return a_events, b_events, k, saved


def reference(chunks: list[AudioChunkReceived]) -> list[Event]:
    events: list[Event] = []
    handler = IngestHandler(IngestConfig())
    for chunk in chunks:
        handler.handle(chunk, events.append)
    return events


def of(events: list[Event], kind: type[Event]) -> list[Event]:
    return [e for e in events if isinstance(e, kind)]


def check_continuous(session: str, ref: list[Event], a: list[Event], b: list[Event]) -> None:
    ref_utts = of(ref, UtteranceSegmented)
    utts = of(a + b, UtteranceSegmented)
    assert [u.index for u in ref_utts] == [u.index for u in utts] == [0, 1]
    assert [u.index for u in of(b, UtteranceSegmented)] == [1]
    for u, r in zip(utts, ref_utts, strict=True):
        assert isinstance(u, UtteranceSegmented) and isinstance(r, UtteranceSegmented)
        assert u.utterance_id == derived_id(session, "utterance", u.index)  # no epoch: the ids continue
        assert abs(u.start_ms - r.start_ms) <= 50 and abs(u.end_ms - r.end_ms) <= 50
    (started,) = of(b, SpeechStarted)
    assert isinstance(started, SpeechStarted) and started.index == 1
    (drained,) = of(b, AudioDrained)
    (ref_drained,) = of(ref, AudioDrained)
    assert isinstance(drained, AudioDrained) and isinstance(ref_drained, AudioDrained)
    assert drained.utterances == 2 and abs(drained.audio_ms - ref_drained.audio_ms) <= 50


def first_done(events: list[Event]) -> bool:
    return any(isinstance(e, UtteranceSegmented) for e in events)


def test_pcm_session_continues_after_a_crash(store: RedisCheckpointStore, two_clips: Pcm) -> None:
    chunks = pcm_chunks("crash-pcm", two_clips)
    a, b, _, _ = crash_and_resume(store, chunks, first_done)
    check_continuous("crash-pcm", reference(chunks), a, b)


def test_webm_session_continues_after_a_crash(
    store: RedisCheckpointStore,
    two_clips: Pcm,
    encode_webm: Callable[..., bytes],
    cut_chunks: Callable[..., list[bytes]],
) -> None:
    chunks = webm_chunks("crash-webm", two_clips, encode_webm, cut_chunks)
    a, b, _, saved = crash_and_resume(store, chunks, first_done)
    check_continuous("crash-webm", reference(chunks), a, b)
    # the decoder was handed over exactly: init segment and the bytes it held
    assert saved is not None and saved.init is not None and saved.init[:4] == b"\x1a\x45\xdf\xa3"
    assert saved.pending is not None and len(saved.init) < 1024


def test_an_utterance_in_progress_restarts_at_the_checkpoint_under_its_index(
    store: RedisCheckpointStore, two_clips: Pcm
) -> None:
    chunks = pcm_chunks("crash-mid", two_clips)
    a, b, k, _ = crash_and_resume(store, chunks, lambda ev: len(of(ev, SpeechStarted)) == 2)
    ref = of(reference(chunks), UtteranceSegmented)
    utts = of(a + b, UtteranceSegmented)
    assert [u.index for u in utts] == [0, 1]
    second = utts[1]
    assert isinstance(second, UtteranceSegmented) and second.utterance_id == derived_id("crash-mid", "utterance", 1)
    assert second.start_ms >= (k + 1) * 250 - 50 and abs(second.end_ms - ref[1].end_ms) <= 100  # type: ignore[attr-defined]
    (drained,) = of(b, AudioDrained)
    assert isinstance(drained, AudioDrained) and drained.utterances == 2


def test_checkpoint_round_trip_and_cost(store: RedisCheckpointStore) -> None:
    assert store.load("nobody") is None
    cp = Checkpoint(7, 123_456, b"\x01\x00" * 100, 3, 2, 0, "webm-opus", 48000, b"\x1a\x45\xdf\xa3init", b"")
    store.save("s", cp)
    assert store.load("s") == cp
    store.save("s", Checkpoint(8, 130_000, b"", 3, 2, 0, "webm-opus", 48000, None, None))  # init as stored
    again = store.load("s")
    assert again is not None and again.init == cp.init and again.pending is None and again.last_chunk == 8
    assert 0 < store._r.ttl("ingest:s") <= 7 * 24 * 3600
    n = 500
    t = time.perf_counter()
    for i in range(n):
        store.save("s", Checkpoint(i, 8000 * i, b"\x00\x00" * 300, 3, 2, 0, "webm-opus", 48000, None, b"\x00" * 80))
    assert (time.perf_counter() - t) / n < 0.005  # one round trip: well under a chunk's 250 ms
