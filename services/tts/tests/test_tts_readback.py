"""Whisper reads the synthesised speech back: the words said are the words written.

The bundled Whisper base model (habla_asr's, assembled into the cache as ``habla up`` does)
transcribes espeak-ng's Spanish and Piper's English, as the WAV the phone gets; the word error
rate over eight everyday sentences must stay low. Measured on the 2-core machine (the result
is deterministic): Piper English 0.00; espeak-ng Spanish 0.37, robotic Castilian being hard
for the small Whisper ("mi hermana trabaja" heard as "mierma tavaja"), where a listener does
better. Margins: 0.1 and 0.45."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import jiwer
import pytest

from habla_tts.engines import EspeakSynthesizer, PiperSynthesizer, Synthesizer

pytestmark = pytest.mark.slow

# everyday lines, no numbers (Whisper writes "cuatro" as "4": right, but not the same word)
SPANISH = [
    "Buenos días, quería reservar una mesa para esta noche.",
    "¿Me puede decir dónde está la farmacia más cercana?",
    "Mañana vamos a la playa con mis hermanos si no llueve.",
    "Mi hermana trabaja en un hospital cerca del centro de la ciudad.",
    "No me gusta nada el café sin azúcar, prefiero el té.",
    "El casero dice que la calefacción no funciona desde el lunes.",
    "Perdona, ¿sabes a qué hora cierra el supermercado?",
    "Necesito comprar pan, leche y un poco de fruta para la semana.",
]
ENGLISH = [
    "Good morning, I would like to book a table for tonight.",
    "Could you tell me where the nearest pharmacy is?",
    "Tomorrow we are going to the beach with my brothers if it does not rain.",
    "My sister works in a hospital near the center of the city.",
    "I do not like coffee without sugar at all, I prefer tea.",
    "The landlord says the heating has not worked since Monday.",
    "Excuse me, do you know what time the supermarket closes?",
    "I need to buy bread, milk and some fruit for the week.",
]


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())


@pytest.fixture(scope="module")
def whisper() -> Any:
    faster_whisper = pytest.importorskip("faster_whisper")
    from habla_asr.bundled import assemble_bundled_model

    cache = Path(os.environ.get("HABLA_CACHE_DIR") or Path.home() / ".cache" / "habla")
    folder = assemble_bundled_model(cache)
    return faster_whisper.WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=2)


def read_back(whisper: Any, voice: Synthesizer, sentences: list[str]) -> float:
    from faster_whisper.audio import decode_audio

    heard = []
    for sentence in sentences:
        audio = decode_audio(io.BytesIO(voice.synthesize(sentence).wav()), sampling_rate=16000)
        segments, _ = whisper.transcribe(audio, language=voice.language, beam_size=5, condition_on_previous_text=False)
        heard.append(normalise(" ".join(s.text for s in segments)))
    wer = float(jiwer.wer([normalise(s) for s in sentences], heard))
    print(f"\n{voice.engine}:{voice.voice} read back with WER {wer:.3f}: {heard}")
    return wer


def test_whisper_understands_espeak_spanish(whisper: Any, espeak_es: EspeakSynthesizer) -> None:
    assert read_back(whisper, espeak_es, SPANISH) < 0.45


def test_whisper_understands_piper_english(whisper: Any, piper_en: PiperSynthesizer) -> None:
    assert read_back(whisper, piper_en, ENGLISH) < 0.1
