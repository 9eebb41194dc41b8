"""The untranslated-output guard on real language detection (lingua, offline)."""

from __future__ import annotations

import pytest

from habla_translate.guard import LanguageGuard


@pytest.fixture(scope="module")
def guard() -> LanguageGuard:
    g = LanguageGuard()
    g.warm_up()
    return g


SOURCE = "Me importa un pepino lo que digan los vecinos del quinto."


def test_a_real_translation_passes(guard: LanguageGuard) -> None:
    v = guard.check(SOURCE, "I couldn't care less what the neighbours on the fifth floor say.", "es", "en")
    assert v.ok and v.detected == "en"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (SOURCE, "copy"),
        ("me importa un pepino lo que digan los vecinos", "copy"),
        ("A mí no me interesa nada la opinión de la gente del edificio.", "source_language"),
        ("", "empty"),
        ("   ", "empty"),
    ],
)
def test_source_language_and_copies_are_caught(guard: LanguageGuard, answer: str, reason: str) -> None:
    v = guard.check(SOURCE, answer, "es", "en")
    assert not v.ok and v.reason == reason


def test_the_other_direction(guard: LanguageGuard) -> None:
    src = "I don't care what the neighbours say."
    assert guard.check(src, "Me da igual lo que digan los vecinos.", "en", "es").ok
    assert guard.check(src, "I don't care what the neighbors say.", "en", "es").reason == "copy"


def test_short_answers_are_judged_by_the_copy_check_only(guard: LanguageGuard) -> None:
    assert guard.check("Gracias.", "Thanks.", "es", "en").ok
    assert guard.check("Vale, vale.", "OK, OK.", "es", "en").ok
    assert not guard.check("Muchas gracias", "Muchas gracias", "es", "en").ok
