"""Following a session's outbox (``session:<id>:events``) for one socket.

Replay and live delivery are one loop: ``XREAD BLOCK`` from the socket's cursor, send
each entry, move the cursor. A socket that resumes after ``last_event_id`` therefore
gets every event it missed exactly once, in order, then the live ones; several
sockets of one session each run their own loop and each get everything.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis
import redis.asyncio as aredis

from habla_common.bus import Delivered, decode_entry
from habla_contracts import ContractError, outbox_key

__all__ = ["Outbox", "entry_key", "normalize_entry_id", "read_timeout_s"]

log = logging.getLogger("habla.gateway.outbox")

Deliver = Callable[[Delivered], Awaitable[None]]
OnTrouble = Callable[[str], Awaitable[None]]


def normalize_entry_id(entry_id: str) -> str:
    return entry_id if "-" in entry_id else f"{entry_id}-0"


def entry_key(entry_id: str) -> tuple[int, int]:
    ms, _, n = normalize_entry_id(entry_id).partition("-")
    return int(ms), int(n)


def _text(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


def read_timeout_s(block_ms: int) -> float:
    """Socket timeout for a client whose reads block up to ``block_ms``: the block plus
    room for a loaded machine (redis-py's default of 5 s equals the default block)."""
    return block_ms / 1000 + 10.0


class Outbox:
    def __init__(self, client: aredis.Redis, block_ms: int, retry_s: float = 1.0) -> None:
        self.r = client
        self.block_ms = block_ms
        self.retry_s = retry_s

    async def resume_from(self, session_id: str, after: str) -> tuple[str, bool]:
        """Where a socket resuming after ``after`` starts, and whether events were lost.

        Lost (``True``): the outbox no longer holds what came right after ``after`` (it
        was trimmed or expired), or ``after`` is not from this outbox at all. Then the
        socket starts from the oldest event still there. A trimmed ``after`` whose
        successor survived is also reported (the outbox cannot tell the two apart).
        """
        after = normalize_entry_id(after)
        if entry_key(after) == (0, 0):
            return "0-0", False
        try:
            info = await self.r.xinfo_stream(outbox_key(session_id))
        except redis.ResponseError:  # no such key: the outbox expired (or never existed)
            return "0-0", True
        last = info.get("last-generated-id") or b"0-0"
        if entry_key(after) > entry_key(_text(last)):
            return "0-0", True
        first = info.get("first-entry")
        if first and entry_key(_text(first[0])) > entry_key(after):
            return "0-0", True
        return after, False

    async def read(self, session_id: str, cursor: str, block_ms: int) -> tuple[str, list[Delivered]]:
        """One read after ``cursor`` (blocking up to ``block_ms``): the new cursor and the events.
        Undecodable entries are skipped (logged); Redis errors propagate."""
        key = outbox_key(session_id)
        res: Any = await self.r.xread({key: cursor}, count=100, block=block_ms)
        out: list[Delivered] = []
        for _stream, entries in res or []:
            for entry_id, fields in entries:
                cursor = _text(entry_id)
                try:
                    out.append(decode_entry(key, entry_id, fields))
                except (ContractError, KeyError, ValueError) as e:
                    log.warning("skipping undecodable outbox entry %s of %s: %s", cursor, session_id, e)
        return cursor, out

    async def follow(self, session_id: str, cursor: str, deliver: Deliver, trouble: OnTrouble) -> None:
        """Deliver every outbox entry after ``cursor``, forever (cancel to stop)."""
        reported = False
        while True:
            try:
                cursor, delivered = await self.read(session_id, cursor, self.block_ms)
            except (redis.ConnectionError, redis.TimeoutError) as e:
                log.warning("outbox read for %s failed: %s; retrying", session_id, e)
                if not reported:
                    await trouble(f"event stream interrupted ({e}); retrying")
                    reported = True
                await asyncio.sleep(self.retry_s)
                continue
            reported = False
            for d in delivered:
                await deliver(d)
