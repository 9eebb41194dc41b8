"""The Redis Streams bus and consumer loop, against a real Redis server."""

from __future__ import annotations

import threading
import time
from typing import Any

import redis

from habla_common.bus import RedisBus
from habla_common.consumer import Consumer
from habla_contracts import (
    AudioChunkReceived,
    Event,
    SessionEnded,
    SessionStarted,
    TranscriptPartial,
    derived_id,
    outbox_key,
    partition_of,
    stream_key,
)


def chunk(session: str, i: int) -> AudioChunkReceived:
    return AudioChunkReceived(
        session_id=session, event_id=derived_id(session, "chunk", i), chunk_index=i, data=bytes(4)
    )


def consumer(bus: RedisBus, handle: object, name: str, **kw: object) -> Consumer:
    return Consumer(
        bus,
        "ingest",
        ("audio.chunk",),
        handle,
        name=name,
        block_ms=50,
        lease_ms=1000,  # type: ignore[arg-type]
        retry_backoff_s=0.01,
        **kw,
    )  # type: ignore[arg-type]


def run_until(c: Consumer, cond: object, timeout: float = 10.0) -> None:
    stop = threading.Event()
    t = threading.Thread(target=c.run, args=(stop,))
    t.start()
    deadline = time.monotonic() + timeout
    try:
        while not cond() and time.monotonic() < deadline:  # type: ignore[operator]
            time.sleep(0.02)
    finally:
        stop.set()
        t.join(10)
    assert cond(), "condition not met in time"  # type: ignore[operator]


def test_publish_is_idempotent_and_numbers_the_session(bus: RedisBus) -> None:
    e1, e2 = SessionStarted(session_id="a"), SessionEnded(session_id="a")
    assert bus.publish(e1) == 1
    assert bus.publish(e1) is None  # same event id: dropped
    assert bus.publish(e2) == 2
    out = bus.read_outbox("a", "0-0", block_ms=0)
    assert [d.event for d in out] == [
        SessionStarted(**{**e1.__dict__, "seq": 1}),
        SessionEnded(**{**e2.__dict__, "seq": 2}),
    ]


def test_partials_are_trimmed_but_chunks_are_not(bus: RedisBus) -> None:
    for i in range(1500):
        bus.publish(TranscriptPartial(session_id="a", window_index=i))
        bus.publish(chunk("a", i))
    p = partition_of("a", bus.partitions)
    assert bus.r.xlen(stream_key("asr.partial", p)) < 1300
    assert bus.r.xlen(stream_key("audio.chunk", p)) == 1500


def test_consumer_handles_in_order_and_acks(bus: RedisBus) -> None:
    seen: list[tuple[str, int]] = []
    for i in range(30):
        for s in ("s1", "s2", "s3"):
            bus.publish(chunk(s, i))
    c = consumer(bus, lambda e: seen.append((e.session_id, e.chunk_index)), "w1")
    run_until(c, lambda: len(seen) == 90)
    for s in ("s1", "s2", "s3"):
        assert [i for ss, i in seen if ss == s] == list(range(30))
    for p in range(bus.partitions):
        assert bus.r.xpending(stream_key("audio.chunk", p), "ingest")["pending"] == 0


def test_two_workers_share_shards_and_keep_session_order(bus: RedisBus) -> None:
    seen: dict[str, list[tuple[str, int]]] = {"w1": [], "w2": []}
    sessions = [f"s{i}" for i in range(12)]
    c1 = consumer(bus, lambda e: seen["w1"].append((e.session_id, e.chunk_index)), "w1")
    c2 = consumer(bus, lambda e: seen["w2"].append((e.session_id, e.chunk_index)), "w2")
    stop = threading.Event()
    threads = [threading.Thread(target=c.run, args=(stop,)) for c in (c1, c2)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.5)  # both register; leases are shared out
        for i in range(20):
            for s in sessions:
                bus.publish(chunk(s, i))
        deadline = time.monotonic() + 15
        while sum(len(v) for v in seen.values()) < 240 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert seen["w1"] and seen["w2"], "both workers got work"
    for s in sessions:
        owners = [w for w, items in seen.items() if any(ss == s for ss, _ in items)]
        assert len(owners) == 1, f"{s} was split across workers"
        assert [i for ss, i in seen[owners[0]] if ss == s] == list(range(20))


def test_messages_of_a_dead_consumer_are_reclaimed(bus: RedisBus) -> None:
    for i in range(5):
        bus.publish(chunk("dead", i))
    p = partition_of("dead", bus.partitions)
    # A worker read the messages, then died holding them (no ack, lease left to expire).
    bus.r.xreadgroup("ingest", "crashed-worker", {stream_key("audio.chunk", p): ">"}, count=10)
    bus.r.set(f"lease:ingest:{p}", "crashed-worker", px=300)
    seen: list[int] = []
    c = consumer(bus, lambda e: seen.append(e.chunk_index), "w-new")
    run_until(c, lambda: seen == [0, 1, 2, 3, 4])


def test_poison_message_goes_to_dead_letter_and_others_continue(bus: RedisBus) -> None:
    seen: list[int] = []

    def handle(e: Event) -> None:
        assert isinstance(e, AudioChunkReceived)
        if e.chunk_index == 1:
            raise ValueError("cannot handle chunk 1")
        seen.append(e.chunk_index)

    for i in range(3):
        bus.publish(chunk("p", i))
    c = consumer(bus, handle, "w1", max_deliveries=3)
    run_until(c, lambda: seen == [0, 2])
    dead = bus.r.xrange("audio.chunk.dead")
    assert len(dead) == 1
    assert b"cannot handle chunk 1" in dead[0][1][b"error"]
    assert bus.r.hlen("deliveries:ingest") == 0


def test_crash_loops_count_toward_dead_letter(bus: RedisBus) -> None:
    """Deliveries are counted in Redis, so a message that kills its worker every time still ends up dead."""
    bus.publish(chunk("c", 0))
    p = partition_of("c", bus.partitions)
    bus.r.hset(
        "deliveries:ingest",
        f"{stream_key('audio.chunk', p)}/{bus.r.xrange(stream_key('audio.chunk', p))[0][0].decode()}",
        5,
    )
    seen: list[int] = []
    c = consumer(bus, lambda e: seen.append(e.chunk_index), "w1", max_deliveries=5)
    run_until(c, lambda: bus.r.xlen("audio.chunk.dead") == 1)
    assert seen == []


def test_trim_keeps_what_a_group_still_needs(bus: RedisBus) -> None:
    for i in range(10):
        bus.publish(chunk("t", i))
    seen: list[int] = []
    c = consumer(bus, lambda e: seen.append(e.chunk_index), "w1")
    run_until(c, lambda: len(seen) == 10)
    c.maintain_leases()
    c.trim()
    p = partition_of("t", bus.partitions)
    assert bus.r.xlen(stream_key("audio.chunk", p)) <= 1


def test_trim_survives_a_pending_entry_acked_between_its_two_reads(bus: RedisBus) -> None:
    """XINFO GROUPS says a message is pending, the handler acks it, then XPENDING has no
    oldest entry: trimming must use the group's mark, not crash the service (it did once,
    mid-way through a 30-minute bench)."""
    for i in range(5):
        bus.publish(chunk("race", i))
    p = partition_of("race", bus.partitions)
    stream = stream_key("audio.chunk", p)
    c = consumer(bus, lambda e: None, "w1")
    c.maintain_leases()
    delivered = bus.r.xreadgroup("ingest", "w1", {stream: ">"}, count=5)
    ids = [entry_id for entry_id, _ in delivered[0][1]]
    real_xpending = bus.r.xpending

    def acked_meanwhile(name: str, group: str) -> Any:
        bus.r.xack(name, group, *ids)  # the handler finished between XINFO and XPENDING
        return real_xpending(name, group)

    bus.r.xpending = acked_meanwhile  # type: ignore[method-assign]
    try:
        c.trim()
    finally:
        bus.r.xpending = real_xpending  # type: ignore[method-assign]
    assert bus.r.xlen(stream) <= 1  # trimmed up to the group's last delivered entry


def test_outbox_read_resumes_after_an_entry(bus: RedisBus) -> None:
    ids = []
    for i in range(5):
        bus.publish(SessionEnded(session_id="o", reason=str(i)))
    entries = bus.r.xrange(outbox_key("o"))
    ids = [e[0].decode() for e in entries]
    rest = bus.read_outbox("o", ids[1], block_ms=0)
    assert [d.event.reason for d in rest] == ["2", "3", "4"]  # type: ignore[attr-defined]


def test_works_against_the_embedded_server_too(tmp_path: object) -> None:
    from pathlib import Path

    from habla.embedded import embedded_redis

    with embedded_redis(Path(str(tmp_path)) / "r") as url:
        b = RedisBus(redis.Redis.from_url(url), partitions=1)
        b.ensure_topology()
        b.publish(chunk("e", 0))
        seen: list[int] = []
        c = consumer(b, lambda e: seen.append(e.chunk_index), "w1")
        run_until(c, lambda: seen == [0])


def test_give_up_hook_runs_before_dead_letter(bus: RedisBus) -> None:
    """A service can publish a fallback (ASR: an empty final) for a message it cannot handle."""
    fallbacks: list[tuple[int, str]] = []

    def handle(e: Event) -> None:
        raise RuntimeError("model crashed")

    bus.publish(chunk("g", 0))
    c = consumer(bus, handle, "w1", max_deliveries=2, give_up=lambda e, why: fallbacks.append((e.chunk_index, why)))  # type: ignore[attr-defined]
    run_until(c, lambda: bus.r.xlen("audio.chunk.dead") == 1)
    assert fallbacks and fallbacks[0][0] == 0 and "model crashed" in fallbacks[0][1]


def test_a_deleted_stream_is_made_again_and_reading_goes_on(bus: RedisBus) -> None:
    """Redis lost its streams under a running consumer (restarted without its data, flushed):
    the consumer makes the streams and its group again and handles what comes next."""
    seen: list[int] = []
    bus.publish(chunk("s1", 0))
    c = Consumer(bus, "ingest", ("audio.chunk",), lambda e: seen.append(e.chunk_index), name="w1", block_ms=400)
    stop = threading.Event()
    t = threading.Thread(target=c.run, args=(stop,))
    t.start()
    try:
        deadline = time.monotonic() + 10
        while seen != [0] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert seen == [0]
        time.sleep(0.1)  # blocked in XREADGROUP now
        bus.r.delete(*[stream_key("audio.chunk", p) for p in range(bus.partitions)])
        time.sleep(0.6)
        bus.publish(chunk("s1", 1))
        deadline = time.monotonic() + 10
        while 1 not in seen and time.monotonic() < deadline:
            time.sleep(0.02)
        assert seen == [0, 1] and t.is_alive()
    finally:
        stop.set()
        t.join(10)
