"""Utterance audio as Ogg/Opus: PCM16 in, a small file out, and back.

Encoded in memory with PyAV (its wheels bundle FFmpeg with libopus), so no ffmpeg binary
is needed. Opus codes 8, 12, 16, 24 and 48 kHz natively; other rates are resampled to
48 kHz on the way in and back to the original rate on the way out.
"""

from __future__ import annotations

import io

import av
import numpy as np

__all__ = ["CODEC", "MEDIA_TYPE", "AudioCodecError", "decode_opus", "encode_opus"]

CODEC = "opus"  # utterance_audio.codec
MEDIA_TYPE = "audio/ogg"
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


class AudioCodecError(Exception):
    """The audio could not be encoded or decoded."""


def encode_opus(pcm: bytes, sample_rate: int, bitrate_kbps: int = 24) -> bytes:
    """PCM16 little-endian mono as an Ogg/Opus file (mono, VBR around ``bitrate_kbps``)."""
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2")
    if samples.size == 0:
        raise AudioCodecError("no audio to encode")
    if sample_rate <= 0:
        raise AudioCodecError(f"cannot encode audio at a sample rate of {sample_rate} Hz")
    rate = sample_rate if sample_rate in _OPUS_RATES else 48000
    out = io.BytesIO()
    try:
        with av.open(out, "w", format="ogg") as container:
            stream = container.add_stream("libopus", rate=rate)
            stream.bit_rate = bitrate_kbps * 1000
            stream.layout = "mono"
            frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = sample_rate
            frame.pts = 0
            for packet in stream.encode(frame):
                container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
    except (av.FFmpegError, ValueError) as e:
        raise AudioCodecError(f"could not encode {samples.size / sample_rate:.1f} s of audio as Opus: {e}") from e
    return out.getvalue()


def decode_opus(data: bytes, sample_rate: int) -> bytes:
    """An Ogg/Opus file back to PCM16 little-endian mono at ``sample_rate``."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
    chunks: list[np.ndarray] = []
    try:
        with av.open(io.BytesIO(data), "r") as container:
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except (av.FFmpegError, ValueError) as e:
        raise AudioCodecError(f"not a playable Ogg/Opus file: {e}") from e
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype="<i2")
    return pcm.astype("<i2").tobytes()
