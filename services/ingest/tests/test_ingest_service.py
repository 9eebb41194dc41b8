"""The ingest handler inside habla_common's consumer loop on a real (embedded) Redis,
and ``python -m habla_ingest`` as a process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from habla_common.bus import RedisBus, decode_entry
from habla_common.service import build_consumer
from habla_common.settings import Settings
from habla_contracts import (
    AudioChunkReceived,
    AudioDrained,
    SpeechStarted,
    UtteranceSegmented,
    partition_of,
    stream_key,
)
from habla_ingest.config import IngestConfig
from habla_ingest.main import KINDS, bootstrap

Pcm = npt.NDArray[np.int16]
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def read(bus: RedisBus, kind: str, session: str) -> list[Any]:
    key = stream_key(kind, partition_of(session, bus.partitions))
    entries: Any = bus.r.xrange(key)
    return [decode_entry(key, eid, f).event for eid, f in entries]


def publish_session(bus: RedisBus, session: str, audio: Pcm) -> int:
    data = audio.astype("<i2").tobytes()
    chunks = [data[i : i + 8000] for i in range(0, len(data), 8000)]
    for k, chunk in enumerate(chunks):
        bus.publish(AudioChunkReceived(session_id=session, chunk_index=k, data=chunk, received_at=float(k)))
    bus.publish(AudioChunkReceived(session_id=session, chunk_index=len(chunks), final=True))
    return len(chunks) + 1


def speech(fleurs: Callable[[int], Pcm]) -> Pcm:
    silence = np.zeros(16000, np.int16)
    return np.concatenate([silence, fleurs(6), silence, fleurs(3), silence])


def test_the_consumer_turns_chunks_into_utterances(bus: RedisBus, fleurs: Callable[[int], Pcm]) -> None:
    n = publish_session(bus, "svc", speech(fleurs))
    settings = Settings("ingest", "", "", bus.partitions, 3, 100, 5000, "INFO")
    consumer = build_consumer(bus, settings, group="ingest", kinds=KINDS, handler=bootstrap(IngestConfig()).handle)
    consumer.maintain_leases()
    deadline = time.monotonic() + 30
    while consumer.processed < n:
        assert time.monotonic() < deadline, f"only {consumer.processed} of {n} chunks handled"
        consumer.poll()
    utts = read(bus, UtteranceSegmented.KIND, "svc")
    assert [u.index for u in utts] == [0, 1]
    assert [s.index for s in read(bus, SpeechStarted.KIND, "svc")] == [0, 1]
    (drained,) = read(bus, AudioDrained.KIND, "svc")
    assert drained.utterances == 2
    key = stream_key("audio.chunk", partition_of("svc", bus.partitions))
    assert bus.r.xpending(key, "ingest")["pending"] == 0


def consumed(bus: RedisBus, session: str) -> bool:
    """Every audio chunk of the session's shard delivered to and acked by ingest."""
    key = stream_key(AudioChunkReceived.KIND, partition_of(session, bus.partitions))
    last: Any = bus.r.xrevrange(key, count=1)
    groups: Any = bus.r.xinfo_groups(key)
    group = next(g for g in groups if g["name"] in (b"ingest", "ingest"))
    return bool(last) and group["last-delivered-id"] == last[0][0] and group["pending"] == 0


@pytest.mark.slow
def test_python_m_habla_ingest_runs_and_flushes_on_sigterm(
    bus: RedisBus, redis_url: str, fleurs: Callable[[int], Pcm], tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "HABLA_PARTITIONS": str(bus.partitions),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")])),
    }
    log = tmp_path / "ingest.log"
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "habla_ingest"], env=env, stderr=err)
    try:
        publish_session(bus, "proc", speech(fleurs))
        cut = fleurs(0)[: 16000 * 6]  # speech still going on when the audio stops, no final chunk
        data = cut.astype("<i2").tobytes()
        for k, i in enumerate(range(0, len(data), 8000)):
            bus.publish(AudioChunkReceived(session_id="cut", chunk_index=k, data=data[i : i + 8000]))
        deadline = time.monotonic() + 60
        while not (read(bus, AudioDrained.KIND, "proc") and consumed(bus, "cut")):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "ingest did not work off its input within 60 s"
            time.sleep(0.2)
        assert len(read(bus, UtteranceSegmented.KIND, "proc")) == 2
        assert read(bus, UtteranceSegmented.KIND, "cut") == []
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        (flushed,) = read(bus, UtteranceSegmented.KIND, "cut")
        assert flushed.reason == "end" and flushed.end_ms == 6000
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
