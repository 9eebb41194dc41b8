"""What a saved item is: its canonical form, its merge key, its frequency band, and
where in the utterance's audio its clip is cut. Pure functions (wordfreq and simplemma
only read the word lists they ship).

* A single **word** is stored as its lemma ("puse" and "pongo" are both *poner*, "pilas"
  is *pila*), so every inflection the user saves lands on one item.
* **Idioms** arrive in the idiom database's canonical form ("ponerse las pilas");
  **phrases** and **corrections** are kept as written. All are normalised: Unicode NFC,
  lower case (accents kept: *papa* and *papá* differ), whitespace collapsed, surrounding
  punctuation (¿? ¡! «» …) stripped.
* The **merge key** is ``derived_id("vocab.item", language, canonical)``: the same item
  saved again, in any session, is one item with several contexts.
* The **band** comes from wordfreq's Zipf frequency of the canonical form (log10 of uses
  per billion words; a phrase counts as rare as its rarest words): 1 for the most common
  words (Zipf ≥ 5, "el", "casa") to 5 for rare ones or words wordfreq does not know.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from habla_contracts import derived_id

__all__ = [
    "BAND_LABELS",
    "Span",
    "band_of",
    "canonical_form",
    "clip_window",
    "item_id_for",
    "lemmas",
    "locate",
    "normalise",
    "zipf",
]

BAND_LABELS = {1: "very common", 2: "common", 3: "intermediate", 4: "rare", 5: "very rare"}
_BAND_FLOORS = ((5.0, 1), (4.0, 2), (3.0, 3), (2.0, 4))

_EDGE_PUNCT = "¿?¡!.,;:«»\"“”‘’'()[]{}…-–—/ "
_WORD = re.compile(r"\w+(?:['’]\w+)*")


def normalise(text: str) -> str:
    """NFC, lower case, single spaces, no punctuation around it."""
    text = unicodedata.normalize("NFC", " ".join(text.split()))
    return text.strip(_EDGE_PUNCT).lower()


_REFLEXIVE_INFINITIVE = re.compile(r"\w+[aeiíáé]r(se)")


@lru_cache(maxsize=4096)
def _lemma(token: str, language: str) -> str:
    import simplemma

    try:
        return str(simplemma.lemmatize(token, lang=language)).lower()
    except ValueError:  # a language simplemma has no data for: the word as it is
        return token


def lemmas(text: str, language: str = "es") -> list[tuple[str, int, int]]:
    """The words of ``text`` as ``(lemma, start, end)``, offsets into ``text``, for matching:
    a reflexive infinitive counts as its verb ("ponerse" is said "me puse", "te pones")."""
    out = []
    for m in _WORD.finditer(text):
        token = m.group().lower()
        if language == "es" and _REFLEXIVE_INFINITIVE.fullmatch(token):
            token = token[:-2]
        out.append((_lemma(token, language), m.start(), m.end()))
    return out


def canonical_form(text: str, kind: str, language: str = "es") -> str:
    """The form an item is stored and merged under (see the module docstring)."""
    norm = normalise(text)
    if not norm:
        return ""
    if kind == "word" and len(_WORD.findall(norm)) == 1 and _WORD.fullmatch(norm):
        return _lemma(norm, language)
    return norm


def item_id_for(language: str, canonical: str) -> str:
    """The merge key: one item per language and canonical form."""
    return derived_id("vocab.item", language, canonical)


@lru_cache(maxsize=4096)
def zipf(canonical: str, language: str = "es") -> float:
    """wordfreq's Zipf frequency (0.0 for unknown words and languages)."""
    import wordfreq

    try:
        return round(float(wordfreq.zipf_frequency(canonical, language)), 2)
    except LookupError:
        return 0.0


def band_of(zipf_value: float) -> int:
    """1 (very common) .. 5 (very rare or unknown)."""
    for floor, band in _BAND_FLOORS:
        if zipf_value >= floor:
            return band
    return 5


@dataclass(frozen=True)
class Span:
    """Characters ``start:end`` of a sentence."""

    start: int
    end: int


def locate(phrase: str, sentence: str, language: str = "es") -> Span | None:
    """Where ``phrase`` was said in ``sentence``, matching lemmas ("ponerse las pilas" is
    found in "me puse las pilas"): the shortest stretch of at most ``len(phrase) + 2`` words
    covering the most of the phrase's distinct lemmas, at least half of them."""
    wanted = {lemma for lemma, _, _ in lemmas(phrase, language)}
    words = lemmas(sentence, language)
    if not wanted or not words:
        return None
    reach = len(wanted) + 2
    best: tuple[int, int, int, int] | None = None  # (-covered, length, first word, last word)
    for i, (lemma, _, _) in enumerate(words):
        if lemma not in wanted:
            continue
        covered: set[str] = set()
        for j in range(i, min(len(words), i + reach)):
            if words[j][0] in wanted:
                covered.add(words[j][0])
                key = (-len(covered), j - i, i, j)
                if best is None or key < best:
                    best = key
    if best is None or -best[0] < math.ceil(len(wanted) / 2):
        return None
    return Span(words[best[2]][1], words[best[3]][2])


def clip_window(
    start_ms: int, end_ms: int, sentence: str, span: Span | None, *, max_ms: int, pad_ms: int
) -> tuple[int, int]:
    """The stretch of the turn ``start_ms..end_ms`` to keep as the item's clip.

    A turn no longer than ``max_ms`` is kept whole. A longer one is cut to ``max_ms``
    (or to the phrase plus ``pad_ms`` either side, when that is longer) around where the
    phrase falls, estimated from its place in the sentence (speech runs at a fairly even
    rate of characters per second); with no span, around the middle of the turn."""
    duration = end_ms - start_ms
    if duration <= max_ms or not sentence:
        return start_ms, end_ms
    if span is None:
        phrase_start = phrase_end = start_ms + duration // 2
    else:
        phrase_start = start_ms + duration * span.start // len(sentence)
        phrase_end = start_ms + duration * span.end // len(sentence)
    length = min(duration, max(max_ms, phrase_end - phrase_start + 2 * pad_ms))
    first = (phrase_start + phrase_end) // 2 - length // 2
    first = max(start_ms, min(first, end_ms - length))
    return first, first + length
