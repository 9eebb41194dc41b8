"""The last resort before "untranslated": a rule-based translator with no model.

Apertium (Debian packages ``apertium`` and ``apertium-eng-spa``) translates word by
word and knows no idioms, but it never answers in the source language. It is used
only when the model twice answered in the wrong language, and the final is marked
``status="fallback"`` so the user knows the line is literal.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Protocol

from .errors import BackendError

__all__ = ["ApertiumFallback", "Fallback", "build_fallback"]

_PAIRS = {("es", "en"): "spa-eng", ("en", "es"): "eng-spa"}


class Fallback(Protocol):
    name: str

    def translate(self, text: str, source: str, target: str) -> str: ...


class ApertiumFallback:
    name = "apertium"

    def __init__(self, binary: str = "apertium", timeout_s: float = 10.0) -> None:
        self.binary = binary
        self.timeout_s = timeout_s

    @staticmethod
    def available() -> bool:
        return shutil.which("apertium") is not None

    def translate(self, text: str, source: str, target: str) -> str:
        pair = _PAIRS.get((source, target))
        if pair is None:
            raise BackendError(f"apertium has no {source}->{target} pair")
        try:
            done = subprocess.run(
                [self.binary, "-u", pair],
                input=text,
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
                check=True,
            )
        except (OSError, subprocess.SubprocessError) as e:
            raise BackendError(
                f"apertium {pair} failed ({e}); install it with: apt-get install apertium apertium-eng-spa"
            ) from e
        return " ".join(done.stdout.split())


def build_fallback(kind: str) -> Fallback | None:
    """The configured fallback, or None when off or not installed (then a line the model
    keeps answering in the source language is published flagged as untranslated)."""
    if kind == "apertium" and ApertiumFallback.available():
        return ApertiumFallback()
    return None
