"""Classroom mode: repairs across consecutive utterances."""

from __future__ import annotations

from habla_translate.corrections import Utterance, detect

STUDENT = Utterance("u1", "Hoy estoy mucho calor.", "S2")


def test_no_se_dice_takes_what_was_said_from_the_previous_line() -> None:
    c = detect(Utterance("u2", "No, se dice tengo calor.", "S1"), Utterance("u1", "Estoy calor hoy.", "S2"))
    assert c is not None
    assert (c.correct, c.said, c.corrected_utterance_id, c.cue) == ("tengo calor", "Estoy calor", "u1", "no, se dice")
    assert "estoy" in c.why.lower() and "tengo" in c.why.lower()


def test_se_dice_x_no_y_names_both() -> None:
    c = detect(Utterance("u2", "Se dice 'la mano', no 'el mano'.", "S1"), None)
    assert c is not None and (c.said, c.correct) == ("el mano", "la mano")


def test_no_es_x_es_y() -> None:
    c = detect(Utterance("u2", "No es fuistes, es fuiste.", "S1"), None)
    assert c is not None and (c.said, c.correct) == ("fuistes", "fuiste")


def test_self_repair_with_mejor_dicho() -> None:
    c = detect(Utterance("u1", "Llegamos el martes, mejor dicho el miércoles.", "S1"), None)
    assert c is not None and c.correct == "el miércoles" and c.said == "el martes"


def test_a_teacher_recast_by_another_speaker() -> None:
    c = detect(Utterance("u2", "Ayer estuve en la playa.", "S1"), Utterance("u1", "Ayer yo estoy en la playa.", "S2"))
    assert c is not None and c.cue == "repetition" and c.correct == "Ayer estuve en la playa"


def test_the_same_speaker_repeating_or_unknown_speakers_is_no_recast() -> None:
    assert (
        detect(Utterance("u2", "Ayer estuve en la playa.", "S2"), Utterance("u1", "Ayer yo estoy en la playa.", "S2"))
        is None
    )
    assert detect(Utterance("u2", "Ayer estuve en la playa."), Utterance("u1", "Ayer yo estoy en la playa.")) is None


def test_ordinary_conversation_is_not_a_correction() -> None:
    prev = Utterance("u1", "¿Qué hiciste el fin de semana?", "S1")
    for line in ("Fui al cine con mi hermana.", "No sé, nada especial.", "Se dice que va a llover."):
        assert detect(Utterance("u2", line, "S2"), prev) is None


def test_an_identical_repetition_is_agreement_not_correction() -> None:
    assert detect(Utterance("u2", "Muy bien, en la playa.", "S1"), Utterance("u1", "Estuve en la playa.", "S2")) is None
