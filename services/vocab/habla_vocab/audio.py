"""Clips: PCM16 speech in, a small MP3 out (the one format every Anki client plays).

Encoded in memory with PyAV (its wheels bundle FFmpeg with LAME), so no ffmpeg binary is
needed on the machine. The utterance audio the recorder stores (Ogg/Opus) is decoded back
to PCM16 here too.
"""

from __future__ import annotations

import io

import av
import numpy as np

from .errors import ClipFailed

__all__ = ["decode_mp3", "decode_opus", "encode_mp3", "slice_pcm"]


def slice_pcm(pcm: bytes, sample_rate: int, pcm_start_ms: int, start_ms: int, end_ms: int) -> bytes:
    """``start_ms..end_ms`` (session time) of ``pcm``, which starts at ``pcm_start_ms``."""
    first = max(0, (start_ms - pcm_start_ms) * sample_rate // 1000) * 2
    last = max(0, (end_ms - pcm_start_ms) * sample_rate // 1000) * 2
    return pcm[first : min(last, len(pcm) // 2 * 2)]


def encode_mp3(pcm: bytes, sample_rate: int, bitrate_kbps: int = 32) -> bytes:
    """PCM16 little-endian mono as MP3 (mono, same rate)."""
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2")
    if samples.size == 0:
        raise ClipFailed("no audio to encode")
    out = io.BytesIO()
    try:
        with av.open(out, "w", format="mp3") as container:
            stream = container.add_stream("libmp3lame", rate=sample_rate)
            stream.bit_rate = bitrate_kbps * 1000
            stream.layout = "mono"
            frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = sample_rate
            for packet in stream.encode(frame):
                container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
    except (av.FFmpegError, ValueError) as e:
        raise ClipFailed(f"could not encode a {samples.size / sample_rate:.1f} s clip as MP3: {e}") from e
    return out.getvalue()


def _decode(data: bytes, sample_rate: int, sample_format: str, what: str) -> np.ndarray:
    """Any audio file PyAV reads, as mono ``sample_format`` samples at ``sample_rate``."""
    resampler = av.AudioResampler(format=sample_format, layout="mono", rate=sample_rate)
    chunks: list[np.ndarray] = []
    try:
        with av.open(io.BytesIO(data), "r") as container:
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except (av.FFmpegError, ValueError) as e:
        raise ClipFailed(f"{what}: {e}") from e
    dtype = np.float32 if sample_format == "flt" else np.dtype("<i2")
    return np.concatenate(chunks).astype(dtype) if chunks else np.zeros(0, dtype=dtype)


def decode_mp3(data: bytes, sample_rate: int = 16000) -> np.ndarray:
    """An MP3 back to float32 mono at ``sample_rate`` (to check and to play clips)."""
    return _decode(data, sample_rate, "flt", "not a playable MP3")


def decode_opus(data: bytes, sample_rate: int) -> bytes:
    """A stored utterance's Ogg/Opus audio (``utterance_audio.data``) as PCM16 little-endian
    mono at ``sample_rate``."""
    return _decode(data, sample_rate, "s16", "the stored utterance audio is not playable Ogg/Opus").tobytes()
