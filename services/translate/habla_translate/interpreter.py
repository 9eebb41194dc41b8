"""Translate one line: the same code path for the service, the CLI and re-translation.

A final goes through at most four steps, stopping at the first answer the guard
accepts: (1) the full prompt with context and idiom hints, JSON answer; (2) a stricter
prompt that names the mistake; (3) a bare prompt without context; (4) the rule-based
fallback. If even that fails, the line is published as ``untranslated`` with the best
answer seen, never silently as if it were fine.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rapidfuzz import fuzz

from .errors import BackendError, OutputInvalid
from .fallback import Fallback
from .guard import LanguageGuard, Verdict
from .idioms import IdiomDatabase, IdiomHit
from .llm import ChatModel, Message
from .parsing import Correction, FinalAnswer, apply_corrections, clean_line, parse_final
from .prompts import (
    FINAL_SCHEMA,
    LANGUAGE_NAMES,
    ContextLine,
    Request,
    express_messages,
    final_messages,
    partial_messages,
    retry_messages,
    summary_messages,
    system_prompt,
)

__all__ = ["FinalResult", "Interpreter"]

log = logging.getLogger("habla.translate")


@dataclass(frozen=True)
class FinalResult:
    source_text: str
    corrected: str
    corrections: list[Correction]
    translation: str
    idioms: list[dict[str, Any]]
    status: str  # ok | fallback | untranslated | empty
    detected_language: str
    attempts: int
    elapsed_ms: int
    source: str
    target: str
    hints: list[IdiomHit] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """What ``habla translate`` prints, one object per line."""
        return {
            "source": self.source_text,
            "corrected": self.corrected,
            "corrections": [c.as_dict() for c in self.corrections],
            "translation": self.translation,
            "idioms": self.idioms,
            "status": self.status,
            "language": {"source": self.source, "target": self.target, "detected": self.detected_language},
            "attempts": self.attempts,
            "ms": self.elapsed_ms,
        }


class Interpreter:
    def __init__(
        self,
        chat: ChatModel,
        idioms: IdiomDatabase,
        guard: LanguageGuard,
        fallback: Fallback | None = None,
        *,
        json_mode: str = "grammar",
        retries: int = 2,
    ) -> None:
        self.chat = chat
        self.idioms = idioms
        self.guard = guard
        self.fallback = fallback
        self.json_mode = json_mode
        self.retries = retries

    def warm_up(self) -> None:
        self.chat.warm_up()
        self.guard.warm_up()
        self.idioms.match("Me puse las pilas.")
        for source, target in (("es", "en"), ("en", "es")):  # evaluate both system prompts once
            self.chat.chat([Message("system", system_prompt(source, target)), Message("user", "Hola")], max_tokens=1)

    # --- finals ---------------------------------------------------------------------------

    def final(self, req: Request, hits: list[IdiomHit] | None = None) -> FinalResult:
        t0 = time.perf_counter()
        if not req.text.strip():
            return self._result(req, req.text, [], "", [], "empty", Verdict(True, ""), 0, t0)
        hits = self.idioms.match(req.text) if hits is None else hits
        req = replace(req, hints=hits)
        answer, attempts = self._first_answer(req)
        corrected, applied = apply_corrections(req.text, answer.corrections if answer else [])
        candidate = answer.translation if answer else ""
        verdict = self._check(req, candidate)
        best = candidate
        for step in range(self.retries):
            if verdict.ok:
                break
            attempts += 1
            log.info("answer rejected (%s), retry %d: %r", verdict.reason, step + 1, candidate[:80])
            candidate = self._retry(req, candidate, bare=step > 0)
            best = best or candidate
            verdict = self._check(req, candidate)
        status = "ok"
        if not verdict.ok and self.fallback is not None:
            attempts += 1
            fallback_text, fallback_verdict = self._ruled(corrected, req)
            if fallback_verdict.ok:
                candidate, verdict, status = fallback_text, fallback_verdict, "fallback"
        if not verdict.ok:
            status, candidate = "untranslated", best or candidate
            log.warning("untranslated after %d attempts: %r", attempts, req.text[:80])
        idioms = self._idioms(corrected, answer, hits if corrected == req.text else None)
        return self._result(req, corrected, applied, candidate, idioms, status, verdict, attempts, t0, hits)

    def express(self, req: Request, hits: list[IdiomHit] | None = None, *, rules_first: bool = False) -> FinalResult:
        """A late final in one plain call: the translation with the idiom hints and context,
        no corrections, no model retries; an answer the guard rejects goes to the rule-based
        fallback, else it is ``untranslated``. About half the tokens of :meth:`final`, so a
        stage that fell behind catches up. ``rules_first`` (very late): the rule-based
        translation when the guard accepts it (status ``fallback``), the model only if not."""
        t0 = time.perf_counter()
        if not req.text.strip():
            return self._result(req, req.text, [], "", [], "empty", Verdict(True, ""), 0, t0)
        hits = self.idioms.match(req.text) if hits is None else hits
        req = replace(req, hints=hits)
        idioms = self._idioms(req.text, None, hits)
        attempts = 0
        if rules_first and self.fallback is not None:
            attempts += 1
            ruled, verdict = self._ruled(req.text, req)
            if verdict.ok:
                return self._result(req, req.text, [], ruled, idioms, "fallback", verdict, attempts, t0, hits)
        done = self.chat.chat(express_messages(req), max_tokens=24 + 3 * len(req.text.split()), stop=("\n",))
        candidate = clean_line(done.text)
        verdict, status = self._check(req, candidate), "ok"
        attempts += 1
        if not verdict.ok and self.fallback is not None and not rules_first:
            attempts += 1
            fallback_text, fallback_verdict = self._ruled(req.text, req)
            if fallback_verdict.ok:
                candidate, verdict, status = fallback_text, fallback_verdict, "fallback"
        if not verdict.ok:
            status = "untranslated"
            log.warning("untranslated (express): %r", req.text[:80])
        return self._result(req, req.text, [], candidate, idioms, status, verdict, attempts, t0, hits)

    def _check(self, req: Request, answer: str) -> Verdict:
        """The guard, plus one failure small models have: repeating the prompt's context."""
        verdict = self.guard.check(req.text, answer, req.source, req.target)
        if verdict.ok and _echoes_context(answer, req.context):
            return Verdict(False, verdict.detected, "context_copy")
        return verdict

    def _first_answer(self, req: Request) -> tuple[FinalAnswer | None, int]:
        words = len(req.text.split())
        budget = min(512, 96 + 4 * words + 24 * len(req.hints))
        grammar = self.json_mode == "grammar"
        for attempt in (1, 2):
            try:
                done = self.chat.chat(final_messages(req), schema=FINAL_SCHEMA if grammar else None, max_tokens=budget)
                return parse_final(done.text), attempt
            except OutputInvalid as e:
                log.info("unparseable answer (attempt %d): %s", attempt, e)
                grammar, budget = True, budget * 2
            except BackendError as e:
                if attempt == 2:
                    raise
                log.warning("backend failed, trying once more: %s", e)
        return None, 2

    def _retry(self, req: Request, previous: str, *, bare: bool) -> str:
        if bare:  # no context, no hints: just the line
            tgt = LANGUAGE_NAMES[req.target]
            messages = [
                Message("system", system_prompt(req.source, req.target)),
                Message("user", f"Translate into {tgt}. Answer with the {tgt} translation only.\n\n{req.text}"),
            ]
        else:
            messages = retry_messages(req, previous)
        done = self.chat.chat(messages, max_tokens=48 + 4 * len(req.text.split()), stop=("\n",))
        return clean_line(done.text)

    def _ruled(self, text: str, req: Request) -> tuple[str, Verdict]:
        """The rule-based translation of ``text`` and the guard's verdict on it."""
        ruled = self._fallback(text, req)
        return ruled, self.guard.check(req.text, ruled, req.source, req.target)

    def _fallback(self, text: str, req: Request) -> str:
        assert self.fallback is not None
        try:
            return self.fallback.translate(text, req.source, req.target)
        except BackendError as e:
            log.warning("fallback failed: %s", e)
            return ""

    def _idioms(self, corrected: str, answer: FinalAnswer | None, hits: list[IdiomHit] | None) -> list[dict[str, Any]]:
        """Database hits on the corrected text (those of the heard text when nothing was
        corrected), then the model's own finds that occur in it and overlap no database hit."""
        hits = self.idioms.match(corrected) if hits is None else hits
        found = [h.as_dict() for h in hits]
        taken = [(h.start, h.end) for h in hits]
        for item in answer.idioms if answer else []:
            m = re.search(re.escape(item["phrase"]), corrected, flags=re.IGNORECASE)
            if m is None or any(m.start() < end and start < m.end() for start, end in taken):
                continue
            taken.append((m.start(), m.end()))
            found.append(
                {
                    "phrase": corrected[m.start() : m.end()],
                    "canonical": item.get("canonical") or item["phrase"].lower(),
                    "literal": item.get("literal", ""),
                    "meaning": item["meaning"],
                    "start": m.start(),
                    "end": m.end(),
                    "origin": "llm",
                    "idiom_id": "",
                }
            )
        return sorted(found, key=lambda d: int(d["start"]))

    def _result(
        self,
        req: Request,
        corrected: str,
        corrections: list[Correction],
        translation: str,
        idioms: list[dict[str, Any]],
        status: str,
        verdict: Verdict,
        attempts: int,
        t0: float,
        hits: list[IdiomHit] | None = None,
    ) -> FinalResult:
        return FinalResult(
            source_text=req.text,
            corrected=corrected,
            corrections=corrections,
            translation=translation,
            idioms=idioms,
            status=status,
            detected_language=verdict.detected,
            attempts=attempts,
            elapsed_ms=int((time.perf_counter() - t0) * 1000),
            source=req.source,
            target=req.target,
            hints=hits or [],
        )

    # --- partials and summaries -----------------------------------------------------------

    def partial(self, req: Request, shown: str) -> str:
        """The rough translation of a growing line. It starts with ``shown`` (what the user
        already saw) and continues it, so stable text is never rewritten."""
        prefill = f"{shown} " if shown else ""
        words = len(req.text.split())
        done = self.chat.chat(partial_messages(req), prefill=prefill, max_tokens=16 + 3 * words, stop=("\n",))
        more = done.text.strip().strip('"“”')
        return f"{prefill}{more}".strip() if more else shown

    def summary(self, req: Request, lines: list[ContextLine]) -> str:
        done = self.chat.chat(summary_messages(req, lines), max_tokens=64, stop=("\n",))
        return clean_line(done.text)


def _echoes_context(answer: str, context: Sequence[ContextLine]) -> bool:
    low = answer.lower()
    if low.startswith(("earlier in the conversation", "earlier lines", "context")):
        return True
    return any(len(c.text) >= 15 and fuzz.partial_ratio(c.text.lower(), low) >= 85 for c in context)
