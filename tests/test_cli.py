"""The `habla` command as a user runs it: replay, rebuild, up (real processes, servers and models)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from habla.cli import main as cli
from habla.evaluation import load_manifest, normalise
from habla.supervisor import free_port
from habla_common.eventlog import connect_pg

ROOT = Path(__file__).resolve().parents[1]
HABLA = [sys.executable, "-m", "habla"]


def env_with(redis_url: str, pg_url: str, data_dir: Path) -> dict[str, str]:
    return {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": pg_url, "HABLA_DATA_DIR": str(data_dir)}


@pytest.mark.slow
def test_replay_writes_transcripts_and_json(tmp_path: Path, redis_url: str, pg_url: str) -> None:
    sample = ROOT / "samples" / "fleurs-es-000.wav"
    out = subprocess.run(
        [*HABLA, "replay", str(sample), "--out", str(tmp_path), "--json", str(tmp_path / "u.json")],
        env=env_with(redis_url, pg_url, tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:] + out.stdout[-3000:]
    doc = json.loads((tmp_path / "u.json").read_text())
    (utt,) = doc["utterances"]
    assert set(utt) >= {"start", "end", "speaker", "source_text", "translation", "idioms"}
    assert 0.5 < utt["start"] < utt["end"] <= 13.0
    ref = next(c for c in load_manifest() if c.path.name == sample.name).reference
    assert normalise(utt["source_text"]).split()[:3] == ref.split()[:3]
    md, srt = (tmp_path / "fleurs-es-000.md").read_text(), (tmp_path / "fleurs-es-000.srt").read_text()
    assert "viajeros" in md and "viajeros" in srt and "-->" in srt
    assert utt["translation"] and utt["translation_status"] in ("ok", "fallback")
    assert f"> {utt['translation']}" in md  # the English under the Spanish
    assert " ".join(utt["translation"].split()) in " ".join(out.stdout.split())  # and in the terminal view


def test_replay_of_a_file_that_is_not_audio_says_so(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.mp3"
    bogus.write_bytes(os.urandom(4096))
    result = CliRunner().invoke(cli, ["replay", str(bogus)])
    assert result.exit_code != 0
    assert "cannot read" in result.output and "notes.mp3" in result.output


def test_rebuild_command_reproduces_the_read_models(pg_url: str, tmp_path: Path) -> None:
    from habla_common.eventlog import PostgresEventStore
    from habla_contracts import SessionStarted, TranscriptFinal, UtteranceSegmented
    from habla_recorder.handlers import Recorder

    rec = Recorder(connect_pg(pg_url, autocommit=True), PostgresEventStore(pg_url))
    for e in (
        SessionStarted(session_id="c1", seq=1),
        UtteranceSegmented(session_id="c1", seq=2, utterance_id="u", index=0, end_ms=900),
        TranscriptFinal(session_id="c1", seq=3, utterance_id="u", index=0, end_ms=900, text="buenos días"),
    ):
        rec.handle(e)

    def state() -> list[tuple[object, ...]]:
        with connect_pg(pg_url) as conn:
            return conn.execute("SELECT * FROM sessions NATURAL FULL JOIN utterances ORDER BY 1").fetchall()

    before = state()
    result = CliRunner().invoke(cli, ["rebuild", "--data-dir", str(tmp_path)], env={"DATABASE_URL": pg_url})
    assert result.exit_code == 0, result.output
    assert "from 3 events" in result.output
    assert state() == before


@pytest.mark.slow
def test_up_prints_url_and_token_and_stops_everything_on_ctrl_c(tmp_path: Path, redis_url: str, pg_url: str) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [*HABLA, "up", "--host", "127.0.0.1", "--port", str(port)],
        env={**env_with(redis_url, pg_url, tmp_path / "data"), "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 180
        assert proc.stdout is not None
        while not any(line.startswith("token: ") for line in lines) and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
        token = next(line.split(": ", 1)[1].strip() for line in lines if line.startswith("token: "))
        assert any(f"http://127.0.0.1:{port}" in line for line in lines)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 4  # recorder, ingest, asr, gateway
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/sessions", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        assert proc.returncode == 0
        time.sleep(0.5)
        assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_services_stop_when_the_supervisor_is_killed_outright(tmp_path: Path, redis_url: str, pg_url: str) -> None:
    """SIGKILL gives `habla up` no chance to stop its children: they notice and stop themselves."""
    port = free_port()
    proc = subprocess.Popen(
        [*HABLA, "up", "--host", "127.0.0.1", "--port", str(port)],
        env=env_with(redis_url, pg_url, tmp_path / "data"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 180
        said: list[str] = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            said.append(line)
            if line.startswith("token: ") or (not line and proc.poll() is not None):
                break
        assert any(s.startswith("token: ") for s in said), f"habla up did not come up: {''.join(said)[-3000:]}"
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 4
        proc.kill()
        proc.wait()
        _gone, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, [c.cmdline() for c in alive]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
