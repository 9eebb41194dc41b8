"""A lemma-aware matcher for Spanish multi-word expressions.

A canonical dictionary form ("ponerse las pilas", "estar (hecho) polvo",
"hablar por los codos") compiles into a :class:`Pattern`: a sequence of slots, each
matching a set of *keys*. A text token carries keys too (its form, its lemma, its
gender/number-folded forms, and the base of a verb with enclitic pronouns), and a slot
matches a token when the key sets meet. So "me puse las pilas", "ponte las pilas" and
"se está poniendo las pilas" all match *ponerse las pilas*, while "puse las pilas en el
mando" does not: the pronominal verb needs its reflexive pronoun, before the verb or
attached to it.

Slots must appear in order, with at most :data:`MAX_GAP` extra words between two of
them and :data:`MAX_TOTAL_GAP` in all, never across a sentence break, so words that
merely co-occur far apart do not fire. Articles, prepositions and other function words
must appear as written; possessives stand for any person ("perder los estribos",
"salirse con la suya" ~ "me salí con la mía").

Pure: no I/O, no model. The lemmatiser is passed in (simplemma in production).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import lru_cache

from .conjugation import infinitives

__all__ = [
    "MAX_GAP",
    "MAX_TOTAL_GAP",
    "Match",
    "Pattern",
    "PatternError",
    "Slot",
    "Token",
    "compile_pattern",
    "deaccent",
    "find",
    "tokenize",
]

Lemmatize = Callable[[str], str]

MAX_GAP = 2  # extra words allowed between two consecutive slots
MAX_TOTAL_GAP = 3  # ... and in the whole match
PROCLITIC_REACH = 3  # how far before a verb its clitic pronoun may stand ("se lo está poniendo")

CLITICS = frozenset(["me", "te", "se", "le", "les", "lo", "la", "los", "las", "nos", "os"])
REFLEXIVE = frozenset(["me", "te", "se", "nos", "os"])
POSSESSIVE_WEAK = frozenset(
    [
        "mi",
        "mis",
        "tu",
        "tus",
        "su",
        "sus",
        "nuestro",
        "nuestra",
        "nuestros",
        "nuestras",
        "vuestro",
        "vuestra",
        "vuestros",
        "vuestras",
    ]
)
POSSESSIVE_STRONG = frozenset(
    [
        "mio",
        "mia",
        "mios",
        "mias",
        "tuyo",
        "tuya",
        "tuyos",
        "tuyas",
        "suyo",
        "suya",
        "suyos",
        "suyas",
        "nuestro",
        "nuestra",
        "nuestros",
        "nuestras",
        "vuestro",
        "vuestra",
        "vuestros",
        "vuestras",
    ]
)
FUNCTION_WORDS = frozenset(
    [
        "a",
        "al",
        "de",
        "del",
        "el",
        "la",
        "los",
        "las",
        "lo",
        "un",
        "una",
        "unos",
        "unas",
        "en",
        "con",
        "por",
        "para",
        "sin",
        "sobre",
        "entre",
        "hasta",
        "desde",
        "hacia",
        "contra",
        "tras",
        "ante",
        "bajo",
        "y",
        "e",
        "o",
        "u",
        "ni",
        "que",
        "no",
        "si",
        "como",
        "cuando",
        "donde",
        "cual",
        "quien",
        "ya",
        "tan",
        "muy",
        "mas",
        "menos",
        "ese",
        "esa",
        "eso",
        "esos",
        "esas",
        "este",
        "esta",
        "esto",
        "estos",
        "estas",
        "aquel",
        "aquella",
        "aquello",
        "se",
        "me",
        "te",
        "le",
        "les",
        "nos",
        "os",
    ]
)
ARTICLES = frozenset(["el", "la", "los", "las", "lo", "un", "una", "unos", "unas"])
PLACEHOLDERS = frozenset({"alguien", "algo"})
# infinitives that look like nouns would not compile as verbs; these nouns end in -ar/-er/-ir
_NOT_VERBS = frozenset(
    [
        "mar",
        "lugar",
        "hogar",
        "bar",
        "par",
        "azucar",
        "collar",
        "altar",
        "pilar",
        "militar",
        "mujer",
        "taller",
        "alfiler",
    ]
)
_SHORT_VERBS = frozenset({"ir", "ver", "dar", "ser", "oir", "reir", "freir"})
_ACCENTED_VERB_FORMS = {"dé": "dar", "sé": "saber"}
_CLITIC_SUFFIX = re.compile(r"(.+?)(me|te|se|nos|os|le|les|lo|la|los|las)$")
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)
_BREAK = re.compile(r"[.;:!?¡¿…\n]")


class PatternError(ValueError):
    """A canonical form that cannot be compiled (empty, unbalanced parentheses, ...)."""


def deaccent(text: str) -> str:
    """Lower case without accents (ñ kept): the form every comparison uses."""
    out = []
    for ch in unicodedata.normalize("NFD", text.lower()):
        if unicodedata.category(ch) == "Mn" and ch != "\u0303":
            continue
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def _folds(word: str) -> set[str]:
    """Gender/number variants of a noun or adjective, folded to one key space:
    "pilas" ~ "pila", "hecha" ~ "hecho", "narices" ~ "nariz", "pies" ~ "pie"."""
    bases = {word}
    if word.endswith("ces") and len(word) > 4:
        bases.add(word[:-3] + "z")
    if word.endswith("es") and len(word) > 3:
        bases.add(word[:-2])
    if word.endswith("s") and len(word) > 2:
        bases.add(word[:-1])
    return {b[:-1] + "o" if b.endswith("a") and len(b) > 2 else b for b in bases}


def _verb_base(word: str) -> str | None:
    """The infinitive of a canonical verb token, or None: "ponerse" -> "poner",
    "tomarle" -> "tomar", "jugarsela" -> "jugar", "meter" -> "meter"."""
    w = word
    for _ in range(2):
        if _is_infinitive(w):
            return w
        m = _CLITIC_SUFFIX.fullmatch(w)
        if not m:
            return None
        w = m.group(1)
    return w if _is_infinitive(w) else None


def _is_infinitive(w: str) -> bool:
    if w in _SHORT_VERBS:
        return True
    return len(w) > 3 and w.endswith(("ar", "er", "ir")) and w not in _NOT_VERBS


@dataclass(frozen=True)
class Token:
    text: str
    start: int
    end: int
    norm: str  # deaccented lower case
    keys: frozenset[str]  # everything this token may stand for
    enclitics: tuple[str, ...]  # pronouns attached to a verb form ("ponte" -> ("te",))
    sentence: int  # index of the sentence it belongs to


@dataclass(frozen=True)
class Slot:
    keys: frozenset[str]
    kind: str  # verb | word | function | possessive | clitic
    optional: bool = False
    reflexive: bool = False  # a pronominal verb: needs me/te/se/nos/os
    takes_object: bool = False  # a verb written with an object clitic: shown in the span when present
    text: str = ""


@dataclass(frozen=True)
class Pattern:
    canonical: str
    slots: tuple[Slot, ...]
    standalone: bool = False  # a short interjection ("qué va"): must stand before punctuation or the end

    @property
    def required(self) -> tuple[Slot, ...]:
        return tuple(s for s in self.slots if not s.optional)


@dataclass(frozen=True)
class Match:
    start: int  # character offsets into the text
    end: int
    text: str
    first_token: int
    last_token: int
    gaps: int = 0
    slots: int = 0  # how many words of the pattern were matched
    reflexive: int = 0  # pronominal verbs whose pronoun was found


# --- compiling canonical forms ------------------------------------------------------


def compile_pattern(canonical: str, *, standalone: bool = False) -> Pattern:
    words = _split_canonical(canonical)
    while words and words[-1][0][0] in PLACEHOLDERS:  # "a alguien", "de algo" at the end
        words.pop()
        if words and words[-1][0][0] in FUNCTION_WORDS and len(words) > 1:
            words.pop()
    slots = [_slot(alternatives, optional) for alternatives, optional in words]
    if len(slots) > 2 and slots[0].kind == "function" and slots[0].keys <= ARTICLES:
        slots[0] = replace(slots[0], optional=True)  # "la edad del pavo" ~ "en plena edad del pavo"
    if not any(not s.optional for s in slots):
        raise PatternError(f"{canonical!r}: nothing to match")
    short = all(s.kind == "function" or (s.kind == "word" and len(s.text) <= 2) for s in slots if not s.optional)
    return Pattern(canonical=canonical, slots=tuple(slots), standalone=standalone and short)


def _split_canonical(canonical: str) -> list[tuple[list[str], bool]]:
    """[(alternatives, optional)] per word: "estar (hecho) polvo" -> estar, (hecho)?, polvo."""
    out: list[tuple[list[str], bool]] = []
    depth = 0
    for raw in deaccent(canonical).replace("(", " ( ").replace(")", " ) ").split():
        if raw == "(":
            depth += 1
            continue
        if raw == ")":
            depth -= 1
            if depth < 0:
                raise PatternError(f"{canonical!r}: unbalanced parentheses")
            continue
        alternatives = [re.sub(r"[^\wñ]", "", a) for a in raw.split("/")]
        alternatives = [a for a in alternatives if a]
        if alternatives:
            out.append((alternatives, depth > 0))
    if depth:
        raise PatternError(f"{canonical!r}: unbalanced parentheses")
    if not out:
        raise PatternError("empty canonical form")
    return out


def _slot(alternatives: list[str], optional: bool) -> Slot:
    text = "/".join(alternatives)
    first = alternatives[0]
    if len(alternatives) == 1 and first in POSSESSIVE_WEAK:
        return Slot(POSSESSIVE_WEAK, "possessive", optional, text=text)
    if len(alternatives) == 1 and first in POSSESSIVE_STRONG:
        return Slot(POSSESSIVE_STRONG, "possessive", optional, text=text)
    if len(alternatives) == 1 and first in CLITICS - {"se", "la", "las", "lo", "los"}:
        return Slot(frozenset(CLITICS - {"se"}), "clitic", optional, text=text)
    if all(a in FUNCTION_WORDS for a in alternatives):
        return Slot(frozenset(alternatives), "function", optional, text=text)
    keys: set[str] = set()
    reflexive = takes_object = is_verb = False
    for alt in alternatives:
        base = _verb_base(alt)
        if base is not None:
            is_verb = True
            keys.add(base)
            clitics = alt[len(base) :]
            reflexive = reflexive or "se" in _clitic_chain(clitics)
            takes_object = takes_object or bool(clitics)
        else:
            keys |= _folds(alt)
    kind = "verb" if is_verb else "word"
    return Slot(frozenset(keys), kind, optional, reflexive=reflexive, takes_object=takes_object, text=text)


def _clitic_chain(suffix: str) -> tuple[str, ...]:
    """ "sela" -> ("se", "la"); "le" -> ("le",)."""
    out: list[str] = []
    rest = suffix
    while rest:
        for c in sorted(CLITICS, key=len, reverse=True):
            if rest.startswith(c):
                out.append(c)
                rest = rest[len(c) :]
                break
        else:
            return tuple(out)
    return tuple(out)


# --- tokenising text ----------------------------------------------------------------


def tokenize(text: str, lemmatize: Lemmatize) -> list[Token]:
    tokens: list[Token] = []
    sentence = 0
    last_end = 0
    for m in _WORD.finditer(text):
        if _BREAK.search(text, last_end, m.start()):
            sentence += 1
        last_end = m.end()
        lower = m.group().lower().replace("’", "'")
        norm = deaccent(lower)
        keys, enclitics = _cached_keys(lower, lemmatize)
        tokens.append(Token(m.group(), m.start(), m.end(), norm, keys, enclitics, sentence))
    return tokens


@lru_cache(maxsize=65536)
def _cached_keys(lower: str, lemmatize: Lemmatize) -> tuple[frozenset[str], tuple[str, ...]]:
    """Keys of one lower-case word. The lemmatiser sees the accented form first
    ("tomó" is *tomar*, "tomo" is a noun), then the plain one (ASR drops accents)."""
    norm = deaccent(lower)
    keys = {norm} | _folds(norm)
    for lemma in {deaccent(lemmatize(lower)), deaccent(lemmatize(norm))}:
        keys |= {lemma} | _folds(lemma)
        if lemma.endswith("se") and _verb_base(lemma) is not None:  # simplemma: "ponte" -> "ponerse"
            keys.add(_verb_base(lemma) or lemma)
    keys |= infinitives(norm)
    if lower in _ACCENTED_VERB_FORMS:  # "dé" is dar, but "de" is only a preposition
        keys.add(_ACCENTED_VERB_FORMS[lower])
    enclitics: tuple[str, ...] = ()
    base, stripped = norm, list[str]()
    for _ in range(2):  # "dámelo" -> "da" + me + lo
        m = _CLITIC_SUFFIX.fullmatch(base)
        if not m or len(m.group(1)) < 2:
            break
        base = m.group(1)
        stripped.insert(0, m.group(2))
        verbs = {v for v in {deaccent(lemmatize(base)), *infinitives(base)} if _verb_base(v) == v}
        if verbs:
            keys |= verbs
            enclitics = tuple(stripped)
    return frozenset(keys), enclitics


# --- matching -------------------------------------------------------------------------


def find(pattern: Pattern, tokens: list[Token], text: str) -> list[Match]:
    """Every non-overlapping match of ``pattern`` in ``tokens``, leftmost first."""
    out: list[Match] = []
    i = 0
    while i < len(tokens):
        m = _match_at(pattern, tokens, i, text)
        if m is None:
            i += 1
            continue
        out.append(m)
        i = m.last_token + 1
    return out


def _match_at(pattern: Pattern, tokens: list[Token], first: int, text: str) -> Match | None:
    slots = pattern.slots
    # the first required slot must sit on ``first`` (optional leading slots may be skipped)
    best: Match | None = None
    for positions in _assign(slots, tokens, 0, first, None, 0):
        m = _to_match(pattern, tokens, positions, text)
        if m is not None and (best is None or m.gaps < best.gaps):
            best = m
            if m.gaps == 0:
                break
    return best


def _assign(
    slots: tuple[Slot, ...], tokens: list[Token], s: int, t: int, prev: int | None, gaps: int
) -> Iterable[list[int | None]]:
    """Backtracking: yield token positions per slot (None for a skipped optional slot)."""
    if s == len(slots):
        yield []
        return
    slot = slots[s]
    if prev is None:
        candidates: Iterable[int] = [t]
    else:
        candidates = range(prev + 1, min(len(tokens), prev + 2 + _gap_after(slots, s)))
    if prev is not None and slot.kind == "verb":  # pronouns before a verb are not insertions
        reach = min(len(tokens), prev + 2 + _gap_after(slots, s) + _clitics_after(tokens, prev))
        candidates = range(prev + 1, reach)
    for pos in candidates:
        gap = 0 if prev is None else pos - prev - 1
        if slot.kind == "verb" and prev is not None:
            gap -= sum(1 for p in range(prev + 1, pos) if tokens[p].norm in CLITICS)
        if gaps + gap > MAX_TOTAL_GAP or pos >= len(tokens):
            continue
        tok = tokens[pos]
        if prev is not None and tok.sentence != tokens[prev].sentence:
            break
        if _slot_matches(slot, tok, slots[s + 1] if s + 1 < len(slots) else None):
            for rest in _assign(slots, tokens, s + 1, pos + 1, pos, gaps + gap):
                yield [pos, *rest]
    if slot.optional:
        for rest in _assign(slots, tokens, s + 1, t, prev, gaps):
            yield [None, *rest]


def _clitics_after(tokens: list[Token], prev: int) -> int:
    n = 0
    while prev + 1 + n < len(tokens) and tokens[prev + 1 + n].norm in CLITICS and n < 2:
        n += 1
    return n


def _gap_after(slots: tuple[Slot, ...], s: int) -> int:
    """How many extra words may stand before slot ``s``: after a verb an adverb, pronoun or
    auxiliary complement ("metí *bien* la pata", "se puso *por fin* las pilas"); after a
    content word one; after an article or preposition none ("de meter las narices" is not
    *de narices*). Patterns of fewer than three words allow no insertion at all."""
    if sum(1 for x in slots if not x.optional) < 3:
        return 0
    before = next((x for x in reversed(slots[:s]) if not x.optional), slots[s - 1])
    return {"verb": MAX_GAP, "word": 1, "possessive": 1}.get(before.kind, 0)  # "sus *propias* narices"


_CONTRACTIONS = {"al": "a", "del": "de"}


def _slot_matches(slot: Slot, tok: Token, following: Slot | None = None) -> bool:
    if slot.kind in ("function", "possessive", "clitic"):
        if tok.norm in slot.keys:
            return True
        # "del"/"al" carry an article: they stand for the bare preposition only where one
        # may follow it ("hasta las narices del jefe"), not before the idiom's own noun
        # ("del campeonato" is not *de campeonato*)
        return _CONTRACTIONS.get(tok.norm, "") in slot.keys and (following is None or following.kind != "word")
    return not slot.keys.isdisjoint(tok.keys)


def _to_match(pattern: Pattern, tokens: list[Token], positions: list[int | None], text: str) -> Match | None:
    used = [p for p in positions if p is not None]
    if not used:
        return None
    start_tok, end_tok = used[0], used[-1]
    for slot, pos in zip(pattern.slots, positions, strict=True):
        if pos is None or slot.kind != "verb" or not (slot.reflexive or slot.takes_object):
            continue
        proclitic = _proclitic(tokens, pos, used[0] if pos != used[0] else None, slot.reflexive)
        if slot.reflexive and proclitic is None and not (set(tokens[pos].enclitics) & REFLEXIVE):
            return None
        if proclitic is not None and pos == used[0]:
            start_tok = min(start_tok, proclitic)
    if used[0] == positions[0] or positions[0] is None:
        start_tok = min(start_tok, _leading_clitics(tokens, used[0], pattern))
    if pattern.standalone and not _ends_phrase(text, tokens, end_tok):
        return None
    gaps = (used[-1] - used[0] + 1) - len(used)
    start, end = tokens[start_tok].start, tokens[end_tok].end
    reflexive = sum(
        _reflexive_reading(tokens, pos, start_tok)
        for slot, pos in zip(pattern.slots, positions, strict=True)
        if pos is not None and slot.reflexive
    )
    return Match(start, end, text[start:end], start_tok, end_tok, gaps, len(used), reflexive)


_CLITIC_PERSON = {"me": "1s", "te": "2s", "nos": "1p", "os": "2p"}


def _verb_person(norm: str) -> str | None:
    """The person a conjugated form shows unambiguously, else None."""
    if norm.endswith("mos"):
        return "1p"
    if norm.endswith(("ais", "eis", "is")):
        return "2p"
    if norm.endswith("s"):
        return "2s"
    if norm.endswith("n"):
        return "3p"
    if norm.endswith("o") and not norm.endswith(("ado", "ido", "endo", "ando")):
        return "1s"
    return None


def _reflexive_reading(tokens: list[Token], verb: int, first: int) -> int:
    """1 when the pronoun before a pronominal verb can be its reflexive ("te tocas"), -1
    when its person clashes with the verb's so it must be an object ("me toques")."""
    for p in range(verb - 1, max(first, verb - PROCLITIC_REACH) - 1, -1):
        person = _CLITIC_PERSON.get(tokens[p].norm)
        if person is not None:
            shown = _verb_person(tokens[verb].norm)
            return -1 if shown is not None and shown != person else 1
    return 1


def _proclitic(tokens: list[Token], pos: int, floor: int | None, reflexive: bool) -> int | None:
    """The position of the clitic pronoun that belongs to the verb at ``pos``, if any:
    "se está poniendo" (two words back, over an auxiliary), "me lo puse"."""
    wanted = REFLEXIVE if reflexive else CLITICS
    lowest = max(0, pos - PROCLITIC_REACH)
    if floor is not None:
        lowest = max(lowest, floor + 1)
    for p in range(pos - 1, lowest - 1, -1):
        if tokens[p].sentence != tokens[pos].sentence:
            return None
        if tokens[p].norm in wanted:
            return p
    return None


def _leading_clitics(tokens: list[Token], first: int, pattern: Pattern) -> int:
    """Pull unstressed pronouns right before a leading verb into the span ("me importa")."""
    if pattern.slots[0].kind != "verb":
        return first
    p = first
    while p > 0 and tokens[p - 1].norm in CLITICS and tokens[p - 1].sentence == tokens[first].sentence:
        p -= 1
    return p if first - p <= 2 else first


def _ends_phrase(text: str, tokens: list[Token], last: int) -> bool:
    if last + 1 >= len(tokens):
        return True
    between = text[tokens[last].end : tokens[last + 1].start]
    return bool(re.search(r"[,.;:!?¡¿…—-]", between))
