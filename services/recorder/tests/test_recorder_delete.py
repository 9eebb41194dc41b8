"""Deleting a session (session.deleted) against real Postgres and Redis: its facts, read models,
audio and Redis keys go, other sessions are untouched, a late fact cannot bring it back, and
`habla rebuild` gives the same state."""

from __future__ import annotations

import os
import threading
import time
import wave
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from habla_common.bus import RedisBus
from habla_common.eventlog import PostgresEventStore, connect_pg
from habla_contracts import (
    ADMIN_SESSION,
    VOCAB_SESSION,
    CorrectionDetected,
    Event,
    SessionDeleted,
    SessionEnded,
    SessionStarted,
    SpeakerAssigned,
    SpeakerJoined,
    SpeakerRenamed,
    SpeakerRoleSuggested,
    TermSaved,
    TopicSummarized,
    TranscriptFinal,
    TranslationFinal,
    UtteranceSegmented,
    VoiceprintDeleted,
    VoiceprintSaved,
    derived_id,
    outbox_key,
)
from habla_recorder.handlers import DELETE_LOCK, Recorder
from habla_recorder.projections import PROJECTION_TABLES, SESSION_TABLES, rebuild

EMB = np.arange(4, dtype="<f4").tobytes()


def speech(name: str) -> bytes:
    env = os.environ.get("HABLA_EVAL_DIR")
    folder = (Path(env) if env else Path(__file__).resolve().parents[4] / "shared" / "eval") / "speech"
    if not folder.is_dir():
        pytest.skip(f"no evaluation audio at {folder} (set HABLA_EVAL_DIR)")
    with wave.open(str(folder / f"{name}.wav")) as w:
        return w.readframes(w.getnframes())


def session_facts(sid: str, pcm: bytes) -> list[Event]:
    """A classroom session: one utterance split between two speakers, its finals, translation,
    correction, topic, a saved term, names, a role, a remembered voice, the end."""
    u0 = derived_id(sid, "utt", 0)
    t1 = derived_id(u0, "turn", 1)
    end = len(pcm) // 32
    half = end // 2
    turns = (
        {"utterance_id": u0, "part": 0, "start_ms": 0, "end_ms": half, "speaker": "S1", "similarity": 0.9},
        {"utterance_id": t1, "part": 1, "start_ms": half, "end_ms": end, "speaker": "S2", "similarity": 0.8},
    )
    return [
        SessionStarted(session_id=sid, seq=1, title=f"clase {sid}", mode="classroom"),
        UtteranceSegmented(session_id=sid, seq=2, utterance_id=u0, index=0, start_ms=0, end_ms=end, pcm=pcm),
        SpeakerJoined(session_id=sid, seq=3, speaker="S1", number=1, label="Speaker 1", color="#0072B2"),
        SpeakerJoined(session_id=sid, seq=4, speaker="S2", number=2, label="Speaker 2", color="#D55E00"),
        SpeakerAssigned(session_id=sid, seq=5, utterance_id=u0, index=0, speaker="S1", turns=turns),
        TranscriptFinal(
            session_id=sid, seq=6, utterance_id=u0, index=0, parts=2, end_ms=half, speaker="S1", text="se dice"
        ),
        TranscriptFinal(
            session_id=sid,
            seq=7,
            utterance_id=t1,
            index=0,
            part=1,
            parts=2,
            parent_id=u0,
            start_ms=half,
            end_ms=end,
            speaker="S2",
            text="me importa un pepino",
        ),
        TranslationFinal(session_id=sid, seq=8, utterance_id=t1, index=0, translation="I couldn't care less"),
        CorrectionDetected(session_id=sid, seq=9, utterance_id=u0, said="la problema", correct="el problema"),
        TopicSummarized(session_id=sid, seq=10, summary="idioms", upto_index=0),
        TermSaved(session_id=sid, seq=11, term_id=derived_id(sid, "term"), text="me importa un pepino"),
        SpeakerRenamed(session_id=sid, seq=12, speaker="S2", name="Ana", remember=True),
        SpeakerRoleSuggested(session_id=sid, seq=13, speaker="S1", role="instructor", confidence=0.8),
        VoiceprintSaved(
            session_id=sid, seq=14, voiceprint_id=f"vp-{sid}", name="Ana", dim=4, embedding=EMB, speaker="S2"
        ),
        SessionEnded(session_id=sid, seq=15),
    ]


def rows_of(url: str, session_id: str | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Every read model, the audio and the log (a session's rows only, if given), in a stable order."""
    where = "" if session_id is None else " WHERE session_id = %s"
    params = () if session_id is None else (session_id,)
    out: dict[str, list[tuple[Any, ...]]] = {}
    with connect_pg(url) as conn:
        for table in (*PROJECTION_TABLES, "utterance_audio"):
            out[table] = sorted(conn.execute(f"SELECT * FROM {table}{where}", params).fetchall(), key=repr)
        out["events"] = conn.execute(
            f"SELECT event_id, session_id, seq, kind, payload FROM events{where} ORDER BY position", params
        ).fetchall()
    return out


def redis_state(bus: RedisBus, sid: str) -> None:
    """What the services keep in Redis for a live session."""
    bus.publish(SessionStarted(session_id=sid, event_id=derived_id(sid, "started")))  # outbox and seq counter
    bus.set_session_settings(sid, direction="es-en", mode="classroom", codec="pcm16")
    bus.r.hset(f"session:{sid}:gateway", mapping={"next_chunk": 12, "ended": 1})
    bus.r.hset(f"ingest:{sid}", mapping={"epoch": 1, "samples": 1234})
    bus.r.set(f"diarize:{sid}", b"speakers")


def session_keys(sid: str) -> list[str]:
    """Every key the services keep for a session, written out here (not from SESSION_KEYS)."""
    bus_keys = [outbox_key(sid), f"session:{sid}:seq", f"session:{sid}:settings"]
    return [*bus_keys, f"session:{sid}:gateway", f"ingest:{sid}", f"diarize:{sid}"]


def recorder(url: str, bus: RedisBus | None = None) -> Recorder:
    return Recorder(connect_pg(url, autocommit=True), PostgresEventStore(url), bus=bus)


def test_deleting_a_session_removes_it_everywhere_and_nothing_else(pg_url: str, bus: RedisBus) -> None:
    pcm = speech("fleurs-es-008")
    rec = recorder(pg_url, bus)
    for e in [*session_facts("A", pcm), *session_facts("B", pcm)]:
        rec.handle(e)
    before_a = rows_of(pg_url, "A")
    assert all(before_a[t] for t in (*SESSION_TABLES, "utterance_audio", "voiceprints"))  # A is in every table
    before_b = rows_of(pg_url, "B")
    for sid in ("A", "B"):
        redis_state(bus, sid)
    assert all(bus.r.exists(k) for k in session_keys("A"))

    deletion = replace(SessionDeleted.of("A"), seq=1)
    rec.handle(deletion)

    after_a = rows_of(pg_url, "A")
    for table in (*SESSION_TABLES, "utterance_audio"):
        assert after_a[table] == [], table
    # the remembered voice stays, in the log and listed, until `habla voices forget`
    assert [r[3] for r in after_a["events"]] == ["voiceprint.saved"]
    assert after_a["voiceprints"] == before_a["voiceprints"]
    ((sid, deleted_at, event_id),) = after_a["deleted_sessions"]
    assert (sid, str(event_id)) == ("A", deletion.event_id)
    assert deleted_at == datetime.fromtimestamp(deletion.occurred_at, tz=UTC)
    assert [s.event for s in PostgresEventStore(pg_url).session_events(ADMIN_SESSION)] == [deletion]
    assert rows_of(pg_url, "B") == before_b  # untouched
    assert not any(bus.r.exists(k) for k in session_keys("A"))
    assert all(bus.r.exists(k) for k in session_keys("B"))

    # a late fact of the deleted session is not recorded, audio or not
    late = [
        replace(session_facts("A", pcm)[1], event_id=derived_id("late", 1), seq=40),
        TranscriptFinal(session_id="A", seq=41, utterance_id="late", index=3, text="¿hay alguien?"),
        SessionEnded(session_id="A", seq=42, event_id=derived_id("late", 2)),
    ]
    for e in late:
        rec.handle(e)
    assert rec.refused == 3
    assert rows_of(pg_url, "A") == after_a

    rec.handle(deletion)  # redelivered: nothing more happens
    everything = rows_of(pg_url)
    assert rebuild(pg_url) == len(everything["events"])
    assert rows_of(pg_url) == everything  # the tombstone comes back from the session.deleted fact
    # and the remembered voice can still be forgotten
    forget = VoiceprintDeleted.of_save("A", "vp-A", "")
    rec.handle(replace(forget, seq=43))
    with connect_pg(pg_url) as conn:
        assert conn.execute("SELECT embedding FROM voiceprints WHERE voiceprint_id = 'vp-A'").fetchone() == (None,)


def test_admin_and_vocab_sessions_are_never_deleted(pg_url: str) -> None:
    rec = recorder(pg_url)
    rec.handle(TermSaved(session_id=VOCAB_SESSION, seq=1, term_id="t", text="pepino"))
    for n, sid in enumerate((ADMIN_SESSION, VOCAB_SESSION, ""), start=1):
        rec.handle(replace(SessionDeleted.of(sid), seq=n))
    with connect_pg(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM deleted_sessions").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (4,)
    rec.handle(SessionStarted(session_id=ADMIN_SESSION, seq=9))  # admin facts are still recorded
    assert rec.refused == 0


def _waiting_on_advisory_lock(url: str) -> bool:
    with connect_pg(url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").fetchone()
    return bool(row and row[0])


def _wait(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_a_fact_racing_a_deletion_never_outlives_it(pg_url: str) -> None:
    """Two recorder workers: one records a fact of session A while the other deletes A."""
    rec = recorder(pg_url)
    rec.handle(SessionStarted(session_id="A", seq=1))

    # 1. a fact is being appended (it holds the session's lock shared) when the deletion comes:
    # the deletion waits for it, then deletes it too
    in_flight = connect_pg(pg_url)
    in_flight.execute(f"SELECT pg_advisory_xact_lock_shared({DELETE_LOCK}, hashtext('A'))")
    PostgresEventStore(pg_url).append(in_flight, TranscriptFinal(session_id="A", seq=2, utterance_id="u", text="hola"))
    deleting = threading.Thread(target=recorder(pg_url).handle, args=(replace(SessionDeleted.of("A"), seq=1),))
    deleting.start()
    _wait(lambda: _waiting_on_advisory_lock(pg_url))
    in_flight.commit()
    deleting.join(10)
    with connect_pg(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM events WHERE session_id = 'A'").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM deleted_sessions").fetchone() == (1,)
    in_flight.close()

    # 2. a deletion is committing (it holds the lock exclusively) when a fact comes: the fact
    # waits, then sees the tombstone and is not recorded
    rec.handle(SessionStarted(session_id="B", seq=1))
    deleting_b = connect_pg(pg_url)
    deleting_b.execute(f"SELECT pg_advisory_xact_lock({DELETE_LOCK}, hashtext('B'))")
    other = recorder(pg_url)
    late = threading.Thread(target=other.handle, args=(TranscriptFinal(session_id="B", seq=2, utterance_id="v"),))
    late.start()
    _wait(lambda: _waiting_on_advisory_lock(pg_url))
    deleting_b.execute("INSERT INTO deleted_sessions VALUES ('B', now(), gen_random_uuid())")
    deleting_b.commit()
    late.join(10)
    assert other.refused == 1 and other.appended == 0
    with connect_pg(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM events WHERE session_id = 'B'").fetchone() == (1,)
    deleting_b.close()
