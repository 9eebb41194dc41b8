"""Classroom mode: spotting a teacher's correction in the flow of utterances.

Two kinds of repair are recognised, both pure text rules (no model, instant):

* an explicit cue: "No, se dice *tengo calor*", "se dice X, no Y", "no es X, es Y",
  "mejor dicho X", "querrás decir X", "lo correcto es X". What was said comes from the
  cue itself or, failing that, from the span of the previous utterance that the
  correction most resembles;
* a recast: a different speaker repeats a short stretch of the previous utterance with
  a change ("Ayer yo estoy en la playa." -> "Ayer estuve en la playa."). This needs to
  know the speakers, so it only runs when both utterances have one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz import fuzz

from .matcher import deaccent

__all__ = ["Correction", "Utterance", "detect"]

_END = r"(?=[.,;:!?¿¡]|$)"
_CUES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (cue, re.compile(rx, re.IGNORECASE))
    for cue, rx in (
        (
            "no se dice ... se dice",
            rf"\bno se dice (?P<said>[^.,;:!?]+?),? (?:sino|se dice) (?P<correct>[^.;:!?]+?){_END}",
        ),
        ("se dice ..., no ...", rf"\bse dice (?P<correct>[^.,;:!?]+?),? no (?P<said>[^.,;:!?]+?){_END}"),
        ("no, se dice", rf"\bno,? se dice (?P<correct>[^.;:!?]+?){_END}"),
        ("no es ..., es ...", rf"\bno es (?P<said>[^.,;:!?]+?),? (?:es|sino) (?P<correct>[^.;:!?]+?){_END}"),
        ("mejor dicho", rf"\bmejor dicho,? (?P<correct>[^.;:!?]+?){_END}"),
        ("querrás decir", rf"\b(?:querr[aá]s|quieres|quer[ií]as) decir,? (?P<correct>[^.;:!?]+?){_END}"),
        ("lo correcto es", rf"\blo correcto es,? (?P<correct>[^.;:!?]+?){_END}"),
        ("se dice", rf"^\W*(?:s[ií],? )?se dice (?P<correct>[^.;:!?]+?){_END}"),
    )
)
RECAST_MAX_WORDS = 10
RECAST_MIN_SIMILARITY = 70.0
ALIGN_MIN_SIMILARITY = 50.0


@dataclass(frozen=True)
class Utterance:
    utterance_id: str
    text: str
    speaker: str = ""


@dataclass(frozen=True)
class Correction:
    said: str
    correct: str
    why: str
    cue: str
    corrected_utterance_id: str  # "" = the correcting utterance itself


def detect(current: Utterance, previous: Utterance | None) -> Correction | None:
    explicit = _explicit(current, previous)
    if explicit is not None:
        return explicit
    if previous is not None and current.speaker and previous.speaker and current.speaker != previous.speaker:
        return _recast(current, previous)
    return None


def _explicit(current: Utterance, previous: Utterance | None) -> Correction | None:
    for cue, rx in _CUES:
        m = rx.search(current.text)
        if m is None:
            continue
        correct = m.group("correct").strip(" ,*\"'«»")
        said = (m.groupdict().get("said") or "").strip(" ,*\"'«»")
        source_id = ""
        if not said and previous is not None and previous.text.strip():
            said = _align(correct, previous.text) or ""
            source_id = previous.utterance_id if said else ""
        if not said and cue == "mejor dicho":
            said = current.text[: m.start()].strip(" ,.")
            said = " ".join(said.split()[-len(correct.split()) :])
        if not said or _same(said, correct):
            continue
        return Correction(said, correct, _why(said, correct, cue), cue, source_id)
    return None


def _recast(current: Utterance, previous: Utterance) -> Correction | None:
    text = re.sub(r"^\W*(?:s[ií]|no|vale|bien|muy bien)\W+", "", current.text, flags=re.IGNORECASE).strip(" .!?¡¿")
    if not text or len(text.split()) > RECAST_MAX_WORDS or len(text.split()) < 2:
        return None
    said = _align(text, previous.text, RECAST_MIN_SIMILARITY)
    if said is None or _same(said, text):
        return None
    return Correction(said, text, _why(said, text, "repetition"), "repetition", previous.utterance_id)


def _words(text: str) -> list[str]:
    return re.findall(r"[\wáéíóúüñ]+", text)


def _same(a: str, b: str) -> bool:
    return [deaccent(w) for w in _words(a)] == [deaccent(w) for w in _words(b)]


def _align(target: str, text: str, threshold: float = ALIGN_MIN_SIMILARITY) -> str | None:
    """The stretch of ``text`` (about as many words as ``target``) that looks most like it."""
    words = _words(text)
    n = len(_words(target))
    if not words or not n:
        return None
    best, best_score = None, threshold
    for size in {max(1, n - 1), n, n + 1}:
        for i in range(0, max(1, len(words) - size + 1)):
            span = " ".join(words[i : i + size])
            score = fuzz.ratio(deaccent(span), deaccent(target))
            if score > best_score:
                best, best_score = span, score
    return best


def _why(said: str, correct: str, cue: str) -> str:
    """A short description of the change: the words that differ, then the cue."""
    a, b = _words(said), _words(correct)
    removed = [w for w in a if deaccent(w) not in {deaccent(x) for x in b}]
    added = [w for w in b if deaccent(w) not in {deaccent(x) for x in a}]
    change = f"{' '.join(removed) or '-'} → {' '.join(added) or '-'}" if (removed or added) else "word order"
    return f"{change} ({cue})"
