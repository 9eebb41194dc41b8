"""The rule-based checker of learner mistakes: what it must catch, and what it must leave alone."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from habla_translate.mistakes import check, present_forms

IDIOM_DATA = Path(__file__).parents[1] / "habla_translate" / "data" / "idioms"


@pytest.mark.parametrize(
    ("line", "said", "correct"),
    [
        ("Hola, me llamo Pedro y yo tiene dos hermanos.", "yo tiene", "yo tengo"),
        ("Yo es de Madrid.", "Yo es", "Yo soy"),
        ("Nosotros va al cine los viernes.", "Nosotros va", "Nosotros vamos"),
        ("¿Tú habla inglés?", "Tú habla", "Tú hablas"),
        ("Creo que tú no me entiende.", "tú no me entiende", "tú no me entiendes"),
        ("Usted tienes razón.", "Usted tienes", "Usted tiene"),
        ("Ellos vive en Sevilla.", "Ellos vive", "Ellos viven"),
        ("Mañana ella tengo clase.", "ella tengo", "ella tiene"),
        ("Yo gusta mucho el café.", "Yo gusta", "Me gusta"),
        ("Yo no gusta el frío.", "Yo no gusta", "No me gusta"),
        ("Yo me gusta la paella.", "Yo me gusta", "A mí me gusta"),
        ("La problema es el dinero.", "La problema", "El problema"),
        ("Me duele el mano.", "el mano", "la mano"),
        ("Hablamos de la día de ayer.", "de la día", "del día"),
        ("Te veo al noche.", "al noche", "a la noche"),
        ("Es una sistema muy bueno.", "una sistema", "un sistema"),
        ("Las idiomas son difíciles.", "Las idiomas", "Los idiomas"),
        ("Este noche salimos.", "Este noche", "Esta noche"),
        ("Me gusta el canción.", "el canción", "la canción"),
        ("La agua está fría.", "La agua", "El agua"),
        ("Estoy mucho calor.", "Estoy mucho calor", "Tengo mucho calor"),
        ("Hoy soy hambre.", "soy hambre", "tengo hambre"),
        ("Soy treinta y dos años.", "Soy treinta y dos años", "Tengo treinta y dos años"),
        ("Soy de acuerdo contigo.", "Soy de acuerdo", "Estoy de acuerdo"),
        ("Este es más mejor.", "más mejor", "mejor"),
    ],
)
def test_catches_frequent_learner_mistakes(line: str, said: str, correct: str) -> None:
    found = check(line)
    assert [(m.said, m.correct) for m in found] == [(said, correct)], found
    [m] = found
    assert line[m.start : m.end] == m.said and m.why


def test_the_reason_names_the_rule() -> None:
    [m] = check("Yo tiene dos hermanos.")
    assert m.rule == "agreement" and "yo" in m.why and "tengo" in m.why
    [m] = check("La problema es grande.")
    assert m.rule == "gender" and "masculine" in m.why
    assert check("Yo gusta el café.")[0].as_dict() == {
        "said": "Yo gusta",
        "correct": "Me gusta",
        "why": "with gusta the thing liked is the subject: me gusta (it pleases me), not yo",
    }


def test_several_mistakes_in_one_line_come_in_order() -> None:
    found = check("Yo tiene un problema con la problema del coche.")
    assert [(m.said, m.correct) for m in found] == [("Yo tiene", "Yo tengo"), ("la problema", "el problema")]


@pytest.mark.parametrize(
    "line",
    [
        "Mi hermano y yo vamos al cine.",  # a joint subject: plural verb
        "Tú y yo somos amigos.",
        "Para él trabajo mucho.",  # the pronoun after a preposition
        "Con ella tengo una relación muy buena.",
        "A ella le gusta bailar.",
        "Ella le gusta a mi hermano.",  # agrees: she pleases him
        "Tú me gustas mucho.",
        "Lo que quiero yo es dormir.",  # a cleft: the pronoun belongs to "quiero"
        "Cuando llegó él tengo que irme.",  # the pronoun is the subject of the verb before it
        "¿Qué hace él? Yo tengo hambre.",
        "Yo que tú no lo haría.",
        "Él trabajo mucho ayer.",  # may be "trabajó" with its accent lost
        "Ustedes tenéis razón.",  # western Andalusia
        "La traje ayer de la tienda.",  # an object pronoun, not an article
        "Él la programa cada mañana.",
        "El agua está fría y el hambre aprieta.",
        "Un mano a mano entre los dos.",
        "Esta noche tengo miedo.",
        "Soy dos años mayor que tú.",
        "Tengo treinta años y estoy de acuerdo.",
        "Es más bueno que el pan.",
        "Ni tú ni yo sabemos nada.",
        "Yo, tiene gracia, nunca lo pensé.",  # punctuation between: not the subject
        "Vivo con mis padres y mi hermana.",
        "¿Usted es de aquí?",
        "Nosotros vamos a la playa por la mañana.",
    ],
)
def test_leaves_correct_spanish_alone(line: str) -> None:
    assert check(line) == []


def test_no_false_correction_in_the_idiom_database_examples() -> None:
    """The examples of the idiom database are natural, correct Spanish (over 2,800 lines
    written for it): the checker must not find a single mistake in them."""
    lines = []
    for path in sorted(IDIOM_DATA.glob("*.tsv")):
        with path.open(encoding="utf-8") as f:
            lines += [row["example"] for row in csv.DictReader(f, delimiter="\t")]
    assert len(lines) > 2000
    flagged = {line: check(line) for line in lines}
    assert {line: found for line, found in flagged.items() if found} == {}


def test_present_forms_know_person_and_infinitive() -> None:
    assert present_forms("tengo") == (("tener", 0),)
    assert present_forms("vamos") == (("ir", 3),)
    assert present_forms("como") == ()  # "como" is far more often "like/as"
    assert present_forms("casa") == ()
