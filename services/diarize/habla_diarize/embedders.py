"""Speaker embeddings behind a Protocol, with two real backends.

* :class:`ResemblyzerEmbedder` (default): the GE2E speaker encoder whose weights ship
  inside the ``resemblyzer`` wheel (256-d, trained on 1.6 s windows). Runs offline on any
  CPU; the mel front end is JIT-compiled on the first call, so :meth:`warm_up` runs once
  at start.
* :class:`PyannoteEmbedder`: any pyannote.audio embedding model by name or local path
  (``pyannote/wespeaker-voxceleb-resnet34-LM`` by default) for the GPU PC. The Hugging
  Face token comes from the configuration; pyannote's telemetry is switched off before it
  is imported.

Both give L2-normalised vectors for fixed-length windows sliding over an utterance
(:meth:`SpeakerEmbedder.windows`); a stretch's voice is the normalised mean of the
windows inside it (:func:`mean_voice`), so one forward pass per utterance serves change
detection and assignment alike.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from .config import DiarizeConfig
from .errors import EmbedderUnavailable, EmbeddingFailed

__all__ = [
    "SAMPLE_RATE",
    "PyannoteEmbedder",
    "ResemblyzerEmbedder",
    "SpeakerEmbedder",
    "Windows",
    "build_embedder",
    "mean_voice",
    "normalise",
]

log = logging.getLogger("habla.diarize.embedder")

SAMPLE_RATE = 16000
F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Windows:
    """Embeddings of equal-length windows over one stretch of audio.

    ``starts_ms[i]`` is where window ``i`` starts (ms from the audio's start), every window
    is ``length_ms`` long (the last ones may run past a short clip's end: padded) and
    ``vectors[i]`` is its L2-normalised embedding."""

    starts_ms: npt.NDArray[np.int64]
    length_ms: int
    vectors: F32

    def __len__(self) -> int:
        return len(self.starts_ms)


class SpeakerEmbedder(Protocol):
    """Speaker embeddings of 16 kHz mono float32 audio held in memory."""

    @property
    def name(self) -> str:
        """Backend and model: voiceprints are comparable only between equal names."""
        ...

    @property
    def dim(self) -> int: ...

    @property
    def window_ms(self) -> int:
        """Length of the analysis windows."""
        ...

    def windows(self, audio: F32, hop_ms: int) -> Windows:
        """Windows of :attr:`window_ms` every ``hop_ms`` covering ``audio`` (at least one,
        padded, for audio shorter than a window; the last window ends at the audio's end)."""
        ...

    def warm_up(self) -> None: ...


def normalise(v: npt.NDArray[Any]) -> F32:
    """``v`` scaled to unit length along its last axis (zeros stay zeros, NaN become 0)."""
    v = np.nan_to_num(np.asarray(v, dtype=np.float32))
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return (v / np.where(norm > 0, norm, 1.0)).astype(np.float32)


def mean_voice(
    w: Windows, start_ms: int = 0, end_ms: int | None = None, usable: npt.NDArray[np.bool_] | None = None
) -> F32:
    """The voice of ``start_ms..end_ms``: normalised mean of the (``usable``) windows inside
    it; of all windows inside when none is usable; of the windows overlapping it most when
    none fits inside."""
    end = int(w.starts_ms[-1] + w.length_ms) if end_ms is None else end_ms
    inside = (w.starts_ms >= start_ms) & (w.starts_ms + w.length_ms <= end)
    if usable is not None and (inside & usable).any():
        inside = inside & usable
    if not inside.any():
        overlap = np.minimum(w.starts_ms + w.length_ms, end) - np.maximum(w.starts_ms, start_ms)
        inside = overlap >= overlap.max()
    return normalise(w.vectors[inside].mean(axis=0))


def window_starts(n_samples: int, window: int, hop: int) -> list[int]:
    """Sample offsets of windows of ``window`` samples every ``hop`` covering ``n_samples``."""
    if n_samples <= window:
        return [0]
    starts = list(range(0, n_samples - window + 1, hop))
    if starts[-1] + window < n_samples:
        starts.append(n_samples - window)
    return starts


def check_audio(audio: npt.NDArray[Any]) -> F32:
    a = np.asarray(audio)
    if a.ndim != 1:
        raise EmbeddingFailed(f"speaker embedding needs mono audio (one dimension), got shape {a.shape}")
    if a.size == 0:
        raise EmbeddingFailed("speaker embedding needs audio, got none")
    if not np.issubdtype(a.dtype, np.floating):
        raise EmbeddingFailed(f"speaker embedding needs float audio in -1..1 at {SAMPLE_RATE} Hz, got {a.dtype}")
    return np.nan_to_num(a.astype(np.float32, copy=False))


class ResemblyzerEmbedder:
    """The bundled GE2E encoder (``resemblyzer``), on CPU unless told ``cuda``."""

    _BATCH = 64

    def __init__(self, device: str = "cpu") -> None:
        try:
            import torch
            from librosa.filters import mel as mel_filters
            from resemblyzer import VoiceEncoder
            from resemblyzer import hparams as rh
            from resemblyzer.audio import normalize_volume
            from scipy.signal import get_window
        except Exception as e:
            raise EmbedderUnavailable(
                f"resemblyzer cannot be imported ({type(e).__name__}: {e}); install it with "
                "`pip install --no-deps -r requirements-nodeps.lock` (scripts/setup does)"
            ) from e
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        started = time.perf_counter()
        self._torch = torch
        self._encoder = VoiceEncoder(device=device, verbose=False)
        # The encoder's front end (40 mel bands, 25 ms windows every 10 ms), computed with
        # numpy: the same values as resemblyzer's librosa call (to 1e-7), without its ~20 s
        # JIT compilation on a fresh machine.
        self._n_fft = int(rh.sampling_rate * rh.mel_window_length / 1000)
        self._hop = int(rh.sampling_rate * rh.mel_window_step / 1000)
        self._filters = mel_filters(sr=rh.sampling_rate, n_fft=self._n_fft, n_mels=rh.mel_n_channels).astype(np.float32)
        self._window = get_window("hann", self._n_fft, fftbins=True).astype(np.float32)
        self._normalize_volume = normalize_volume
        self._frames = int(rh.partials_n_frames)
        self._frame_ms = int(rh.mel_window_step)
        self._target_dbfs = float(rh.audio_norm_target_dBFS)
        self.load_s = time.perf_counter() - started
        from importlib.metadata import version

        self._name = f"resemblyzer-{version('resemblyzer')}"

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return 256

    @property
    def window_ms(self) -> int:
        return self._frames * self._frame_ms

    def windows(self, audio: F32, hop_ms: int) -> Windows:
        wav = check_audio(audio)
        if np.any(wav):  # (its dBFS of digital silence would be log10(0))
            wav = self._normalize_volume(wav, self._target_dbfs, increase_only=True)
        need = self.window_ms * SAMPLE_RATE // 1000
        if wav.size < need:
            wav = np.pad(wav, (0, need - wav.size))
        mel = self._mel(wav)[: wav.size // self._hop]  # a frame per 10 ms of audio
        hop = max(1, hop_ms // self._frame_ms)
        starts = window_starts(len(mel), self._frames, hop)
        batch = np.stack([mel[s : s + self._frames] for s in starts]).astype(np.float32)
        out = []
        with self._torch.no_grad():
            for i in range(0, len(batch), self._BATCH):
                x = self._torch.from_numpy(batch[i : i + self._BATCH]).to(self._encoder.device)
                out.append(self._encoder(x).cpu().numpy())
        vectors = normalise(np.concatenate(out))
        return Windows(np.asarray(starts, dtype=np.int64) * self._frame_ms, self.window_ms, vectors)

    def _mel(self, wav: F32) -> F32:
        """(frames, 40) mel power spectrogram, one frame per 10 ms (centred, zero-padded)."""
        y = np.pad(wav, self._n_fft // 2)
        n = 1 + (len(y) - self._n_fft) // self._hop
        idx = np.arange(self._n_fft)[None, :] + self._hop * np.arange(n)[:, None]
        power = np.abs(np.fft.rfft(y[idx] * self._window, axis=1)) ** 2
        return (power @ self._filters.T).astype(np.float32)

    def warm_up(self) -> None:
        rng = np.random.default_rng(0)
        self.windows((0.05 * rng.standard_normal(SAMPLE_RATE * 3)).astype(np.float32), 400)


class PyannoteEmbedder:
    """A pyannote.audio embedding model (``Model.from_pretrained``) over sliding windows."""

    def __init__(self, model: str, *, token: str = "", device: str = "cpu", window_ms: int = 1600) -> None:
        os.environ["PYANNOTE_METRICS_ENABLED"] = "0"  # pyannote reports usage unless told not to
        try:
            import torch
            from pyannote.audio import Inference, Model
        except Exception as e:
            raise EmbedderUnavailable(
                f"pyannote.audio cannot be imported ({type(e).__name__}: {e}); it runs on the GPU PC "
                "(`pip install -e 'services/diarize[pyannote]'`, or the diarize image built with "
                "DIARIZE_EXTRAS=pyannote); DIARIZE_BACKEND=resemblyzer works everywhere"
            ) from e
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        started = time.perf_counter()
        try:
            loaded = Model.from_pretrained(model, token=token or None)
        except Exception as e:
            raise EmbedderUnavailable(
                f"pyannote model {model!r} could not be loaded ({type(e).__name__}: {e}); give a local path, "
                "or set HF_TOKEN after accepting the model's conditions on its hub page"
            ) from e
        if loaded is None:
            raise EmbedderUnavailable(f"pyannote model {model!r} not found (gated? set HF_TOKEN)")
        self._torch = torch
        self._window_ms = window_ms
        self._device = torch.device(device)
        self._inference = Inference(loaded, window="whole")
        self._inference.to(self._device)
        self._model = model
        self._dim: int | None = None
        self.load_s = time.perf_counter() - started

    @property
    def name(self) -> str:
        return f"pyannote:{self._model}"

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.warm_up()
        assert self._dim is not None
        return self._dim

    @property
    def window_ms(self) -> int:
        return self._window_ms

    def windows(self, audio: F32, hop_ms: int) -> Windows:
        wav = check_audio(audio)
        need = self._window_ms * SAMPLE_RATE // 1000
        if wav.size < need:
            wav = np.pad(wav, (0, need - wav.size))
        hop = max(1, hop_ms * SAMPLE_RATE // 1000)
        starts = window_starts(wav.size, need, hop)
        batch = self._torch.from_numpy(np.stack([wav[s : s + need] for s in starts])[:, None, :])
        with self._torch.no_grad():
            out = self._inference.infer(batch.to(self._device))
        vectors = normalise(np.asarray(out).reshape(len(starts), -1))
        self._dim = vectors.shape[1]
        return Windows(np.asarray(starts, dtype=np.int64) * 1000 // SAMPLE_RATE, self._window_ms, vectors)

    def warm_up(self) -> None:
        rng = np.random.default_rng(0)
        self.windows((0.05 * rng.standard_normal(SAMPLE_RATE * 3)).astype(np.float32), 400)


def build_embedder(config: DiarizeConfig) -> SpeakerEmbedder:
    """The embedder ``config`` names, loaded and warmed up (so the first utterance is not slow)."""
    embedder: SpeakerEmbedder
    if config.backend == "pyannote":
        embedder = PyannoteEmbedder(
            config.model, token=config.hf_token, device=config.device, window_ms=config.window_ms
        )
    elif config.backend == "resemblyzer":
        embedder = ResemblyzerEmbedder(config.device)
    else:
        raise EmbedderUnavailable(f"no embedder for DIARIZE_BACKEND={config.backend}")
    started = time.perf_counter()
    embedder.warm_up()
    log.info("speaker embedder %s ready (warm-up %.2f s)", embedder.name, time.perf_counter() - started)
    return embedder
