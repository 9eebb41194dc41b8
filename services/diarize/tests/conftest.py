"""Shared fixtures: the real bundled speaker encoder (loaded once per test session) and
the FLEURS clips of ``shared/eval/speech``, trimmed to their voice (see that folder's
README for sources; clips 003 and 004 sound like one speaker, see the service README)."""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np
import pytest

from habla_diarize.embedders import ResemblyzerEmbedder


def eval_dir() -> Path:
    env = os.environ.get("HABLA_EVAL_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[3].parent / "shared" / "eval"


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000), path
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


def trim(audio: np.ndarray, pad_ms: int = 200) -> np.ndarray:
    """The clip from its first to its last loud 20 ms frame, with ``pad_ms`` either side
    (as the ingest's voice-activity segmenter cuts utterances)."""
    frames = audio[: audio.size // 320 * 320].reshape(-1, 320)
    level = np.sqrt((frames**2).mean(axis=1))
    loud = np.flatnonzero(level > 0.1 * np.percentile(level, 95))
    pad = pad_ms * 16
    return audio[max(0, loud[0] * 320 - pad) : (loud[-1] + 1) * 320 + pad]


@pytest.fixture(scope="session")
def clips() -> list[np.ndarray]:
    """The ten FLEURS clips as float32, trimmed to the voice."""
    folder = eval_dir() / "speech"
    if not (folder / "manifest.csv").is_file():
        pytest.skip(f"no evaluation audio at {folder} (set HABLA_EVAL_DIR)")
    return [trim(read_wav(folder / f"fleurs-es-{i:03d}.wav")) for i in range(10)]


@pytest.fixture(scope="session")
def embedder() -> ResemblyzerEmbedder:
    e = ResemblyzerEmbedder()
    e.warm_up()
    return e


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def gap(ms: int, seed: int = 0) -> np.ndarray:
    """Near-silence (a -60 dBFS noise floor), as between two people talking."""
    return (np.random.default_rng(seed).standard_normal(ms * 16) * 0.001).astype(np.float32)
