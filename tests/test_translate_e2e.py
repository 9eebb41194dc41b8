"""End to end with translation: the eval speech through every real process, then a
re-translation of the stored session as an rq job (real Redis, Postgres, models)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from habla.evaluation import load_manifest
from habla.replay import replay_pcm
from habla.supervisor import running
from habla_common.eventlog import connect_pg
from habla_ingest.adapters import decode_file

pytestmark = pytest.mark.slow

HABLA = [sys.executable, "-m", "habla"]
GAP = np.zeros(16000, dtype=np.int16)  # a second of silence between clips: one utterance each


def log_rows(url: str, session_id: str, kind: str) -> list[tuple[str, bytes]]:
    with connect_pg(url) as conn:
        rows = conn.execute(
            "SELECT event_id::text, payload FROM events WHERE session_id = %s AND kind = %s ORDER BY position",
            (session_id, kind),
        ).fetchall()
    return [(r[0], bytes(r[1])) for r in rows]


def wait_for(cond: object, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.3)
    raise AssertionError("timed out")


def test_eval_speech_is_translated_and_retranslated(tmp_path: Path, redis_url: str, pg_url: str) -> None:
    env = {"REDIS_URL": redis_url, "DATABASE_URL": pg_url, "HABLA_LEASE_MS": "3000"}
    audio = np.concatenate([part for clip in load_manifest() for part in (decode_file(clip.path), GAP)])
    with running(data_dir=tmp_path / "data", extra_env=env) as rt:
        # 1. the whole eval speech as one live session: a translation final for every utterance
        t0 = time.monotonic()
        res = asyncio.run(replay_pcm(rt.ws_url, rt.token, audio, title="eval speech", translations=True))
        elapsed = time.monotonic() - t0
        finals = res.finals()
        translations = {e.data["index"]: e.data for e in res.of_kind("translation.final")}
        print(f"\n{len(finals)} utterances of {len(audio) / 16000:.0f} s audio translated in {elapsed:.0f} s")
        assert len(finals) >= len(load_manifest())
        assert set(translations) == {f["index"] for f in finals}
        assert all(t["status"] != "untranslated" for t in translations.values())
        spoken = [t for t in translations.values() if t["source_text"]]
        assert all(t["translation"] and t["target_language"] == "en" for t in spoken)
        session = res.session_id
        wait_for(lambda: len(log_rows(pg_url, session, "translation.final")) == len(finals))
        before = log_rows(pg_url, session, "translation.final")

        # 2. the terminal replay view shows the translations (against the running runtime)
        sample = load_manifest()[0].path
        view = subprocess.run(
            [*HABLA, "replay", str(sample), "--url", rt.ws_url, "--token", rt.token, "--out", str(tmp_path)],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert view.returncode == 0, view.stderr[-3000:]
        md = (tmp_path / f"{sample.stem}.md").read_text()
        english = [line[2:] for line in md.splitlines() if line.startswith("> ")]
        assert english and all(e in " ".join(view.stdout.split()) for e in english[:1])

        # 3. re-translation from the log as an rq job (the runtime's worker runs it)
        out = subprocess.run(
            [*HABLA, "retranslate", session, "--data-dir", str(tmp_path / "data")],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        summary = json.loads(out.stdout.strip().splitlines()[-1])
        assert summary["revision"] == 1 and summary["count"] == len(finals)
        after = log_rows(pg_url, session, "translation.final")
        assert after[: len(before)] == before  # the old events are untouched
        assert len(after) == 2 * len(finals)
        with connect_pg(pg_url) as conn:
            revisions = conn.execute(
                "SELECT revision, count(*) FROM translations WHERE session_id = %s GROUP BY revision ORDER BY revision",
                (session,),
            ).fetchall()
            completed = conn.execute(
                "SELECT count(*) FROM events WHERE session_id = %s AND kind = 'translation.completed'", (session,)
            ).fetchone()
        assert revisions == [(0, len(finals)), (1, len(finals))]
        assert completed is not None and completed[0] == 1

        # 4. the transcript view shows the newest revision
        import urllib.request

        req = urllib.request.Request(
            f"{rt.url}/api/sessions/{session}/transcript", headers={"Authorization": f"Bearer {rt.token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            doc = json.loads(r.read())
        assert {u["translation"]["revision"] for u in doc["utterances"]} == {1}
