"""The packaged idiom database: size, load time, and that every entry's own example,
written as people say it (conjugated, clitics moved, words inserted), is matched."""

from __future__ import annotations

import time

import pytest

from habla_translate.idioms import REGIONS, IdiomDatabase, packaged_files, parse_file, simplemma_lemmatizer
from habla_translate.matcher import find


@pytest.fixture(scope="module")
def db() -> IdiomDatabase:
    return IdiomDatabase.load()


def test_database_is_large_and_loads_in_under_a_second() -> None:
    lemmatize = simplemma_lemmatizer()
    lemmatize("calentar")  # the lemmatiser's own dictionary loads once per process
    t0 = time.perf_counter()
    db = IdiomDatabase.load(lemmatize=lemmatize)
    elapsed = time.perf_counter() - t0
    print(f"\nidiom database: {len(db)} entries loaded in {elapsed * 1000:.0f} ms")
    assert len(db) >= 1500
    assert elapsed < 1.0


def test_entries_cover_spain_and_latin_america(db: IdiomDatabase) -> None:
    regions = {r for e in db.entries.values() for r in e.region.split(",")}
    assert {"general", "es", "mx", "rioplatense", "co", "cl", "caribe", "centroam"} <= regions <= REGIONS
    registers = {e.register for e in db.entries.values()}
    assert {"neutral", "colloquial", "slang"} <= registers


def test_every_example_matches_its_own_idiom(db: IdiomDatabase) -> None:
    missed = []
    for path in packaged_files():
        for lineno, entry in parse_file(path):
            pattern = db.patterns[entry.id]
            if not find(pattern, db.tokens(entry.example), entry.example):
                missed.append(f"{path.name}:{lineno} {entry.canonical!r}: {entry.example}")
    assert not missed, "\n".join(missed)


def test_examples_find_their_idiom_among_all_others(db: IdiomDatabase) -> None:
    """With every idiom competing, the entry's own idiom is among the hits of its example
    for nearly all entries (the rest lose to a longer idiom covering the same words)."""
    total = found = 0
    for path in packaged_files():
        for _, entry in parse_file(path):
            total += 1
            found += entry.id in {h.entry.id for h in db.match(entry.example)}
    print(f"\nown idiom found among all hits: {found}/{total}")
    assert found / total >= 0.97


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("Me importa un pepino lo que digan.", "importar un pepino"),
        ("Hoy vamos a hablar sobre la importancia de ponerse las pilas antes del examen.", "ponerse las pilas"),
        ("Me están tomando el pelo.", "tomar el pelo"),
        ("Metí la pata con tu madre.", "meter la pata"),
        ("Esto es pan comido.", "ser pan comido"),
    ],
)
def test_headline_idioms_are_in_the_database(db: IdiomDatabase, text: str, canonical: str) -> None:
    canonicals = {h.entry.canonical for h in db.match(text)}
    assert any(c.replace("(", "").replace(")", "").startswith(canonical.split()[0][:4]) for c in canonicals), canonicals
    assert any(canonical.split()[-1] in c for c in canonicals), canonicals


def test_matching_a_long_utterance_takes_milliseconds(db: IdiomDatabase) -> None:
    text = (
        "Bueno, chicos, hoy vamos a ponernos las pilas porque el examen es pan comido si estudiáis, "
        "y al que me tome el pelo le pongo un cero, que me importa un pepino lo que digan."
    )
    db.match(text)
    t0 = time.perf_counter()
    for _ in range(50):
        db.match(text)
    per_call_ms = (time.perf_counter() - t0) / 50 * 1000
    print(f"\nmatch of a {len(text.split())}-word utterance: {per_call_ms:.2f} ms")
    assert per_call_ms < 10
