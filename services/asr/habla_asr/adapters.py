"""The speech recogniser behind a Protocol, and its faster-whisper implementation.

:class:`FasterWhisperTranscriber` loads the model once (the bundled Whisper base,
assembled into the cache, or any model faster-whisper accepts by name or path), warms
it up, and turns audio in memory into a :class:`~habla_asr.domain.Transcription`.
Guards are *not* applied here (see :func:`habla_asr.domain.clean`), so faster-whisper's
own silence skipping and log-prob fallback are switched off and every decoded segment
comes back with its scores.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .bundled import assemble_bundled_model
from .config import AsrConfig
from .domain import SAMPLE_RATE, Segment, Transcription, max_new_tokens
from .errors import ModelUnavailable, TranscriptionFailed

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

__all__ = ["FasterWhisperTranscriber", "Transcriber", "assemble_bundled_model", "load_whisper"]

log = logging.getLogger("habla.asr.model")

_WINDOW_S = 30.0  # Whisper hears 30 s at a time
_FINAL_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # fallback only on repetition loops
_PARTIAL_TEMPERATURES = (0.0,)


class Transcriber(Protocol):
    """Speech to text for one stretch of audio held in memory."""

    @property
    def name(self) -> str: ...

    def transcribe(
        self,
        pcm: np.ndarray,
        *,
        language: str | None,
        beam_size: int,
        partial: bool,
    ) -> Transcription:
        """``pcm``: float32 mono 16 kHz. ``language`` None = detect (among the
        transcriber's candidate languages). ``partial``: a cheaper pass for live captions
        (no temperature fallback)."""
        ...


def load_whisper(config: AsrConfig) -> WhisperModel:
    """The WhisperModel ``config`` names, loaded once; errors say what to change."""
    try:
        from faster_whisper import WhisperModel
    except ImportError as e:  # pragma: no cover - a broken install
        raise ModelUnavailable("faster-whisper is not installed: pip install faster-whisper==1.2.1") from e
    source = str(assemble_bundled_model(config.cache_dir)) if config.bundled else config.model
    try:
        return WhisperModel(
            source,
            device=config.device,
            compute_type=config.compute_type,
            cpu_threads=config.cpu_threads,
            local_files_only=not config.allow_download,
        )
    except Exception as e:
        hint = (
            "check ASR_DEVICE/ASR_COMPUTE_TYPE"
            if config.bundled or Path(source).exists()
            else "set ASR_ALLOW_DOWNLOAD=true once to fetch it, or point ASR_MODEL to a converted model folder"
        )
        raise ModelUnavailable(f"cannot load Whisper model {source!r} on {config.device}: {e}. {hint}") from e


class FasterWhisperTranscriber:
    """:class:`Transcriber` on faster-whisper (CTranslate2)."""

    def __init__(
        self,
        model: WhisperModel,
        *,
        name: str,
        compression_ratio_threshold: float = 2.4,
        candidate_languages: Sequence[str] = ("es", "en"),
        warm_up: bool = True,
    ) -> None:
        self._model = model
        self._name = name
        self._cr_threshold = compression_ratio_threshold
        self._candidates = tuple(candidate_languages)
        if warm_up:
            started = time.perf_counter()
            self.transcribe(np.zeros(SAMPLE_RATE, np.float32), language="es", beam_size=1, partial=True)
            log.info("%s warmed up in %.2f s", name, time.perf_counter() - started)

    @classmethod
    def from_config(cls, config: AsrConfig, **kwargs: Any) -> FasterWhisperTranscriber:
        return cls(
            load_whisper(config),
            name=config.model_label,
            compression_ratio_threshold=config.compression_ratio_threshold,
            **kwargs,
        )

    @property
    def name(self) -> str:
        return self._name

    def detect_language(self, pcm: np.ndarray) -> tuple[str, float]:
        """The most likely candidate language and its probability among the candidates."""
        _lang, _p, probs = self._model.detect_language(pcm)
        scores = {lang: p for lang, p in probs if lang in self._candidates}
        if not scores:
            return self._candidates[0], 0.0
        best = max(scores, key=lambda k: scores[k])
        total = sum(scores.values())
        return best, (scores[best] / total if total > 0 else 0.0)

    def transcribe(
        self,
        pcm: np.ndarray,
        *,
        language: str | None,
        beam_size: int,
        partial: bool,
    ) -> Transcription:
        duration_ms = round(1000 * pcm.size / SAMPLE_RATE)
        try:
            probability = 1.0
            if language is None:
                language, probability = self.detect_language(pcm)
            long_audio = duration_ms > _WINDOW_S * 1000
            segments_iter, _info = self._model.transcribe(
                pcm,
                language=language,
                task="transcribe",
                beam_size=beam_size,
                best_of=beam_size,
                temperature=list(_PARTIAL_TEMPERATURES if partial else _FINAL_TEMPERATURES),
                compression_ratio_threshold=self._cr_threshold,
                log_prob_threshold=None,
                no_speech_threshold=None,
                condition_on_previous_text=False,
                without_timestamps=not long_audio,
                max_new_tokens=max_new_tokens(duration_ms),
                vad_filter=False,
                word_timestamps=False,
            )
            segments = tuple(
                Segment(
                    text=s.text.strip(),
                    avg_logprob=float(s.avg_logprob),
                    no_speech_prob=float(s.no_speech_prob),
                    compression_ratio=float(s.compression_ratio),
                    start_ms=int(s.start * 1000),
                    end_ms=int(s.end * 1000),
                    tokens=len(s.tokens),
                )
                for s in segments_iter
            )
        except Exception as e:
            raise TranscriptionFailed(f"{self._name} failed on {duration_ms} ms of audio: {e}") from e
        return _summarise(segments, language, probability, duration_ms)


def _summarise(segments: tuple[Segment, ...], language: str, probability: float, duration_ms: int) -> Transcription:
    weights = [max(1, s.tokens) for s in segments]
    total = sum(weights) or 1
    return Transcription(
        text=" ".join(s.text for s in segments if s.text),
        language=language,
        language_probability=probability,
        avg_logprob=sum(s.avg_logprob * w for s, w in zip(segments, weights, strict=False)) / total,
        no_speech_prob=sum(s.no_speech_prob * w for s, w in zip(segments, weights, strict=False)) / total,
        segments=segments,
        duration_ms=duration_ms,
    )
