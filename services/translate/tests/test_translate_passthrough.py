"""Never pass the source through: the guard, retries and fallback, on the real model."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from habla_translate.fallback import ApertiumFallback
from habla_translate.interpreter import Interpreter
from habla_translate.llm import ChatModel, Completion, Message
from habla_translate.prompts import ContextLine, Request

FLORES_SAMPLE = 20


def flores(n: int) -> list[dict[str, str]]:
    env = os.environ.get("HABLA_EVAL_DIR")
    folder = Path(env) if env else Path(__file__).resolve().parents[3].parent / "shared" / "eval"
    with open(folder / "text" / "flores200_devtest_spa-eng.tsv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))[:n]


def test_no_untranslated_final_on_the_flores_sample(interpreter: Interpreter) -> None:
    rows = flores(FLORES_SAMPLE)
    results = []
    for i, row in enumerate(rows):
        context = [ContextLine("", r["es"]) for r in rows[max(0, i - 2) : i]]
        results.append(interpreter.final(Request(row["es"], context=context)))
    statuses = [r.status for r in results]
    retried = sum(r.attempts > 1 for r in results)
    ms = sorted(r.elapsed_ms for r in results)
    print(f"\nFLORES {len(rows)}: statuses {sorted(set(statuses))}, retried {retried}, p50 {ms[len(ms) // 2]} ms")
    assert "untranslated" not in statuses
    for r in results:
        assert interpreter.guard.check(r.source_text, r.translation, "es", "en").ok, r.translation


class CopyingChat:
    """A FAKE chat model for the guard's failure paths: it answers with the source text
    (as small models sometimes do) for its first ``copies`` calls, then lets the real
    model answer. The real model will not fail on demand, so this stands in for it."""

    def __init__(self, real: ChatModel, copies: int, source: str) -> None:
        self.real, self.copies, self.source, self.name = real, copies, source, "copying-fake"

    def chat(
        self,
        messages: Sequence[Message],
        *,
        schema: Mapping[str, Any] | None = None,
        prefill: str = "",
        max_tokens: int = 256,
        stop: Sequence[str] = (),
    ) -> Completion:
        if self.copies > 0:
            self.copies -= 1
            line = self.source
            text = f'{{"corrections": [], "translation": "{line}", "idioms": []}}' if schema else line
            return Completion(text, 0, 0, 0.0, "stop")
        return self.real.chat(messages, schema=schema, prefill=prefill, max_tokens=max_tokens, stop=stop)

    def warm_up(self) -> None:
        self.real.warm_up()

    def close(self) -> None:
        pass


LINE = "El casero dice que no nos devuelve la fianza hasta que pintemos el piso."


def test_a_copied_answer_is_retried_with_a_stricter_prompt(interpreter: Interpreter) -> None:
    fake = Interpreter(CopyingChat(interpreter.chat, 1, LINE), interpreter.idioms, interpreter.guard, None)
    result = fake.final(Request(LINE))
    print(f"\n{result.translation!r}")
    assert result.status == "ok" and result.attempts == 2
    assert interpreter.guard.check(LINE, result.translation, "es", "en").ok


def test_when_the_model_keeps_copying_the_fallback_translates(interpreter: Interpreter) -> None:
    assert ApertiumFallback.available(), "apertium is not installed: apt-get install apertium apertium-eng-spa"
    fake = Interpreter(
        CopyingChat(interpreter.chat, 99, LINE), interpreter.idioms, interpreter.guard, ApertiumFallback()
    )
    result = fake.final(Request(LINE))
    print(f"\n{result.translation!r}")
    assert result.status == "fallback" and result.attempts == 4
    assert "says" in result.translation and interpreter.guard.check(LINE, result.translation, "es", "en").ok


def test_with_no_fallback_it_is_flagged_untranslated_never_silent(interpreter: Interpreter) -> None:
    fake = Interpreter(CopyingChat(interpreter.chat, 99, LINE), interpreter.idioms, interpreter.guard, None)
    result = fake.final(Request(LINE))
    assert result.status == "untranslated" and result.translation == LINE


@pytest.mark.parametrize("direction", [("es", "en"), ("en", "es")])
def test_apertium_fallback_both_ways(direction: tuple[str, str]) -> None:
    assert ApertiumFallback.available()
    text = "Buenos días a todos." if direction[0] == "es" else "Good morning, everybody."
    out = ApertiumFallback().translate(text, *direction)
    assert out and out != text
