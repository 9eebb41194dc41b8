"""Event handlers of the translate service.

* ``asr.final`` (:class:`TranscriptFinal`) -> at once, one :class:`IdiomDetected` per
  database idiom in the line (and in classroom mode a :class:`CorrectionDetected` when
  the line corrects the one before); then exactly one :class:`TranslationFinal`, also
  for empty transcripts (``status="empty"``) and when the consumer gives up
  (``status="untranslated"``). Every few finals a :class:`TopicSummarized` refreshes
  the context the prompt carries; while the service sheds load (it is behind the live
  audio, :func:`habla_common.shedding.current_level`) that refresh waits for a final
  handled at normal load.
* ``asr.partial`` (:class:`TranscriptPartial`) -> a :class:`TranslationPartial` when the
  committed words grew; its English continues what was already shown.
* In a ``practice`` session (the learner talks with a Spanish conversation partner) a
  final with text gets its :class:`IdiomDetected` events, then goes to
  :class:`~habla_translate.practice.Practice` (corrections, study cards, one
  :class:`TutorReplied`) instead of being translated; an empty final publishes nothing,
  the give-up publishes a failed reply (an apology), and partials are not translated.
* ``term.saved`` (:class:`TermSaved`) -> saved idioms join the idiom database, saved words
  and phrases the glossary.

Ids of produced events derive from the consumed event's id, so a redelivery
republishes the same ids and the bus drops the duplicates.
:meth:`TranslateHandler.select` puts finals first and keeps only the newest partial of
an utterance that has no final yet: partial work is skipped whenever finals wait.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from habla_common.metrics import observe_stage
from habla_common.shedding import current_level
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
    derived_id,
)

from . import corrections
from .config import TranslateConfig
from .idioms import IdiomEntry, IdiomHit
from .interpreter import FinalResult, Interpreter
from .matcher import Pattern, PatternError, compile_pattern, find
from .practice import Practice, PracticeState
from .prompts import ContextLine, GlossaryItem, Request
from .tutor import Tutor

__all__ = ["Publish", "SettingsLookup", "TranslateHandler", "languages"]

log = logging.getLogger("habla.translate")

SettingsLookup = Callable[[str], Mapping[str, str]]
Publish = Callable[[Event], Any]
MAX_GLOSSARY_IN_PROMPT = 8


def languages(direction: str, detected: str) -> tuple[str, str]:
    """(source, target) for a session direction; ``auto`` follows the language ASR heard."""
    if direction == "en-es" or (direction == "auto" and detected == "en"):
        return "en", "es"
    return "es", "en"


@dataclass
class _Live:
    shown: str = ""  # English already shown for this utterance
    words: int = 0  # committed source words it covers
    source: str = ""


@dataclass
class _Session:
    lines: list[ContextLine] = field(default_factory=list)
    summary: str = ""
    since_summary: int = 0
    previous: corrections.Utterance | None = None
    live: OrderedDict[str, _Live] = field(default_factory=OrderedDict)
    finished: deque[str] = field(default_factory=lambda: deque(maxlen=64))
    practice: PracticeState = field(default_factory=PracticeState)


class TranslateHandler:
    def __init__(
        self,
        interpreter: Interpreter,
        config: TranslateConfig,
        settings_lookup: SettingsLookup,
        *,
        saved_terms: Iterable[TermSaved] = (),
        revision: int = 0,
        clock: Callable[[], float] = time.perf_counter,
        now: Callable[[], float] = time.time,
        tutor: Tutor | None = None,
    ) -> None:
        """``revision`` > 0 re-translates from the log: only translations are published
        (the idioms, corrections and summaries of the live pass are facts already), and
        practice sessions are translated like any other. ``tutor``: the practice partner
        (default: one on the interpreter's model, guard and fallback)."""
        self.interpreter = interpreter
        self.revision = revision
        self.config = config
        self.settings_lookup = settings_lookup
        self.clock = clock
        self.now = now  # wall clock, as ``received_at``
        self.sessions: OrderedDict[str, _Session] = OrderedDict()
        self.glossary: dict[str, tuple[GlossaryItem, Pattern]] = {}
        self.practice = Practice(
            tutor
            or Tutor(
                interpreter.chat,
                interpreter.guard,
                interpreter.fallback,
                json_mode=interpreter.json_mode,
                model_corrections=config.practice_model_corrections,
            ),
            config,
        )
        for term in saved_terms:
            self._save(term)

    # --- routing ----------------------------------------------------------------------

    def handle(self, event: Event, publish: Publish) -> None:
        if isinstance(event, TranscriptFinal):
            self.on_final(event, publish)
        elif isinstance(event, TranscriptPartial):
            self.on_partial(event, publish)
        elif isinstance(event, TermSaved):
            self._save(event)

    def select(self, events: list[Event]) -> list[Event]:
        finals = [e for e in events if isinstance(e, TranscriptFinal)]
        done = {(e.session_id, e.utterance_id) for e in finals}
        newest: dict[tuple[str, str], TranscriptPartial] = {}
        for e in events:
            if isinstance(e, TranscriptPartial) and (e.session_id, e.utterance_id) not in done:
                newest[(e.session_id, e.utterance_id)] = e
        others = [e for e in events if not isinstance(e, TranscriptFinal | TranscriptPartial)]
        return [*others, *finals, *newest.values()]

    def give_up(self, event: Event, reason: str, publish: Publish) -> None:
        """A final that kept failing still gets its TranslationFinal, flagged (in practice
        mode its TutorReplied, an apology)."""
        if isinstance(event, TranscriptFinal):
            log.error("giving up on %s: %s", event.utterance_id, reason)
            settings = self._settings(event.session_id)
            if self._practising(settings):
                self.practice.give_up(event, settings, self._session(event.session_id).practice, publish)
                return
            source, target = self._languages(event, settings)
            self._publish_final(publish, self._final_event(event, None, source, target, status="untranslated"))

    # --- finals -------------------------------------------------------------------------

    def on_final(self, event: TranscriptFinal, publish: Publish) -> None:
        state = self._session(event.session_id)
        last_partial = state.live.pop(event.utterance_id, None)
        state.finished.append(event.utterance_id)
        settings = self._settings(event.session_id)
        if self._practising(settings):
            if event.text.strip():
                hits = self.interpreter.idioms.match(event.text)
                for hit in hits:
                    publish(self._idiom_event(event, hit))
                self.practice.on_final(event, settings, state.practice, publish, hits)
            return
        source, target = self._languages(event, settings)
        if not event.text.strip():
            self._publish_final(publish, self._final_event(event, None, source, target, status="empty"))
            return
        hits = self.interpreter.idioms.match(event.text) if source == "es" else []
        live = self.revision == 0
        for hit in hits if live else ():
            publish(self._idiom_event(event, hit))
        if live and settings.get("mode") == "classroom":
            self._corrections(event, state, publish)
        req = Request(
            text=event.text,
            source=source,
            target=target,
            context=self._context(state),
            summary=state.summary,
            glossary=self._glossary_for(event.text),
        )
        late_s = self._late_s(event)
        late = self._past(late_s, self.config.express_after_s)
        if late:
            result = self.interpreter.express(req, hits, rules_first=self._past(late_s, self.config.rules_after_s))
        else:
            result = self.interpreter.final(req, hits)
        # the partial already had the model evaluate this very prompt up to the line's end
        same = last_partial is not None and last_partial.source.strip() == event.text.strip()
        reused = "partial" if same and not hits else ""
        self._publish_final(
            publish,
            self._final_event(event, result, source, target, status=result.status, reused=reused, express=late),
        )
        # earlier lines carry their speaker ("S2: ..."), so the model sees who answers whom;
        # the line being translated does not, keeping the prompt a live partial prefilled
        self._remember(state, ContextLine(event.speaker, result.corrected))
        state.previous = corrections.Utterance(event.utterance_id, result.corrected, event.speaker)
        state.since_summary += 1
        if self.config.summary_every and state.since_summary >= self.config.summary_every:
            if current_level() > 0:  # behind the live audio: an optional LLM call waits
                log.debug("topic summary of %s put off: shedding load", event.session_id)
            else:
                self._summarize(event, state, publish if live else (lambda _e: None))

    def _late_s(self, event: TranscriptFinal) -> float:
        """How long ago the final's speech ended (0: unknown, or a re-translation)."""
        if self.revision != 0 or event.received_at <= 0:
            return 0.0
        return max(0.0, self.now() - event.received_at)

    @staticmethod
    def _past(late_s: float, after_s: float) -> bool:
        return after_s > 0 and late_s >= after_s

    def _publish_final(self, publish: Publish, final: TranslationFinal) -> None:
        publish(final)
        if final.revision == 0:  # the live path; a re-translation's audio is long past
            observe_stage("speech_end_to_translation_final", final.received_at)

    def _final_event(
        self,
        event: TranscriptFinal,
        result: FinalResult | None,
        source: str,
        target: str,
        *,
        status: str,
        reused: str = "",
        express: bool = False,
    ) -> TranslationFinal:
        return TranslationFinal(
            event_id=derived_id("translation.final", event.event_id, self.revision),
            session_id=event.session_id,
            utterance_id=event.utterance_id,
            index=event.index,
            transcript_id=event.event_id,
            revision=self.revision,
            source_text=event.text,
            corrected=result.corrected if result else event.text,
            corrections=tuple(c.as_dict() for c in result.corrections) if result else (),
            translation=result.translation if result else "",
            idioms=tuple(result.idioms) if result else (),
            source_language=source,
            target_language=target,
            detected_language=result.detected_language if result else "",
            status=status,
            attempts=result.attempts if result else 0,
            reused=reused,
            express=express,
            model=self.config.model_label,
            translate_ms=result.elapsed_ms if result else 0,
            speech_end_ms=event.speech_end_ms,
            received_at=event.received_at,
            speaker=event.speaker,
        )

    def _idiom_event(self, event: TranscriptFinal, hit: IdiomHit) -> IdiomDetected:
        e = hit.entry
        return IdiomDetected(
            event_id=derived_id("idiom.detected", event.event_id, e.id, hit.start),
            session_id=event.session_id,
            utterance_id=event.utterance_id,
            index=event.index,
            idiom_id=e.id,
            canonical=e.canonical,
            phrase=hit.phrase,
            start=hit.start,
            end=hit.end,
            literal=e.literal,
            meaning=e.meaning,
            region=e.region,
            register=e.register,
        )

    def _corrections(self, event: TranscriptFinal, state: _Session, publish: Publish) -> None:
        found = corrections.detect(corrections.Utterance(event.utterance_id, event.text, event.speaker), state.previous)
        if found is None:
            return
        publish(
            CorrectionDetected(
                event_id=derived_id("correction.detected", event.event_id),
                session_id=event.session_id,
                utterance_id=event.utterance_id,
                index=event.index,
                corrected_utterance_id=found.corrected_utterance_id,
                said=found.said,
                correct=found.correct,
                why=found.why,
                cue=found.cue,
                speaker=event.speaker,
                corrected_speaker=(
                    event.speaker
                    if not found.corrected_utterance_id
                    else state.previous.speaker
                    if state.previous is not None
                    else ""
                ),
            )
        )

    def _summarize(self, event: TranscriptFinal, state: _Session, publish: Publish) -> None:
        try:
            summary = self.interpreter.summary(Request(text="", summary=state.summary), list(state.lines))
        except Exception as e:  # noqa: BLE001 - a summary is optional; the translation is already out
            log.warning("topic summary failed: %s", e)
            return
        state.since_summary = 0
        if summary:
            state.summary = summary
            publish(
                TopicSummarized(
                    event_id=derived_id("topic.summarized", event.event_id),
                    session_id=event.session_id,
                    summary=summary,
                    upto_index=event.index,
                    model=self.config.model_label,
                )
            )

    # --- partials -------------------------------------------------------------------------

    def on_partial(self, event: TranscriptPartial, publish: Publish) -> None:
        if not self.config.partials:
            return
        state = self._session(event.session_id)
        if event.utterance_id in state.finished:
            return  # its final is out: a late partial must not show again
        live = state.live.get(event.utterance_id) or _Live()
        words = len(event.committed.split())
        if words <= live.words:
            return  # re-translate only when the committed prefix grew
        settings = self._settings(event.session_id)
        if self._practising(settings):
            return  # the partner answers the final; no rough English is shown
        source, target = self._languages(event, settings)
        t0 = self.clock()
        req = Request(
            text=event.committed, source=source, target=target, context=self._context(state), summary=state.summary
        )
        text = self.interpreter.partial(req, live.shown)
        state.live[event.utterance_id] = _Live(text, words, event.committed)
        while len(state.live) > 8:
            state.live.popitem(last=False)
        publish(
            TranslationPartial(
                event_id=derived_id("translation.partial", event.event_id),
                session_id=event.session_id,
                utterance_id=event.utterance_id,
                index=event.index,
                window_index=event.window_index,
                source=event.committed,
                text=text,
                source_language=source,
                target_language=target,
                translate_ms=int((self.clock() - t0) * 1000),
                received_at=event.received_at,
            )
        )
        observe_stage("window_to_translation_partial", event.received_at)

    # --- saved terms ------------------------------------------------------------------------

    def _save(self, term: TermSaved) -> None:
        if term.term_kind == "idiom" and term.language == "es":
            added = self.interpreter.idioms.add(
                IdiomEntry(
                    canonical=term.text.lower().strip(),
                    literal=term.literal or term.meaning,
                    meaning=term.meaning,
                    example=term.example,
                    origin="user",
                )
            )
            log.info("saved idiom %r %s", term.text, "added" if added else "not added")
        elif term.term_kind in ("word", "phrase") and term.text.strip() and term.meaning.strip():
            try:
                pattern = compile_pattern(term.text)
            except PatternError:
                return
            self.glossary[term.text.lower().strip()] = (GlossaryItem(term.text.strip(), term.meaning.strip()), pattern)

    def _glossary_for(self, text: str) -> list[GlossaryItem]:
        if not self.glossary:
            return []
        tokens = self.interpreter.idioms.tokens(text)
        found = [item for item, pattern in self.glossary.values() if find(pattern, tokens, text)]
        return found[:MAX_GLOSSARY_IN_PROMPT]

    # --- helpers ----------------------------------------------------------------------------

    def _settings(self, session_id: str) -> Mapping[str, str]:
        return self.settings_lookup(session_id)

    def _languages(self, event: TranscriptFinal | TranscriptPartial, settings: Mapping[str, str]) -> tuple[str, str]:
        return languages(settings.get("direction", "es-en"), event.language)

    def _practising(self, settings: Mapping[str, str]) -> bool:
        """A practice session on the live pass (a re-translation translates every line)."""
        return self.revision == 0 and settings.get("mode") == "practice"

    def _context(self, state: _Session) -> list[ContextLine]:
        return list(state.lines) if self.config.context_lines else []

    def _remember(self, state: _Session, line: ContextLine) -> None:
        """Context is paged, not slid: it grows to twice ``context_lines`` and then drops the
        oldest half. So consecutive prompts (partials and finals alike) share the whole
        context as a prefix and llama.cpp evaluates only what was appended."""
        state.lines.append(line)
        n = self.config.context_lines
        if len(state.lines) > 2 * n:
            del state.lines[: len(state.lines) - n]

    def _session(self, session_id: str) -> _Session:
        state = self.sessions.get(session_id)
        if state is None:
            state = _Session()
            self.sessions[session_id] = state
        self.sessions.move_to_end(session_id)
        while len(self.sessions) > self.config.max_sessions:
            self.sessions.popitem(last=False)
        return state
