"""Pcm16Decoder, decode_file (wav, and mp3/ogg/m4a/webm encoded here with PyAV) and
the real Silero detector."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from habla_ingest.adapters import Pcm16Decoder, SileroDetector, decode_file, make_decoder
from habla_ingest.errors import DecodeError, UnsupportedAudio
from habla_ingest.webm import WebmOpusDecoder

Pcm = npt.NDArray[np.int16]


def encode_file(pcm: Pcm, path: Path, codec: str, rate: int) -> Path:
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream(codec, rate=rate)
        assert isinstance(stream, av.AudioStream) and stream.codec_context.codec.audio_formats
        stream.layout = "mono"
        fmt = stream.codec_context.codec.audio_formats[0].name
        resampler = av.AudioResampler(format=fmt, layout="mono", rate=rate)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        for f in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def best_lag_similarity(ref: Pcm, got: Pcm, max_lag: int = 4000) -> tuple[int, float]:
    """The delay of ``got`` behind ``ref`` (FFT cross-correlation) and their correlation there."""
    a, b = ref.astype(np.float64), got.astype(np.float64)
    n = len(a) + len(b)
    xc = np.fft.irfft(np.conj(np.fft.rfft(a, n)) * np.fft.rfft(b, n), n)[:max_lag]
    lag = int(np.argmax(xc))
    m = min(len(a), len(b) - lag)
    return lag, float(np.corrcoef(a[:m], b[lag : lag + m])[0, 1])


def test_pcm16_passes_samples_through() -> None:
    pcm = (np.arange(1000) - 500).astype(np.int16)
    assert np.array_equal(Pcm16Decoder().feed(pcm.astype("<i2").tobytes()), pcm)


def test_pcm16_odd_length_is_a_decode_error_and_the_decoder_goes_on() -> None:
    decoder = Pcm16Decoder()
    with pytest.raises(DecodeError, match="odd length"):
        decoder.feed(b"\x01\x02\x03")
    assert len(decoder.feed(b"\x01\x02\x03\x04")) == 2


def test_pcm16_at_48k_is_resampled(fleurs: Callable[[int], Pcm]) -> None:
    clip = fleurs(6)
    up = np.repeat(clip, 3)  # crude 48 kHz version
    decoder = Pcm16Decoder(48000)
    data = up.astype("<i2").tobytes()
    got = np.concatenate([decoder.feed(data[i : i + 9600]) for i in range(0, len(data), 9600)] + [decoder.close()])
    assert abs(len(got) - len(clip)) <= 64
    assert best_lag_similarity(clip, got, 64)[1] > 0.95


def test_make_decoder_by_codec() -> None:
    assert isinstance(make_decoder("pcm16", 16000), Pcm16Decoder)
    assert isinstance(make_decoder("webm-opus", 48000, resume=True), WebmOpusDecoder)
    with pytest.raises(UnsupportedAudio, match="mp3"):
        make_decoder("mp3", 16000)


def test_decode_file_reads_wav_exactly(fleurs: Callable[[int], Pcm], speech_dir: Path) -> None:
    assert np.array_equal(decode_file(speech_dir / "fleurs-es-006.wav"), fleurs(6))


@pytest.mark.parametrize(
    ("suffix", "codec", "rate"),
    [(".mp3", "libmp3lame", 44100), (".ogg", "libopus", 48000), (".m4a", "aac", 44100), (".webm", "libopus", 48000)],
)
def test_decode_file_reads_compressed_files(
    fleurs: Callable[[int], Pcm], tmp_path: Path, suffix: str, codec: str, rate: int
) -> None:
    clip = fleurs(6)
    path = encode_file(clip, tmp_path / f"clip{suffix}", codec, rate)
    got = decode_file(path)
    assert got.dtype == np.int16
    assert abs(len(got) - len(clip)) <= 0.1 * 16000  # encoder delay and padding
    lag, sim = best_lag_similarity(clip, got)
    assert sim > 0.9 and lag < 0.1 * 16000


def test_decode_file_errors_say_what_is_wrong(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(DecodeError, match="cannot decode"):
        decode_file(junk)
    with pytest.raises(DecodeError, match="cannot decode"):
        decode_file(tmp_path / "missing.wav")


def test_silero_hears_speech_not_silence(fleurs: Callable[[int], Pcm]) -> None:
    detector = SileroDetector()
    clip = fleurs(0).astype(np.float32) / 32768.0
    frames = clip[: len(clip) // 512 * 512].reshape(-1, 512)
    t0 = time.perf_counter()
    probs = np.array([detector.probability(f) for f in frames])
    per_frame_ms = (time.perf_counter() - t0) / len(frames) * 1e3
    print(f"silero: {per_frame_ms:.3f} ms per 32 ms frame")
    assert per_frame_ms < 2.0
    assert probs.min() >= 0 and probs.max() <= 1
    assert probs[: 1500 // 32].max() < 0.5  # FLEURS 0 starts with ~2 s of room noise
    assert np.mean(probs[2500 // 32 : 11000 // 32] > 0.5) > 0.8
    detector.reset()
    assert detector.probability(np.zeros(512, np.float32)) < 0.1
    with pytest.raises(ValueError, match="512"):
        detector.probability(np.zeros(256, np.float32))
