"""The untranslated-output guard: is this answer really in the target language?

Two checks, both cheap: the answer must not be a copy of the source (character
similarity of the normalised texts), and a language detector (lingua, models inside
the wheel, offline) must not find the source language more likely than the target.
Very short answers ("OK.", "Gracias." -> "Thanks.") are judged by the copy check
only, because no detector is reliable on one or two words.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz

__all__ = ["LanguageGuard", "Verdict"]

MIN_WORDS_FOR_DETECTION = 3
COPY_SIMILARITY = 80.0  # rapidfuzz ratio (0..100) above which an answer is a copy
_CODES = {"es": "SPANISH", "en": "ENGLISH"}
_OTHERS = ("PORTUGUESE", "ITALIAN", "FRENCH", "CATALAN", "GERMAN")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    detected: str  # ISO 639-1 code of the answer's language, "" when unsure
    reason: str = ""  # "" | empty | copy | source_language | other_language


def _norm(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


class LanguageGuard:
    """Built once per process: lingua's models take ~1 s to load and ~100 MB."""

    def __init__(self) -> None:
        self._detector: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        with self._lock:
            if self._detector is None:
                from lingua import Language, LanguageDetectorBuilder

                langs = [getattr(Language, n) for n in (*_CODES.values(), *_OTHERS)]
                self._detector = LanguageDetectorBuilder.from_languages(*langs).build()
            return self._detector

    def warm_up(self) -> None:
        self.detect("Buenos días a todos, ¿cómo estáis?")

    def detect(self, text: str) -> tuple[str, float]:
        """The most likely language and its confidence (0..1)."""
        values = self._get().compute_language_confidence_values(text)
        if not values:
            return "", 0.0
        best = values[0]
        return best.language.iso_code_639_1.name.lower(), float(best.value)

    def confidence(self, text: str, code: str) -> float:
        from lingua import Language

        return float(self._get().compute_language_confidence(text, getattr(Language, _CODES[code])))

    def check(self, source_text: str, answer: str, source: str, target: str) -> Verdict:
        a, s = _norm(answer), _norm(source_text)
        if not a:
            return Verdict(False, "", "empty")
        words = len(a.split())
        if s and len(s.split()) >= 2 and fuzz.ratio(a, s) >= COPY_SIMILARITY:
            return Verdict(False, source, "copy")
        if words < MIN_WORDS_FOR_DETECTION:
            return Verdict(True, "")
        detected, _ = self.detect(answer)
        p_target, p_source = self.confidence(answer, target), self.confidence(answer, source)
        if p_source > p_target and p_source >= 0.5:
            return Verdict(False, source, "source_language")
        if detected not in (source, target) and p_target < 0.2:
            return Verdict(False, detected, "other_language")
        return Verdict(True, target if p_target >= p_source else detected)
