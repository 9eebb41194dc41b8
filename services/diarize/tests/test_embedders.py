"""Contract tests every speaker embedder passes: the bundled resemblyzer encoder here, and
pyannote.audio where it and its weights are installed (the GPU PC); elsewhere the pyannote
cases are skipped and say why."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import numpy as np
import pytest

from habla_diarize.config import DEFAULT_PYANNOTE_MODEL
from habla_diarize.embedders import PyannoteEmbedder, ResemblyzerEmbedder, SpeakerEmbedder, mean_voice
from habla_diarize.errors import EmbedderUnavailable, EmbeddingFailed

pytestmark = pytest.mark.slow


def _pyannote() -> SpeakerEmbedder:
    try:
        import pyannote.audio  # noqa: F401
    except Exception as e:  # noqa: BLE001
        pytest.skip(
            f"pyannote.audio is not installed here ({type(e).__name__}); it needs CUDA torchaudio and "
            "hub-gated weights, so its contract runs on the GPU PC (DIARIZE_MODEL / HF_TOKEN)"
        )
    try:
        e = PyannoteEmbedder(
            os.environ.get("DIARIZE_MODEL", DEFAULT_PYANNOTE_MODEL), token=os.environ.get("HF_TOKEN", "")
        )
    except EmbedderUnavailable as err:
        pytest.skip(f"pyannote model not available here: {err}")
    e.warm_up()
    return e


@pytest.fixture(params=["resemblyzer", "pyannote"], scope="module")
def any_embedder(request: pytest.FixtureRequest, embedder: ResemblyzerEmbedder) -> Iterator[SpeakerEmbedder]:
    yield embedder if request.param == "resemblyzer" else _pyannote()


def test_windows_are_unit_vectors_covering_the_audio(any_embedder: SpeakerEmbedder, clips: list[np.ndarray]) -> None:
    audio = clips[0]
    w = any_embedder.windows(audio, 200)
    duration = audio.size * 1000 // 16000
    assert w.vectors.shape == (len(w), any_embedder.dim)
    assert np.allclose(np.linalg.norm(w.vectors, axis=1), 1.0, atol=1e-4)
    assert w.starts_ms[0] == 0 and abs(int(w.starts_ms[-1]) + w.length_ms - duration) <= 10
    assert np.all(np.diff(w.starts_ms) > 0) and np.all(np.diff(w.starts_ms) <= 200)
    again = any_embedder.windows(audio, 200)
    assert np.allclose(w.vectors, again.vectors, atol=1e-5)  # deterministic


def test_one_speaker_is_closer_to_itself_than_to_others(any_embedder: SpeakerEmbedder, clips: list[np.ndarray]) -> None:
    """Halves of one clip against halves of clips by other people (FLEURS 000, 001, 005, 009)."""
    voices = {}
    for i in (0, 1, 5, 9):
        w = any_embedder.windows(clips[i], 400)
        mid = clips[i].size * 1000 // 16000 // 2
        voices[i] = (mean_voice(w, 0, mid), mean_voice(w, mid, None))
    for i, (first, second) in voices.items():
        same = float(first @ second)
        others = [float(first @ voices[j][1]) for j in voices if j != i]
        assert same > max(others), (i, same, others)


def test_short_audio_gives_one_padded_window(any_embedder: SpeakerEmbedder, clips: list[np.ndarray]) -> None:
    w = any_embedder.windows(clips[0][: 16000 * 3 // 10], 200)  # 0.3 s
    assert len(w) == 1 and np.isclose(np.linalg.norm(w.vectors[0]), 1.0, atol=1e-4)


def test_silence_and_digital_zero_do_not_break_it(any_embedder: SpeakerEmbedder) -> None:
    w = any_embedder.windows(np.zeros(32000, dtype=np.float32), 400)
    assert np.isfinite(w.vectors).all()


@pytest.mark.parametrize(
    ("audio", "message"),
    [
        (np.zeros(0, dtype=np.float32), "got none"),
        (np.zeros((2, 16000), dtype=np.float32), "mono"),
        (np.zeros(16000, dtype=np.int16), "float"),
    ],
)
def test_unusable_audio_is_a_clear_error(any_embedder: SpeakerEmbedder, audio: np.ndarray, message: str) -> None:
    with pytest.raises(EmbeddingFailed, match=message):
        any_embedder.windows(audio, 200)


def test_warmed_up_encoder_answers_the_first_utterance_quickly(clips: list[np.ndarray]) -> None:
    """The front end needs no JIT compilation and the model is warmed at start, so the
    first real utterance costs what later ones do (printed; not a timing assertion)."""
    started = time.perf_counter()
    e = ResemblyzerEmbedder()
    e.warm_up()
    ready = time.perf_counter() - started
    costs = []
    for audio in (clips[1], clips[2], clips[1]):
        t = time.perf_counter()
        e.windows(audio, 200)
        costs.append(time.perf_counter() - t)
    print(f"load+warm-up {ready:.2f} s; first utterances {[round(c * 1000) for c in costs]} ms")
    assert costs[0] < 5 * max(costs[1:]) + 0.05
