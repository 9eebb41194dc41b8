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
* ``habla_model_load_seconds{service}``: how long the service took to start its handler
  (loading and warming up its models) when it last started;
* ``habla_consumer_behind_seconds{service}``, ``habla_shed_level{service}``,
  ``habla_shed_total{service,kind}``: how far behind the live audio a consumer is, and what
  its load-shedding policy does about it (:mod:`habla_common.shedding`);
* ``habla_gpu_memory_used_bytes{gpu}``, ``habla_gpu_memory_total_bytes{gpu}``,
  ``habla_gpu_utilization_ratio{gpu}`` (0..1), ``habla_gpu_process_memory_bytes{gpu}`` (this
  process's own, when NVML lists it): read from NVML when scraped, by every process that serves
  metrics (:class:`GpuStats`); nothing where there is no NVIDIA driver or GPU;
* ``process_resident_memory_bytes``, ``process_cpu_seconds_total``: prometheus-client's own.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from prometheus_client import Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from habla_contracts.streams import stream_key

__all__ = [
    "DEAD_LETTERS",
    "FAILURES",
    "GPU_METRICS",
    "HANDLED",
    "HANDLE_SECONDS",
    "MODEL_LOAD_SECONDS",
    "SKIPPED",
    "STAGE_SECONDS",
    "GpuReading",
    "GpuStats",
    "StreamLag",
    "gpu_families",
    "observe_stage",
    "serve_metrics",
    "watch_gpus",
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
MODEL_LOAD_SECONDS = Gauge(
    "habla_model_load_seconds", "Time the service took to load and warm up its models at start", ["service"]
)


def observe_stage(stage: str, received_at: float, now: float | None = None) -> None:
    """Record ``stage``'s latency from ``received_at`` (wall-clock seconds; 0 = unknown)."""
    if received_at > 0:
        STAGE_SECONDS.labels(stage).observe(max(0.0, (now or time.time()) - received_at))


def _stream_families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
    return (
        GaugeMetricFamily("habla_stream_length", "Entries in the stream", labels=["stream"]),
        GaugeMetricFamily("habla_stream_lag", "Entries not yet delivered to the group", labels=["group", "stream"]),
        GaugeMetricFamily(
            "habla_stream_pending", "Entries delivered to the group, not yet acked", labels=["group", "stream"]
        ),
    )


class StreamLag(Collector):
    """Length, lag and pending count of a consumer group's streams, read when scraped."""

    def __init__(self, r: redis.Redis, group: str, kinds: Sequence[str], partitions: int) -> None:
        self.r, self.group, self.kinds, self.partitions = r, group, tuple(kinds), partitions

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The metric families :meth:`collect` yields, without samples (and without Redis)."""
        yield from _stream_families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        length, lag, pending = _stream_families()
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


# name -> help of the GPU gauges, each labelled by the GPU's index
GPU_METRICS = {
    "habla_gpu_memory_used_bytes": "GPU memory in use (every process on the GPU)",
    "habla_gpu_memory_total_bytes": "GPU memory in all",
    "habla_gpu_utilization_ratio": "Share of the last sample period the GPU was busy (0..1)",
    "habla_gpu_process_memory_bytes": "GPU memory this process uses",
}


@dataclass(frozen=True)
class GpuReading:
    """What NVML said about one GPU. ``None``: NVML could not tell (not supported, or this
    process is not among the GPU's processes)."""

    index: int
    used_bytes: int | None
    total_bytes: int | None
    utilization_percent: float | None
    process_bytes: int | None


def gpu_families(readings: Iterable[GpuReading]) -> list[GaugeMetricFamily]:
    """The GPU gauges of ``readings`` (an unknown value gets no sample)."""
    families = {name: GaugeMetricFamily(name, doc, labels=["gpu"]) for name, doc in GPU_METRICS.items()}
    for r in readings:
        gpu = [str(r.index)]
        values = {
            "habla_gpu_memory_used_bytes": r.used_bytes,
            "habla_gpu_memory_total_bytes": r.total_bytes,
            "habla_gpu_utilization_ratio": None if r.utilization_percent is None else r.utilization_percent / 100.0,
            "habla_gpu_process_memory_bytes": r.process_bytes,
        }
        for name, v in values.items():
            if v is not None:
                families[name].add_metric(gpu, float(v))
    return list(families.values())


class GpuStats(Collector):
    """Memory and utilisation of each NVIDIA GPU, read from NVML (``pynvml``) when scraped.

    NVML is initialised at the first scrape. Where it cannot be (no driver, no GPU, no
    ``libnvidia-ml`` in the container) the collector yields nothing from then on and says so
    once at debug level; a scrape never fails because of it. ``nvml`` is the NVML binding to
    use (``pynvml`` by default; tests pass a fake). NVML names processes by their pid in the
    host's pid namespace, so inside a container this process is seldom listed and
    ``habla_gpu_process_memory_bytes`` stays empty there.
    """

    def __init__(self, nvml: Any | None = None, pid: int | None = None) -> None:
        self._nvml = nvml
        self._pid = os.getpid() if pid is None else pid
        self._lock = threading.Lock()
        self._ready: bool | None = None  # None: not tried yet
        self._warned = False

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The metric families :meth:`collect` may yield, without samples (and without NVML)."""
        yield from gpu_families(())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        nvml = self._start()
        if nvml is None:
            return
        try:
            readings = self.read(nvml)
        except Exception:  # a scrape must not fail: say so (once loudly) and report nothing this time
            log.log(logging.DEBUG if self._warned else logging.WARNING, "reading the GPUs failed", exc_info=True)
            self._warned = True
            return
        yield from gpu_families(readings)

    def read(self, nvml: Any) -> list[GpuReading]:
        """One reading per GPU NVML reports."""
        readings = []
        for index in range(int(nvml.nvmlDeviceGetCount())):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            memory = _ask(nvml, nvml.nvmlDeviceGetMemoryInfo, handle)
            utilization = _ask(nvml, nvml.nvmlDeviceGetUtilizationRates, handle)
            processes = _ask(nvml, nvml.nvmlDeviceGetComputeRunningProcesses, handle) or []
            mine = [p.usedGpuMemory for p in processes if p.pid == self._pid and p.usedGpuMemory is not None]
            readings.append(
                GpuReading(
                    index=index,
                    used_bytes=None if memory is None else int(memory.used),
                    total_bytes=None if memory is None else int(memory.total),
                    utilization_percent=None if utilization is None else float(utilization.gpu),
                    process_bytes=sum(mine) if mine else None,
                )
            )
        return readings

    def _start(self) -> Any | None:
        """The initialised NVML binding, or ``None`` where there is none (tried once)."""
        with self._lock:
            if self._ready is None:
                self._ready = self._init()
            return self._nvml if self._ready else None

    def _init(self) -> bool:
        try:
            nvml = self._nvml if self._nvml is not None else importlib.import_module("pynvml")
        except ImportError as e:
            log.debug("no GPU metrics: the NVML binding is not installed (%s)", e)
            return False
        try:
            nvml.nvmlInit()
        except (nvml.NVMLError, OSError) as e:  # no driver, no GPU, no libnvidia-ml in the container
            log.debug("no GPU metrics: NVML is not available here (%s)", e)
            return False
        self._nvml = nvml
        return True


def _ask(nvml: Any, query: Any, handle: Any) -> Any:
    """``query(handle)``, or ``None`` when NVML cannot answer it for this GPU."""
    try:
        return query(handle)
    except nvml.NVMLError:
        return None


_gpu_stats: list[GpuStats] = []  # the one registered in this process, once there is one
_gpu_lock = threading.Lock()


def watch_gpus() -> GpuStats:
    """Report the GPUs with this process's metrics (registered once, however often called)."""
    with _gpu_lock:
        if not _gpu_stats:
            collector = GpuStats()
            REGISTRY.register(collector)
            _gpu_stats.append(collector)
        return _gpu_stats[0]


def serve_metrics(port: int, host: str = "127.0.0.1") -> bool:
    """Serve this process's metrics, the GPUs' included, at ``http://host:port/metrics``
    (port 0: not at all)."""
    if port <= 0:
        return False
    watch_gpus()
    start_http_server(port, addr=host)
    log.info("metrics at http://%s:%d/metrics", host, port)
    return True


def watch_streams(r: redis.Redis, group: str, kinds: Sequence[str], partitions: int) -> StreamLag:
    """Report the lag of ``group``'s streams with this process's metrics."""
    collector = StreamLag(r, group, kinds, partitions)
    REGISTRY.register(collector)
    return collector
