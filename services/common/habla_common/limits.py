"""Resource caps of a service process that runs torch: its CPU threads and its share of
GPU memory.

``<SERVICE>_GPU_MEMORY_FRACTION`` (or ``HABLA_GPU_MEMORY_FRACTION`` for every service), a
number with 0 < f ≤ 1, caps what torch's CUDA allocator may take of each visible GPU
(``torch.cuda.set_per_process_memory_fraction``); unset, torch takes what it needs. A bad
value fails at start with a :class:`~habla_common.errors.ConfigError`. Without torch or
without CUDA there is nothing to cap and nothing happens.

Only torch honours this (the diarize stage's encoders). CTranslate2 (the asr stage) has no
memory cap: there the model size and compute type are the cap; an Ollama server has its own
``OLLAMA_*`` settings, and llama.cpp in process is bounded by its model and context size.
"""

from __future__ import annotations

import logging
import os

from .errors import ConfigError
from .settings import habla_key

__all__ = ["cap_torch", "gpu_memory_fraction"]

log = logging.getLogger("habla.limits")


def gpu_memory_fraction(service: str) -> float | None:
    """The share of GPU memory ``service`` may take (None: no cap), checked."""
    key = habla_key("GPU_MEMORY_FRACTION", service)
    raw = (os.environ.get(key) or "").strip()
    if not raw:
        return None
    try:
        fraction = float(raw)
    except ValueError as e:
        raise ConfigError(f"{key} must be a number above 0 and at most 1, got {raw!r}") from e
    if not 0 < fraction <= 1:
        raise ConfigError(f"{key} must be above 0 and at most 1 (a share of the GPU's memory), got {raw!r}")
    return fraction


def cap_torch(*, threads: int = 0, gpu_memory_fraction: float | None = None) -> bool:
    """Cap torch in this process: ``threads`` > 0 CPU threads, ``gpu_memory_fraction`` of each
    CUDA device's memory. Returns whether a GPU cap was applied (False without CUDA)."""
    if threads < 0:
        raise ConfigError(f"torch CPU threads must be 0 (torch's default) or more, got {threads}")
    if threads == 0 and gpu_memory_fraction is None:
        return False
    try:
        import torch
    except ImportError:
        log.info("torch is not installed here: no CPU-thread or GPU-memory cap to apply")
        return False
    if threads:
        torch.set_num_threads(threads)
    if gpu_memory_fraction is None:
        return False
    if not torch.cuda.is_available():
        log.info("no CUDA device: GPU memory fraction %.2f has nothing to cap", gpu_memory_fraction)
        return False
    for device in range(torch.cuda.device_count()):
        torch.cuda.set_per_process_memory_fraction(gpu_memory_fraction, device)
    log.info("torch may use %.0f %% of each GPU's memory", 100 * gpu_memory_fraction)
    return True
