"""The Postgres event log, the recorder and `habla rebuild`, against a real Postgres."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import psycopg
import pytest

from habla_common.eventlog import PostgresEventStore, connect_pg
from habla_contracts import (
    SessionEnded,
    SessionSettingsChanged,
    SessionStarted,
    TranscriptFinal,
    UtteranceSegmented,
)
from habla_recorder.handlers import Recorder
from habla_recorder.projections import rebuild


def facts(session: str = "s1") -> list:  # type: ignore[type-arg]
    pcm = (np.sin(np.arange(1600) / 5) * 1000).astype("<i2").tobytes()
    return [
        SessionStarted(session_id=session, seq=1, direction="es-en", title="clase"),
        UtteranceSegmented(session_id=session, seq=3, utterance_id="u0", index=0, start_ms=0, end_ms=900, pcm=pcm),
        SessionSettingsChanged(session_id=session, seq=4, mode="classroom"),
        TranscriptFinal(
            session_id=session,
            seq=5,
            utterance_id="u0",
            index=0,
            start_ms=0,
            end_ms=900,
            text="hola a todos",
            language="es",
        ),
        UtteranceSegmented(session_id=session, seq=6, utterance_id="u1", index=1, start_ms=1500, end_ms=2500, pcm=pcm),
        TranscriptFinal(
            session_id=session,
            seq=7,
            utterance_id="u1",
            index=1,
            start_ms=1500,
            end_ms=2500,
            text="",
            dropped="no_speech",
        ),
        SessionEnded(session_id=session, seq=8),
    ]


def logged(events: list) -> list:  # type: ignore[type-arg]
    """As the log holds them: speech.segmented without its PCM (kept in utterance_audio)."""
    return [replace(e, pcm=b"") if isinstance(e, UtteranceSegmented) else e for e in events]


def snapshot(url: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with connect_pg(url) as conn:
        sessions = conn.execute("SELECT * FROM sessions ORDER BY session_id").fetchall()
        utterances = conn.execute("SELECT * FROM utterances ORDER BY utterance_id").fetchall()
    return sessions, utterances


def record(url: str, events: list) -> Recorder:  # type: ignore[type-arg]
    rec = Recorder(connect_pg(url, autocommit=True), PostgresEventStore(url))
    for e in events:
        rec.handle(e)
    return rec


def test_recorder_appends_each_fact_once(pg_url: str) -> None:
    events = facts()
    rec = record(pg_url, events + events[2:5])  # redelivered facts
    assert rec.appended == len(events)
    stored = PostgresEventStore(pg_url).session_events("s1")
    assert [s.event for s in stored] == logged(events)
    sessions, utterances = snapshot(pg_url)
    assert sessions[0][0] == "s1" and sessions[0][5] == "classroom"
    assert [(u[2], u[6], u[8]) for u in utterances] == [(0, "hola a todos", ""), (1, "", "no_speech")]


def test_projections_do_not_depend_on_arrival_order(pg_url: str, pg_server_url: str) -> None:
    events = facts()
    record(pg_url, list(reversed(events)))
    reversed_state = snapshot(pg_url)
    rebuild(pg_url)
    assert snapshot(pg_url) == reversed_state


def test_rebuild_reproduces_identical_projections(pg_url: str) -> None:
    record(pg_url, facts("s1") + facts("s2"))
    before = snapshot(pg_url)
    with connect_pg(pg_url) as conn:
        conn.execute("UPDATE utterances SET text = 'corrupted'")
        conn.commit()
    assert snapshot(pg_url) != before
    n = rebuild(pg_url)
    assert n == 14
    assert snapshot(pg_url) == before


def test_the_log_is_append_only(pg_url: str) -> None:
    record(pg_url, facts())
    with connect_pg(pg_url) as conn, pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        conn.execute("UPDATE events SET kind = 'x'")
    with connect_pg(pg_url) as conn, pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        conn.execute("DELETE FROM events")


def test_works_against_the_embedded_server_too(tmp_path: object) -> None:
    """The event store contract on the embedded Postgres that `habla up` starts without DATABASE_URL."""
    from pathlib import Path

    from habla.embedded import embedded_postgres
    from habla_common.migrate import migrate

    with embedded_postgres(Path(str(tmp_path)) / "pg") as url:
        migrate(url)
        events = facts("e1")
        record(url, events)
        assert [s.event for s in PostgresEventStore(url).session_events("e1")] == logged(events)
        before = snapshot(url)
        rebuild(url)
        assert snapshot(url) == before
