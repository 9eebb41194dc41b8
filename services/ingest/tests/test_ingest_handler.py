"""IngestHandler end to end in process: real decoders, real Silero, real FLEURS audio,
contract events out (each one round-tripped through the msgpack codec)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pytest

from habla_contracts import (
    AudioChunkReceived,
    AudioDrained,
    AudioFlushed,
    AudioRejected,
    Event,
    SpeechStarted,
    SpeechWindow,
    UtteranceSegmented,
    decode,
    derived_id,
    encode,
)
from habla_ingest.config import IngestConfig
from habla_ingest.handlers import IngestHandler

Pcm = npt.NDArray[np.int16]
T = TypeVar("T", bound=Event)
SILENCE = np.zeros(24_000, np.int16)


class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        assert decode(event.KIND, encode(event)) == event  # everything published is encodable
        self.events.append(event)

    def of(self, kind: type[T]) -> list[T]:
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture(scope="module")
def two_clips(fleurs: Callable[[int], Pcm]) -> Pcm:
    return np.concatenate([SILENCE, fleurs(2), SILENCE, fleurs(6), SILENCE])  # ~21 s


def pcm_chunks(session: str, audio: Pcm, first: int = 0, final: bool = True) -> list[AudioChunkReceived]:
    data = audio.astype("<i2").tobytes()
    step = 8000  # 250 ms
    chunks = [
        AudioChunkReceived(
            session_id=session,
            chunk_index=first + k,
            codec="pcm16",
            data=data[i : i + step],
            received_at=1000.0 + k * 0.25,
        )
        for k, i in enumerate(range(0, len(data), step))
    ]
    if final:
        chunks.append(
            AudioChunkReceived(session_id=session, chunk_index=first + len(chunks), final=True, received_at=5000.0)
        )
    return chunks


def run(handler: IngestHandler, chunks: list[AudioChunkReceived]) -> Sink:
    sink = Sink()
    for chunk in chunks:
        handler.handle(chunk, sink)
    return sink


def comparable(events: list[Event]) -> list[tuple[object, ...]]:
    return [(type(e).__name__, e.event_id, {k: v for k, v in vars(e).items() if k != "occurred_at"}) for e in events]


def test_pcm_session_gives_events_with_derived_ids(two_clips: Pcm) -> None:
    handler = IngestHandler(IngestConfig())
    chunks = pcm_chunks("s1", two_clips)
    sink = run(handler, chunks)
    started, utts = sink.of(SpeechStarted), sink.of(UtteranceSegmented)
    assert [u.index for u in utts] == [0, 1] and [s.index for s in started] == [0, 1]
    for s, u in zip(started, utts, strict=True):
        assert u.utterance_id == s.utterance_id == derived_id("s1", "utterance", u.index)
        assert u.event_id == derived_id("s1", "speech.segmented", u.index)
        assert u.reason == "pause" and u.sample_rate == 16000
        assert len(u.pcm) == (u.end_ms - u.start_ms) * 32
        # received_at comes from the chunk whose audio made it happen: speech confirmed
        # (onset + 250 ms), pause complete (speech end + 500 ms); chunks are 250 ms
        assert abs(s.received_at - (1000.0 + (s.start_ms + 192 + 256) // 250 * 0.25)) <= 0.25
        assert abs(u.received_at - (1000.0 + (u.speech_end_ms + 512) // 250 * 0.25)) <= 0.25
    windows = sink.of(SpeechWindow)
    assert len(windows) >= 6 and all(w.utterance_id == derived_id("s1", "utterance", w.index) for w in windows)
    assert len({w.event_id for w in windows}) == len(windows)
    (drained,) = sink.of(AudioDrained)
    assert drained.utterances == 2 and drained.audio_ms == len(two_clips) // 16
    assert sink.events[-1] == drained and handler.live_sessions == []


def test_webm_session_segments_like_pcm(
    two_clips: Pcm, encode_webm: Callable[..., bytes], cut_chunks: Callable[..., list[bytes]]
) -> None:
    pieces = cut_chunks(encode_webm(two_clips), len(two_clips) / 16000)
    chunks = [
        AudioChunkReceived(session_id="w", chunk_index=k, codec="webm-opus", sample_rate=48000, data=p)
        for k, p in enumerate(pieces)
    ]
    chunks.append(AudioChunkReceived(session_id="w", chunk_index=len(chunks), codec="webm-opus", final=True))
    webm = run(IngestHandler(IngestConfig()), chunks).of(UtteranceSegmented)
    pcm = run(IngestHandler(IngestConfig()), pcm_chunks("p", two_clips)).of(UtteranceSegmented)
    assert len(webm) == len(pcm) == 2
    for a, b in zip(webm, pcm, strict=True):
        assert abs(a.start_ms - b.start_ms) <= 100 and abs(a.end_ms - b.end_ms) <= 100


def test_redelivery_republishes_the_same_events(two_clips: Pcm) -> None:
    chunks = pcm_chunks("r", two_clips)
    first = run(IngestHandler(IngestConfig()), chunks)
    handler, sink = IngestHandler(IngestConfig()), Sink()
    for chunk in chunks:
        before = len(sink.events)
        handler.handle(chunk, sink)
        produced = sink.events[before:]
        handler.handle(chunk, sink)  # redelivered: the same events again (the final was complete: nothing)
        again = sink.events[before + len(produced) :]
        assert comparable(again) == ([] if chunk.final else comparable(produced))
        del sink.events[before + len(produced) :]
        if chunk.chunk_index > 0 and not chunk.final:
            handler.handle(chunks[chunk.chunk_index - 1], sink)  # an older one: nothing
            assert len(sink.events) == before + len(produced)
    assert comparable(sink.events) == comparable(first.events)  # deterministic across handlers


def test_undecodable_chunk_is_rejected_and_the_session_goes_on(two_clips: Pcm) -> None:
    chunks = pcm_chunks("g", two_clips)
    chunks[3] = replace(chunks[3], data=b"\x00\x01\x02")  # odd length
    sink = run(IngestHandler(IngestConfig()), chunks)
    (rejected,) = sink.of(AudioRejected)
    assert rejected.code == "undecodable_audio" and rejected.chunk_index == 3
    assert "odd length" in rejected.message
    assert rejected.event_id == derived_id("g", "audio.rejected", 3)
    assert len(sink.of(UtteranceSegmented)) == 2


def test_garbage_webm_is_rejected_with_a_clear_message() -> None:
    garbage = np.random.default_rng(5).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    sink = run(
        IngestHandler(IngestConfig()),
        [AudioChunkReceived(session_id="x", chunk_index=0, codec="webm-opus", data=garbage)],
    )
    (rejected,) = sink.of(AudioRejected)
    assert rejected.code == "undecodable_audio" and "EBML header" in rejected.message


def test_unknown_codec_is_rejected() -> None:
    sink = run(IngestHandler(IngestConfig()), [AudioChunkReceived(session_id="c", codec="mp3", data=b"\xff\xfb")])
    (rejected,) = sink.of(AudioRejected)
    assert rejected.code == "unsupported_codec" and "pcm16" in rejected.message


def test_sessions_beyond_the_limit_are_flushed_and_continue_when_back(two_clips: Pcm) -> None:
    handler = IngestHandler(replace(IngestConfig(), max_sessions=1))
    a, b = pcm_chunks("a", two_clips), pcm_chunks("b", two_clips[:48000], final=False)
    cut = 60  # 15 s: inside the second clip's speech
    sink = run(handler, a[:cut] + b + a[cut:])
    a_utts = [u for u in sink.of(UtteranceSegmented) if u.session_id == "a"]
    assert [(u.index, u.reason) for u in a_utts][:2] == [(0, "pause"), (1, "end")]  # flushed when b came
    assert all(u.index == i for i, u in enumerate(a_utts))  # indices continue after it came back
    assert a_utts[-1].end_ms <= len(two_clips) // 16 and a_utts[-1].start_ms >= a_utts[1].end_ms


def test_idle_sessions_are_flushed(two_clips: Pcm) -> None:
    now = [0.0]
    handler = IngestHandler(replace(IngestConfig(), session_idle_s=60), clock=lambda: now[0])
    sink = run(handler, pcm_chunks("i", two_clips[: 16000 * 6], final=False))  # speech in progress
    assert handler.live_sessions == ["i"] and not sink.of(UtteranceSegmented)
    now[0] = 61.0
    handler.handle(AudioChunkReceived(session_id="other", chunk_index=0, data=b"\x00\x00" * 100), sink)
    (utt,) = sink.of(UtteranceSegmented)
    assert utt.session_id == "i" and utt.reason == "end"
    assert handler.live_sessions == ["other"]


def test_a_session_first_seen_mid_way_gets_ids_of_its_own(two_clips: Pcm) -> None:
    sink = run(IngestHandler(IngestConfig()), pcm_chunks("m", two_clips, first=40))
    utts = sink.of(UtteranceSegmented)
    assert utts and utts[0].index == 40
    assert utts[0].utterance_id == derived_id("m", "epoch40", "utterance", 40)
    assert utts[0].utterance_id != derived_id("m", "utterance", 40)


def test_a_flush_ends_the_turn_and_the_session_goes_on(fleurs: Callable[[int], Pcm]) -> None:
    """A recording posted to the speech API ends with a flush chunk: the utterance still open
    (the speech runs to the very end, no pause after it) is emitted at once and AudioFlushed
    counts the session's utterances so far; the next turn's audio continues the numbering."""
    handler = IngestHandler(IngestConfig())
    clip = fleurs(2)
    turn = np.concatenate([SILENCE[:8000], clip[: len(clip) * 6 // 10]])  # cut mid-speech: no pause at the end
    first = pcm_chunks("s-flush", turn, final=False)
    flush = AudioChunkReceived(session_id="s-flush", chunk_index=len(first), flush=True, received_at=2000.0)
    sink = run(handler, [*first, flush])
    utterances = sink.of(UtteranceSegmented)
    flushed = sink.of(AudioFlushed)
    assert len(utterances) >= 1 and utterances[-1].reason == "end"
    assert [f.utterances for f in flushed] == [len(utterances)]
    assert flushed[0].chunk_index == len(first) and flushed[0].audio_ms >= 1000 * len(turn) // 16000 - 250
    assert not sink.of(AudioDrained)

    second = pcm_chunks("s-flush", np.concatenate([fleurs(6), SILENCE]), first=len(first) + 1)
    sink2 = run(handler, second)
    later = sink2.of(UtteranceSegmented)
    assert later and later[0].index == utterances[-1].index + 1
    assert later[0].start_ms >= flushed[0].audio_ms - 300
    drained = sink2.of(AudioDrained)
    assert [d.utterances for d in drained] == [len(utterances) + len(later)]


def test_a_whole_recording_gets_no_live_windows(two_clips: Pcm) -> None:
    """Chunks of a recording sent whole (``live=False``, the speech API) are segmented as
    always, but no live windows are cut from them: nobody watches their captions grow."""
    live = run(IngestHandler(IngestConfig()), pcm_chunks("s-live", two_clips))
    whole = run(
        IngestHandler(IngestConfig()),
        [replace(c, session_id="s-whole", live=False) for c in pcm_chunks("s-whole", two_clips)],
    )
    assert live.of(SpeechWindow) and not whole.of(SpeechWindow)
    assert [(u.start_ms, u.end_ms) for u in whole.of(UtteranceSegmented)] == [
        (u.start_ms, u.end_ms) for u in live.of(UtteranceSegmented)
    ]
