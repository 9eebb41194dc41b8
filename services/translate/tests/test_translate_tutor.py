"""The practice partner's guards: which of the model's corrections are kept, echoes, the
language of the reply, and what a failure looks like.

The checks on corrections and echoes are pure functions. The guard paths need a model that
reliably answers in English or repeats the learner, which the real one does not do on
demand: :class:`ScriptedFakeChat` plays those answers; the language guard (lingua) and the
rule-based fallback (Apertium) are the real ones.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from habla_translate.fallback import build_fallback
from habla_translate.guard import LanguageGuard
from habla_translate.idioms import IdiomDatabase
from habla_translate.llm import Completion, Message
from habla_translate.mistakes import check
from habla_translate.tutor import APOLOGY, FOLLOW_UP, Tutor, accept, drop_echoes, english_of, merge
from habla_translate.tutor_prompts import TUTOR_SCHEMA, Turn, TutorRequest, answer_json, tutor_messages

LINE = "Hola, me llamo Pedro y yo tiene dos hermanos."


class ScriptedFakeChat:
    """A fake ChatModel that answers with the scripted texts in turn and records the prompts."""

    name = "scripted-fake"

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.prompts: list[list[Message]] = []

    def chat(
        self,
        messages: Sequence[Message],
        *,
        schema: Mapping[str, Any] | None = None,
        prefill: str = "",
        max_tokens: int = 256,
        stop: Sequence[str] = (),
    ) -> Completion:
        self.prompts.append(list(messages))
        return Completion(self.answers.pop(0), 100, 30, 0.1, "stop")

    def warm_up(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def guard() -> LanguageGuard:
    return LanguageGuard()


def answer(reply: str, english: str = "", corrections: Sequence[dict[str, str]] = ()) -> str:
    return answer_json(corrections, reply, english)


# --------------------------------------------------------------------------- corrections


@pytest.mark.parametrize(
    ("said", "correct", "kept"),
    [
        ("yo tiene", "yo tengo", True),
        ("YO TIENE", "yo tengo", True),  # case aside
        ("tiene dos", "tengo dos", True),
        ("ella tiene", "ella tiene tres", False),  # not in the line
        ("Pedro", "pedro", False),  # only case
        ("llamo", "llamó", False),  # only an accent: the text is speech recognition's
        ("hermanos.", "hermanos", False),  # only punctuation
        ("yo tiene", "tiene", False),  # dropping the pronoun alone is not a fix either way
        ("Hola, me llamo Pedro y yo tiene dos hermanos", "Hola, soy Pedro y tengo dos hermanos", False),  # too long
        ("", "tengo", False),
    ],
)
def test_a_model_correction_is_kept_only_when_plausible(said: str, correct: str, kept: bool) -> None:
    assert (accept(said, correct, LINE) is not None) == kept


def test_model_corrections_merge_after_the_rules_without_overlap_or_duplicates() -> None:
    line = "Yo tiene un perro y mi casa es muy grande de la ciudad."
    rules = check(line)
    merged = merge(
        line,
        rules,
        [
            ("yo tiene", "yo tengo", "same as the rule"),  # overlaps the rule's span
            ("tiene un", "tengo un", "overlaps too"),
            ("grande de la", "grande en la", "preposition"),
            ("grande de la", "grande en la", "twice"),  # a duplicate
            ("perrito", "perro", "not said"),
        ],
    )
    assert [(m.said, m.correct, m.rule) for m in merged] == [
        ("Yo tiene", "Yo tengo", "agreement"),
        ("grande de la", "grande en la", "model"),
    ]
    assert line[merged[1].start : merged[1].end] == "grande de la"


def test_echoes_of_his_line_are_dropped_and_questions_kept() -> None:
    heard = {"hola", "me", "llamo", "pedro", "y", "yo", "tiene", "dos", "hermanos", "tengo"}
    reply = "¡Hola! Mi nombre es Pedro y tengo dos hermanos. ¿Cómo se llaman tus hermanos?"
    assert drop_echoes(reply, heard) == "¡Hola! ¿Cómo se llaman tus hermanos?"
    english = "Hello! My name is Pedro and I have two brothers. What are your brothers called?"
    assert english_of(reply, english, heard) == "Hello! What are your brothers called?"
    assert english_of(reply, "Hello, my name is Pedro.", heard) == ""  # sentences do not line up
    assert drop_echoes("¡Qué bien! Los hermanos son importantes. ¿Son mayores?", heard).startswith("¡Qué bien! Los")


def test_the_prompt_keeps_its_stable_part_first_and_the_new_line_last() -> None:
    history = [Turn("Me gusta el fútbol.", answer("¡Qué bien! ¿Juegas?", "Great! Do you play?"))]
    a = tutor_messages(TutorRequest("Sí, juego los sábados.", level="A2", topic="el deporte", history=history))
    b = tutor_messages(TutorRequest("Con mis amigos.", level="B1", topic="el deporte", history=history))
    assert a[:-1] == b[:-1] and a[0].role == "system"
    assert "Sí, juego los sábados." in a[-1].content and "A2" in a[-1].content and "el deporte" in a[-1].content
    assert a[-3].content == "He says: «Me gusta el fútbol.»" and json.loads(a[-2].content)["reply"]
    free = tutor_messages(TutorRequest("Hola.", topic=""))
    assert "follow his lead" in free[-1].content
    assert TUTOR_SCHEMA["required"] == ["corrections", "reply", "english"]


def test_an_idiom_in_his_line_is_glossed_for_the_model(idiom_db: IdiomDatabase) -> None:
    line = "Me importa un pepino el trabajo."
    hints = idiom_db.match(line)
    assert hints
    last = tutor_messages(TutorRequest(line, hints=hints))[-1].content
    assert "Me importa un pepino [= " in last and "el trabajo." in last


# --------------------------------------------------------------------------- guard paths


def test_a_reply_in_english_is_retried_once_with_a_stricter_prompt(guard: LanguageGuard) -> None:
    chat = ScriptedFakeChat(
        answer("That sounds great, tell me more about your brothers!", "That sounds great!"),
        answer("¡Qué bien! ¿Cómo se llaman tus hermanos?", "How nice! What are your brothers called?"),
    )
    reply = Tutor(chat, guard).answer(TutorRequest(LINE), check(LINE))
    assert reply.status == "ok" and reply.attempts == 2
    assert reply.reply == "¡Qué bien! ¿Cómo se llaman tus hermanos?"
    assert "was not Spanish" in chat.prompts[1][-1].content
    assert [(m.said, m.correct) for m in reply.corrections] == [("yo tiene", "yo tengo")]


def test_no_spanish_after_the_retry_is_a_failed_apology_that_keeps_the_corrections(guard: LanguageGuard) -> None:
    english = answer("I really like that, what else do you like to do?", "I really like that!")
    chat = ScriptedFakeChat(english, english)
    reply = Tutor(chat, guard).answer(TutorRequest(LINE), check(LINE))
    assert (reply.status, reply.reply, reply.attempts) == ("failed", APOLOGY, 2)
    assert [m.correct for m in reply.corrections] == ["yo tengo"]


def test_a_reply_that_only_echoes_him_is_retried(guard: LanguageGuard) -> None:
    chat = ScriptedFakeChat(
        answer("Me llamo Pedro y tengo dos hermanos.", "My name is Pedro and I have two brothers."),
        answer("¡Encantado, Pedro! ¿Son mayores o menores que tú?", "Nice to meet you! Are they older or younger?"),
    )
    reply = Tutor(chat, guard).answer(TutorRequest(LINE), check(LINE))
    assert reply.status == "ok" and reply.reply.startswith("¡Encantado, Pedro!") and reply.attempts == 2


def test_the_conversation_goes_on_and_a_spanish_translation_is_replaced(guard: LanguageGuard) -> None:
    chat = ScriptedFakeChat(answer("Me encanta la paella de mi abuela.", "Me encanta la paella de mi abuela."))
    fallback = build_fallback("apertium")
    reply = Tutor(chat, guard, fallback).answer(TutorRequest("Me gusta mucho cocinar paella los domingos."))
    assert reply.reply == f"Me encanta la paella de mi abuela. {FOLLOW_UP[0]}"
    if fallback is not None:  # Apertium's English, then the follow-up's
        assert "paella" in reply.reply_translation and reply.reply_translation.endswith(FOLLOW_UP[1])
        assert guard.detect(reply.reply_translation)[0] == "en"
    else:
        assert reply.reply_translation == ""


def test_the_models_own_corrections_are_checked_and_can_be_turned_off(guard: LanguageGuard) -> None:
    line = "Ayer yo va al mercado con mi madre."
    proposed = [
        {"said": "va al", "correct": "fui al", "why": "past tense"},
        {"said": "madre", "correct": "mamá", "why": "more natural"},  # a different word: kept as said
        {"said": "mercado", "correct": "Mercado", "why": "capital"},  # case only: dropped
    ]
    text = answer("¡Qué bien! ¿Qué compraste?", "Great! What did you buy?", proposed)
    with_model = Tutor(ScriptedFakeChat(text), guard).answer(TutorRequest(line), check(line))
    assert [(m.said, m.correct, m.rule) for m in with_model.corrections] == [
        ("yo va", "yo voy", "agreement"),
        ("madre", "mamá", "model"),
    ]
    rules_only = Tutor(ScriptedFakeChat(text), guard, model_corrections=False).answer(TutorRequest(line), check(line))
    assert [m.rule for m in rules_only.corrections] == ["agreement"]
