"""One msgpack codec for every event, with upcasting.

``encode(event)`` writes the event's fields plus its schema version; ``decode(kind,
data)`` reads them back, applies ``upcast_<kind>_v<N>`` steps registered with
:func:`upcaster` until the payload reaches the class's current ``V``, and ignores
fields the class no longer knows (so a newer producer never breaks an older reader).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import msgpack

from .errors import UndecodableEvent, UnknownEventKind
from .events import EVENT_TYPES, Event

__all__ = ["UPCASTERS", "decode", "encode", "from_dict", "to_dict", "upcaster"]

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def upcaster(kind: str, from_v: int) -> Callable[[Upcaster], Upcaster]:
    """Register a step that turns a ``kind`` payload of version ``from_v`` into ``from_v+1``."""

    def register(fn: Upcaster) -> Upcaster:
        UPCASTERS[(kind, from_v)] = fn
        return fn

    return register


def to_dict(event: Event) -> dict[str, Any]:
    return {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}


def from_dict(kind: str, state: dict[str, Any], v: int | None = None) -> Event:
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise UnknownEventKind(f"unknown event kind {kind!r}")
    version = v if v is not None else cls.V
    while version < cls.V:
        step = UPCASTERS.get((kind, version))
        if step is None:
            raise UndecodableEvent(f"no upcaster for {kind} v{version} -> v{version + 1}")
        state = step(dict(state))
        version += 1
    if version > cls.V:
        raise UndecodableEvent(f"{kind} v{version} is newer than this reader (v{cls.V})")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {k: _tupled(fields[k], val) for k, val in state.items() if k in fields}
    try:
        return cls(**values)
    except TypeError as e:
        raise UndecodableEvent(f"{kind} payload does not fit its class: {e}") from e


def _tupled(f: dataclasses.Field[Any], value: Any) -> Any:
    """msgpack reads arrays back as lists; tuple-typed fields get their tuples back."""
    if isinstance(value, list) and str(f.type).startswith("tuple"):
        return tuple(value)
    return value


def encode(event: Event) -> bytes:
    payload = to_dict(event)
    payload["_v"] = type(event).V
    out: bytes = msgpack.packb(payload, use_bin_type=True)
    return out


def decode(kind: str, data: bytes, *, seq: int | None = None) -> Event:
    try:
        state = msgpack.unpackb(data, raw=False)
    except Exception as e:  # msgpack raises several unrelated types
        raise UndecodableEvent(f"{kind}: payload is not valid msgpack ({e})") from e
    if not isinstance(state, dict):
        raise UndecodableEvent(f"{kind}: payload is not a map")
    v = state.pop("_v", 1)
    if seq is not None:
        state["seq"] = seq
    return from_dict(kind, state, v)
