"""Practice mode: the learner speaks Spanish and a conversation partner answers him.

For each learner final with text (the handler routes it here when the session's mode is
``practice``), in this order:

1. the rule-based checker (:mod:`habla_translate.mistakes`) reads his line;
2. his level is estimated from his lines so far (:mod:`habla_translate.level`), unless
   ``TRANSLATE_PRACTICE_LEVEL`` fixes it;
3. the tutor (:mod:`habla_translate.tutor`) answers at that level, on the session's topic,
   with the last turns of the dialogue as context, and adds the model's corrections;
4. one :class:`CorrectionDetected` per correction (cue ``practice``), and, unless
   ``TRANSLATE_PRACTICE_SAVE_CORRECTIONS`` is off, one :class:`TermSaved` per correction so
   it becomes a study card; then exactly one :class:`TutorReplied`.

Ids derive from the final's event id (and, for a correction, from what it corrects), so
a redelivered final republishes the same ids. The dialogue kept for the prompt is paged
like the translator's context: it grows to twice ``TRANSLATE_PRACTICE_TURNS`` turns and
then drops its oldest half, so consecutive prompts share it as a prefix.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from habla_common.metrics import observe_stage
from habla_contracts import CorrectionDetected, Event, TermSaved, TranscriptFinal, TutorReplied, derived_id

from . import mistakes
from .config import TranslateConfig
from .idioms import IdiomHit
from .level import Level, estimate
from .tutor import APOLOGY, APOLOGY_EN, Tutor, TutorReply
from .tutor_prompts import Turn, TutorRequest, answer_json

__all__ = ["Practice", "PracticeState", "corrected_line"]

Publish = Callable[[Event], Any]
STAGE = "speech_end_to_tutor_reply"


@dataclass
class PracticeState:
    """One practice session: the dialogue for the prompt, his lines and mistakes for the level."""

    turns: list[Turn] = field(default_factory=list)
    said: list[str] = field(default_factory=list)
    errors: int = 0


def corrected_line(line: str, found: Sequence[mistakes.Mistake]) -> str:
    """``line`` with every correction whose place in it is known applied."""
    out = line
    for m in sorted((m for m in found if m.start >= 0), key=lambda m: m.start, reverse=True):
        out = out[: m.start] + m.correct + out[m.end :]
    return out


def _shifted(hints: Sequence[IdiomHit], heard: str, line: str) -> list[IdiomHit]:
    """``hints`` (found in the text as heard) indexing ``line``, the same text stripped."""
    offset = len(heard) - len(heard.lstrip())
    moved = [replace(h, start=h.start - offset, end=h.end - offset) for h in hints]
    return [h for h in moved if 0 <= h.start < h.end <= len(line) and line[h.start : h.end] == h.phrase]


class Practice:
    def __init__(self, tutor: Tutor, config: TranslateConfig) -> None:
        self.tutor = tutor
        self.config = config

    def on_final(
        self,
        event: TranscriptFinal,
        settings: Mapping[str, str],
        state: PracticeState,
        publish: Publish,
        hints: Sequence[IdiomHit] = (),
    ) -> None:
        """Answer one learner final with text (empty finals never reach here); ``hints``: the
        idioms of the database found in it, whose meaning the model is told."""
        line = unicodedata.normalize("NFC", event.text.strip())
        found = mistakes.check(line)
        level = self._level([*state.said, line], state.errors + len(found))
        topic = settings.get("topic", "").strip()
        hints = _shifted(hints, event.text, line)
        req = TutorRequest(line=line, level=level.band, topic=topic, history=list(state.turns), hints=hints)
        answer = self.tutor.answer(req, found)
        example = corrected_line(line, answer.corrections)
        for m in answer.corrections:
            publish(self._correction(event, m))
            if self.config.practice_save_corrections:
                publish(self._term(event, m, example))
        publish(self._replied(event, answer, level, topic))
        observe_stage(STAGE, event.received_at)
        state.said.append(line)
        state.errors += len(answer.corrections)
        if answer.status == "ok":
            shown = answer_json([m.as_dict() for m in answer.corrections], answer.reply, answer.reply_translation)
            self._remember(state, Turn(line, shown))

    def give_up(
        self, event: TranscriptFinal, settings: Mapping[str, str], state: PracticeState, publish: Publish
    ) -> None:
        """A final that kept failing still gets its reply: an apology asking him to repeat."""
        if not event.text.strip():
            return
        apology = TutorReply(APOLOGY, APOLOGY_EN, [], "failed", 0, 0)
        level = self._level(state.said, state.errors)
        publish(self._replied(event, apology, level, settings.get("topic", "").strip()))
        observe_stage(STAGE, event.received_at)

    def _level(self, said: Sequence[str], errors: int) -> Level:
        fixed = "" if self.config.practice_level == "auto" else self.config.practice_level
        return estimate(said, errors, fixed=fixed)

    def _remember(self, state: PracticeState, turn: Turn) -> None:
        state.turns.append(turn)
        n = self.config.practice_turns
        if len(state.turns) > 2 * n:
            del state.turns[: len(state.turns) - n]

    # --- events -----------------------------------------------------------------------

    def _correction(self, event: TranscriptFinal, m: mistakes.Mistake) -> CorrectionDetected:
        return CorrectionDetected(
            event_id=derived_id("correction.detected", event.event_id, "practice", m.said.lower(), m.correct.lower()),
            session_id=event.session_id,
            utterance_id=event.utterance_id,
            index=event.index,
            corrected_utterance_id="",
            said=m.said,
            correct=m.correct,
            why=m.why,
            cue="practice",
            speaker=event.speaker,
            corrected_speaker=event.speaker,
        )

    @staticmethod
    def _term(event: TranscriptFinal, m: mistakes.Mistake, example: str) -> TermSaved:
        """A saved correction; its ids derive like a save from the phone (what and where),
        so a redelivered final, or the user pressing Save on the card, is one save."""
        text = m.correct
        return TermSaved(
            session_id=event.session_id,
            event_id=derived_id("term.saved", event.session_id, "correction", text.lower(), event.utterance_id),
            term_id=derived_id("term", "correction", text.lower()),
            term_kind="correction",
            text=text,
            meaning=f"not «{m.said}»: {m.why}",
            example=example,
            utterance_id=event.utterance_id,
            language="es",
        )

    def _replied(self, event: TranscriptFinal, answer: TutorReply, level: Level, topic: str) -> TutorReplied:
        return TutorReplied(
            event_id=derived_id("tutor.replied", event.event_id),
            session_id=event.session_id,
            utterance_id=event.utterance_id,
            index=event.index,
            transcript_id=event.event_id,
            said=event.text,
            reply=answer.reply,
            reply_translation=answer.reply_translation,
            corrections=tuple(m.as_dict() for m in answer.corrections),
            level=level.band,
            level_evidence=level.evidence,
            topic=topic,
            status=answer.status,
            model=self.config.model_label,
            llm_ms=answer.llm_ms,
            speaker=event.speaker,
            speech_end_ms=event.speech_end_ms,
            received_at=event.received_at,
        )
