"""The practice partner: one learner line in, a Spanish reply and his mistakes out.

One model call per line (JSON: ``corrections``, ``reply``, and ``english``, the reply's
translation: a key named for the language keeps a small model from answering in Spanish;
constrained by :data:`~habla_translate.tutor_prompts.TUTOR_SCHEMA`), then guards:

* sentences of the reply that only repeat his line are dropped (:func:`drop_echoes`);
* the reply must be Spanish (the :class:`~habla_translate.guard.LanguageGuard`) and not
  a copy of his line; otherwise one stricter retry; a reply still wrong is replaced by
  :data:`APOLOGY` with ``status="failed"``, never passed on as if it were fine;
* the reply ends with a question, or :data:`FOLLOW_UP` is added so the talk goes on;
* the translation must be English; otherwise the rule-based fallback's, or none;
* corrections: the rule-based ones (:mod:`habla_translate.mistakes`) first, then each of
  the model's that passes :func:`accept`: ``said`` occurs in his line (case and accents
  aside), ``correct`` differs from it by more than accents, case or punctuation (the text
  is speech recognition's, not his spelling), neither is long, it does not only drop a
  subject pronoun (style, not a mistake), and it overlaps no correction already kept.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import BackendError, OutputInvalid
from .fallback import Fallback
from .guard import LanguageGuard, Verdict
from .llm import ChatModel, Message
from .matcher import deaccent
from .mistakes import Mistake
from .parsing import clean_line, load_json_object
from .tutor_prompts import TUTOR_SCHEMA, TutorRequest, retry_messages, tutor_messages

__all__ = ["APOLOGY", "APOLOGY_EN", "FOLLOW_UP", "Tutor", "TutorReply", "accept", "drop_echoes", "merge"]


def _split(text: str) -> tuple[str, ...]:
    """The words of a space-separated list, in order."""
    return tuple(text.split())


def _set(text: str) -> frozenset[str]:
    return frozenset(text.split())


log = logging.getLogger("habla.translate")

APOLOGY = "Perdona, no te he entendido bien. ¿Me lo repites?"
APOLOGY_EN = "Sorry, I didn't quite understand you. Could you say it again?"
FOLLOW_UP = ("¿Y qué más me cuentas?", "And what else can you tell me?")
MAX_SAID_WORDS = 6
MAX_CORRECT_WORDS = 8
MAX_TOKENS = 320
_SUBJECT_PRONOUNS = _set("yo tu el ella usted nosotros nosotras vosotros vosotras ellos ellas ustedes")
_WORDS = re.compile(r"[^\W_]+")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
ECHO_MIN_WORDS = 3
ECHO_SHARE = 0.7


@dataclass(frozen=True)
class TutorReply:
    reply: str
    reply_translation: str
    corrections: list[Mistake]
    status: str  # ok | failed
    attempts: int
    llm_ms: int
    detected_language: str = ""


def _words(text: str) -> list[str]:
    return _WORDS.findall(deaccent(text))


def _span(said: str, line: str) -> tuple[int, int] | None:
    """Where ``said`` stands in ``line`` as whole words, case and accents aside.
    (deaccent keeps the length of Spanish text: one character per character.)"""
    words = _words(said)
    if not words:
        return None
    rx = r"(?<!\w)" + r"\W+".join(re.escape(w) for w in words) + r"(?!\w)"
    m = re.search(rx, deaccent(line))
    return (m.start(), m.end()) if m else None


def accept(said: str, correct: str, line: str) -> tuple[int, int] | None:
    """The span of ``said`` in ``line`` when the model's correction is plausible, else None."""
    a, b = _words(said), _words(correct)
    if not a or not b or a == b or len(a) > MAX_SAID_WORDS or len(b) > MAX_CORRECT_WORDS:
        return None
    if [w for w in a if w not in _SUBJECT_PRONOUNS] == b:
        return None  # "yo tengo" -> "tengo": leaving the pronoun out is style, not a mistake
    return _span(said, line)


def merge(line: str, rules: Sequence[Mistake], proposed: Sequence[tuple[str, str, str]]) -> list[Mistake]:
    """The rule-based mistakes, then the model's ``(said, correct, why)`` that pass
    :func:`accept` and overlap none kept so far; no duplicates."""
    kept = list(rules)
    for said, correct, why in proposed:
        span = accept(said, correct, line)
        if span is None:
            continue
        start, end = span
        if any(start < m.end and m.start < end for m in kept if m.start >= 0):
            continue
        if any(_words(m.correct) == _words(correct) for m in kept):
            continue
        kept.append(
            Mistake(line[start:end], correct.strip(), why.strip() or "a better way to say it", "model", start, end)
        )
    return sorted(kept, key=lambda m: m.start)


class Tutor:
    def __init__(
        self,
        chat: ChatModel,
        guard: LanguageGuard,
        fallback: Fallback | None = None,
        *,
        json_mode: str = "grammar",
        model_corrections: bool = True,
    ) -> None:
        self.chat = chat
        self.guard = guard
        self.fallback = fallback
        self.json_mode = json_mode
        self.model_corrections = model_corrections

    def answer(self, req: TutorRequest, rules: Sequence[Mistake] = ()) -> TutorReply:
        """The reply to ``req.line``; ``rules``: the rule-based mistakes found in it."""
        t0 = time.perf_counter()
        heard = {*_words(req.line), *(w for m in rules for w in _words(m.correct))}
        data, attempts = self._ask(tutor_messages(req))
        reply, verdict = self._reply(req.line, heard, data)
        if not verdict.ok:
            log.info("practice reply rejected (%s): %r", verdict.reason, str(data.get("reply", ""))[:80])
            retried, more = self._ask(retry_messages(req, str(data.get("reply", ""))))
            attempts += more
            candidate, verdict = self._reply(req.line, heard, retried)
            if verdict.ok:
                data, reply = retried, candidate
        proposed = _proposed(data) if self.model_corrections else []
        corrections = merge(req.line, rules, proposed)
        if not verdict.ok:
            log.warning("no Spanish reply after %d attempts: %r", attempts, req.line[:80])
            return TutorReply(APOLOGY, APOLOGY_EN, corrections, "failed", attempts, _ms(t0), verdict.detected)
        english = clean_line(str(data.get("english", "")))
        translation = self._translation(reply, english_of(str(data.get("reply", "")), english, heard))
        if "?" not in reply:
            reply = f"{reply} {FOLLOW_UP[0]}"
            translation = f"{translation} {FOLLOW_UP[1]}".strip() if translation else ""
        return TutorReply(reply, translation, corrections, "ok", attempts, _ms(t0), verdict.detected or "es")

    def _reply(self, line: str, heard: set[str], data: dict[str, Any]) -> tuple[str, Verdict]:
        """The answer's reply without the sentences that only repeat his line, and the
        guard's verdict on it (reason ``echo`` when nothing else was left)."""
        reply = drop_echoes(clean_line(str(data.get("reply", ""))), heard)
        if not reply:
            return "", Verdict(False, "", "echo")
        return reply, self.guard.check(line, reply, "en", "es")

    def _ask(self, messages: list[Message]) -> tuple[dict[str, Any], int]:
        """The model's JSON answer (lenient), and how many calls it took."""
        grammar, budget = self.json_mode == "grammar", MAX_TOKENS
        for attempt in (1, 2):
            try:
                done = self.chat.chat(messages, schema=TUTOR_SCHEMA if grammar else None, max_tokens=budget)
                data = load_json_object(done.text)
                if data is None or not str(data.get("reply", "")).strip():
                    raise OutputInvalid(f"no reply in the model's answer: {done.text[:200]!r}")
                return data, attempt
            except OutputInvalid as e:
                log.info("unparseable practice answer (attempt %d): %s", attempt, e)
                grammar, budget = True, budget * 2
            except BackendError as e:
                if attempt == 2:
                    raise
                log.warning("backend failed, trying once more: %s", e)
        return {}, 2

    def _translation(self, reply: str, translation: str) -> str:
        """The model's English, or the rule-based fallback's when that is not English."""
        if translation and self.guard.check(reply, translation, "es", "en").ok:
            return translation
        if self.fallback is not None:
            try:
                ruled = self.fallback.translate(reply, "es", "en")
            except BackendError as e:
                log.warning("fallback failed: %s", e)
            else:
                if self.guard.check(reply, ruled, "es", "en").ok:
                    return ruled
        return ""


def _kept(reply: str, heard: set[str]) -> tuple[list[str], list[int]]:
    """The reply's sentences, and the indices of those that are not echoes."""
    sentences = [x.strip() for x in _SENTENCE_END.split(clean_line(reply)) if x.strip()]
    kept = []
    for i, sentence in enumerate(sentences):
        content = [w for w in _words(sentence) if len(w) > 3]
        echoed = len(content) >= ECHO_MIN_WORDS and sum(w in heard for w in content) >= ECHO_SHARE * len(content)
        if "?" in sentence or not echoed:
            kept.append(i)
    return sentences, kept


def drop_echoes(reply: str, heard: set[str]) -> str:
    """``reply`` without its statements that mostly repeat the learner's words (``heard``):
    a small model likes to answer "Me llamo Pedro y tengo dos hermanos" as if it were him.
    A statement of at least :data:`ECHO_MIN_WORDS` content words (longer than 3 letters) of
    which :data:`ECHO_SHARE` or more were his goes; questions always stay."""
    sentences, kept = _kept(reply, heard)
    return " ".join(sentences[i] for i in kept)


def english_of(reply: str, english: str, heard: set[str]) -> str:
    """The model's English for what is left of ``reply`` after :func:`drop_echoes`: the same
    sentences when both have as many, else "" (the caller then translates it by rules)."""
    sentences, kept = _kept(reply, heard)
    if len(kept) == len(sentences):
        return english
    translated = [x.strip() for x in _SENTENCE_END.split(english) if x.strip()]
    if len(translated) != len(sentences):
        return ""
    return " ".join(translated[i] for i in kept)


def _proposed(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    items = data.get("corrections")
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("said"), str) and isinstance(item.get("correct"), str):
            strip = " \"'«»“”"
            out.append((item["said"].strip(strip), item["correct"].strip(strip), str(item.get("why", "")).strip()))
    return out


def _ms(t0: float) -> int:
    return int((time.perf_counter() - t0) * 1000)
