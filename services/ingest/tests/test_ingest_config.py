"""IngestConfig from the environment."""

from __future__ import annotations

import pytest

from habla_common.errors import ConfigError
from habla_ingest.config import IngestConfig


def test_defaults_work_on_one_laptop(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("INGEST_SILENCE_MS", "INGEST_WINDOW_MS", "INGEST_FIRST_WINDOW_MS", "INGEST_MAX_UTTERANCE_S"):
        monkeypatch.delenv(key, raising=False)
    cfg = IngestConfig.from_env()
    assert cfg == IngestConfig()
    opts = cfg.segmenter_options()
    assert (opts.silence_ms, opts.first_window_ms, opts.window_ms) == (500, 450, 1000)
    assert (opts.max_utterance_ms, opts.max_window_ms, opts.threshold) == (20_000, 28_000, 0.5)
    assert opts.neg_threshold == pytest.approx(0.35)


def test_keys_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_SILENCE_MS", "700")
    monkeypatch.setenv("INGEST_MAX_UTTERANCE_S", "12.5")
    monkeypatch.setenv("INGEST_VAD_THRESHOLD", "0.6")
    cfg = IngestConfig.from_env()
    assert (cfg.silence_ms, cfg.max_utterance_s, cfg.vad_threshold) == (700, 12.5, 0.6)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("INGEST_SILENCE_MS", "soon"),
        ("INGEST_SILENCE_MS", "0"),
        ("INGEST_MAX_WINDOW_S", "45"),
        ("INGEST_VAD_THRESHOLD", "1.5"),
    ],
)
def test_bad_values_name_their_key(monkeypatch: pytest.MonkeyPatch, key: str, value: str) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=key):
        IngestConfig.from_env()
