"""Saved terms to study cards on real Redis and Postgres, with real FLEURS speech in the log:
save -> context, clip and band; the same item saved again merges; grades move the due date
per SM-2; deletion; bad input; and rebuilding from the log gives identical read models."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from habla_common.eventlog import connect_pg
from habla_contracts import (
    VOCAB_SESSION,
    CardReviewed,
    SessionDeleted,
    TermSaved,
    TranslationFinal,
    VocabItemDeleted,
    VocabItemSaved,
    derived_id,
)
from habla_vocab.audio import decode_mp3
from habla_vocab.domain import item_id_for
from habla_vocab.errors import BadGrade, ContextNotReady, UnknownItem
from habla_vocab.store import VOCAB_TABLES, PostgresVocabStore, apply, rebuild

from .conftest import Clip, EventLog, Pipeline, snapshot

T0 = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)  # a class on a Monday evening
DAY = timedelta(days=1)


def term(session: str, text: str, kind: str = "word", utterance_id: str = "", **kw: str) -> TermSaved:
    return TermSaved(
        session_id=session,
        event_id=derived_id("term.saved", session, kind, text.lower()),
        term_id=derived_id("term", kind, text.lower()),
        term_kind=kind,
        text=text,
        utterance_id=utterance_id,
        occurred_at=kw.pop("at", T0.timestamp()),  # type: ignore[arg-type]
        **kw,
    )


def grade(p: Pipeline, item_id: str, q: int, at: datetime) -> CardReviewed:
    event = p.handler.review(item_id, q, at=at.timestamp())
    p.publish(event)
    p.drain()
    return event


def saved(p: Pipeline) -> list[VocabItemSaved]:
    return [e for e in p.published if isinstance(e, VocabItemSaved)]


def test_saved_phrase_gets_its_sentence_translation_speaker_and_clip(
    pipeline: Pipeline, event_log: EventLog, speech: dict[str, Clip]
) -> None:
    clip = speech["fleurs-es-002"]
    uid = event_log.heard("s1", clip, start_ms=4000, speaker_name="Profesora García")
    pipeline.publish(term("s1", "la Plaza de San Pedro", "phrase", uid, meaning="St Peter's Square"))
    pipeline.drain()

    [event] = saved(pipeline)
    assert event.canonical == "la plaza de san pedro"
    assert event.item_id == item_id_for("es", "la plaza de san pedro")
    assert (event.heard, event.translation) == (clip.text, clip.translation)
    assert (event.speaker, event.speaker_name) == ("S1", "Profesora García")
    # the turn (9.7 s) is under VOCAB_CLIP_MAX_MS, so the clip is the whole of it, as MP3
    assert (event.start_ms, event.end_ms) == (4000, 4000 + clip.ms)
    assert event.clip_format == "mp3" and event.clip[:3] == b"ID3"
    assert len(event.clip) < len(clip.pcm) / 5
    assert abs(decode_mp3(event.clip).size - clip.ms * 16) < 16000 * 0.1
    assert 1 <= event.band <= 5

    store = PostgresVocabStore(event_log.url)
    item = store.item(event.item_id)
    assert (item.canonical, item.item_kind, item.meaning, item.contexts, item.reviews) == (
        "la plaza de san pedro",
        "phrase",
        "St Peter's Square",
        1,
        0,
    )
    [context] = store.contexts(event.item_id)
    assert context.clip == event.clip and context.session_id == "s1"
    assert [s.event.KIND for s in event_log.store.events_of_kind("vocab.saved")] == ["vocab.saved"]


def test_a_long_turn_is_cut_around_the_phrase(pipeline: Pipeline, event_log: EventLog, speech: dict[str, Clip]) -> None:
    clip = speech["fleurs-es-001"]  # 21 s
    uid = event_log.heard("s1", clip)
    pipeline.publish(term("s1", "Oravec", "word", uid))  # the last word
    pipeline.drain()
    [event] = saved(pipeline)
    assert event.end_ms - event.start_ms == 10_000
    assert event.end_ms > clip.ms - 2000  # the window ends near the end of the turn, where the name is


def test_same_item_saved_twice_merges_its_contexts(
    pipeline: Pipeline, event_log: EventLog, speech: dict[str, Clip]
) -> None:
    u1 = event_log.heard("s1", speech["fleurs-es-000"])  # "... puede afectar sus planes de viaje."
    u2 = event_log.heard("s2", speech["fleurs-es-002"])  # "... no todos pudieron acceder ..."
    pipeline.publish(term("s1", "puede", "word", u1, meaning="can"))
    pipeline.publish(term("s2", "pudieron", "word", u2, meaning="were able to", at=(T0 + DAY).timestamp()))
    pipeline.drain()
    # the same save redelivered publishes nothing new
    assert pipeline.publish(term("s1", "puede", "word", u1, meaning="can")) is None
    pipeline.drain()

    first, second = saved(pipeline)
    assert first.item_id == second.item_id == item_id_for("es", "poder")
    store = PostgresVocabStore(event_log.url)
    [item] = store.items()
    assert (item.canonical, item.contexts, item.meaning) == ("poder", 2, "were able to")
    assert item.first_saved_at == T0 and item.last_saved_at == T0 + DAY
    contexts = store.contexts(item.item_id)
    assert [(c.session_id, c.text) for c in contexts] == [("s1", "puede"), ("s2", "pudieron")]
    assert all(c.clip for c in contexts)


def test_grades_move_the_due_date_per_sm2_and_rebuild_gives_identical_state(
    pipeline: Pipeline, event_log: EventLog, speech: dict[str, Clip]
) -> None:
    uid = event_log.heard("s1", speech["fleurs-es-003"])  # "Esto parece tener sentido ..."
    pipeline.publish(term("s1", "sentido", "word", uid, meaning="sense"))
    pipeline.drain()
    item_id = item_id_for("es", "sentido")
    store = PostgresVocabStore(event_log.url)
    assert store.item(item_id).due_at == T0  # new: due at once

    expected = [  # (grade, when, ease, interval, due) by hand from SM-2
        (4, T0 + timedelta(hours=1), 2.5, 1, T0 + timedelta(hours=1) + DAY),
        (5, T0 + DAY, 2.6, 6, T0 + 7 * DAY),
        (3, T0 + 7 * DAY, 2.46, 15, T0 + 22 * DAY),  # ceil(6 * 2.46) = 15
        (1, T0 + 22 * DAY, 2.46, 1, T0 + 23 * DAY),  # forgotten: back to 1 day, ease kept
        (4, T0 + 23 * DAY, 2.46, 1, T0 + 24 * DAY),
        (4, T0 + 24 * DAY, 2.46, 6, T0 + 30 * DAY),
    ]
    for q, at, ease, interval, due in expected:
        grade(pipeline, item_id, q, at)
        item = store.item(item_id)
        assert (item.ease, item.interval_days, item.due_at, item.last_grade) == (ease, interval, due, q)
    item = store.item(item_id)
    assert (item.reviews, item.repetitions, item.lapses) == (6, 2, 1)
    history = store.reviews(item_id)
    assert [(r.review_no, r.grade, r.due_at) for r in history] == [
        (n, q, due) for n, (q, _at, _e, _i, due) in enumerate(expected, start=1)
    ]

    before = snapshot(event_log.url)
    assert rebuild(event_log.url) == 8  # the turn's translation, one save, six reviews
    assert snapshot(event_log.url) == before

    # the facts applied in reverse order give the same rows too
    with connect_pg(event_log.url) as conn:
        conn.execute("TRUNCATE " + ", ".join(VOCAB_TABLES))
        for stored in reversed(event_log.store.read(0, 10_000)):
            apply(conn, stored.event)
        conn.commit()
    assert snapshot(event_log.url) == before


def test_deleted_item_leaves_the_views_and_starts_afresh_when_saved_again(
    pipeline: Pipeline, event_log: EventLog, speech: dict[str, Clip]
) -> None:
    uid = event_log.heard("s1", speech["fleurs-es-002"])
    pipeline.publish(term("s1", "gente", "word", uid, meaning="people"))
    pipeline.drain()
    item_id = item_id_for("es", "gente")
    grade(pipeline, item_id, 5, T0 + timedelta(hours=1))
    pipeline.publish(pipeline.handler.delete(item_id, at=(T0 + 2 * DAY).timestamp()))
    pipeline.drain()
    store = PostgresVocabStore(event_log.url)
    assert store.items() == []
    with pytest.raises(UnknownItem, match="never saved, or deleted"):
        pipeline.handler.review(item_id, 4)
    with pytest.raises(UnknownItem):
        pipeline.handler.delete(item_id)

    uid2 = event_log.heard("s3", speech["fleurs-es-002"])
    pipeline.publish(term("s3", "Gente", "word", uid2, at=(T0 + 3 * DAY).timestamp()))
    pipeline.drain()
    item = store.item(item_id)
    assert (item.contexts, item.reviews, item.due_at) == (1, 0, T0 + 3 * DAY)
    assert item.meaning == ""  # the deleted context's meaning went with it
    before = snapshot(event_log.url)
    rebuild(event_log.url)
    assert snapshot(event_log.url) == before


def test_bad_input_gets_clear_errors(pipeline: Pipeline, event_log: EventLog, speech: dict[str, Clip]) -> None:
    with pytest.raises(UnknownItem, match="no vocabulary item 'nope'"):
        pipeline.handler.review("nope", 3)
    uid = event_log.heard("s1", speech["fleurs-es-002"])
    pipeline.publish(term("s1", "gente", "word", uid))
    pipeline.drain()
    item_id = item_id_for("es", "gente")
    for bad in (6, -1, "4", 4.0, True, None):
        with pytest.raises(BadGrade, match="integer from 0"):
            pipeline.handler.review(item_id, bad)
    assert PostgresVocabStore(event_log.url).item(item_id).reviews == 0

    # a review fact with an impossible grade (not through the command) is kept in the log
    # but never counted in the schedule, live or rebuilt
    pipeline.publish(CardReviewed(session_id=VOCAB_SESSION, item_id=item_id, grade=9, occurred_at=T0.timestamp()))
    pipeline.drain()
    assert PostgresVocabStore(event_log.url).item(item_id).reviews == 0


def test_term_from_an_utterance_not_in_the_log_is_retried_then_saved_without_it(
    pipeline: Pipeline, event_log: EventLog
) -> None:
    missing = term("s1", "la fianza", "phrase", "s1-u99", meaning="the deposit", example="¿Y la fianza?")
    with pytest.raises(ContextNotReady, match="s1-u99"):
        pipeline.handler.handle(missing, pipeline.publish)
    pipeline.publish(missing)
    pipeline.drain()  # three attempts, then the consumer gives up and the item is saved anyway
    [event] = saved(pipeline)
    assert (event.canonical, event.heard, event.clip, event.translation) == ("la fianza", "¿Y la fianza?", b"", "")
    assert PostgresVocabStore(event_log.url).item(event.item_id).contexts == 1
    dead = pipeline.bus.r.xrange("term.saved.dead")
    assert len(dead) == 1 and b"not in the event log yet" in dead[0][1][b"error"]


def test_due_queue_keeps_the_daily_limits(pipeline: Pipeline, event_log: EventLog) -> None:
    words = ["casa", "perro", "gato", "mesa", "silla"]
    for n, word in enumerate(words):
        pipeline.publish(term("s1", word, "word", at=(T0 + timedelta(minutes=n)).timestamp()))
    pipeline.drain()
    pipeline.handler.config = dataclasses.replace(pipeline.handler.config, new_per_day=2, reviews_per_day=1)
    pipeline.handler.publish_settings()
    now = T0 + timedelta(hours=2)
    queue = pipeline.handler.due(now)
    assert [c.item_id for c in queue] == [item_id_for("es", w) for w in ("casa", "perro")]  # oldest new first

    for n, word in enumerate(("casa", "perro")):
        grade(pipeline, item_id_for("es", word), 4, now + timedelta(minutes=n))
    assert pipeline.handler.due(now) == []  # both new cards of the day studied, reviews not due yet

    tomorrow = now + DAY
    queue = pipeline.handler.due(tomorrow)
    assert [(c.item_id, c.is_new) for c in queue] == [
        (item_id_for("es", "casa"), False),  # one review allowed a day; casa was due first
        (item_id_for("es", "gato"), True),
        (item_id_for("es", "mesa"), True),
    ]


def test_study_day_starts_at_the_rollover_hour_local_time(pipeline: Pipeline) -> None:
    madrid = ZoneInfo("Europe/Madrid")
    pipeline.handler.config = dataclasses.replace(pipeline.handler.config, timezone="Europe/Madrid", day_starts_at=4)
    pipeline.handler.publish_settings()
    store = pipeline.handler.store
    start, end = store.study_day(datetime(2026, 3, 3, 2, 30, tzinfo=madrid))  # 02:30: still Monday's day
    assert (start, end) == (datetime(2026, 3, 2, 4, tzinfo=madrid), datetime(2026, 3, 3, 4, tzinfo=madrid))
    start, _ = store.study_day(datetime(2026, 3, 3, 4, 0, tzinfo=madrid))
    assert start == datetime(2026, 3, 3, 4, tzinfo=madrid)
    # the night the clocks go forward (29 March 2026 in Madrid) the study day is 23 hours long
    start, end = store.study_day(datetime(2026, 3, 28, 12, tzinfo=madrid))
    assert (start, end) == (datetime(2026, 3, 28, 4, tzinfo=madrid), datetime(2026, 3, 29, 4, tzinfo=madrid))
    assert (end - start).total_seconds() == 23 * 3600


def _replay_in_reverse(url: str, log: EventLog) -> None:
    with connect_pg(url) as conn:
        conn.execute("TRUNCATE " + ", ".join(VOCAB_TABLES))
        for stored in reversed(log.store.read(0, 10_000)):
            apply(conn, stored.event)
        conn.commit()


def test_a_translation_that_comes_after_the_save_fills_in_the_context(
    pipeline: Pipeline, event_log: EventLog, speech: dict[str, Clip]
) -> None:
    clip = speech["fleurs-es-006"]  # "Los luchadores compañeros de Luna también le rindieron homenaje."
    uid = event_log.heard("s1", clip, translated=False)
    pipeline.publish(term("s1", "rendir homenaje", "idiom", uid, meaning="to pay tribute"))
    pipeline.drain()
    [event] = saved(pipeline)
    assert event.translation == ""  # saved before the turn was translated
    store = PostgresVocabStore(event_log.url)

    def translate(revision: int, text: str) -> None:
        pipeline.publish(
            TranslationFinal(
                session_id="s1",
                event_id=derived_id("test", "s1", "translation", revision, text),
                utterance_id=uid,
                source_text=clip.text,
                corrected=clip.text,
                translation=text,
                revision=revision,
            )
        )
        pipeline.drain()

    translate(0, "Luna's fellow wrestlers also paid tribute to her.")
    [context] = store.contexts(event.item_id)
    assert (context.translation, context.corrected) == ("Luna's fellow wrestlers also paid tribute to her.", clip.text)
    translate(1, clip.translation)  # a re-translation (habla retranslate) replaces it
    translate(0, "an older revision arriving late changes nothing")
    [context] = store.contexts(event.item_id)
    assert context.translation == clip.translation

    before = snapshot(event_log.url)
    rebuild(event_log.url)
    assert snapshot(event_log.url) == before
    _replay_in_reverse(event_log.url, event_log)
    assert snapshot(event_log.url) == before


def test_deleting_a_session_forgets_what_was_heard_only_there(
    pipeline: Pipeline, event_log: EventLog, speech: dict[str, Clip]
) -> None:
    u1 = event_log.heard("s1", speech["fleurs-es-000"])  # "... puede afectar ..."
    u2 = event_log.heard("s1", speech["fleurs-es-002"], index=1, start_ms=20_000)  # "... gente ..."
    u3 = event_log.heard("s2", speech["fleurs-es-002"])  # "... pudieron ..."
    pipeline.publish(term("s1", "puede", "word", u1))
    pipeline.publish(term("s1", "gente", "word", u2))
    pipeline.publish(term("s2", "pudieron", "word", u3, at=(T0 + DAY).timestamp()))
    pipeline.drain()
    poder, gente = item_id_for("es", "poder"), item_id_for("es", "gente")
    grade(pipeline, gente, 4, T0 + 2 * DAY)

    deleted = SessionDeleted.of("s1")
    pipeline.publish(deleted)
    pipeline.drain()
    deletions = [e for e in pipeline.published if isinstance(e, VocabItemDeleted)]
    assert [(e.item_id, e.session_id) for e in deletions] == [(gente, VOCAB_SESSION)]  # heard only in s1
    store = PostgresVocabStore(event_log.url)
    [item] = store.items()
    assert (item.item_id, item.contexts) == (poder, 1)  # still heard in s2
    assert [c.session_id for c in store.contexts(poder)] == ["s2"]
    with connect_pg(event_log.url) as conn:
        assert conn.execute("SELECT count(*) FROM vocab_translations WHERE session_id = 's1'").fetchone() == (0,)
    # a redelivered deletion publishes nothing more
    pipeline.handler.handle(deleted, pipeline.publish)
    assert len([e for e in pipeline.published if isinstance(e, VocabItemDeleted)]) == 1

    # the recorder removes the session's facts from the log; a rebuild gives the same rows
    before = snapshot(event_log.url)
    with connect_pg(event_log.url) as conn:
        conn.execute("SET LOCAL habla.allow_delete = 'on'")
        conn.execute("DELETE FROM events WHERE session_id = 's1'")
        conn.commit()
    rebuild(event_log.url)
    assert snapshot(event_log.url) == before
