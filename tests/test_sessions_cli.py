"""`habla sessions delete` as a user runs it: the typed confirmation with a recorder running (as
under `habla up`), and `--yes` when none runs (the command starts one); real Redis, Postgres,
recorder process and FLEURS speech."""

from __future__ import annotations

import threading
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from habla.cli import main as cli
from habla_common.bus import RedisBus
from habla_common.consumer import Consumer
from habla_common.eventlog import PostgresEventStore, connect_pg
from habla_contracts import SessionStarted, TranscriptFinal, UtteranceSegmented, derived_id
from habla_contracts.streams import fact_kinds
from habla_recorder.handlers import Recorder

pytestmark = pytest.mark.slow  # starts a recorder process

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "eval" / "speech"


def speech(name: str) -> bytes:
    if not SPEECH.is_dir():
        pytest.skip(f"no evaluation audio at {SPEECH}")
    with wave.open(str(SPEECH / f"{name}.wav")) as w:
        return w.readframes(w.getnframes())


def record(url: str, sid: str, pcm: bytes) -> None:
    rec = Recorder(connect_pg(url, autocommit=True), PostgresEventStore(url))
    uid = derived_id(sid, "utt", 0)
    for e in (
        SessionStarted(session_id=sid, seq=1, title=f"clase {sid}"),
        UtteranceSegmented(session_id=sid, seq=2, utterance_id=uid, index=0, end_ms=len(pcm) // 32, pcm=pcm),
        TranscriptFinal(session_id=sid, seq=3, utterance_id=uid, index=0, end_ms=len(pcm) // 32, text="hola"),
    ):
        rec.handle(e)


def counts(url: str, sid: str) -> tuple[int, ...]:
    with connect_pg(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM events WHERE session_id = %(s)s), "
            "(SELECT count(*) FROM sessions WHERE session_id = %(s)s), "
            "(SELECT count(*) FROM utterances WHERE session_id = %(s)s), "
            "(SELECT count(*) FROM utterance_audio WHERE session_id = %(s)s), "
            "(SELECT count(*) FROM deleted_sessions WHERE session_id = %(s)s)",
            {"s": sid},
        ).fetchone()
    assert row is not None
    return tuple(int(n) for n in row)


@pytest.fixture
def habla_up(bus: RedisBus, pg_url: str) -> Iterator[None]:
    """A recorder consuming the bus, as `habla up` runs one."""
    recorder = Recorder(connect_pg(pg_url, autocommit=True), PostgresEventStore(pg_url), bus=bus)
    consumer = Consumer(bus, "recorder", fact_kinds(), recorder.handle, name="up-recorder", block_ms=50)
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(10)


def test_delete_after_typing_the_session_id(tmp_path: Path, redis_url: str, pg_url: str, habla_up: None) -> None:
    env = {"REDIS_URL": redis_url, "DATABASE_URL": pg_url, "HABLA_PARTITIONS": "2"}
    data = ["--data-dir", str(tmp_path)]
    pcm = speech("fleurs-es-004")
    for sid in ("keep", "gone"):
        record(pg_url, sid, pcm)
    runner = CliRunner()

    unknown = runner.invoke(cli, ["sessions", "delete", "nope", *data], env=env)
    assert unknown.exit_code == 1 and "no session 'nope'" in unknown.output

    mistyped = runner.invoke(cli, ["sessions", "delete", "gone", *data], input="keep\n", env=env)
    assert mistyped.exit_code == 1, mistyped.output
    assert "Type the session id to confirm" in mistyped.output and "not deleted" in mistyped.output
    assert "session gone: 'clase gone'" in mistyped.output  # what is about to go, before asking
    assert counts(pg_url, "gone") == (3, 1, 1, 1, 0)

    typed = runner.invoke(cli, ["sessions", "delete", "gone", *data], input="gone\n", env=env)
    assert typed.exit_code == 0, typed.output
    assert "deleted session gone" in typed.output and "not running" not in typed.output
    assert counts(pg_url, "gone") == (0, 0, 0, 0, 1)
    assert counts(pg_url, "keep") == (3, 1, 1, 1, 0)

    again = runner.invoke(cli, ["sessions", "delete", "gone", "--yes", *data], env=env)
    assert again.exit_code == 1 and "already deleted" in again.output


def test_delete_with_yes_starts_the_recorder_when_none_runs(tmp_path: Path, redis_url: str, pg_url: str) -> None:
    env = {"REDIS_URL": redis_url, "DATABASE_URL": pg_url, "HABLA_PARTITIONS": "2"}
    record(pg_url, "gone", speech("fleurs-es-005"))
    result = CliRunner().invoke(cli, ["sessions", "delete", "gone", "--yes", "--data-dir", str(tmp_path)], env=env)
    assert result.exit_code == 0, result.output
    assert "Type the session id" not in result.output
    assert "starting it for this command" in result.output and "deleted session gone" in result.output
    assert counts(pg_url, "gone") == (0, 0, 0, 0, 1)
