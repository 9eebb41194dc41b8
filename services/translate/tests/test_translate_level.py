"""The learner's CEFR band from his own Spanish (real wordfreq and simplemma data)."""

from __future__ import annotations

import pytest

from habla_translate.level import BANDS, estimate, structures

BEGINNER = ["Hola, me llamo Pedro.", "Yo tengo dos hermanos.", "Me gusta la pizza.", "Vivo en Madrid con mi familia."]
ELEMENTARY = [
    "Ayer fui al mercado con mi madre y compramos fruta.",
    "Los domingos me gusta cocinar paella para mis amigos.",
    "Mi hermano trabaja en un hospital y vive cerca de mi casa.",
]
INTERMEDIATE = [
    "Cuando era pequeño, vivía en un pueblo cerca de la costa y pasaba los veranos en la playa.",
    "Creo que es importante aprender idiomas porque te ayuda a conocer otras culturas.",
    "El año pasado empecé a estudiar español porque quería hablar con mis vecinos.",
]
UPPER = [
    "Aunque el trabajo me resulta bastante exigente, reconozco que he aprendido muchísimo desde que empecé.",
    "Si hubiera sabido que el tráfico estaría tan mal, habría salido mucho antes de casa.",
    "Me preocupa que la gente no se dé cuenta de lo mucho que influyen las redes sociales en sus opiniones.",
]
ADVANCED = [
    "Sin embargo, considero que la precariedad laboral repercute negativamente en la natalidad, lo cual plantea "
    "un desafío demográfico considerable.",
    "Por mucho que se empeñen en negarlo, las consecuencias de aquella decisión siguen lastrando la economía regional.",
    "Cabe destacar que, a pesar de los avances tecnológicos, la brecha digital sigue marginando a amplios sectores "
    "de la población.",
]


@pytest.mark.parametrize(
    ("lines", "band"),
    [(BEGINNER, "A1"), (ELEMENTARY, "A2"), (INTERMEDIATE, "B1"), (UPPER, "B2"), (ADVANCED, "C1")],
)
def test_clearly_different_learners_get_their_band(lines: list[str], band: str) -> None:
    level = estimate(lines)
    print(f"\n{band}: {level.evidence}")
    assert level.band == band
    assert level.evidence["utterances"] == len(lines) and level.evidence["estimated"] == band


def test_the_bands_are_ordered_by_the_score() -> None:
    scores = [estimate(lines).evidence["score"] for lines in (BEGINNER, ELEMENTARY, INTERMEDIATE, UPPER, ADVANCED)]
    assert scores == sorted(scores) and len(set(scores)) == len(scores)


def test_one_utterance_gives_a_cautious_band_and_says_what_it_rests_on() -> None:
    first = estimate(["Hola, me llamo Pedro y tengo dos hermanos."])
    assert first.band in ("A1", "A2") and first.evidence["utterances"] == 1 and first.evidence["evidence_weight"] < 1
    # one learned sentence is not yet an advanced learner: drawn toward A2 while evidence is thin
    one = estimate([ADVANCED[0]])
    assert one.band in ("B1", "B2") and estimate(ADVANCED).band == "C1"
    nothing = estimate([])
    assert nothing.band == "A2" and nothing.evidence["utterances"] == 0 and nothing.evidence["words"] == 0


def test_frequent_errors_cap_the_band() -> None:
    assert estimate(UPPER).band == "B2"
    capped = estimate(UPPER, errors=3)  # one a line
    assert capped.band == "A2" and capped.evidence["errors_per_utterance"] == 1.0
    assert estimate(UPPER, errors=2).band == "B1"  # two in three lines


def test_evidence_holds_the_numbers() -> None:
    e = estimate(ELEMENTARY, errors=1).evidence
    assert e["words"] == 31 and e["mean_sentence_words"] == pytest.approx(10.3)
    assert 0 <= e["beyond_5k"] <= e["beyond_1k"] <= 1
    assert e["structures"] == ["past"] and e["errors"] == 1
    assert set(e["scores"]) == {"length", "vocabulary", "grammar"}


def test_a_fixed_band_overrides_the_estimate_but_keeps_the_evidence() -> None:
    level = estimate(BEGINNER, fixed="B2")
    assert level.band == "B2" and level.evidence["fixed"] is True and level.evidence["estimated"] == "A1"
    with pytest.raises(ValueError, match="A1, A2"):
        estimate(BEGINNER, fixed="D1")
    assert BANDS == ("A1", "A2", "B1", "B2", "C1", "C2")


@pytest.mark.parametrize(
    ("line", "kinds"),
    [
        ("Yo como pan y bebo agua.", set()),
        ("Ayer hablé con mi madre y comió con nosotros.", {"past"}),
        ("He vivido aquí dos años.", {"perfect"}),
        ("Mañana hablaré con ella.", {"future"}),
        ("Me gustaría viajar a México.", {"conditional"}),
        ("Creo que es verdad porque lo dice ella.", {"subordinate"}),
        ("Quiero que vengas.", {"subordinate", "subjunctive"}),
        ("Ojalá que sea verdad.", {"subordinate", "subjunctive"}),
        ("Si tuviera dinero, viajaría.", {"subordinate", "subjunctive", "conditional"}),
        ("Tengo que estudiar, sin embargo estoy cansado.", {"connector"}),
        ("La economía y la policía.", set()),  # nouns in -ía are not imperfects
    ],
)
def test_structures_are_read_from_verb_endings(line: str, kinds: set[str]) -> None:
    assert structures(line) == kinds
