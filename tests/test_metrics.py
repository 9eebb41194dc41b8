"""Metrics: every service's /metrics during a real replay (real processes, Redis, Postgres,
Whisper, the bundled translation model), and the consumer's counters and lag gauges against
a real Redis."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import REGISTRY

from habla.replay import replay_pcm
from habla.supervisor import Runtime, running
from habla_common.bus import RedisBus
from habla_common.consumer import Consumer
from habla_common.metrics import StreamLag
from habla_contracts import AudioChunkReceived, derived_id
from habla_ingest.adapters import decode_file

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "eval" / "speech"


def chunk(session: str, i: int) -> AudioChunkReceived:
    return AudioChunkReceived(session_id=session, event_id=derived_id(session, "c", i), chunk_index=i, data=bytes(4))


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_consumer_counts_what_it_handles_fails_and_gives_up_and_lag_is_read_from_redis(bus: RedisBus) -> None:
    group = "ingest"
    lag = StreamLag(bus.r, group, ("audio.chunk",), bus.partitions)

    def samples() -> dict[tuple[str, str], float]:
        return {
            (s.name, s.labels["stream"]): s.value
            for family in lag.collect()
            for s in family.samples
            if s.labels.get("group", group) == group
        }

    for i in range(6):
        bus.publish(chunk("s1", i))
    before = samples()
    streams = {stream for _, stream in before}
    assert sum(v for (name, _), v in before.items() if name == "habla_stream_lag") == 6
    assert sum(v for (name, _), v in before.items() if name == "habla_stream_length") == 6
    assert len(streams) == bus.partitions
    # Redis 6 (the embedded server) reports no lag: then the entries after the group's mark count
    assert sum(lag._after(stream, "0-0") for stream in streams) == 6

    handled0 = value("habla_events_handled_total", service=group, kind="audio.chunk")
    failed0 = value("habla_handle_failures_total", service=group, kind="audio.chunk", error="ValueError")
    dead0 = value("habla_dead_letters_total", service=group, kind="audio.chunk")

    def handle(e: Any) -> None:
        if e.chunk_index == 3:
            raise ValueError("poison")

    c = Consumer(bus, group, ("audio.chunk",), handle, name="w1", block_ms=50, max_deliveries=2, retry_backoff_s=0.01)
    stop = threading.Event()
    t = threading.Thread(target=c.run, args=(stop,))
    t.start()
    try:
        deadline = time.monotonic() + 15
        while value("habla_events_handled_total", service=group, kind="audio.chunk") - handled0 < 5:
            assert time.monotonic() < deadline, "the consumer did not handle the chunks"
            time.sleep(0.05)
        while value("habla_dead_letters_total", service=group, kind="audio.chunk") - dead0 < 1:
            assert time.monotonic() < deadline, "the poison chunk was not dead-lettered"
            time.sleep(0.05)
    finally:
        stop.set()
        t.join(10)
    assert value("habla_events_handled_total", service=group, kind="audio.chunk") - handled0 == 5
    assert value("habla_handle_failures_total", service=group, kind="audio.chunk", error="ValueError") - failed0 == 2
    assert value("habla_handle_seconds_count", service=group, kind="audio.chunk") >= 5
    after = samples()
    assert sum(v for (name, _), v in after.items() if name == "habla_stream_lag") == 0
    assert sum(v for (name, _), v in after.items() if name == "habla_stream_pending") == 0


# --- every process during a real replay ------------------------------------------------------


@pytest.fixture
def runtime(tmp_path: Path, redis_url: str, pg_url: str) -> Iterator[Runtime]:
    with running(
        data_dir=tmp_path / "data",
        extra_env={"REDIS_URL": redis_url, "DATABASE_URL": pg_url, "HABLA_LEASE_MS": "3000"},
        services=("recorder", "ingest", "diarize", "asr", "translate", "gateway"),
    ) as rt:
        yield rt


def scrape(rt: Runtime, name: str, url: str) -> dict[str, list[Any]]:
    """The metric families of one process: name -> samples."""
    headers = {"Authorization": f"Bearer {rt.token}"} if name == "gateway" else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
        text = r.read().decode()
    out: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        out.setdefault(family.name, []).extend(family.samples)
    return out


def count_of(families: dict[str, list[Any]], histogram: str, **labels: str) -> float:
    return sum(
        s.value
        for s in families.get(histogram, [])
        if s.name == f"{histogram}_count" and all(s.labels.get(k) == v for k, v in labels.items())
    )


@pytest.mark.slow
def test_every_stage_is_measured_during_a_real_replay(runtime: Runtime) -> None:
    """A FLEURS sentence streamed at real-time pace: midway, every service's /metrics answers
    with its stream lag gauges and its process's memory; at the end each stage of the live
    path has observations: onset → first caption, speech end → transcript → translation →
    on the socket."""
    pcm = decode_file(SPEECH / "fleurs-es-006.wav")
    audio = np.concatenate([np.zeros(8000, np.int16), pcm, np.zeros(24000, np.int16)])
    urls = runtime.metrics_urls()
    assert set(urls) == {"recorder", "ingest", "diarize", "asr", "translate", "gateway"}

    midway: dict[str, dict[str, list[Any]]] = {}

    def scrape_midway() -> None:
        time.sleep(3.0)  # the sentence is being spoken
        for name, url in urls.items():
            midway[name] = scrape(runtime, name, url)

    t = threading.Thread(target=scrape_midway)
    t.start()
    result = asyncio.run(
        replay_pcm(runtime.ws_url, runtime.token, audio, realtime=True, translations=True, title="metrics")
    )
    t.join(30)
    assert result.finals(), "nothing was transcribed"
    for name, families in midway.items():
        assert families["process_resident_memory_bytes"][0].value > 10e6, name
        assert "process_cpu_seconds" in families, name
        if name != "gateway":
            lag = [s for s in families["habla_stream_lag"] if s.labels["group"] == name]
            assert lag, f"{name}: no lag gauges"
            assert families["habla_stream_pending"], name

    # the last stage (translation on the socket) may land a moment after the replay returns
    deadline = time.monotonic() + 120
    while True:
        end = {name: scrape(runtime, name, url) for name, url in urls.items()}
        delivered = count_of(end["gateway"], "habla_stage_seconds", stage="speech_end_to_translation_delivered")
        if delivered or time.monotonic() > deadline:
            break
        time.sleep(1)
    stages = {
        ("asr", "onset_to_first_partial"),
        ("asr", "window_to_asr_partial"),
        ("asr", "speech_end_to_asr_final"),
        ("translate", "speech_end_to_translation_final"),
        ("gateway", "window_to_partial_delivered"),
        ("gateway", "speech_end_to_transcript_delivered"),
        ("gateway", "speech_end_to_translation_delivered"),
    }
    for service, stage in sorted(stages):
        assert count_of(end[service], "habla_stage_seconds", stage=stage) >= 1, (service, stage)
    for service, kind in (("ingest", "audio.chunk"), ("asr", "speech.window"), ("recorder", "asr.final")):
        handled = sum(
            s.value
            for s in end[service]["habla_events_handled"]
            if s.name.endswith("_total") and s.labels == {"service": service, "kind": kind}
        )
        assert handled >= 1, (service, kind)
    assert sum(s.value for s in end["gateway"]["habla_events_delivered"] if s.name.endswith("_total")) > 0
    summary = {}
    for service, stage in sorted(stages):
        samples = end[service]["habla_stage_seconds"]
        total = sum(s.value for s in samples if s.name.endswith("_sum") and s.labels["stage"] == stage)
        summary[stage] = round(total / count_of(end[service], "habla_stage_seconds", stage=stage), 2)
    print(f"\nmean stage latency, s: {summary}")
