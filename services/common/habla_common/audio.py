"""Audio as the services exchange it: PCM16 little-endian mono bytes, 16 kHz."""

from __future__ import annotations

import numpy as np

__all__ = ["SAMPLE_RATE", "pcm16_to_float32"]

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
