"""Shared fixtures: the real bundled Whisper model, loaded once per test session, and
the FLEURS clips of ``shared/eval/speech`` (see that folder's README for sources)."""

from __future__ import annotations

import csv
import os
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from habla_asr.adapters import FasterWhisperTranscriber
from habla_asr.config import AsrConfig


def _eval_dir() -> Path:
    env = os.environ.get("HABLA_EVAL_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[3].parent / "shared" / "eval"


@dataclass(frozen=True)
class Clip:
    file: str
    reference: str  # FLEURS normalised transcript: lowercase, no punctuation
    audio: np.ndarray  # float32 mono 16 kHz


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000), path
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


@pytest.fixture(scope="session")
def speech_clips() -> list[Clip]:
    folder = _eval_dir() / "speech"
    manifest = folder / "manifest.csv"
    if not manifest.is_file():
        pytest.skip(f"no evaluation audio at {folder} (set HABLA_EVAL_DIR)")
    with open(manifest, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [Clip(r["file"], r["transcript_es"], read_wav(folder / r["file"])) for r in rows]


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh cache folder per test session (the bundled model is assembled into it)."""
    return tmp_path_factory.mktemp("habla-cache")


@pytest.fixture(scope="session")
def asr_config(model_cache: Path) -> AsrConfig:
    return AsrConfig(cache_dir=model_cache)


@pytest.fixture(scope="session")
def transcriber(asr_config: AsrConfig) -> FasterWhisperTranscriber:
    """The real bundled Whisper base (int8, 2 threads), loaded and warmed up once."""
    return FasterWhisperTranscriber.from_config(asr_config)
