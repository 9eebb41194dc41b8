"""Practice mode at the handler, on the real bundled model, idiom database, guard and checker:
the learner speaks Spanish and a conversation partner answers him."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from habla_contracts import (
    CorrectionDetected,
    Event,
    IdiomDetected,
    TermSaved,
    TranscriptFinal,
    TranscriptPartial,
    TranslationFinal,
    TranslationPartial,
    TutorReplied,
    derived_id,
)
from habla_translate.config import TranslateConfig
from habla_translate.handlers import TranslateHandler
from habla_translate.interpreter import Interpreter
from habla_translate.level import BANDS
from habla_translate.tutor import APOLOGY

LINES = (
    "Hola, me llamo Pedro y yo tiene dos hermanos.",
    "Me gusta mucho cocinar paella los domingos.",
    "Ayer fui al mercado con mi madre.",
)
CONFIG = TranslateConfig(summary_every=0)


class Settings:
    """The bus's settings hash of a session, as the gateway writes it."""

    def __init__(self, **values: str) -> None:
        self.values = {"direction": "es-en", "mode": "practice", "topic": "mi familia", "speak": "auto", **values}

    def __call__(self, _session_id: str) -> dict[str, str]:
        return self.values


def make(
    interpreter: Interpreter, config: TranslateConfig = CONFIG, **settings: str
) -> tuple[TranslateHandler, list[Event], Callable[[Event], Any]]:
    published: list[Event] = []
    return TranslateHandler(interpreter, config, Settings(**settings)), published, published.append


def final(text: str, index: int = 0, session: str = "p1") -> TranscriptFinal:
    return TranscriptFinal(
        session_id=session,
        utterance_id=f"{session}-u{index}",
        index=index,
        text=text,
        language="es",
        speaker="S1",
        speech_end_ms=1000 * (index + 1),
        received_at=time.time(),
    )


@pytest.mark.slow
def test_a_practice_conversation_is_answered_in_spanish_with_corrections_and_cards(interpreter: Interpreter) -> None:
    handler, published, publish = make(interpreter)
    finals = [final(line, i) for i, line in enumerate(LINES)]
    turns: list[list[Event]] = []
    for event in finals:
        before = len(published)
        handler.on_final(event, publish)
        turns.append(published[before:])
    assert not [e for e in published if isinstance(e, TranslationFinal | TranslationPartial)]
    replies = [e for e in published if isinstance(e, TutorReplied)]
    assert len(replies) == 3
    for i, (event, turn, reply) in enumerate(zip(finals, turns, replies, strict=True)):
        print(f"\n{event.text!r} -> {reply.reply!r} / {reply.reply_translation!r}")
        print(f"  level {reply.level} {reply.level_evidence}, corrections {reply.corrections}, llm {reply.llm_ms} ms")
        assert turn[-1] is reply  # the reply comes last, after its corrections and cards
        assert reply.status == "ok" and reply.reply.strip()
        assert interpreter.guard.detect(reply.reply)[0] == "es", reply.reply
        assert reply.reply.rstrip().endswith("?"), reply.reply  # it keeps the conversation going
        assert reply.level in BANDS and reply.level_evidence["utterances"] == i + 1
        assert reply.event_id == derived_id("tutor.replied", event.event_id)
        assert (reply.transcript_id, reply.utterance_id, reply.index) == (event.event_id, event.utterance_id, i)
        assert (reply.said, reply.topic, reply.speaker) == (event.text, "mi familia", "S1")
        assert (reply.speech_end_ms, reply.received_at) == (event.speech_end_ms, event.received_at)
        assert reply.model == CONFIG.model_label and reply.llm_ms > 0
    # the planted mistake: a correction card, a study card, and the reply's list
    cards = [e for e in turns[0] if isinstance(e, CorrectionDetected)]
    [planted] = [c for c in cards if c.said.lower() == "yo tiene"]
    assert "tengo" in planted.correct and planted.cue == "practice" and planted.why
    assert (planted.speaker, planted.corrected_speaker, planted.corrected_utterance_id) == ("S1", "S1", "")
    assert planted.utterance_id == finals[0].utterance_id
    [saved] = [e for e in turns[0] if isinstance(e, TermSaved) and e.text == planted.correct]
    assert saved.term_kind == "correction" and saved.language == "es" and saved.utterance_id == finals[0].utterance_id
    assert "yo tiene" in saved.meaning and "tengo dos hermanos" in saved.example
    assert saved.event_id == derived_id("term.saved", "p1", "correction", planted.correct.lower(), "p1-u0")
    assert saved.term_id == derived_id("term", "correction", planted.correct.lower())
    assert {"said": "yo tiene", "correct": planted.correct} in [
        {k: c[k] for k in ("said", "correct")} for c in replies[0].corrections
    ]
    # every correction is a card and a saved term; nothing is published for the other lines but the reply
    assert sum(isinstance(e, CorrectionDetected) for e in published) == sum(len(r.corrections) for r in replies)
    assert sum(isinstance(e, TermSaved) for e in published) == sum(len(r.corrections) for r in replies)
    # the dialogue is kept for the next prompts
    assert [t.learner for t in handler.sessions["p1"].practice.turns] == list(LINES)
    print(f"\nLLM time per tutor reply: {[r.llm_ms for r in replies]} ms")


@pytest.mark.slow
def test_idioms_still_come_first_and_the_level_and_saving_follow_the_config(interpreter: Interpreter) -> None:
    config = replace(CONFIG, practice_level="B2", practice_save_corrections=False)
    handler, published, publish = make(interpreter, config, topic="el trabajo")
    handler.on_final(final("Yo es muy feliz, me importa un pepino el trabajo.", session="p2"), publish)
    kinds = [type(e) for e in published]
    assert kinds[0] is IdiomDetected and kinds[-1] is TutorReplied and TermSaved not in kinds
    [correction] = [e for e in published if isinstance(e, CorrectionDetected) and e.said == "Yo es"]
    assert correction.correct == "Yo soy"
    reply = published[-1]
    assert isinstance(reply, TutorReplied) and reply.level == "B2" and reply.level_evidence["fixed"] is True
    print(f"\n{reply.reply!r} ({reply.llm_ms} ms)")


def test_giving_up_on_a_practice_final_apologises_and_asks_again(interpreter: Interpreter) -> None:
    handler, published, publish = make(interpreter)
    event = final("Algo que siempre falla.")
    handler.give_up(event, "boom", publish)
    [reply] = published
    assert isinstance(reply, TutorReplied) and reply.status == "failed"
    assert reply.reply == APOLOGY == "Perdona, no te he entendido bien. ¿Me lo repites?"
    assert reply.reply_translation and reply.event_id == derived_id("tutor.replied", event.event_id)
    assert reply.level in BANDS and reply.said == event.text and reply.topic == "mi familia"
    handler.give_up(final(""), "boom", publish)
    assert len(published) == 1  # an empty final gets nothing, given up or not


def test_empty_finals_and_partials_publish_nothing_in_practice_mode(interpreter: Interpreter) -> None:
    handler, published, publish = make(interpreter)
    handler.on_final(final("   "), publish)
    handler.on_partial(TranscriptPartial(session_id="p1", utterance_id="p1-u1", committed="Ayer fui al"), publish)
    assert published == []
    assert handler.sessions["p1"].practice.said == []


@pytest.mark.slow
def test_a_retranslation_of_a_practice_session_translates_its_lines(interpreter: Interpreter) -> None:
    published: list[Event] = []
    handler = TranslateHandler(interpreter, CONFIG, Settings(), revision=1)
    handler.on_final(final("Ayer fui al mercado con mi madre."), published.append)
    [translation] = published
    assert isinstance(translation, TranslationFinal) and translation.revision == 1 and translation.status == "ok"
