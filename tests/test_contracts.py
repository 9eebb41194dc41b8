"""Every event kind round-trips through the codec; upcasting and the public surface."""

from __future__ import annotations

import dataclasses

import msgpack
import pytest

import habla_contracts
from habla_contracts import EVENT_TYPES, UndecodableEvent, UnknownEventKind, decode, encode, upcaster
from habla_contracts.codec import UPCASTERS
from habla_contracts.events import Event


def _sample(cls: type[Event]) -> Event:
    values: dict[str, object] = {"session_id": "s-1"}
    for f in dataclasses.fields(cls):
        if f.name in ("session_id", "event_id", "seq", "occurred_at"):
            continue
        if f.type in ("bytes",):
            values[f.name] = b"\x00\x01\xff"
        elif f.type == "int":
            values[f.name] = 7
        elif f.type == "float":
            values[f.name] = 1.5
        elif f.type == "bool":
            values[f.name] = True
        elif f.type in ("str", "str | None"):
            values[f.name] = "x"
        elif str(f.type).startswith("tuple"):
            values[f.name] = ({"heard": "x", "start": 3, "nested": [1, 2]},)
    return cls(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", sorted(EVENT_TYPES))
def test_every_kind_round_trips(kind: str) -> None:
    event = _sample(EVENT_TYPES[kind])
    back = decode(kind, encode(event), seq=42)
    assert back == dataclasses.replace(event, seq=42)


def test_public_names_match_all() -> None:
    public = {n for n in dir(habla_contracts) if not n.startswith("_")} - {
        "codec",
        "errors",
        "events",
        "streams",
        "annotations",
    }
    assert public == set(habla_contracts.__all__)


def test_upcaster_brings_old_payload_to_current_version(monkeypatch: pytest.MonkeyPatch) -> None:
    cls = EVENT_TYPES["session.ended"]
    monkeypatch.setattr(cls, "V", 2)

    @upcaster("session.ended", 1)
    def _v1_to_v2(state: dict[str, object]) -> dict[str, object]:
        state["reason"] = f"v1:{state.get('reason', '')}"
        return state

    try:
        old = msgpack.packb({"session_id": "s", "reason": "client", "_v": 1})
        assert decode("session.ended", old).reason == "v1:client"  # type: ignore[attr-defined]
    finally:
        UPCASTERS.pop(("session.ended", 1))


def test_unknown_fields_from_newer_producers_are_ignored() -> None:
    data = msgpack.packb({"session_id": "s", "reason": "x", "added_later": 3, "_v": 1})
    assert decode("session.ended", data).session_id == "s"


def test_bad_payloads_raise_clear_errors() -> None:
    with pytest.raises(UnknownEventKind):
        decode("no.such.kind", encode(_sample(EVENT_TYPES["session.ended"])))
    with pytest.raises(UndecodableEvent):
        decode("session.ended", b"\xc1garbage")
    with pytest.raises(UndecodableEvent):
        decode("session.ended", msgpack.packb([1, 2, 3]))
    with pytest.raises(UndecodableEvent, match="newer"):
        decode("session.ended", msgpack.packb({"session_id": "s", "_v": 99}))
