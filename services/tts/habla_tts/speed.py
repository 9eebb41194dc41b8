"""How fast the configured voices speak on this machine: ``python -m habla_tts.speed``.

Builds the voices as the service does (``TTS_VOICE_ES``, ``TTS_VOICE_EN``, ``TTS_THREADS``, ...),
warms them up, then synthesises a few everyday sentences ``--rounds`` times each and prints,
per voice, the milliseconds a sentence takes (median and slowest) and the real-time factor
(synthesis time over the duration of the audio; under 1 is faster than real time).
"""

from __future__ import annotations

import argparse
import statistics
import time

from .config import TtsConfig
from .engines import Synthesizer
from .main import build_voices

__all__ = ["SENTENCES", "main", "measure"]

SENTENCES = {
    "es": (
        "Buenos días, quería reservar una mesa para esta noche.",
        "¿Me puede decir dónde está la farmacia más cercana?",
        "El casero dice que la calefacción no funciona desde el lunes.",
        "Vale.",
    ),
    "en": (
        "Good morning, I would like to book a table for tonight.",
        "Could you tell me where the nearest pharmacy is?",
        "The landlord says the heating has not worked since Monday.",
        "Okay.",
    ),
}


def measure(voice: Synthesizer, rounds: int = 3) -> dict[str, float]:
    """Median and slowest ms per sentence, and the real-time factor over every sentence."""
    took: list[float] = []
    spoken_ms = 0
    for _ in range(rounds):
        for sentence in SENTENCES.get(voice.language, SENTENCES["es"]):
            started = time.perf_counter()
            speech = voice.synthesize(sentence)
            took.append(1000 * (time.perf_counter() - started))
            spoken_ms += speech.duration_ms
    return {
        "median_ms": statistics.median(took),
        "max_ms": max(took),
        "rtf": sum(took) / spoken_ms if spoken_ms else 0.0,
        "audio_ms_per_sentence": spoken_ms / len(took),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3, help="times each sentence is spoken (default 3)")
    args = parser.parse_args()
    for language, voice in build_voices(TtsConfig.from_env()).items():
        m = measure(voice, args.rounds)
        print(
            f"{language} {voice.engine}:{voice.voice}: {m['median_ms']:.0f} ms a sentence (slowest {m['max_ms']:.0f}), "
            f"{m['audio_ms_per_sentence'] / 1000:.1f} s of speech each, real-time factor {m['rtf']:.3f}"
        )


if __name__ == "__main__":
    main()
