"""WebmOpusDecoder on WebM/Opus encoded from FLEURS with libopus (as Chrome does), cut
into ~250 ms byte pieces at arbitrary offsets, as MediaRecorder's timeslice does."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import av
import numpy as np
import numpy.typing as npt
import pytest

from habla_ingest.errors import DecodeError
from habla_ingest.webm import WebmOpusDecoder, find_sync

Pcm = npt.NDArray[np.int16]
CHUNK_S = 0.25


@pytest.fixture(scope="module")
def clip(fleurs: Callable[[int], Pcm]) -> Pcm:
    return fleurs(0)  # 12.8 s


@pytest.fixture(scope="module")
def webm(clip: Pcm, encode_webm: Callable[..., bytes]) -> bytes:
    return encode_webm(clip)


@pytest.fixture(scope="module")
def chunks(webm: bytes, clip: Pcm, cut_chunks: Callable[..., list[bytes]]) -> list[bytes]:
    return cut_chunks(webm, len(clip) / 16000, CHUNK_S)


def decode_all(decoder: WebmOpusDecoder, pieces: list[bytes]) -> tuple[Pcm, list[int]]:
    """All output, and the indices of the pieces that raised DecodeError."""
    out, errors = [], []
    for i, piece in enumerate(pieces):
        try:
            out.append(decoder.feed(piece))
        except DecodeError:
            errors.append(i)
    out.append(decoder.close())
    return np.concatenate(out), errors


def similarity(ref: Pcm, got: Pcm) -> float:
    n = min(len(ref), len(got))
    return float(np.corrcoef(ref[:n].astype(np.float64), got[:n].astype(np.float64))[0, 1])


def test_chunked_stream_reproduces_the_audio(clip: Pcm, chunks: list[bytes]) -> None:
    got, errors = decode_all(WebmOpusDecoder(), chunks)
    assert errors == []
    assert abs(len(got) - len(clip)) <= 50 * 16  # duration within 50 ms
    assert similarity(clip, got) > 0.95  # aligned: Opus pre-skip is honoured
    energy = float(np.mean(got.astype(np.float64) ** 2) / np.mean(clip.astype(np.float64) ** 2))
    assert 0.8 < energy < 1.25


def test_each_chunk_yields_its_audio_at_once(webm: bytes, chunks: list[bytes]) -> None:
    """After each piece, every block complete in the bytes so far has been decoded."""
    with av.open(io.BytesIO(webm), mode="r") as container:  # reference: FFmpeg's own demuxer
        packets = [(p.pos or 0, (p.duration or 0) * 16) for p in container.demux() if p.size]
    starts = [pos for pos, _ in packets]
    ends = [*starts[1:], len(webm)]  # a block is complete once the next one begins
    decoder, got, fed, times = WebmOpusDecoder(), 0, 0, []
    for piece in chunks:
        t0 = time.perf_counter()
        got += len(decoder.feed(piece))
        times.append(time.perf_counter() - t0)
        fed += len(piece)
        complete = sum(n for (_, n), end in zip(packets, ends, strict=True) if end <= fed)
        started = sum(n for pos, n in packets if pos < fed)
        assert complete - 104 - 64 <= got <= started, (fed, complete, got)  # 104: Opus pre-skip at 16 kHz
    print(f"webm feed: mean {np.mean(times) * 1e3:.2f} ms, max {np.max(times) * 1e3:.2f} ms per 250 ms chunk")
    assert np.max(times) < 0.05


def test_garbage_instead_of_a_stream_raises_then_a_real_stream_decodes(clip: Pcm, chunks: list[bytes]) -> None:
    decoder = WebmOpusDecoder()
    with pytest.raises(DecodeError, match="EBML header"):
        decoder.feed(np.random.default_rng(1).integers(0, 256, 1000, dtype=np.uint8).tobytes())
    got, errors = decode_all(decoder, chunks)
    assert errors == [] and abs(len(got) - len(clip)) <= 50 * 16


def test_garbage_keeps_being_reported_while_it_lasts() -> None:
    rng = np.random.default_rng(2)
    _, errors = decode_all(WebmOpusDecoder(), [rng.integers(0, 256, 1000, dtype=np.uint8).tobytes() for _ in range(20)])
    assert errors[0] == 0 and 3 <= len(errors) <= 12  # every ~4 KiB of garbage, not silently swallowed


def test_garbage_mid_stream_costs_only_the_garbage(clip: Pcm, chunks: list[bytes]) -> None:
    rng = np.random.default_rng(3)
    damaged = list(chunks)
    damaged[10] = rng.integers(0, 256, len(chunks[10]), dtype=np.uint8).tobytes()
    got, errors = decode_all(WebmOpusDecoder(), damaged)
    assert errors == [10]
    lost_ms = (len(clip) - len(got)) / 16
    assert 0 <= lost_ms <= 2 * CHUNK_S * 1000 + 100, lost_ms  # the chunk, plus the blocks it cut
    tail = 16000 * 5  # the last 5 s decode as before
    assert similarity(clip[-tail:], got[-tail:]) > 0.95


def test_a_restarted_recorder_starts_a_new_stream(clip: Pcm, chunks: list[bytes]) -> None:
    got, errors = decode_all(WebmOpusDecoder(), chunks[:20] + chunks)  # cut mid-block, then a fresh header
    assert errors == []
    first = 20 * CHUNK_S * 16000  # about 5 s from the first stream, then all of the second
    assert len(clip) + first - 0.3 * 16000 <= len(got) <= len(clip) + first + 0.1 * 16000
    assert similarity(clip[-16000 * 5 :], got[-16000 * 5 :]) > 0.95


def test_joining_mid_stream_picks_it_up(clip: Pcm, chunks: list[bytes]) -> None:
    got, errors = decode_all(WebmOpusDecoder(resume=True), chunks[20:])
    assert errors == []
    expected = len(clip) - 20 * CHUNK_S * 16000
    assert abs(len(got) - expected) <= 0.3 * 16000
    assert similarity(clip[-16000 * 5 :], got[-16000 * 5 :]) > 0.95


def test_a_stereo_stream_joined_mid_way_decodes_to_mono(clip: Pcm, encode_webm: Callable[..., bytes]) -> None:
    data = encode_webm(clip, layout="stereo")
    got, errors = decode_all(WebmOpusDecoder(resume=True), [data[len(data) // 3 :]])
    assert errors == []
    assert similarity(clip[-16000 * 5 :], got[-16000 * 5 :]) > 0.95


def test_reset_drops_buffered_bytes_and_resyncs(clip: Pcm, chunks: list[bytes]) -> None:
    decoder = WebmOpusDecoder()
    head = np.concatenate([decoder.feed(c) for c in chunks[:10]])
    decoder.reset()
    rest, errors = decode_all(decoder, chunks[12:])
    assert errors == []
    assert abs(len(head) + len(rest) - (len(clip) - 2 * CHUNK_S * 16000)) <= 0.3 * 16000


def test_a_track_that_is_not_opus_is_refused() -> None:
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="matroska") as out:
        stream = out.add_stream("flac", rate=16000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.int16), format="s16", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    with pytest.raises(DecodeError, match="not Opus"):
        WebmOpusDecoder().feed(buf.getvalue())


def test_find_sync_needs_two_valid_elements_in_a_row(webm: bytes) -> None:
    body = webm[5000:5600]
    at = find_sync(body)
    assert at is not None and body[at] == 0xA3
    assert find_sync(body[: at + 3]) is None  # not enough bytes to check it yet
    assert find_sync(bytes(range(256)) * 4) is None
