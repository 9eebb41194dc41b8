"""Test material for ingest, built from the real FLEURS clips in ../shared/eval/speech.

* ``fleurs(i)``: clip i of ``$HABLA_EVAL_DIR`` (default ``../shared/eval``) as 16 kHz
  mono int16, read with the ``wave`` module, not with the code under test.
* ``speech_bounds(pcm)``: the reference speech span of a clip in ms: the first and
  last 10 ms frame whose RMS is 26 dB above the clip's noise floor (its 10th
  percentile frame). Independent of Silero; it agrees with Silero's offline
  ``get_speech_timestamps`` within ~130 ms on the clips the tests use.
* ``encode_webm(pcm)``: WebM/Opus like Chrome's MediaRecorder writes it: libopus at
  48 kHz mono, a Segment of unknown size, and Clusters rewritten to unknown size too
  (FFmpeg's muxer writes their sizes, Chrome's does not).
* ``cut_chunks(data, seconds)``: the bytes cut at arbitrary offsets into pieces of
  about 250 ms of audio each, as MediaRecorder's timeslice does.
"""

from __future__ import annotations

import os
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from habla.evaluation import cut_chunks_like_mediarecorder, encode_webm_opus


def _eval_dir() -> Path:
    env = os.environ.get("HABLA_EVAL_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[3].parent / "shared" / "eval"


SPEECH_DIR = _eval_dir() / "speech"

Pcm = npt.NDArray[np.int16]


def read_wav(path: Path) -> Pcm:
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)


@pytest.fixture(scope="session")
def fleurs() -> Callable[[int], Pcm]:
    if not SPEECH_DIR.exists():
        pytest.skip(f"FLEURS clips not found at {SPEECH_DIR}")
    cache: dict[int, Pcm] = {}

    def load(i: int) -> Pcm:
        if i not in cache:
            cache[i] = read_wav(SPEECH_DIR / f"fleurs-es-{i:03d}.wav")
        return cache[i]

    return load


@pytest.fixture(scope="session")
def speech_dir() -> Path:
    return SPEECH_DIR


def _speech_bounds(pcm: Pcm) -> tuple[int, int]:
    frames = pcm[: len(pcm) // 160 * 160].astype(np.float64).reshape(-1, 160)
    rms = np.sqrt((frames**2).mean(axis=1)) + 1.0
    loud = np.flatnonzero(rms > 20 * np.percentile(rms, 10))
    return int(loud[0]) * 10, int(loud[-1] + 1) * 10


@pytest.fixture(scope="session")
def speech_bounds() -> Callable[[Pcm], tuple[int, int]]:
    return _speech_bounds


@pytest.fixture(scope="session")
def encode_webm() -> Callable[..., bytes]:
    return encode_webm_opus


@pytest.fixture(scope="session")
def cut_chunks() -> Callable[..., list[bytes]]:
    return cut_chunks_like_mediarecorder
