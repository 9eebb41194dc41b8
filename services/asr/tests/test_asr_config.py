"""AsrConfig.from_env: defaults that run on one laptop, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from habla_asr.config import AsrConfig
from habla_common.errors import ConfigError

KEYS = [
    "ASR_MODEL",
    "ASR_DEVICE",
    "ASR_COMPUTE_TYPE",
    "ASR_CPU_THREADS",
    "ASR_BEAM_SIZE",
    "ASR_PARTIAL_BEAM_SIZE",
    "ASR_NO_SPEECH_THRESHOLD",
    "ASR_LOG_PROB_THRESHOLD",
    "ASR_COMPRESSION_RATIO_THRESHOLD",
    "ASR_ALLOW_DOWNLOAD",
    "ASR_MAX_UTTERANCES",
    "HABLA_CACHE_DIR",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)


def test_defaults() -> None:
    cfg = AsrConfig.from_env()
    assert (cfg.model, cfg.device, cfg.compute_type, cfg.cpu_threads) == ("base-bundled", "cpu", "int8", 2)
    assert (cfg.beam_size, cfg.partial_beam_size) == (5, 1)
    assert (cfg.no_speech_threshold, cfg.log_prob_threshold, cfg.compression_ratio_threshold) == (0.6, -1.0, 2.4)
    assert cfg.bundled and not cfg.allow_download
    assert cfg.cache_dir == Path.home() / ".cache" / "habla"
    assert cfg.model_label == "whisper-base-bundled/int8"


def test_gpu_pc_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ASR_MODEL", "large-v3-turbo")
    monkeypatch.setenv("ASR_DEVICE", "cuda")
    monkeypatch.setenv("ASR_ALLOW_DOWNLOAD", "true")
    monkeypatch.setenv("HABLA_CACHE_DIR", str(tmp_path))
    cfg = AsrConfig.from_env()
    assert (cfg.model, cfg.device, cfg.compute_type, cfg.allow_download) == ("large-v3-turbo", "cuda", "float16", True)
    assert not cfg.bundled and cfg.model_label == "large-v3-turbo/float16"
    assert cfg.cache_dir == tmp_path


@pytest.mark.parametrize(
    ("key", "value"),
    [("ASR_DEVICE", "tpu"), ("ASR_BEAM_SIZE", "0"), ("ASR_CPU_THREADS", "two"), ("ASR_NO_SPEECH_THRESHOLD", "1.5")],
)
def test_bad_values_name_the_key(monkeypatch: pytest.MonkeyPatch, key: str, value: str) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=key):
        AsrConfig.from_env()


def test_config_is_frozen() -> None:
    cfg = AsrConfig()
    with pytest.raises(AttributeError):
        cfg.beam_size = 1  # type: ignore[misc]
