"""Where a session's speaker state lives between utterances: Redis (msgpack, with a TTL).

The state is small (a centroid per speaker, role counts, the last few results) and is
written after every utterance, before its events are published, so a worker that is
restarted (or another worker that takes the session over) continues with the same
speaker ids, and a redelivered utterance republishes the same result.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgpack

__all__ = ["RedisStateStore", "StateStore"]


class StateStore(Protocol):
    def load(self, session_id: str) -> dict[str, Any] | None: ...

    def save(self, session_id: str, state: dict[str, Any]) -> None: ...


class RedisStateStore:
    """``diarize:<session_id>`` keys on the bus's Redis (the embedded one works the same)."""

    def __init__(self, client: Any, *, ttl_s: int = 7 * 24 * 3600, prefix: str = "diarize:") -> None:
        self.r = client
        self.ttl_s = ttl_s
        self.prefix = prefix

    def load(self, session_id: str) -> dict[str, Any] | None:
        raw = self.r.get(self.prefix + session_id)
        if raw is None:
            return None
        state = msgpack.unpackb(raw, raw=False, strict_map_key=False)
        return state if isinstance(state, dict) else None

    def save(self, session_id: str, state: dict[str, Any]) -> None:
        self.r.set(self.prefix + session_id, msgpack.packb(state, use_bin_type=True), ex=self.ttl_s)
