"""Reading model answers leniently, and applying only plausible corrections."""

from __future__ import annotations

import pytest

from habla_translate.errors import OutputInvalid
from habla_translate.parsing import Correction, apply_corrections, clean_line, parse_final


def test_a_clean_answer() -> None:
    a = parse_final('{"corrections": [], "translation": "I couldn\'t care less.", "idioms": []}')
    assert a.translation == "I couldn't care less." and a.complete and a.corrections == []


def test_code_fences_trailing_commas_and_chatter() -> None:
    a = parse_final('```json\n{"corrections": [], "translation": "Hello.", "idioms": [],}\n```\nHope this helps!')
    assert a.translation == "Hello."


def test_an_answer_cut_by_max_tokens_keeps_its_translation() -> None:
    a = parse_final(
        '{"corrections": [{"heard": "baca", "fixed": "vaca", "reason": "context"}], "translation": "The cow is eat'
    )
    assert a.translation == "The cow is eat"
    assert a.corrections == [Correction("baca", "vaca", "context")]


def test_escaped_quotes_survive() -> None:
    a = parse_final('{"translation": "He said \\"no\\".", "corrections": [], "idioms": []}')
    assert a.translation == 'He said "no".'


def test_plain_text_answers_are_accepted_as_incomplete() -> None:
    a = parse_final("Translation: I don't care what they say.")
    assert a.translation == "I don't care what they say." and not a.complete


@pytest.mark.parametrize("bad", ["", "{}", '{"corrections": []}', "[1, 2]", '{"translation": ""}'])
def test_no_translation_raises(bad: str) -> None:
    with pytest.raises(OutputInvalid):
        parse_final(bad)


def test_llm_idioms_keep_their_fields() -> None:
    item = '{"phrase": "a", "canonical": "b", "literal": "c", "meaning": "d"}'
    a = parse_final(f'{{"corrections": [], "translation": "x", "idioms": [{item}]}}')
    assert a.idioms == [{"phrase": "a", "canonical": "b", "literal": "c", "meaning": "d"}]


def test_plausible_corrections_apply() -> None:
    text, applied = apply_corrections("La baca da leche.", [Correction("baca", "vaca", "a cow gives milk")])
    assert text == "La vaca da leche." and len(applied) == 1


@pytest.mark.parametrize(
    "correction",
    [
        Correction("pepino", "cucumber", "translated instead of corrected"),  # not a sound-alike
        Correction("no está", "no está", "same"),
        Correction("perro", "gato", "a different word"),
        Correction("una frase entera que no aparece", "otra", "absent"),
        Correction("", "vaca", "empty"),
    ],
)
def test_implausible_corrections_are_ignored(correction: Correction) -> None:
    text, applied = apply_corrections("El perro come pepino.", [correction])
    assert text == "El perro come pepino." and applied == []


def test_clean_line() -> None:
    assert clean_line('"Good morning."\nExplanation: ...') == "Good morning."
    assert clean_line("English: Thanks") == "Thanks"


def test_a_copied_idiom_gloss_is_removed() -> None:
    a = parse_final(
        '{"corrections": [], "translation": "I\'ve been slacking [= to get one\'s act together].", "idioms": []}'
    )
    assert a.translation == "I've been slacking."
