"""Audio as the services exchange it: PCM16 little-endian mono bytes, 16 kHz; and whole
recordings (any container FFmpeg reads) decoded to it."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np

from habla_contracts import HablaError

__all__ = ["SAMPLE_RATE", "AudioDecodeError", "decode_audio", "pcm16_to_float32"]

SAMPLE_RATE = 16000


def pcm16_to_float32(pcm: bytes, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """PCM16 little-endian mono bytes -> float32 in [-1, 1] at 16 kHz.

    A trailing odd byte is ignored; other rates are resampled linearly (ingest sends
    16 kHz, this only keeps a stray rate from failing the utterance).
    """
    usable = len(pcm) - len(pcm) % 2
    audio = np.frombuffer(pcm[:usable], dtype="<i2").astype(np.float32) / 32768.0
    if sample_rate != SAMPLE_RATE and sample_rate > 0 and audio.size:
        n_out = max(1, round(audio.size * SAMPLE_RATE / sample_rate))
        x_out = np.linspace(0.0, audio.size - 1, n_out)
        audio = np.interp(x_out, np.arange(audio.size), audio).astype(np.float32)
    return audio


class AudioDecodeError(HablaError):
    """A recording that cannot be decoded (garbage, truncated, no audio stream)."""


def decode_audio(source: str | Path | bytes, *, name: str = "") -> np.ndarray:
    """A whole recording (wav, mp3, m4a, ogg, webm, flac: the first audio stream of a file,
    or its bytes) as 16 kHz mono int16. ``name`` is what error messages call bytes."""
    label = name or (str(source) if not isinstance(source, bytes) else "the recording")
    parts: list[np.ndarray] = []
    try:
        src: io.BytesIO | str = io.BytesIO(source) if isinstance(source, bytes) else str(source)
        with av.open(src, mode="r") as container:
            if not container.streams.audio:
                raise AudioDecodeError(f"{label}: no audio stream in this file")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(stream):
                parts.extend(_pcm(resampler.resample(frame)))
            parts.extend(_pcm(resampler.resample(None)))
    except av.FFmpegError as e:
        raise AudioDecodeError(f"cannot decode {label}: {e}. Is it a wav/mp3/m4a/ogg/webm audio file?") from e
    return np.concatenate(parts) if parts else np.zeros(0, np.int16)


def _pcm(frames: list[av.AudioFrame]) -> list[np.ndarray]:
    """Packed s16 mono frames as int16 arrays."""
    return [f.to_ndarray().reshape(-1).astype(np.int16, copy=False) for f in frames]
