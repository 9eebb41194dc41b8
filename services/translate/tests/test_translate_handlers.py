"""The translate service's handler on the real bundled model, idiom database and guard."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

import pytest

from habla_contracts import (
    CorrectionDetected,
    Event,
    IdiomDetected,
    TermSaved,
    TopicSummarized,
    TranscriptFinal,
    TranscriptPartial,
    TranslationFinal,
    TranslationPartial,
)
from habla_translate.config import TranslateConfig
from habla_translate.handlers import TranslateHandler
from habla_translate.interpreter import Interpreter

NOT_CARING = re.compile(r"care|doesn'?t matter|don'?t mind|indifferent|whatever|give a", re.IGNORECASE)


class Settings:
    def __init__(self, **values: str) -> None:
        self.values = {"direction": "es-en", "mode": "conversation", **values}

    def __call__(self, _session_id: str) -> dict[str, str]:
        return self.values


def make(interpreter: Interpreter, **settings: str) -> tuple[TranslateHandler, list[Event], Callable[[Event], Any]]:
    published: list[Event] = []
    config = TranslateConfig(summary_every=0)
    return TranslateHandler(interpreter, config, Settings(**settings)), published, published.append


def final(text: str, index: int = 0, language: str = "es", session: str = "s1") -> TranscriptFinal:
    return TranscriptFinal(
        session_id=session, utterance_id=f"{session}-u{index}", index=index, text=text, language=language
    )


def test_pepino_means_not_caring_and_the_idiom_is_published_first(interpreter: Interpreter) -> None:
    handler, published, publish = make(interpreter)
    handler.on_final(final("Me importa un pepino lo que digan."), publish)
    kinds = [type(e) for e in published]
    assert kinds == [IdiomDetected, TranslationFinal]
    idiom, translation = published
    assert isinstance(idiom, IdiomDetected) and isinstance(translation, TranslationFinal)
    assert idiom.phrase == "Me importa un pepino" and "importar un pepino" in idiom.canonical
    print(f"\n{translation.translation!r} ({translation.translate_ms} ms)")
    assert translation.status == "ok"
    assert NOT_CARING.search(translation.translation), translation.translation
    assert "cucumber" not in translation.translation.lower()
    assert translation.idioms and translation.idioms[0]["start"] == 0 and translation.idioms[0]["origin"] == "db"


def test_pilas_is_about_getting_going_not_batteries(interpreter: Interpreter) -> None:
    handler, published, publish = make(interpreter)
    handler.on_final(final("Hoy vamos a hablar sobre la importancia de ponerse las pilas antes del examen."), publish)
    translation = published[-1]
    assert isinstance(translation, TranslationFinal)
    print(f"\n{translation.translation!r} ({translation.translate_ms} ms)")
    assert translation.status == "ok"
    assert not re.search(r"batter|shoe", translation.translation, re.IGNORECASE), translation.translation
    assert any(i["canonical"] == "ponerse las pilas" for i in translation.idioms)


def test_an_empty_final_still_gets_its_translation_event(interpreter: Interpreter) -> None:
    handler, published, publish = make(interpreter)
    handler.on_final(final(""), publish)
    [event] = published
    assert isinstance(event, TranslationFinal) and event.status == "empty" and event.translation == ""


def test_english_to_spanish_when_the_user_talks_back(interpreter: Interpreter) -> None:
    handler, published, publish = make(interpreter, direction="en-es")
    handler.on_final(final("Could you fix the heating before Friday, please?", language="en"), publish)
    [event] = published
    assert isinstance(event, TranslationFinal)
    print(f"\n{event.translation!r}")
    assert (event.source_language, event.target_language, event.status) == ("en", "es", "ok")
    assert interpreter.guard.detect(event.translation)[0] == "es"


def test_auto_direction_follows_the_language_asr_heard(interpreter: Interpreter) -> None:
    handler, published, publish = make(interpreter, direction="auto")
    handler.on_final(final("Thank you very much for your help.", language="en"), publish)
    assert isinstance(published[-1], TranslationFinal) and published[-1].target_language == "es"


def test_partials_only_grow_and_stop_at_the_final(interpreter: Interpreter) -> None:
    handler, published, publish = make(interpreter)
    words = [
        "Mañana",
        "por",
        "la",
        "mañana",
        "vamos",
        "a",
        "visitar",
        "el",
        "museo",
        "del",
        "Prado",
        "con",
        "toda",
        "la",
        "clase",
    ]
    for n, window in ((4, 0), (4, 1), (8, 2), (14, 3)):
        partial = TranscriptPartial(
            session_id="s1", utterance_id="s1-u0", window_index=window, committed=" ".join(words[:n]), tentative="x"
        )
        handler.on_partial(partial, publish)
    texts = [e.text for e in published if isinstance(e, TranslationPartial)]
    print(f"\n{texts}")
    assert len(texts) == 3  # window 1 did not grow the committed words
    assert all(b.startswith(a) for a, b in itertools.pairwise(texts))
    handler.on_final(final(" ".join(words)), publish)
    late = TranscriptPartial(session_id="s1", utterance_id="s1-u0", window_index=9, committed=" ".join(words) + " y")
    before = len(published)
    handler.on_partial(late, publish)
    assert len(published) == before


def test_select_puts_finals_first_and_keeps_the_newest_partial(interpreter: Interpreter) -> None:
    handler, _, _ = make(interpreter)
    p = [TranscriptPartial(session_id="s", utterance_id=u, window_index=w) for u, w in (("a", 0), ("a", 1), ("b", 0))]
    f = final("hola", session="s")
    saved = TermSaved(session_id="s", term_kind="word", text="piso", meaning="flat")
    chosen = handler.select([p[0], f, p[1], saved, p[2]])
    assert chosen[0] is saved and chosen[1] is f
    assert p[1] in chosen and p[0] not in chosen and p[2] in chosen
    done = TranscriptFinal(session_id="s", utterance_id="a", text="x")
    assert p[1] not in handler.select([p[1], done])


def test_giving_up_publishes_a_flagged_final(interpreter: Interpreter) -> None:
    handler, published, publish = make(interpreter)
    handler.give_up(final("Algo que siempre falla."), "boom", publish)
    [event] = published
    assert isinstance(event, TranslationFinal) and event.status == "untranslated"


def test_classroom_mode_publishes_a_teacher_correction(interpreter: Interpreter) -> None:
    handler, published, publish = make(interpreter, mode="classroom")
    handler.on_final(final("Hoy estoy mucho calor.", 0), publish)
    handler.on_final(final("No, se dice tengo mucho calor.", 1), publish)
    [correction] = [e for e in published if isinstance(e, CorrectionDetected)]
    assert correction.correct == "tengo mucho calor" and correction.corrected_utterance_id == "s1-u0"


def test_saved_terms_join_the_database_and_the_glossary(interpreter: Interpreter) -> None:
    handler, _, publish = make(interpreter)
    handler.handle(
        TermSaved(
            session_id="s1", term_kind="idiom", text="estar en la gloria", meaning="to be in heaven; blissfully happy"
        ),
        publish,
    )
    handler.handle(
        TermSaved(session_id="s1", term_kind="word", text="la fianza", meaning="the deposit (rent)"), publish
    )
    assert [h.entry.canonical for h in interpreter.idioms.match("Con este sol estoy en la gloria.")] == [
        "estar en la gloria"
    ]
    assert [g.term for g in handler._glossary_for("¿Cuándo me devuelves la fianza?")] == ["la fianza"]


def test_a_summary_is_published_every_few_finals(interpreter: Interpreter) -> None:
    published: list[Event] = []
    handler = TranslateHandler(interpreter, TranslateConfig(summary_every=2), Settings())
    handler.on_final(final("Buenos días, hoy vamos a repasar el pretérito indefinido.", 0), published.append)
    handler.on_final(final("Abrid el libro por la página cuarenta, por favor.", 1), published.append)
    [summary] = [e for e in published if isinstance(e, TopicSummarized)]
    print(f"\n{summary.summary!r}")
    assert summary.summary and summary.upto_index == 1
    assert handler.sessions["s1"].summary == summary.summary


@pytest.mark.parametrize("revision", [1])
def test_a_retranslation_handler_only_publishes_translations(interpreter: Interpreter, revision: int) -> None:
    published: list[Event] = []
    handler = TranslateHandler(
        interpreter, TranslateConfig(summary_every=1), Settings(mode="classroom"), revision=revision
    )
    handler.on_final(final("Me importa un pepino.", 0), published.append)
    assert [type(e) for e in published] == [TranslationFinal]
    assert isinstance(published[0], TranslationFinal) and published[0].revision == revision


def test_a_late_final_is_translated_in_one_express_call_and_keeps_its_idiom(interpreter: Interpreter) -> None:
    """A final whose speech ended longer ago than TRANSLATE_EXPRESS_AFTER_S (the stage is
    behind) goes through the one-call path: still translated by meaning, marked ``express``,
    in less time than the full path takes for the same line."""
    published: list[Event] = []
    now = 1_000_000.0
    handler = TranslateHandler(
        interpreter, TranslateConfig(summary_every=0, express_after_s=15), Settings(), now=lambda: now
    )
    line = "Me importa un pepino lo que digan los vecinos."
    fresh = TranscriptFinal(session_id="s1", utterance_id="u0", index=0, text=line, language="es", received_at=now - 3)
    late = TranscriptFinal(session_id="s2", utterance_id="u0", index=0, text=line, language="es", received_at=now - 40)
    handler.on_final(fresh, published.append)
    handler.on_final(late, published.append)
    full, express = [e for e in published if isinstance(e, TranslationFinal)]
    print(f"\nfull {full.translation!r} ({full.translate_ms} ms)")
    print(f"express {express.translation!r} ({express.translate_ms} ms)")
    assert not full.express and express.express
    assert express.status == "ok" and express.attempts == 1
    assert NOT_CARING.search(express.translation), express.translation
    assert "cucumber" not in express.translation.lower()
    assert [i["canonical"] for i in express.idioms] == [i["canonical"] for i in full.idioms]
    assert express.corrected == line and express.corrections == ()
    # the idiom card is published for a late line too
    assert sum(isinstance(e, IdiomDetected) for e in published) == 2


def test_a_very_late_final_takes_the_rule_based_translation_so_lag_stays_bounded(interpreter: Interpreter) -> None:
    """Past TRANSLATE_RULES_AFTER_S the stage cannot keep up with the model at all: the line
    gets the rule-based translation at once (still English, still with its idiom card)."""
    if interpreter.fallback is None:
        pytest.skip("no rule-based fallback configured")
    published: list[Event] = []
    now = 1_000_000.0
    config = TranslateConfig(summary_every=0, express_after_s=15, rules_after_s=30)
    handler = TranslateHandler(interpreter, config, Settings(), now=lambda: now)
    line = "Mañana vamos a estudiar en la biblioteca con los compañeros."
    handler.on_final(
        TranscriptFinal(session_id="s3", utterance_id="u0", index=0, text=line, language="es", received_at=now - 45),
        published.append,
    )
    [card] = [e for e in published if isinstance(e, TranslationFinal)]
    print(f"\nrules {card.translation!r} ({card.translate_ms} ms)")
    assert card.express and card.status == "fallback" and card.attempts == 1
    assert re.search(r"\blibrary\b", card.translation, re.IGNORECASE), card.translation
    assert card.translate_ms < 5000
