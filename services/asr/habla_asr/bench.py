"""Time ``transcribe()`` for a few audio lengths and beams: ``python -m habla_asr.bench [clip.wav]``.

Uses the configured model (``AsrConfig.from_env()``) and the given 16 kHz mono PCM16
wav, cut to each length (default: the longest clip of ``shared/eval/speech``).
Prints the median wall time of ``repeats`` calls per (seconds, beam); beam 1 runs as
a partial (no fallback), other beams as a final.
"""

from __future__ import annotations

import statistics
import sys
import time
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .adapters import FasterWhisperTranscriber, Transcriber
from .config import AsrConfig

__all__ = ["main", "read_wav", "time_transcribe"]

_DEFAULT_CLIP = Path(__file__).resolve().parents[3].parent / "shared" / "eval" / "speech" / "fleurs-es-001.wav"


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, 16000):
            raise ValueError(f"{path}: need 16 kHz mono PCM16")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


def time_transcribe(
    transcriber: Transcriber,
    audio: np.ndarray,
    *,
    seconds: Sequence[float] = (1, 3, 10),
    beams: Sequence[int] = (1, 5),
    repeats: int = 3,
    language: str | None = "es",
) -> dict[tuple[float, int], float]:
    """Median seconds per call for each (audio seconds, beam)."""
    results: dict[tuple[float, int], float] = {}
    for s in seconds:
        clip = audio[: int(16000 * s)]
        for beam in beams:
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                transcriber.transcribe(clip, language=language, beam_size=beam, partial=beam == 1)
                times.append(time.perf_counter() - started)
            results[(s, beam)] = statistics.median(times)
    return results


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    audio = read_wav(Path(args[0]) if args else _DEFAULT_CLIP)
    config = AsrConfig.from_env()
    started = time.perf_counter()
    transcriber = FasterWhisperTranscriber.from_config(config)
    loaded = time.perf_counter() - started
    print(f"{config.model_label} on {config.device}, {config.cpu_threads} threads: load+warm-up {loaded:.2f} s")
    for language in ("es", None):
        for (s, beam), t in time_transcribe(transcriber, audio, language=language).items():
            print(f"language={language or 'auto':4s} {s:5.1f} s audio, beam {beam}: {t:.2f} s/call (RTF {t / s:.2f})")


if __name__ == "__main__":
    main()
