"""Configuration from the environment: defaults for one laptop, errors that name the key."""

from __future__ import annotations

import pytest

from habla_common.errors import ConfigError
from habla_translate.bundled import BUNDLED
from habla_translate.config import TranslateConfig


def test_defaults_run_the_bundled_model_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("TRANSLATE_BACKEND", "TRANSLATE_MODEL", "TRANSLATE_JSON", "TRANSLATE_PARTIALS"):
        monkeypatch.delenv(key, raising=False)
    cfg = TranslateConfig.from_env()
    assert (cfg.backend, cfg.model, cfg.json_mode, cfg.partials) == ("llamacpp", BUNDLED, "grammar", True)
    assert cfg.model_label == f"llamacpp:{BUNDLED}"


def test_the_pc_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSLATE_BACKEND", "Ollama")
    monkeypatch.setenv("TRANSLATE_MODEL", "qwen3:4b")
    monkeypatch.setenv("OLLAMA_URL", "http://ollama:11434")
    cfg = TranslateConfig.from_env()
    assert (cfg.backend, cfg.model, cfg.ollama_url) == ("ollama", "qwen3:4b", "http://ollama:11434")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("TRANSLATE_BACKEND", "openai"),
        ("TRANSLATE_JSON", "maybe"),
        ("TRANSLATE_FALLBACK", "google"),
        ("TRANSLATE_THREADS", "0"),
        ("TRANSLATE_CONTEXT_LINES", "-1"),
        ("TRANSLATE_TIMEOUT_S", "0"),
        ("TRANSLATE_MODEL", " "),
        ("TRANSLATE_THREADS", "two"),
        ("TRANSLATE_PRACTICE_LEVEL", "D1"),
        ("TRANSLATE_PRACTICE_TURNS", "-1"),
        ("TRANSLATE_PRACTICE_SAVE_CORRECTIONS", "perhaps"),
    ],
)
def test_bad_values_name_the_key(monkeypatch: pytest.MonkeyPatch, key: str, value: str) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=key):
        TranslateConfig.from_env()


def test_practice_mode_defaults_and_a_fixed_level(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("TURNS", "LEVEL", "SAVE_CORRECTIONS", "MODEL_CORRECTIONS"):
        monkeypatch.delenv(f"TRANSLATE_PRACTICE_{key}", raising=False)
    cfg = TranslateConfig.from_env()
    assert (cfg.practice_turns, cfg.practice_level) == (3, "auto")
    assert cfg.practice_save_corrections and cfg.practice_model_corrections
    monkeypatch.setenv("TRANSLATE_PRACTICE_LEVEL", "b1")
    monkeypatch.setenv("TRANSLATE_PRACTICE_SAVE_CORRECTIONS", "false")
    monkeypatch.setenv("TRANSLATE_PRACTICE_TURNS", "0")
    cfg = TranslateConfig.from_env()
    assert (cfg.practice_level, cfg.practice_save_corrections, cfg.practice_turns) == ("B1", False, 0)
