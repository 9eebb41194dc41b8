"""The learner's level as a CEFR band (A1..C2), estimated from his own Spanish.

Deterministic, from what he said in the session so far (his last :data:`MAX_UTTERANCES`
utterances) and the mistakes found in it. Three scores, each on the band scale 0 (A1)
to 5 (C2):

* **length**: mean words per sentence; a band per threshold of :data:`LENGTH_STEPS`
  (6, 9, 13, 17, 22 words).
* **vocabulary**: of his content words (not among the 100 most frequent Spanish words;
  names and unknown words left out), the share beyond the most common 1,000 and beyond
  the most common 5,000 words (wordfreq Zipf below :data:`ZIPF_TOP_1K` / :data:`ZIPF_TOP_5K`,
  by the more frequent of the word form and its lemma, so "llamo" counts as "llamar").
  Each share gets a band by its thresholds (:data:`BEYOND_1K_STEPS`,
  :data:`BEYOND_5K_STEPS`); the score is their mean.
* **grammar**: how many kinds of structure he used beyond the present tense: past,
  perfect (haber + participle), future, conditional, subjunctive, subordinate clauses
  (porque, cuando, si, mientras, donde, and "que" except in "tengo que", "hay que", "más
  que"), discourse connectors (aunque, sin embargo, lo
  cual...). A verb ending counts only when its infinitive is a real word (wordfreq), so
  "economía" is not an imperfect. One band per kind, up to 5.

The band is ``0.35 length + 0.35 vocabulary + 0.3 grammar``, drawn toward A2 (the prior:
most people who practise are beginners) while there is little evidence, fully its own
from :data:`FULL_EVIDENCE_WORDS` words on; then capped by his errors per utterance
(:data:`ERROR_CAPS`: one or more a line keeps him at A2 at most, one every two lines at
B1, one every five at B2); then rounded. The evidence dict (all numbers, or lists of
names) says how the band came about and on how many utterances it rests.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

__all__ = ["BANDS", "Level", "estimate"]


def _split(text: str) -> tuple[str, ...]:
    """The words of a space-separated list, in order."""
    return tuple(text.split())


def _set(text: str) -> frozenset[str]:
    return frozenset(text.split())


BANDS = ("A1", "A2", "B1", "B2", "C1", "C2")
MAX_UTTERANCES = 20
ZIPF_TOP_1K = 4.95  # Zipf of the 1,000th most frequent Spanish word in wordfreq 3.1 ("prensa")
ZIPF_TOP_5K = 4.19  # of the 5,000th ("estimado")
FUNCTION_WORDS = 100  # the most frequent words, left out of the vocabulary shares
LENGTH_STEPS = (6.0, 9.0, 13.0, 17.0, 22.0)
BEYOND_1K_STEPS = (0.3, 0.4, 0.5, 0.6, 0.7)
BEYOND_5K_STEPS = (0.03, 0.07, 0.12, 0.2, 0.3)
WEIGHTS = {"length": 0.35, "vocabulary": 0.35, "grammar": 0.3}
PRIOR = 1.0  # A2
FULL_EVIDENCE_WORDS = 30
ERROR_CAPS = ((1.0, 1), (0.5, 2), (0.2, 3))  # errors per utterance at least -> highest band
MIN_VERB_ZIPF = 3.0  # an infinitive rarer than this is not taken as one

_WORD = re.compile(r"[^\W\d_]+")
_SENTENCE = re.compile(r"[.!?;…]+")
_IRREGULAR_PAST = _set(
    "fui fuiste fue fuimos fueron era eras éramos eran tuve tuvo tuvimos tuvieron hice hizo hicimos hicieron "
    "estuve estuvo estuvimos estuvieron dije dijo dijimos dijeron vine vinimos vinieron pude pudo pudimos "
    "pudieron quise quiso supe supo puse puso vi vio vimos di dio dimos había habías habíamos habían hubo"
)
_HABER = _set("he has ha hemos habéis han había habías habíamos habían habré habría hubiera haya")
_PARTICIPLES = _set("hecho dicho visto puesto escrito vuelto abierto roto muerto cubierto descubierto")
_IRREGULAR_STEMS = {
    "tendr": "tener",
    "har": "hacer",
    "podr": "poder",
    "dir": "decir",
    "saldr": "salir",
    "vendr": "venir",
    "pondr": "poner",
    "querr": "querer",
    "sabr": "saber",
    "habr": "haber",
    "ser": "ser",
    "ir": "ir",
}
_FUTURE = ("ré", "rás", "rá", "remos", "réis", "rán")
_CONDITIONAL = ("ría", "rías", "ríamos", "ríais", "rían")
_SUBJUNCTIVE_FORMS = _set(
    "sea seas seamos sean tenga tengas tengamos tengan haya hayas hayamos hayan pueda puedas puedan quiera "
    "quieras quieran vaya vayas vayamos vayan haga hagas hagan diga digas digan venga vengas vengan sepa sepas "
    "esté estés estén hubiera hubieras hubiéramos hubieran fuera fueras fuéramos fueran tuviera tuvieras "
    "tuvieran estuviera estuvieras pudiera pudieras pudieran quisiera quisieras hiciera hicieras dijera"
)
_SUBORDINATORS = _set("porque cuando si mientras donde")
# "que" starts a clause except after these ("tengo que ir", "hay que", "más que tú")
_NOT_BEFORE_QUE = _set(
    "tengo tienes tiene tenemos tenéis tienen tenía tenías teníamos tenían tuve tuvo hay había más menos "
    "mayor menor mejor peor antes"
)
_CONNECTORS = (
    "aunque",
    "sin embargo",
    "a pesar de",
    "lo cual",
    "cuyo",
    "cuya",
    "por lo tanto",
    "no obstante",
    "en cambio",
    "de hecho",
    "es decir",
    "puesto que",
    "ya que",
    "dado que",
    "mientras que",
    "sino que",
)
STRUCTURES = ("past", "perfect", "future", "conditional", "subjunctive", "subordinate", "connector")


@dataclass(frozen=True)
class Level:
    band: str
    evidence: dict[str, Any] = field(default_factory=dict)


@cache
def _function_words() -> frozenset[str]:
    from wordfreq import top_n_list

    return frozenset(top_n_list("es", FUNCTION_WORDS))


@lru_cache(maxsize=16384)
def _zipf(word: str) -> float:
    """The more frequent of the word form and its lemma (0: unknown)."""
    import simplemma
    from wordfreq import zipf_frequency

    lemma = simplemma.lemmatize(word, lang="es")
    return max(zipf_frequency(word, "es"), zipf_frequency(lemma, "es") if lemma != word else 0.0)


@lru_cache(maxsize=16384)
def _is_verb(infinitive: str) -> bool:
    from wordfreq import zipf_frequency

    return infinitive.endswith(("ar", "er", "ir")) and zipf_frequency(infinitive, "es") >= MIN_VERB_ZIPF


def _band_index(value: float, steps: Sequence[float]) -> int:
    return sum(1 for step in steps if value >= step)


def estimate(utterances: Sequence[str], errors: int = 0, *, fixed: str = "") -> Level:
    """The band of the learner who said ``utterances`` (oldest first) with ``errors``
    mistakes found in them. ``fixed`` (a band) overrides the estimate; the evidence is
    still measured and says so."""
    lines = [u for u in utterances if u.strip()][-MAX_UTTERANCES:]
    words, content, sentences = 0, [], []
    kinds: set[str] = set()
    for line in lines:
        for sentence in _SENTENCE.split(line):
            tokens = _WORD.findall(sentence)
            if not tokens:
                continue
            sentences.append(len(tokens))
            words += len(tokens)
            for k, token in enumerate(tokens):
                low = token.lower()
                if low in _function_words() or (k > 0 and token[0].isupper()):
                    continue  # a function word, or a name
                zipf = _zipf(low)
                if zipf > 0:
                    content.append(zipf)
        kinds |= structures(line)
    n = len(lines)
    mean_length = words / len(sentences) if sentences else 0.0
    beyond_1k = sum(z < ZIPF_TOP_1K for z in content) / len(content) if content else 0.0
    beyond_5k = sum(z < ZIPF_TOP_5K for z in content) / len(content) if content else 0.0
    scores = {
        "length": float(_band_index(mean_length, LENGTH_STEPS)),
        "vocabulary": (_band_index(beyond_1k, BEYOND_1K_STEPS) + _band_index(beyond_5k, BEYOND_5K_STEPS)) / 2,
        "grammar": float(min(5, len(kinds))),
    }
    raw = sum(WEIGHTS[k] * v for k, v in scores.items())
    weight = min(1.0, words / FULL_EVIDENCE_WORDS)
    score = weight * raw + (1 - weight) * PRIOR
    rate = errors / n if n else 0.0
    cap = next((band for least, band in ERROR_CAPS if rate >= least), len(BANDS) - 1)
    score = min(score, float(cap))
    band = BANDS[min(len(BANDS) - 1, max(0, int(score + 0.5)))]
    evidence: dict[str, Any] = {
        "utterances": n,
        "words": words,
        "content_words": len(content),
        "mean_sentence_words": round(mean_length, 1),
        "beyond_1k": round(beyond_1k, 3),
        "beyond_5k": round(beyond_5k, 3),
        "structures": sorted(kinds, key=STRUCTURES.index),
        "errors": errors,
        "errors_per_utterance": round(rate, 2),
        "scores": scores,
        "evidence_weight": round(weight, 2),
        "score": round(score, 2),
        "estimated": band,
    }
    if fixed:
        if fixed not in BANDS:
            raise ValueError(f"a fixed level must be one of {', '.join(BANDS)}, got {fixed!r}")
        evidence["fixed"] = True
        band = fixed
    return Level(band, evidence)


def structures(text: str) -> set[str]:
    """The kinds of :data:`STRUCTURES` that ``text`` uses (rough: from word endings)."""
    words = [w.lower() for w in _WORD.findall(text)]
    found: set[str] = set()
    joined = f" {' '.join(words)} "
    if any(f" {c} " in joined for c in _CONNECTORS):
        found.add("connector")
    for i, w in enumerate(words):
        if w in _SUBORDINATORS or (w == "que" and i > 0 and words[i - 1] not in _NOT_BEFORE_QUE):
            found.add("subordinate")
        if w in _HABER and i + 1 < len(words):
            nxt = words[i + 1]
            if nxt in _PARTICIPLES or (len(nxt) > 4 and nxt.endswith(("ado", "ido"))):
                found.add("perfect")
        kind = _verb_kind(w)
        if kind:
            found.add(kind)
    return found


def _verb_kind(w: str) -> str:
    if w in _IRREGULAR_PAST:
        return "past"
    if w in _SUBJUNCTIVE_FORMS:
        return "subjunctive"
    for endings, kind in ((_CONDITIONAL, "conditional"), (_FUTURE, "future")):
        for ending in endings:
            if not w.endswith(ending):
                continue
            if w[: -len(ending) + 1] in _IRREGULAR_STEMS:  # "tendría", "será"
                return kind
            if len(w) > len(ending) + 2 and _is_verb(w[: -len(ending)] + "r"):  # "hablaría" -> "hablar"
                return kind
    if len(w) > 5 and w.endswith(("iera", "ieras", "ieran", "iese", "iésemos")):
        stem = w[: w.rfind("ie")]
        if _is_verb(stem + "er") or _is_verb(stem + "ir"):
            return "subjunctive"
    if len(w) > 5 and w.endswith(("ara", "aras", "aran", "áramos")) and _is_verb(w[: w.rfind("ar") + 2]):
        return "subjunctive"
    return "past" if _is_past(w) else ""


def _is_past(w: str) -> bool:
    """Preterite or imperfect of a real verb: "habló", "comió", "hablé", "vivía", "pasaba"."""
    if len(w) <= 3:
        return False
    for ending, infinitives in (
        ("aban", ("ar",)),
        ("abas", ("ar",)),
        ("ábamos", ("ar",)),
        ("aba", ("ar",)),
        ("ían", ("er", "ir")),
        ("ías", ("er", "ir")),
        ("íamos", ("er", "ir")),
        ("ía", ("er", "ir")),
        ("aron", ("ar",)),
        ("ieron", ("er", "ir")),
        ("aste", ("ar",)),
        ("iste", ("er", "ir")),
        ("ió", ("er", "ir")),
        ("ó", ("ar",)),
        ("é", ("ar",)),
    ):
        if w.endswith(ending):
            stem = w[: -len(ending)]
            stems = {stem}
            if ending == "é":  # spelling changes: busqué, llegué, empecé
                for changed, plain in (("qu", "c"), ("gu", "g"), ("c", "z")):
                    if stem.endswith(changed):
                        stems.add(stem[: -len(changed)] + plain)
            return any(_is_verb(s + inf) for s in stems for inf in infinitives)
    return False
