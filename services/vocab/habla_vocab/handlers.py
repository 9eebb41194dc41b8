"""Event handlers and commands of the vocab service.

* ``term.saved`` (:class:`TermSaved`) -> one :class:`VocabItemSaved`: the canonical form
  and merge key, the frequency band, the sentence as heard with its translation and
  speaker, and an MP3 clip of the original speech cut from the utterance's audio in the
  log. If the utterance is not in the log yet the message is retried
  (:class:`ContextNotReady`); when the consumer gives up, the item is saved without it.
* ``vocab.saved`` / ``vocab.reviewed`` / ``vocab.deleted`` / ``translation.final`` -> the
  vocabulary read models (:mod:`habla_vocab.store`).
* ``session.deleted`` -> a ``vocab.deleted`` for every item heard only in that session,
  then the session's contexts leave the read models (the recorder removes its facts).

Commands (for the REST endpoints and the CLI): :meth:`VocabHandler.review` and
:meth:`VocabHandler.delete` check their input against the read models and return the
fact to publish. Output event ids derive from the input's, so a redelivered term
publishes nothing twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from habla_contracts import (
    VOCAB_ITEM_KINDS,
    VOCAB_SESSION,
    CardReviewed,
    Event,
    SessionDeleted,
    TermSaved,
    TranslationFinal,
    VocabItemDeleted,
    VocabItemSaved,
    derived_id,
)

from .adapters import Heard, HeardSource
from .audio import encode_mp3
from .config import VocabConfig
from .domain import band_of, canonical_form, clip_window, item_id_for, locate, zipf
from .errors import ClipFailed, ContextNotReady
from .srs import check_grade
from .store import DueCard, VocabStore

__all__ = ["Publish", "VocabHandler"]

log = logging.getLogger("habla.vocab")

Publish = Callable[[Event], Any]


class VocabHandler:
    def __init__(
        self, config: VocabConfig, store: VocabStore, source: HeardSource, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.store = store
        self.source = source
        self.clock = clock

    # --- entry points -----------------------------------------------------------

    def handle(self, event: Event, publish: Publish) -> None:
        if isinstance(event, TermSaved):
            publish(self.item_saved(event, self._heard(event, required=True)))
        elif isinstance(event, SessionDeleted):
            for deletion in self.forget_session(event):
                publish(deletion)
            self.store.apply(event)
        elif isinstance(event, VocabItemSaved | CardReviewed | VocabItemDeleted | TranslationFinal):
            self.store.apply(event)

    def select(self, batch: list[Event]) -> list[Event]:
        """Study facts first (the user is waiting on a review's next card), then saved terms."""
        return sorted(batch, key=lambda e: isinstance(e, TermSaved))

    def give_up(self, event: Event, reason: str, publish: Publish) -> None:
        """The consumer is dead-lettering ``event``: a saved term is still saved, with
        whatever context can be had now (none, if its utterance never reached the log)."""
        if not isinstance(event, TermSaved):
            return
        log.error("saving %r without part of its context: %s", event.text, reason.strip())
        heard = self._heard(event, required=False)
        try:
            publish(self.item_saved(event, heard))
        except ClipFailed:
            publish(self.item_saved(event, heard, with_clip=False))

    # --- saving -----------------------------------------------------------------

    def _heard(self, term: TermSaved, *, required: bool) -> Heard | None:
        if not term.utterance_id:
            return None
        heard = self.source.heard(term.session_id, term.utterance_id)
        if heard is None and required:
            raise ContextNotReady(
                f"utterance {term.utterance_id!r} of session {term.session_id!r} is not in the event log yet"
            )
        return heard

    def item_saved(self, term: TermSaved, heard: Heard | None, *, with_clip: bool = True) -> VocabItemSaved:
        """The vocabulary context a saved term makes."""
        kind = term.term_kind if term.term_kind in VOCAB_ITEM_KINDS else "word"
        canonical = canonical_form(term.text, kind, term.language) or term.text.strip().lower()
        frequency = zipf(canonical, term.language)
        clip, start_ms, end_ms = b"", 0, 0
        if heard is not None and heard.pcm and with_clip:
            clip, start_ms, end_ms = self._clip(term, heard)
        return VocabItemSaved(
            session_id=term.session_id,
            event_id=derived_id("vocab.saved", term.event_id),
            occurred_at=term.occurred_at,
            item_id=item_id_for(term.language, canonical),
            term_id=term.term_id,
            item_kind=kind,
            canonical=canonical,
            text=term.text,
            language=term.language,
            meaning=term.meaning,
            literal=term.literal,
            utterance_id=term.utterance_id,
            heard=heard.text if heard else term.example,
            corrected=heard.corrected if heard else "",
            translation=heard.translation if heard else "",
            speaker=heard.speaker if heard else "",
            speaker_name=heard.speaker_name if heard else "",
            start_ms=start_ms,
            end_ms=end_ms,
            clip=clip,
            clip_format="mp3" if clip else "",
            zipf=frequency,
            band=band_of(frequency),
        )

    def _clip(self, term: TermSaved, heard: Heard) -> tuple[bytes, int, int]:
        span = locate(term.text, heard.text, term.language)
        audio_end = heard.start_ms + len(heard.pcm) // 2 * 1000 // heard.sample_rate
        first, last = clip_window(
            heard.start_ms,
            min(heard.end_ms, audio_end),
            heard.text,
            span,
            max_ms=self.config.clip_max_ms,
            pad_ms=self.config.clip_pad_ms,
        )
        begin = (first - heard.start_ms) * heard.sample_rate // 1000 * 2
        end = (last - heard.start_ms) * heard.sample_rate // 1000 * 2
        clip = encode_mp3(heard.pcm[begin:end], heard.sample_rate, self.config.clip_bitrate_kbps)
        return clip, first, last

    # --- commands ---------------------------------------------------------------

    def review(self, item_id: str, grade: object, *, answer_ms: int = 0, at: float | None = None) -> CardReviewed:
        """The fact for grading ``item_id`` (0-5) now; :class:`UnknownItem` / :class:`BadGrade`
        for bad input. Publish it; the read models follow."""
        q = check_grade(grade)
        self.store.item(item_id)  # raises UnknownItem
        return CardReviewed(
            session_id=VOCAB_SESSION,
            occurred_at=self.clock() if at is None else at,
            item_id=item_id,
            grade=q,
            answer_ms=max(0, int(answer_ms)),
        )

    def delete(self, item_id: str, *, at: float | None = None) -> VocabItemDeleted:
        """The fact for deleting ``item_id`` (:class:`UnknownItem` if there is none)."""
        self.store.item(item_id)
        when = self.clock() if at is None else at
        return VocabItemDeleted(session_id=VOCAB_SESSION, occurred_at=when, item_id=item_id)

    def due(self, now: datetime) -> list[DueCard]:
        """Today's study queue at ``now``, within the daily limits."""
        return self.store.due(now)

    def publish_settings(self) -> None:
        """Write this service's study settings where the due queue (SQL) reads them."""
        c = self.config
        self.store.save_settings(c.timezone, c.day_starts_at, c.new_per_day, c.reviews_per_day)

    def forget_session(self, event: SessionDeleted) -> list[VocabItemDeleted]:
        """The deletions of the items that were heard only in the deleted session."""
        return [
            VocabItemDeleted(
                session_id=VOCAB_SESSION,
                event_id=derived_id("vocab.deleted", event.event_id, item_id),
                occurred_at=event.occurred_at,
                item_id=item_id,
            )
            for item_id in self.store.items_only_in(event.deleted_session)
        ]
