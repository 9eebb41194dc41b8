"""``RedisBus.forget_session``: a deleted session's Redis state goes at once (real Redis)."""

from __future__ import annotations

from habla_common.bus import SESSION_KEYS, RedisBus
from habla_contracts import SessionStarted, TranscriptFinal, derived_id, outbox_key, partition_of, stream_key


def live_session(bus: RedisBus, sid: str) -> None:
    bus.publish(SessionStarted(session_id=sid, event_id=derived_id(sid, "started")))
    bus.publish(TranscriptFinal(session_id=sid, event_id=derived_id(sid, "final"), text="hola"))
    bus.set_session_settings(sid, direction="es-en", codec="pcm16")
    bus.r.hset(f"session:{sid}:gateway", mapping={"next_chunk": 3})
    bus.r.hset(f"ingest:{sid}", mapping={"epoch": 1})
    bus.r.set(f"diarize:{sid}", b"state")


def test_forget_session_drops_its_keys_only(bus: RedisBus) -> None:
    for sid in ("gone", "kept"):
        live_session(bus, sid)
    keys = [outbox_key("gone"), *(k.format("gone") for k in SESSION_KEYS)]
    assert bus.r.exists(*keys) == 6

    assert bus.forget_session("gone") == 6
    assert bus.r.exists(*keys) == 0
    assert bus.session_settings("gone") == {}
    assert bus.r.exists(outbox_key("kept"), *(k.format("kept") for k in SESSION_KEYS)) == 6
    # the facts already on their kind streams stay for their consumers
    final_stream = stream_key(TranscriptFinal.KIND, partition_of("gone", bus.partitions))
    assert any(b"gone" in f[b"d"] for _, f in bus.r.xrange(final_stream))

    assert bus.forget_session("gone") == 0  # idempotent
    assert bus.forget_session("never-was") == 0
