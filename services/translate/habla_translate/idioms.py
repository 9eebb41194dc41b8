"""The idiom database: entries written by this project, and the user's saved idioms.

The packaged data is a set of TSV files in ``habla_translate/data/idioms`` (format in
``FORMAT.md`` there). Loading parses and compiles every canonical form into a
:class:`~habla_translate.matcher.Pattern` and indexes each pattern under its rarest
slot, so matching an utterance only tries the few idioms whose rarest word it contains.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .errors import TranslateError
from .matcher import Lemmatize, Match, Pattern, PatternError, Token, compile_pattern, deaccent, find, tokenize

__all__ = [
    "COLUMNS",
    "IdiomDataError",
    "IdiomDatabase",
    "IdiomEntry",
    "IdiomHit",
    "packaged_files",
    "simplemma_lemmatizer",
]

log = logging.getLogger("habla.translate.idioms")

COLUMNS = ("canonical", "literal", "meaning", "example", "example_en", "region", "register", "kind")
REGIONS = frozenset(
    [
        "general",
        "es",
        "latam",
        "mx",
        "ar",
        "uy",
        "cl",
        "co",
        "ve",
        "pe",
        "cu",
        "pr",
        "do",
        "caribe",
        "centroam",
        "andes",
        "rioplatense",
    ]
)
REGISTERS = frozenset(["neutral", "colloquial", "slang", "vulgar", "formal"])
KINDS = frozenset(["idiom", "phrase", "colloquialism", "proverb", "interjection"])


class IdiomDataError(TranslateError, ValueError):
    """A line of an idiom file that does not follow FORMAT.md (the message names file:line)."""


def idiom_id(canonical: str) -> str:
    """A stable, readable id: "ponerse las pilas" -> "ponerse-las-pilas"."""
    return re.sub(r"[^a-zñ0-9]+", "-", deaccent(canonical)).strip("-")


@dataclass(frozen=True)
class IdiomEntry:
    canonical: str
    literal: str
    meaning: str
    example: str = ""
    example_en: str = ""
    region: str = "general"
    register: str = "neutral"
    kind: str = "idiom"
    origin: str = "db"  # db | user

    @property
    def id(self) -> str:
        return idiom_id(self.canonical)


@dataclass(frozen=True)
class IdiomHit:
    entry: IdiomEntry
    start: int
    end: int
    phrase: str  # as it appears in the text

    def as_dict(self) -> dict[str, object]:
        """The shape :class:`~habla_contracts.TranslationFinal` carries in ``idioms``."""
        e = self.entry
        return {
            "phrase": self.phrase,
            "canonical": e.canonical,
            "literal": e.literal,
            "meaning": e.meaning,
            "start": self.start,
            "end": self.end,
            "origin": e.origin,
            "idiom_id": e.id,
        }


def simplemma_lemmatizer() -> Lemmatize:
    """Spanish lemmas from simplemma's bundled dictionary (loads ~1.7 s on first use)."""
    import simplemma

    def lemmatize(word: str) -> str:
        return str(simplemma.lemmatize(word, lang="es"))

    return lemmatize


def packaged_files() -> list[Path]:
    folder = Path(str(resources.files("habla_translate") / "data" / "idioms"))
    return sorted(folder.glob("*.tsv"))


def parse_file(path: Path) -> Iterable[tuple[int, IdiomEntry]]:
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if tuple(header) != COLUMNS:
            raise IdiomDataError(f"{path}:1: header must be the columns {', '.join(COLUMNS)} separated by tabs")
        for lineno, raw in enumerate(f, 2):
            line = raw.rstrip("\n")
            if not line.strip():
                continue
            cols = line.split("\t")
            if len(cols) != len(COLUMNS) or not all(c.strip() for c in cols):
                raise IdiomDataError(f"{path}:{lineno}: expected {len(COLUMNS)} non-empty tab-separated fields")
            entry = IdiomEntry(*(c.strip() for c in cols))
            _check_entry(entry, f"{path}:{lineno}")
            yield lineno, entry


def _check_entry(e: IdiomEntry, where: str) -> None:
    if not set(e.region.split(",")) <= REGIONS:
        raise IdiomDataError(f"{where}: unknown region {e.region!r}")
    if e.register not in REGISTERS:
        raise IdiomDataError(f"{where}: unknown register {e.register!r}")
    if e.kind not in KINDS:
        raise IdiomDataError(f"{where}: unknown kind {e.kind!r}")


@dataclass
class IdiomDatabase:
    """Compiled idioms, indexed for matching. Build with :meth:`load`."""

    lemmatize: Lemmatize
    entries: dict[str, IdiomEntry] = field(default_factory=dict)
    patterns: dict[str, Pattern] = field(default_factory=dict)
    index: dict[str, set[str]] = field(default_factory=dict)
    load_s: float = 0.0

    @classmethod
    def load(cls, files: Sequence[Path] | None = None, *, lemmatize: Lemmatize | None = None) -> IdiomDatabase:
        t0 = time.perf_counter()
        db = cls(lemmatize=lemmatize or simplemma_lemmatizer())
        seen: dict[str, str] = {}
        for path in packaged_files() if files is None else files:
            for lineno, entry in parse_file(path):
                where = f"{path.name}:{lineno}"
                if entry.id in seen:
                    log.debug("%s repeats %s (first in %s)", where, entry.canonical, seen[entry.id])
                    continue
                seen[entry.id] = where
                db._compile(entry, where)
        db._build_index()
        db.load_s = time.perf_counter() - t0
        return db

    def __len__(self) -> int:
        return len(self.entries)

    def _compile(self, entry: IdiomEntry, where: str) -> None:
        try:
            pattern = compile_pattern(entry.canonical, standalone=entry.kind == "interjection")
        except PatternError as e:
            raise IdiomDataError(f"{where}: {e}") from e
        self.entries[entry.id] = entry
        self.patterns[entry.id] = pattern

    def _build_index(self) -> None:
        df: Counter[str] = Counter()
        for p in self.patterns.values():
            for key in {k for s in p.required for k in s.keys}:
                df[key] += 1
        self.index = {}
        for iid, p in self.patterns.items():
            self._index_one(iid, p, df)

    def _index_one(self, iid: str, pattern: Pattern, df: Counter[str]) -> None:
        required = pattern.required
        content = [s for s in required if s.kind in ("verb", "word")] or list(required)
        anchor = min(content, key=lambda s: sum(df.get(k, 0) for k in s.keys))
        for key in anchor.keys:
            self.index.setdefault(key, set()).add(iid)

    def add(self, entry: IdiomEntry) -> bool:
        """Add (or replace) an idiom, e.g. one the user saved. False if it cannot compile."""
        try:
            self._compile(entry, f"saved idiom {entry.canonical!r}")
        except IdiomDataError as e:
            log.warning("not adding %s", e)
            return False
        for ids in self.index.values():
            ids.discard(entry.id)
        self._index_one(entry.id, self.patterns[entry.id], Counter())
        return True

    def tokens(self, text: str) -> list[Token]:
        return tokenize(text, self.lemmatize)

    def match(self, text: str) -> list[IdiomHit]:
        """Idioms in ``text``, leftmost first; of overlapping hits the longest wins."""
        tokens = self.tokens(text)
        keys: set[str] = set()
        for t in tokens:
            keys |= t.keys
        candidates = set().union(*(self.index.get(k, ()) for k in keys)) if keys else set()
        hits: list[tuple[Match, IdiomEntry]] = []
        for iid in candidates:
            pattern = self.patterns[iid]
            if any(s.kind in ("verb", "word") and s.keys.isdisjoint(keys) for s in pattern.required):
                continue
            hits.extend((m, self.entries[iid]) for m in find(pattern, tokens, text))
        return _resolve_overlaps(hits)


def _rank(hit: tuple[Match, IdiomEntry]) -> tuple[int, int, int, int, str]:
    """Better first: more words matched, then the more specific pattern (a pronominal verb
    whose pronoun is there beats the same words with an object pronoun), fewer insertions."""
    m, e = hit
    return (-m.slots, -m.reflexive, m.gaps, m.start, e.id)


def _resolve_overlaps(hits: list[tuple[Match, IdiomEntry]]) -> list[IdiomHit]:
    chosen: list[tuple[Match, IdiomEntry]] = []
    for m, e in sorted(hits, key=_rank):
        if all(m.end <= c.start or m.start >= c.end for c, _ in chosen):
            chosen.append((m, e))
    chosen.sort(key=lambda h: h[0].start)
    return [IdiomHit(e, m.start, m.end, m.text) for m, e in chosen]
