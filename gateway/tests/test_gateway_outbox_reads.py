"""The outbox read blocks for ``outbox_block_ms``; the socket under it must wait longer, or
every idle round on a busy machine reads as a lost connection ("event stream interrupted")."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aredis

from habla_common.bus import redis_options
from habla_gateway.outbox import Outbox, read_timeout_s


def test_idle_outbox_reads_outlast_their_block_without_a_false_alarm(redis_url: str, r: Any) -> None:
    block_ms = 800
    assert read_timeout_s(block_ms) > block_ms / 1000
    troubles: list[str] = []
    delivered: list[Any] = []

    async def trouble(message: str) -> None:
        troubles.append(message)

    async def deliver(item: Any) -> None:
        delivered.append(item)

    async def follow_idle() -> None:
        client = aredis.Redis.from_url(redis_url, **redis_options(redis_url), socket_timeout=read_timeout_s(block_ms))
        task = asyncio.create_task(Outbox(client, block_ms).follow("idle-session", "0-0", deliver, trouble))
        await asyncio.sleep(3 * block_ms / 1000 + 0.5)  # three full blocks with nothing to read
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()

    asyncio.run(follow_idle())
    assert troubles == [] and delivered == []
