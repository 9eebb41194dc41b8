"""End to end: who is speaking, through the one-machine runtime (real processes, Redis,
Postgres, Silero, the speaker encoder and Whisper) on conversations built from real FLEURS
speech (habla.diarize_corpus says which clip is which turn)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from typing import Any

import pytest

from habla.diarize_corpus import Conversation, change_precision_recall, count_speakers, three_speakers, two_speakers
from habla.evaluation import default_speech_dir
from habla.replay import Received, ReplayResult, replay_pcm
from habla.supervisor import Runtime

pytestmark = pytest.mark.slow


@pytest.fixture
def runtime(captioning_runtime: Runtime) -> Runtime:
    return captioning_runtime


def hypothesis(res: ReplayResult) -> list[tuple[int, int, str]]:
    """The speaker turns the session's speaker.assigned events give (voice only: the last
    turn of an utterance ends where its voice did)."""
    ends = {e.data["utterance_id"]: e.data.get("speech_end_ms") or e.data["end_ms"] for e in res.of_kind("asr.final")}
    out = []
    for e in sorted(res.of_kind("speaker.assigned"), key=lambda e: e.data["index"]):
        for t in e.data["turns"]:
            end = min(t["end_ms"], ends.get(t["utterance_id"], t["end_ms"]))
            out.append((t["start_ms"], end, t["speaker"]))
    return out


def check(conv: Conversation, res: ReplayResult) -> None:
    hyp = hypothesis(res)
    changes = change_precision_recall(conv.reference, hyp, tolerance_ms=500)
    summary = f"reference {conv.turns}\nfound {hyp}\nchanges {changes}"
    assert count_speakers(hyp) == count_speakers(conv.turns), summary
    assert changes["recall"] == 1.0 and changes["precision"] == 1.0, summary  # every change within 0.5 s
    joined = [e.data["speaker"] for e in res.of_kind("speaker.joined")]
    assert joined == [f"S{i + 1}" for i in range(count_speakers(conv.turns))]
    finals = res.finals()
    assert all(f["speaker"] for f in finals if f["text"])  # every card has its speaker
    assert sum(f["parts"] > 1 for f in finals) >= 1  # a quick change was split into cards


def get(rt: Runtime, path: str) -> Any:
    req = urllib.request.Request(rt.url + path, headers={"Authorization": f"Bearer {rt.token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def post(rt: Runtime, path: str, body: dict[str, Any]) -> int:
    req = urllib.request.Request(
        rt.url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {rt.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return int(r.status)


def test_two_speakers_taking_quick_turns(runtime: Runtime) -> None:
    """A man and a woman, A B A B A, two of the four changes inside one utterance (a 1.9 s
    turn among them): two speakers and every change within 0.5 s."""
    conv = two_speakers(default_speech_dir())
    res = asyncio.run(replay_pcm(runtime.ws_url, runtime.token, conv.pcm, realtime=False))
    check(conv, res)


def test_three_speakers_a_restarted_diarize_worker_and_a_rename(runtime: Runtime) -> None:
    """Three speakers, three of the seven changes inside one utterance: the right speaker
    count and every change within 0.5 s, although the diarize worker is killed and restarted
    after the first utterances; then a rename relabels that speaker's earlier lines."""
    conv = three_speakers(default_speech_dir())
    restarted = threading.Event()

    def crash_diarize_midway(ev: Received) -> None:
        if ev.kind == "speaker.assigned" and ev.data["index"] == 1 and not restarted.is_set():
            restarted.set()
            runtime.kill("diarize")
            runtime.start("diarize")

    res = asyncio.run(replay_pcm(runtime.ws_url, runtime.token, conv.pcm, realtime=True, on_event=crash_diarize_midway))
    assert restarted.is_set() and runtime.children["diarize"].proc is not None
    check(conv, res)  # S1 and S2 came back as S1 and S2 after the restart: still three speakers

    first = res.finals()[0]
    assert post(runtime, f"/api/sessions/{res.session_id}/speakers/{first['speaker']}", {"name": "Ana"}) == 202
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lines = get(runtime, f"/api/sessions/{res.session_id}/transcript")["utterances"]
        if any(line.get("speaker_name") == "Ana" for line in lines):
            break
        time.sleep(0.3)
    named = [line for line in lines if line["speaker"] == first["speaker"]]
    assert named and all(line["speaker_name"] == "Ana" for line in named)
    assert named[0]["start_ms"] == first["start_ms"]  # the earliest line too
    others = [line for line in lines if line["speaker"] and line["speaker"] != first["speaker"]]
    assert others and all(line["speaker_name"] != "Ana" for line in others)
