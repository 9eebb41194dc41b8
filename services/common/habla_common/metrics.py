"""Prometheus metrics of a Habla process: what it handled, how long it took, what failed, how
far behind its streams are, and its own RSS and CPU.

Every process serves its metrics at ``http://METRICS_HOST:METRICS_PORT/metrics`` when
``METRICS_PORT`` is set (a service's own ``<SERVICE>_METRICS_PORT`` wins; ``habla up`` gives
each service a port and compose uses 9100 in every container); the gateway serves its own at
``/metrics`` on its port. The names:

* ``habla_events_handled_total{service,kind}`` and ``habla_handle_seconds{service,kind}``:
  messages a consumer handled, and the time each took;
* ``habla_events_skipped_total{service,kind}``: superseded messages acked without work (live
  partials thinned out when a newer one of the same utterance is already there);
* ``habla_handle_failures_total{service,kind,error}``: handler exceptions (each is retried);
* ``habla_dead_letters_total{service,kind}``: messages given up on;
* ``habla_stage_seconds{stage}``: the latency of a stage of the live path, from when the
  gateway received the audio it is about (``received_at`` on the events) to when the stage's
  result was published or delivered;
* ``habla_stream_length{stream}``, ``habla_stream_lag{group,stream}``,
  ``habla_stream_pending{group,stream}``: read from Redis when scraped (``lag``: entries not
  yet delivered to the group; ``pending``: delivered, not yet acked);
* ``process_resident_memory_bytes``, ``process_cpu_seconds_total``: prometheus-client's own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

import redis
from prometheus_client import Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from habla_contracts.streams import stream_key

__all__ = [
    "DEAD_LETTERS",
    "FAILURES",
    "HANDLED",
    "HANDLE_SECONDS",
    "SKIPPED",
    "STAGE_SECONDS",
    "StreamLag",
    "observe_stage",
    "serve_metrics",
    "watch_streams",
]

log = logging.getLogger("habla.metrics")

# seconds: from a few ms (a database write) to a minute (a long utterance on a slow CPU)
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 60.0)

HANDLED = Counter("habla_events_handled", "Messages a consumer handled", ["service", "kind"])
HANDLE_SECONDS = Histogram(
    "habla_handle_seconds", "Time a consumer's handler took per message", ["service", "kind"], buckets=_BUCKETS
)
SKIPPED = Counter("habla_events_skipped", "Superseded messages acked without work", ["service", "kind"])
FAILURES = Counter("habla_handle_failures", "Handler exceptions (retried)", ["service", "kind", "error"])
DEAD_LETTERS = Counter("habla_dead_letters", "Messages given up on", ["service", "kind"])
STAGE_SECONDS = Histogram(
    "habla_stage_seconds",
    "Latency of a stage of the live path, from the gateway receiving the audio to the result",
    ["stage"],
    buckets=_BUCKETS,
)


def observe_stage(stage: str, received_at: float, now: float | None = None) -> None:
    """Record ``stage``'s latency from ``received_at`` (wall-clock seconds; 0 = unknown)."""
    if received_at > 0:
        STAGE_SECONDS.labels(stage).observe(max(0.0, (now or time.time()) - received_at))


class StreamLag(Collector):
    """Length, lag and pending count of a consumer group's streams, read when scraped."""

    def __init__(self, r: redis.Redis, group: str, kinds: Sequence[str], partitions: int) -> None:
        self.r, self.group, self.kinds, self.partitions = r, group, tuple(kinds), partitions

    def collect(self) -> Iterator[GaugeMetricFamily]:
        length = GaugeMetricFamily("habla_stream_length", "Entries in the stream", labels=["stream"])
        lag = GaugeMetricFamily(
            "habla_stream_lag", "Entries not yet delivered to the group", labels=["group", "stream"]
        )
        pending = GaugeMetricFamily(
            "habla_stream_pending", "Entries delivered to the group, not yet acked", labels=["group", "stream"]
        )
        for kind in self.kinds:
            for p in range(self.partitions):
                stream = stream_key(kind, p)
                try:
                    groups: list[dict[str, Any]] = self.r.xinfo_groups(stream)
                    size = int(self.r.xlen(stream))
                except redis.RedisError:
                    continue  # not there (yet), or Redis is away: no sample rather than a failed scrape
                length.add_metric([stream], size)
                for g in groups:
                    name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
                    if name != self.group:
                        continue
                    behind = g.get("lag")
                    if behind is None:  # Redis 6 has no lag (nor does 7 after deletions): count them
                        behind = self._after(stream, g["last-delivered-id"])
                    lag.add_metric([self.group, stream], float(behind))
                    pending.add_metric([self.group, stream], g["pending"])
        yield length
        yield lag
        yield pending

    def _after(self, stream: str, last_delivered: bytes | str) -> int:
        """Entries after ``last_delivered`` (at most 100 000 counted)."""
        mark = last_delivered.decode() if isinstance(last_delivered, bytes) else last_delivered
        return len(self.r.xrange(stream, min=f"({mark}", max="+", count=100_000) or [])


def serve_metrics(port: int, host: str = "127.0.0.1") -> bool:
    """Serve this process's metrics at ``http://host:port/metrics`` (port 0: not at all)."""
    if port <= 0:
        return False
    start_http_server(port, addr=host)
    log.info("metrics at http://%s:%d/metrics", host, port)
    return True


def watch_streams(r: redis.Redis, group: str, kinds: Sequence[str], partitions: int) -> StreamLag:
    """Report the lag of ``group``'s streams with this process's metrics."""
    collector = StreamLag(r, group, kinds, partitions)
    REGISTRY.register(collector)
    return collector
