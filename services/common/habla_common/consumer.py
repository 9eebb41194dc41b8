"""The consumer loop every service runs.

Delivery: at least once. A message is acked only after its handler returned, i.e.
after the handler's own writes (events published, rows committed) are durable.

Ordering per session with several workers: each kind's stream is split into
``partitions`` shards by session, and a worker reads a shard only while it holds that
shard's lease for its group (``lease:<group>:<p>``, renewed every few hundred ms,
expiring after ``lease_ms``). Leases are shared out fairly among live workers. So
exactly one worker reads a session's events, in order; when a worker dies its leases
expire, another worker takes them and claims the dead worker's pending messages
(XAUTOCLAIM) before reading new ones.

Failures: a handler that raises is retried in place (so later events of the session
wait) with backoff; every delivery attempt is counted in Redis, so even a message
that crashes the whole process is counted across restarts; after
``max_deliveries`` attempts it is moved to ``<kind>.dead`` with the error and acked.

Load shedding: with a :class:`~habla_common.shedding.LoadShedder`, each batch read is
measured against the live audio (``received_at`` of its oldest message) and, when the
consumer is behind, the ``best_effort`` kinds (live partials) the service's ``select``
chose are thinned or acked without work; every other kind always goes through.

Trimming: streams without a MAXLEN (audio in, finals) are trimmed to the oldest entry
some group still needs, so a two-hour session keeps Redis memory flat.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import redis

from habla_contracts import Event, UndecodableEvent, UnknownEventKind, dead_letter_key, stream_key

from .bus import Delivered, RedisBus, decode_entry
from .metrics import DEAD_LETTERS, FAILURES, HANDLE_SECONDS, HANDLED, SKIPPED
from .shedding import LoadShedder

__all__ = ["Consumer", "GiveUp", "Handler", "Select", "consumer_name"]

log = logging.getLogger("habla.consumer")

Handler = Callable[[Event], None]
Select = Callable[[list[Event]], list[Event]]
GiveUp = Callable[[Event, str], None]

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def consumer_name(service: str) -> str:
    return f"{service}-{socket.gethostname()}-{os.getpid()}"


class Consumer:
    def __init__(
        self,
        bus: RedisBus,
        group: str,
        kinds: Sequence[str],
        handle: Handler,
        *,
        name: str,
        select: Select | None = None,
        give_up: GiveUp | None = None,
        max_deliveries: int = 5,
        block_ms: int = 500,
        lease_ms: int = 5000,
        batch: int = 64,
        retry_backoff_s: float = 0.2,
        trim_every_s: float = 30.0,
        shed: LoadShedder | None = None,
        best_effort: Sequence[str] = (),
    ) -> None:
        self.bus, self.r = bus, bus.r
        self.group, self.kinds, self.name = group, tuple(kinds), name
        self.handle, self.select, self.give_up = handle, select, give_up
        self.max_deliveries, self.block_ms, self.lease_ms = max_deliveries, block_ms, lease_ms
        self.batch, self.retry_backoff_s, self.trim_every_s = batch, retry_backoff_s, trim_every_s
        self.held: set[int] = set()
        self.cursor: dict[str, str] = {}
        self._renew = self.r.register_script(_RENEW)
        self._release = self.r.register_script(_RELEASE)
        self._last_lease = 0.0
        self._lost: set[int] = set()
        self._last_trim = time.monotonic()
        self.processed = 0
        self.shed, self.best_effort = shed, frozenset(best_effort)

    # --- leases ----------------------------------------------------------------

    def _lease_key(self, p: int) -> str:
        return f"lease:{self.group}:{p}"

    def _streams_of(self, p: int) -> list[str]:
        return [stream_key(k, p) for k in self.kinds]

    def maintain_leases(self) -> None:
        now_ms = int(time.time() * 1000)
        members = f"members:{self.group}"
        self.r.zadd(members, {self.name: now_ms})
        self.r.zremrangebyscore(members, 0, now_ms - 3 * self.lease_ms)
        live = max(1, int(self.r.zcard(members)))
        fair = math.ceil(self.bus.partitions / live)
        for p in sorted(self._lost):
            log.warning("%s lost lease on %s shard %d", self.name, self.group, p)
            self._drop(p)
        self._lost.clear()
        for p in sorted(self.held, reverse=True)[: max(0, len(self.held) - fair)]:
            self._release(keys=[self._lease_key(p)], args=[self.name])
            self._drop(p)
        for p in range(self.bus.partitions):
            if len(self.held) >= fair:
                break
            if p not in self.held and self.r.set(self._lease_key(p), self.name, nx=True, px=self.lease_ms):
                self._acquire(p)
        self._last_lease = time.monotonic()

    def _acquire(self, p: int) -> None:
        """Take shard ``p``: claim whatever a previous holder left pending, read that first."""
        for stream in self._streams_of(p):
            start = "0-0"
            while True:
                nxt = self.r.xautoclaim(stream, self.group, self.name, 0, start, count=500)[0]
                start = nxt.decode() if isinstance(nxt, bytes) else str(nxt)
                if start == "0-0":
                    break
            self.cursor[stream] = "0"
        self.held.add(p)
        log.info("%s took %s shard %d", self.name, self.group, p)

    def _drop(self, p: int) -> None:
        self.held.discard(p)
        for stream in self._streams_of(p):
            self.cursor.pop(stream, None)

    def _keep_leases(self, stop: threading.Event) -> None:
        """Renew held leases from a thread of its own, so a long handler keeps them."""
        while not stop.wait(self.lease_ms / 5000):
            for p in list(self.held):
                try:
                    ok = self._renew(keys=[self._lease_key(p)], args=[self.name, self.lease_ms])
                except redis.RedisError as e:
                    log.warning("lease renewal failed: %s", e)
                    continue
                if not ok:
                    self._lost.add(p)

    def release_all(self) -> None:
        for p in list(self.held):
            self._release(keys=[self._lease_key(p)], args=[self.name])
            self._drop(p)
        self.r.zrem(f"members:{self.group}", self.name)

    # --- reading and handling ----------------------------------------------------

    def poll(self) -> int:
        """Read one batch from the held shards and handle it. Returns messages seen."""
        if not self.cursor:
            time.sleep(self.block_ms / 1000)
            if self.shed is not None:
                self.shed.observe((), time.time())  # holding no shard: nothing to be behind on
            return 0
        block = None if any(c != ">" for c in self.cursor.values()) else self.block_ms
        streams: Any = dict(self.cursor)
        try:
            res: Any = self.r.xreadgroup(self.group, self.name, streams, count=self.batch, block=block)
        except redis.ResponseError as e:
            # A stream (or its group) vanished under the read: Redis restarted without its
            # data, or someone flushed it. Make them again and read on; crashing would not
            # bring them back.
            if "NOGROUP" not in str(e) and "no longer exists" not in str(e):
                raise
            log.warning("%s: a stream it reads was deleted (%s); creating it again", self.group, e)
            self.bus.ensure_topology()
            self.cursor = dict.fromkeys(self.cursor, "0")
            return 0
        items: list[Delivered] = []
        for raw_stream, entries in res or []:
            stream = raw_stream.decode()
            if self.cursor.get(stream) == "0" and not entries:
                self.cursor[stream] = ">"  # recovered everything pending; now read new
            for entry_id, fields in entries:
                if fields is None:  # pending entry trimmed away meanwhile
                    self._ack(stream, entry_id.decode())
                    continue
                try:
                    items.append(decode_entry(stream, entry_id, fields))
                except (UndecodableEvent, UnknownEventKind, KeyError) as e:
                    self._dead_letter(stream, entry_id.decode(), fields, f"undecodable: {e}")
        items.sort(key=lambda d: (d.event.session_id, d.event.seq))
        now = time.time()
        if self.shed is not None:  # how long the oldest message read has waited (0: nothing read)
            self.shed.observe([d.event for d in items], now)
        chosen = items
        if self.select is not None and items:
            by_obj = {id(d.event): d for d in items}
            chosen = [by_obj[id(e)] for e in self.select([d.event for d in items])]
            kept = {id(d.event) for d in chosen}
            for d in items:
                if id(d.event) not in kept:
                    self._ack(d.stream, d.entry_id)  # superseded: acked without work
                    SKIPPED.labels(self.group, d.event.KIND).inc()
        if self.shed is not None and self.best_effort:
            chosen = self._shed(self.shed, chosen, now)
        for d in chosen:
            if self._lost or not self._process(d):
                break  # a lost shard's remaining messages are its new holder's
        return len(items)

    def _shed(self, shed: LoadShedder, chosen: list[Delivered], now: float) -> list[Delivered]:
        """Ack, without work, the best-effort messages the shedder refuses at its level."""
        kept: list[Delivered] = []
        for d in chosen:
            if d.event.KIND in self.best_effort and not shed.keep(d.event, now):
                self._ack(d.stream, d.entry_id)  # shed: counted by the shedder, not as skipped
            else:
                kept.append(d)
        return kept

    def _process(self, d: Delivered) -> bool:
        """Handle one message until it succeeds or is dead-lettered. False if stopping."""
        counter = f"deliveries:{self.group}"
        field = f"{d.stream}/{d.entry_id}"
        while True:
            attempts = int(self.r.hincrby(counter, field, 1))
            if attempts > self.max_deliveries:
                self._abandon(d, "too many deliveries")
                return True
            started = time.perf_counter()
            try:
                self.handle(d.event)
            except Exception as e:  # noqa: BLE001 - counted, retried, then dead-lettered
                FAILURES.labels(self.group, d.event.KIND, type(e).__name__).inc()
                log.warning(
                    "%s failed on %s %s (attempt %d/%d): %s",
                    self.group,
                    d.event.KIND,
                    d.entry_id,
                    attempts,
                    self.max_deliveries,
                    e,
                )
                if attempts >= self.max_deliveries:
                    self._abandon(d, "".join(traceback.format_exception_only(e)))
                    return True
                if self._stop is not None and self._stop.wait(self.retry_backoff_s * attempts):
                    return False
                continue
            self._ack(d.stream, d.entry_id)
            if self.shed is not None and d.event.KIND in self.best_effort:
                self.shed.done(d.event, time.time())  # thinning counts from the end of this one
            self.processed += 1
            HANDLED.labels(self.group, d.event.KIND).inc()
            HANDLE_SECONDS.labels(self.group, d.event.KIND).observe(time.perf_counter() - started)
            return True

    def _abandon(self, d: Delivered, reason: str) -> None:
        """Give up on a message: let the service publish its fallback, then dead-letter it."""
        if self.give_up is not None:
            try:
                self.give_up(d.event, reason)
            except Exception as e:  # noqa: BLE001 - the message is dead-lettered either way
                log.error("%s give-up hook failed on %s: %s", self.group, d.entry_id, e)
        self._dead_letter(d.stream, d.entry_id, None, reason, d.event)

    def _ack(self, stream: str, entry_id: str) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.xack(stream, self.group, entry_id)
        pipe.hdel(f"deliveries:{self.group}", f"{stream}/{entry_id}")
        pipe.execute()

    def _dead_letter(
        self, stream: str, entry_id: str, fields: dict[bytes, bytes] | None, reason: str, event: Event | None = None
    ) -> None:
        kind = stream.rsplit(":", 1)[0]
        data: dict[Any, Any] = dict(fields) if fields else {}
        if event is not None:
            from habla_contracts import encode

            data.update({"k": event.KIND, "d": encode(event), "q": event.seq})
        data.update({"stream": stream, "entry_id": entry_id, "group": self.group, "error": reason[:2000]})
        self.r.xadd(dead_letter_key(kind), data, maxlen=10_000, approximate=True)
        DEAD_LETTERS.labels(self.group, kind).inc()
        self._ack(stream, entry_id)
        log.error("%s dead-lettered %s %s: %s", self.group, stream, entry_id, reason.strip())

    # --- housekeeping ------------------------------------------------------------

    def trim(self) -> None:
        """Drop entries every group has finished with; forget long-dead consumers."""
        for p in self.held:
            for stream in self._streams_of(p):
                try:
                    groups = self.r.xinfo_groups(stream)
                except redis.ResponseError:
                    continue
                floor: str | None = None
                for g in groups:
                    gname = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
                    mark = g["last-delivered-id"]
                    mark = mark.decode() if isinstance(mark, bytes) else mark
                    if g["pending"]:
                        oldest = self.r.xpending(stream, gname)["min"]
                        if oldest is not None:  # None: acked between the two reads; the mark stands
                            mark = oldest.decode() if isinstance(oldest, bytes) else oldest
                    floor = mark if floor is None or _id_lt(mark, floor) else floor
                if floor and floor != "0-0":
                    self.r.xtrim(stream, minid=floor, approximate=False)
                for c in self.r.xinfo_consumers(stream, self.group):
                    if c["pending"] == 0 and c["idle"] > 600_000:
                        self.r.xgroup_delconsumer(stream, self.group, c["name"])
        self._last_trim = time.monotonic()

    # --- run ---------------------------------------------------------------------

    _stop: threading.Event | None = None

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set; finishes (and acks) the message in hand first."""
        self._stop = stop
        keeper_stop = threading.Event()
        keeper = threading.Thread(target=self._keep_leases, args=(keeper_stop,), daemon=True)
        keeper.start()
        log.info("%s consuming %s as %s", self.group, ",".join(self.kinds), self.name)
        try:
            while not stop.is_set():
                if time.monotonic() - self._last_lease > self.lease_ms / 5000:
                    self.maintain_leases()
                self.poll()
                if time.monotonic() - self._last_trim > self.trim_every_s:
                    try:
                        self.trim()
                    except Exception as e:  # noqa: BLE001 - housekeeping must not stop the consumer
                        log.warning("%s: trimming its streams failed, trying again later: %s", self.group, e)
                        self._last_trim = time.monotonic()
        finally:
            keeper_stop.set()
            keeper.join()
            self.release_all()
            log.info("%s stopped after %d messages", self.name, self.processed)


def _id_lt(a: str, b: str) -> bool:
    ams, aseq = (int(x) for x in a.split("-"))
    bms, bseq = (int(x) for x in b.split("-"))
    return (ams, aseq) < (bms, bseq)
