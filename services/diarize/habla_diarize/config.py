"""The diarize service's configuration, read once from the environment.

Keys (all optional; the defaults run on one laptop CPU with the bundled embedder). The
thresholds were tuned on real speech with ``bench/diarize.py`` (FLEURS speakers; see the
service README for the sweep); change them only with the benchmark at hand.

``DIARIZE_BACKEND``            ``resemblyzer`` (default: the speaker encoder shipped inside the
                               ``resemblyzer`` wheel, runs anywhere), ``pyannote`` (any
                               pyannote.audio embedding model, for the GPU PC) or ``none`` (no
                               speaker stage: every utterance passes through unlabelled).
``DIARIZE_MODEL``              pyannote only: model name or local path, default
                               ``pyannote/wespeaker-voxceleb-resnet34-LM``.
``HF_TOKEN``                   pyannote only: the Hugging Face token for gated models
                               (``DIARIZE_HF_TOKEN`` wins). Telemetry is always switched off.
``DIARIZE_DEVICE``             ``cpu`` (default), ``cuda`` or ``auto`` (pyannote; resemblyzer
                               uses the GPU too when given ``cuda``).
``DIARIZE_ASSIGN_THRESHOLD``   cosine to a speaker's centroid at or above which a turn joins
                               that speaker; below it a new speaker opens.
``DIARIZE_CHANGE_THRESHOLD``   cosine between the voice before and after a point inside an
                               utterance below which the speaker changed there.
``DIARIZE_MIN_TURN_MS``        shortest turn an utterance is split into, default 2000.
``DIARIZE_MIN_NEW_SPEAKER_MS`` a turn shorter than this never opens a new speaker: it joins the
                               closest speaker if similar enough, else inherits its neighbour's.
``DIARIZE_VOICEPRINT_THRESHOLD`` cosine at or above which a new voice is a stored voiceprint.
``DIARIZE_MAX_SPEAKERS``       speakers per session, default 8 (then the closest one is used).
``DIARIZE_HOP_MS``             step of the analysis windows inside an utterance, default 200.
``DIARIZE_WINDOW_MS``          pyannote only: analysis window length, default 1600 (resemblyzer's
                               is fixed at 1600 by its training).
``DIARIZE_STATE_TTL_S``        how long a session's speaker state is kept in Redis, default 7 days.
``DIARIZE_CPU_THREADS``        torch CPU threads for the encoder, default 0 (torch's own choice:
                               one per core).
``DIARIZE_GPU_MEMORY_FRACTION`` share of each GPU's memory torch may take (0 < f ≤ 1; also
                               ``HABLA_GPU_MEMORY_FRACTION``); unset, no cap. Read by
                               :mod:`habla_common.limits`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from habla_common.errors import ConfigError
from habla_common.settings import env_float, env_int, env_str

__all__ = ["BACKENDS", "DEFAULT_PYANNOTE_MODEL", "DiarizeConfig"]

BACKENDS = ("resemblyzer", "pyannote", "none")
DEVICES = ("cpu", "cuda", "auto")
DEFAULT_PYANNOTE_MODEL = "pyannote/wespeaker-voxceleb-resnet34-LM"


@dataclass(frozen=True)
class DiarizeConfig:
    backend: str = "resemblyzer"
    model: str = DEFAULT_PYANNOTE_MODEL
    hf_token: str = ""
    device: str = "cpu"
    assign_threshold: float = 0.8
    change_threshold: float = 0.65
    min_turn_ms: int = 2000
    min_new_speaker_ms: int = 1500
    voiceprint_threshold: float = 0.8
    max_speakers: int = 8
    hop_ms: int = 200
    window_ms: int = 1600
    state_ttl_s: int = 7 * 24 * 3600
    cpu_threads: int = 0

    @classmethod
    def from_env(cls) -> DiarizeConfig:
        d = cls()
        backend = env_str("DIARIZE_BACKEND", d.backend).lower()
        device = env_str("DIARIZE_DEVICE", d.device).lower()
        cfg = cls(
            backend=backend,
            model=env_str("DIARIZE_MODEL", d.model),
            hf_token=os.environ.get("DIARIZE_HF_TOKEN") or os.environ.get("HF_TOKEN") or "",
            device=device,
            assign_threshold=env_float("DIARIZE_ASSIGN_THRESHOLD", d.assign_threshold),
            change_threshold=env_float("DIARIZE_CHANGE_THRESHOLD", d.change_threshold),
            min_turn_ms=env_int("DIARIZE_MIN_TURN_MS", d.min_turn_ms),
            min_new_speaker_ms=env_int("DIARIZE_MIN_NEW_SPEAKER_MS", d.min_new_speaker_ms),
            voiceprint_threshold=env_float("DIARIZE_VOICEPRINT_THRESHOLD", d.voiceprint_threshold),
            max_speakers=env_int("DIARIZE_MAX_SPEAKERS", d.max_speakers),
            hop_ms=env_int("DIARIZE_HOP_MS", d.hop_ms),
            window_ms=env_int("DIARIZE_WINDOW_MS", d.window_ms),
            state_ttl_s=env_int("DIARIZE_STATE_TTL_S", d.state_ttl_s),
            cpu_threads=env_int("DIARIZE_CPU_THREADS", d.cpu_threads),
        )
        cfg.check()
        return cfg

    def check(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"DIARIZE_BACKEND must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.device not in DEVICES:
            raise ConfigError(f"DIARIZE_DEVICE must be one of {', '.join(DEVICES)}, got {self.device!r}")
        for key, value in (
            ("DIARIZE_ASSIGN_THRESHOLD", self.assign_threshold),
            ("DIARIZE_CHANGE_THRESHOLD", self.change_threshold),
            ("DIARIZE_VOICEPRINT_THRESHOLD", self.voiceprint_threshold),
        ):
            if not -1.0 <= value <= 1.0:
                raise ConfigError(f"{key} is a cosine similarity, within -1..1; got {value}")
        for key, ivalue, low in (
            ("DIARIZE_MIN_TURN_MS", self.min_turn_ms, 200),
            ("DIARIZE_MIN_NEW_SPEAKER_MS", self.min_new_speaker_ms, 0),
            ("DIARIZE_MAX_SPEAKERS", self.max_speakers, 1),
            ("DIARIZE_HOP_MS", self.hop_ms, 10),
            ("DIARIZE_WINDOW_MS", self.window_ms, 500),
            ("DIARIZE_STATE_TTL_S", self.state_ttl_s, 60),
            ("DIARIZE_CPU_THREADS", self.cpu_threads, 0),
        ):
            if ivalue < low:
                raise ConfigError(f"{key} must be at least {low}, got {ivalue}")
        if self.backend == "pyannote" and not self.model.strip():
            raise ConfigError(f"DIARIZE_MODEL must name a pyannote embedding model (default {DEFAULT_PYANNOTE_MODEL})")
