"""Speaker read models (utterance turns, speakers, voiceprints) against a real Postgres:
each fact, any arrival order, and `habla rebuild`."""

from __future__ import annotations

import random
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg import sql

from habla_common.eventlog import PostgresEventStore, connect_pg
from habla_common.migrate import migrate, migrations_dir
from habla_contracts import (
    Event,
    SessionStarted,
    SpeakerAssigned,
    SpeakerJoined,
    SpeakerRenamed,
    SpeakerRoleSuggested,
    TranscriptFinal,
    UtteranceSegmented,
    VoiceprintDeleted,
    VoiceprintSaved,
    derived_id,
)
from habla_recorder.handlers import Recorder
from habla_recorder.projections import PROJECTION_TABLES, apply, rebuild

T0 = 1_760_000_000.0
S = "s1"
U0, U1 = "u0", "u1"
T1 = derived_id(U0, "turn", 1)  # the split utterance's second turn
EMB = np.arange(4, dtype="<f4").tobytes()


def turn(uid: str, part: int, start: int, end: int, speaker: str) -> dict[str, Any]:
    return {"utterance_id": uid, "part": part, "start_ms": start, "end_ms": end, "speaker": speaker, "similarity": 0.9}


def final(
    seq: int, uid: str, index: int, part: int, parts: int, start: int, end: int, speaker: str, text: str
) -> Event:
    return TranscriptFinal(
        session_id=S,
        seq=seq,
        utterance_id=uid,
        index=index,
        part=part,
        parts=parts,
        parent_id=U0 if uid == T1 else "",
        start_ms=start,
        end_ms=end,
        speaker=speaker,
        text=text,
        language="es",
    )


def facts() -> list[Event]:
    """A session whose first utterance (0-3000 ms) is split between S1 and S2."""
    return [
        SessionStarted(session_id=S, seq=1, occurred_at=T0, mode="classroom"),
        UtteranceSegmented(session_id=S, seq=2, utterance_id=U0, index=0, start_ms=0, end_ms=3000),
        SpeakerJoined(session_id=S, seq=3, speaker="S1", number=1, label="Speaker 1", color="#0072B2"),
        SpeakerJoined(
            session_id=S,
            seq=4,
            speaker="S2",
            number=2,
            label="Speaker 2",
            color="#D55E00",
            voiceprint_id="vp-old",
            similarity=0.7,
        ),
        SpeakerAssigned(
            session_id=S,
            seq=5,
            utterance_id=U0,
            index=0,
            speaker="S1",
            turns=(turn(U0, 0, 0, 1800, "S1"), turn(T1, 1, 1800, 3000, "S2")),
        ),
        final(6, U0, 0, 0, 2, 0, 1800, "S1", "Hola a todos."),
        final(7, T1, 0, 1, 2, 1800, 3000, "S2", "Buenos días."),
        UtteranceSegmented(session_id=S, seq=8, utterance_id=U1, index=1, start_ms=3500, end_ms=5000),
        SpeakerAssigned(
            session_id=S, seq=9, utterance_id=U1, index=1, speaker="S1", turns=(turn(U1, 0, 3500, 5000, "S1"),)
        ),
        final(10, U1, 1, 0, 1, 3500, 5000, "S1", "¿Qué tal?"),
        SpeakerRenamed(session_id=S, seq=11, speaker="S2", name="Profesora García", remember=True),
        SpeakerRoleSuggested(
            session_id=S, seq=12, speaker="S2", role="instructor", confidence=0.8, evidence={"talk_share": 0.7}
        ),
        VoiceprintSaved(
            session_id=S,
            seq=13,
            occurred_at=T0 + 10,
            voiceprint_id="vp-garcia",
            name="Profesora García",
            backend="test",
            dim=4,
            embedding=EMB,
            speech_ms=9000,
            speaker="S2",
        ),
        SpeakerRenamed(session_id=S, seq=14, speaker="S2", name="Ana García", source="user"),
        SpeakerRoleSuggested(session_id=S, seq=15, speaker="S2", role="student", confidence=0.6),
        SpeakerRenamed(session_id=S, seq=16, speaker="S1", name="Yo", is_user=True),
        VoiceprintDeleted(session_id=S, seq=17, occurred_at=T0 + 20, voiceprint_id="vp-garcia"),
        VoiceprintSaved(
            session_id="enrolment",
            seq=1,
            occurred_at=T0 + 5,
            voiceprint_id="vp-me",
            name="You",
            is_user=True,
            backend="test",
            dim=4,
            embedding=EMB,
            speech_ms=20000,
        ),
    ]


def snapshot(url: str) -> dict[str, list[tuple[object, ...]]]:
    order = {
        "speakers": "session_id, speaker",
        "voiceprints": "voiceprint_id",
        "translations": "utterance_id, revision",
    }
    with connect_pg(url) as conn:
        return {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY {order.get(t, '1')}").fetchall()  # type: ignore[arg-type]
            for t in ("sessions", "utterances", "speakers", "voiceprints")
        }


def project(url: str, events: list[Event]) -> dict[str, list[tuple[object, ...]]]:
    """Empty read models, then ``events`` applied in the order given."""
    with connect_pg(url) as conn:
        conn.execute("TRUNCATE " + ", ".join(PROJECTION_TABLES))
        for e in events:
            apply(conn, e)
        conn.commit()
    return snapshot(url)


def rows(url: str, query: str, *params: object) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


def test_turns_get_their_own_rows_times_and_speakers(pg_url: str) -> None:
    project(pg_url, facts())
    utts = rows(
        pg_url,
        "SELECT utterance_id, idx, part, parts, parent_id, speaker, start_ms, end_ms, text FROM utterances "
        "ORDER BY idx, part",
    )
    assert utts == [
        dict(
            utterance_id=U0,
            idx=0,
            part=0,
            parts=2,
            parent_id=None,
            speaker="S1",
            start_ms=0,
            end_ms=1800,
            text="Hola a todos.",
        ),
        dict(
            utterance_id=T1,
            idx=0,
            part=1,
            parts=2,
            parent_id=U0,
            speaker="S2",
            start_ms=1800,
            end_ms=3000,
            text="Buenos días.",
        ),
        dict(
            utterance_id=U1,
            idx=1,
            part=0,
            parts=1,
            parent_id=None,
            speaker="S1",
            start_ms=3500,
            end_ms=5000,
            text="¿Qué tal?",
        ),
    ]


def test_speakers_take_the_newest_name_role_and_user_flag(pg_url: str) -> None:
    project(pg_url, facts())
    sp = rows(pg_url, "SELECT * FROM speakers ORDER BY speaker")
    assert [(s["speaker"], s["number"], s["label"], s["color"]) for s in sp] == [
        ("S1", 1, "Speaker 1", "#0072B2"),
        ("S2", 2, "Speaker 2", "#D55E00"),
    ]
    s1, s2 = sp
    assert s1["name"] == "Yo" and s1["is_user"] is True and s1["role"] is None
    assert s2["name"] == "Ana García" and s2["name_source"] == "user" and s2["remember"] is False
    assert s2["name_seq"] == 14 and s2["is_user"] is False and s2["voiceprint_id"] == "vp-old"
    assert s2["role"] == "student" and s2["role_confidence"] == 0.6 and s2["role_evidence"] == {}
    assert s2["similarity"] == pytest.approx(0.7)


def test_voiceprints_saved_and_deleted(pg_url: str) -> None:
    project(pg_url, facts())
    vps = {v["voiceprint_id"]: v for v in rows(pg_url, "SELECT * FROM voiceprints")}
    me, garcia = vps["vp-me"], vps["vp-garcia"]
    assert me["name"] == "You" and me["is_user"] is True and me["session_id"] == "enrolment"
    assert bytes(me["embedding"]) == EMB and me["dim"] == 4 and me["deleted_at"] is None
    assert garcia["deleted_at"] is not None and garcia["embedding"] is None  # forgotten
    assert garcia["name"] == "Profesora García" and garcia["session_id"] == S and garcia["speaker"] == "S2"


def test_a_voiceprint_saved_again_after_its_deletion_is_live_in_any_order(pg_url: str) -> None:
    resave = VoiceprintSaved(
        session_id=S,
        seq=30,
        occurred_at=T0 + 30,
        voiceprint_id="vp-garcia",
        name="Ana",
        backend="test",
        dim=4,
        embedding=EMB,
    )
    events = [*facts(), resave]
    expected = project(pg_url, events)
    [row] = [r for r in rows(pg_url, "SELECT * FROM voiceprints") if r["voiceprint_id"] == "vp-garcia"]
    assert row["name"] == "Ana" and bytes(row["embedding"]) == EMB and row["saved_at"] > row["deleted_at"]
    assert project(pg_url, list(reversed(events))) == expected


def test_a_split_first_turn_keeps_its_own_end_whatever_comes_first(pg_url: str) -> None:
    seg = UtteranceSegmented(session_id=S, seq=2, utterance_id=U0, index=0, start_ms=0, end_ms=3000)
    assigned = facts()[4]
    first = final(6, U0, 0, 0, 2, 0, 1800, "S1", "Hola a todos.")
    for order in ([seg, first], [first, seg], [seg, assigned], [assigned, seg], [first, seg, assigned]):
        project(pg_url, order)
        [row] = rows(pg_url, "SELECT start_ms, end_ms, speaker FROM utterances WHERE utterance_id = %s", U0)
        assert row == {"start_ms": 0, "end_ms": 1800, "speaker": "S1"}, order
    project(pg_url, [seg])  # a segment alone shows the whole utterance
    assert rows(pg_url, "SELECT end_ms, speaker FROM utterances") == [{"end_ms": 3000, "speaker": None}]


def test_a_later_turn_announced_before_its_final(pg_url: str) -> None:
    project(pg_url, facts()[:5])  # up to speaker.assigned: T1's row exists, without text yet
    [row] = rows(
        pg_url,
        "SELECT idx, part, parts, parent_id, speaker, start_ms, end_ms, text FROM utterances WHERE utterance_id = %s",
        T1,
    )
    assert row == dict(idx=0, part=1, parts=2, parent_id=U0, speaker="S2", start_ms=1800, end_ms=3000, text=None)


def test_the_final_wins_over_speaker_assigned_when_they_disagree(pg_url: str) -> None:
    assigned = facts()[4]
    first = final(6, U0, 0, 0, 2, 0, 1750, "S3", "Hola a todos.")
    unknown = final(6, U0, 0, 0, 2, 0, 1750, "", "Hola a todos.")  # no speaker in the final: the assignment's
    for events, speaker in (([assigned, first], "S3"), ([assigned, unknown], "S1")):
        a = project(pg_url, events)
        assert project(pg_url, list(reversed(events))) == a
        [row] = rows(pg_url, "SELECT speaker, end_ms FROM utterances WHERE utterance_id = %s", U0)
        assert row == {"speaker": speaker, "end_ms": 1750}


def test_projections_do_not_depend_on_arrival_order(pg_url: str) -> None:
    events = facts()
    expected = project(pg_url, events)
    assert project(pg_url, list(reversed(events))) == expected
    rng = random.Random(7)
    for _ in range(25):
        shuffled = events[:]
        rng.shuffle(shuffled)
        assert project(pg_url, shuffled) == expected


def test_recorder_and_rebuild_give_identical_rows(pg_url: str) -> None:
    events = facts()
    expected = project(pg_url, events)
    with connect_pg(pg_url) as conn:
        conn.execute("TRUNCATE " + ", ".join(PROJECTION_TABLES))
        conn.commit()
    shuffled = events[:]
    random.Random(3).shuffle(shuffled)
    rec = Recorder(connect_pg(pg_url, autocommit=True), PostgresEventStore(pg_url))
    for e in shuffled + shuffled[:5]:  # redelivered facts too
        rec.handle(e)
    assert rec.appended == len(events)
    assert snapshot(pg_url) == expected
    with connect_pg(pg_url) as conn:
        conn.execute("UPDATE speakers SET name = 'corrupted'")
        conn.execute("DELETE FROM voiceprints")
        conn.commit()
    assert rebuild(pg_url) == len(events)
    assert snapshot(pg_url) == expected


def test_migration_keeps_projected_utterances(pg_server_url: str, tmp_path: Path) -> None:
    """A database at 0002 with rows in it takes 0003: rows keep their times, get part 0, and
    the (session_id, idx, part) key admits a split utterance's later turns."""
    name = f"habla_t_{uuid.uuid4().hex[:10]}"
    admin = psycopg.conninfo.make_conninfo(pg_server_url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(pg_server_url, dbname=name)
    try:
        old = tmp_path / "migrations"
        old.mkdir()
        for f in sorted(migrations_dir().glob("*.sql"))[:2]:
            shutil.copy(f, old / f.name)
        assert migrate(url, old) == ["0001_event_log", "0002_translations"]
        with connect_pg(url) as conn:  # what the old projections wrote
            conn.execute(
                "INSERT INTO utterances (utterance_id, session_id, idx, start_ms, end_ms, text) VALUES "
                "('a', 's', 0, 0, 900, 'hola'), ('b', 's', 1, 1000, 2000, NULL)"
            )
            conn.commit()
        assert migrate(url)[0] == "0003_speakers"  # and any later migrations
        got = rows(url, "SELECT utterance_id, part, parts, speaker, times_from, end_ms FROM utterances ORDER BY idx")
        assert got == [
            dict(utterance_id="a", part=0, parts=1, speaker=None, times_from=3, end_ms=900),
            dict(utterance_id="b", part=0, parts=1, speaker=None, times_from=1, end_ms=2000),
        ]
        with connect_pg(url) as conn:
            later = TranscriptFinal(session_id="s", seq=5, utterance_id="a2", index=0, part=1, parts=2, text="y tú")
            apply(conn, later)  # same idx, part 1
            conn.commit()
            with pytest.raises(psycopg.errors.UniqueViolation):
                conn.execute("INSERT INTO utterances (utterance_id, session_id, idx, part) VALUES ('c', 's', 0, 1)")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
