"""Spoken audio in memory: :class:`Speech` (int16 mono samples and their rate) and WAV.

Engines hand their audio over as a :class:`Speech`; what is published is a WAV file (PCM16
mono) at the engine's own rate: 22 050 Hz for espeak-ng and the medium Piper voices, 24 000 Hz
for most HTTP servers. It is not resampled: a browser plays any rate, a sentence is a few
seconds (about 45 kB a second), and resampling would cost quality above 8 kHz for little.

Engines write WAV headers that do not always say the truth (espeak-ng on a pipe cannot seek
back, so its sizes read 2 GB): :func:`from_wav` reads the samples that are really there.
"""

from __future__ import annotations

import io
import struct
import wave
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .errors import SynthesisFailed

__all__ = ["Speech", "from_wav", "to_wav", "trim_silence"]

Samples = npt.NDArray[np.int16]


@dataclass(frozen=True, eq=False)
class Speech:
    """Synthesised speech: int16 mono ``samples`` at ``sample_rate`` Hz."""

    samples: Samples
    sample_rate: int

    @property
    def duration_ms(self) -> int:
        return round(1000 * len(self.samples) / self.sample_rate) if self.sample_rate else 0

    def wav(self) -> bytes:
        return to_wav(self.samples, self.sample_rate)


def to_wav(samples: Samples, sample_rate: int) -> bytes:
    """A WAV file (PCM16 mono) holding ``samples``."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())
    return out.getvalue()


def from_wav(data: bytes, what: str = "the engine") -> Speech:
    """The samples of a PCM16 WAV file (stereo is mixed down to mono); sizes in the header
    that overstate the data are tolerated. Anything else raises :class:`SynthesisFailed`."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        head = data[:16]
        raise SynthesisFailed(f"{what} answered {len(data)} bytes that are not a WAV file (they start {head!r})")
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError, struct.error) as e:
        raise SynthesisFailed(f"{what} answered an unreadable WAV file: {e}") from e
    if width != 2 or channels not in (1, 2) or rate <= 0:
        raise SynthesisFailed(
            f"{what} answered WAV with {channels} channel(s) of {8 * width}-bit samples at {rate} Hz; "
            "expected 16-bit mono or stereo PCM"
        )
    raw = raw[: len(raw) - len(raw) % (2 * channels)]
    samples = np.frombuffer(raw, dtype="<i2")
    if channels == 2:
        samples = samples.reshape(-1, 2).mean(axis=1).astype(np.int16)
    return Speech(samples.astype(np.int16, copy=False), rate)


def trim_silence(speech: Speech, threshold: int = 200, lead_ms: int = 50, tail_ms: int = 250) -> Speech:
    """``speech`` with at most ``lead_ms`` of silence before it and ``tail_ms`` after it.

    Sentences are played one after the other, so the tail is the pause between them: the
    same from every engine (espeak-ng leaves about 300 ms, Piper about 200 ms, servers vary),
    and no leading silence delays the first sound. All-silent audio is returned unchanged."""
    loud = np.flatnonzero(np.abs(speech.samples.astype(np.int32)) > threshold)
    if loud.size == 0:
        return speech
    rate = speech.sample_rate
    start = max(0, int(loud[0]) - rate * lead_ms // 1000)
    end = min(len(speech.samples), int(loud[-1]) + 1 + rate * tail_ms // 1000)
    if start == 0 and end == len(speech.samples):
        return speech
    return Speech(speech.samples[start:end], rate)
