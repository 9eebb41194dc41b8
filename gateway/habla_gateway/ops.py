"""The ops view's data: every service's Prometheus metrics, scraped and turned into chart points.

:class:`OpsMonitor` scrapes each ``GATEWAY_OPS_TARGETS`` endpoint (in threads, a short timeout
each; a target that does not answer is reported down) and the gateway's own registry, every
2 s while someone watches ``/ops`` (``GET /api/ops`` in the last minute) and every 10 s
otherwise, and keeps the last 15 minutes of derived points:

* ``latency``: p50 and p95 of each ``habla_stage_seconds`` stage over the last 30 s, from the
  histogram's bucket deltas (interpolated within a bucket, as Prometheus' histogram_quantile);
* ``behind`` / ``shed``: ``habla_consumer_behind_seconds`` and ``habla_shed_level`` per service
  (when a service reports them); ``lag``: ``habla_stream_lag`` summed per consumer group;
* ``throughput``: messages handled per second per service (the gateway: frames sent), and
  ``errors``: handler failures plus dead letters per second, both over the last 10 s;
* ``cpu`` (% of one core) and ``rss`` (bytes) per process; ``gpu``: memory used and total, and
  utilisation, when a service reports them; ``sockets`` / ``sessions`` of the gateway.

The pure parts (:func:`quantile`, :func:`counter_delta`, :func:`derive`, :func:`health`) work
on plain numbers, so they are tested without a server.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import importlib.metadata
import logging
import math
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import anyio
from anyio import to_thread
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import REGISTRY, CollectorRegistry
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from .auth import requires_token
from .rest import error_response

__all__ = [
    "GATEWAY",
    "Health",
    "OpsMonitor",
    "Point",
    "Raw",
    "Snapshot",
    "counter_delta",
    "derive",
    "extract",
    "health",
    "ops_data",
    "ops_page",
    "quantile",
    "readings_at",
    "vendor_file",
]

log = logging.getLogger("habla.gateway.ops")

GATEWAY = "gateway"  # the gateway's own registry, always scraped
HISTORY_S = 15 * 60  # points kept
LATENCY_WINDOW_S = 30.0  # percentiles over the observations of the last 30 s
RATE_WINDOW_S = 10.0  # rates over the last 10 s
KEEP_SNAPSHOTS_S = 2 * LATENCY_WINDOW_S  # readings kept to count the windows from
WATCHED_INTERVAL_S = 2.0
IDLE_INTERVAL_S = 10.0
WATCH_GRACE_S = 60.0  # "someone watches": /api/ops asked for within this long
SCRAPE_TIMEOUT_S = 1.5
MAX_BODY = 8 * 1024 * 1024
# health
# what only a stream consumer reports (the gateway, which is none, may hold these names when
# it shares a process with consumers, as in tests)
_CONSUMER_ONLY = ("habla_shed_", "habla_consumer_behind_seconds")
BEHIND_LIMIT_S = 15.0  # a final this late is translated express (TRANSLATE_EXPRESS_AFTER_S)
LAG_TREND_S = 60.0
GPU_MEMORY_LIMIT = 0.90
GPU_BUSY_LIMIT = 0.95
GPU_BUSY_FOR_S = 30.0


class _Sample(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def labels(self) -> dict[str, str]: ...
    @property
    def value(self) -> float: ...


# --- one target's numbers at one scrape --------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """What one process reported, as read (counters cumulative since it started)."""

    stages: dict[str, dict[float, float]] = field(default_factory=dict)  # stage -> le -> cumulative count
    handled: dict[str, float] = field(default_factory=dict)  # service -> messages (the gateway: frames sent)
    errors: dict[str, float] = field(default_factory=dict)  # service -> failures + dead letters
    cpu_seconds: float | None = None
    rss: float | None = None
    behind: dict[str, float] = field(default_factory=dict)  # service -> seconds
    shed: dict[str, float] = field(default_factory=dict)  # service -> level
    lag: dict[tuple[str, str], float] = field(default_factory=dict)  # (group, stream) -> entries
    gpu_used: dict[str, float] = field(default_factory=dict)  # device -> bytes
    gpu_total: dict[str, float] = field(default_factory=dict)
    gpu_util: dict[str, float] = field(default_factory=dict)  # device -> 0..1
    sockets: float | None = None
    sessions: float | None = None


def _device(labels: Mapping[str, str]) -> str:
    """A GPU's key: its labels but the reporting service's (two services may read one GPU)."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "service") or "0"


def _add(d: dict[Any, float], key: Any, value: float) -> None:
    d[key] = d.get(key, 0.0) + value


def extract(samples: Iterable[_Sample]) -> Raw:
    """The numbers the ops view uses, from one process's samples (parsed or collected)."""
    raw = Raw()
    gauges: dict[str, float] = {}
    for s in samples:
        name, labels, value = s.name, s.labels, float(s.value)
        if math.isnan(value):
            continue
        service = labels.get("service", "?")
        if name == "habla_stage_seconds_bucket":
            _add(raw.stages.setdefault(labels.get("stage", "?"), {}), float(labels["le"]), value)
        elif name == "habla_events_handled_total":
            _add(raw.handled, service, value)
        elif name == "habla_events_delivered_total":
            _add(raw.handled, GATEWAY, value)
        elif name in ("habla_handle_failures_total", "habla_dead_letters_total"):
            _add(raw.errors, service, value)
        elif name == "habla_consumer_behind_seconds":
            raw.behind[service] = max(value, raw.behind.get(service, value))
        elif name == "habla_shed_level":
            raw.shed[service] = max(value, raw.shed.get(service, value))
        elif name == "habla_stream_lag":
            raw.lag[(labels.get("group", "?"), labels.get("stream", "?"))] = value
        elif name == "habla_gpu_memory_used_bytes":
            _add(raw.gpu_used, _device(labels), value)
        elif name == "habla_gpu_memory_total_bytes":
            _add(raw.gpu_total, _device(labels), value)
        elif name == "habla_gpu_utilization_ratio":
            raw.gpu_util[_device(labels)] = value
        elif name in _GAUGES:
            gauges[name] = value
    return replace(
        raw,
        cpu_seconds=gauges.get("process_cpu_seconds_total"),
        rss=gauges.get("process_resident_memory_bytes"),
        sockets=gauges.get("habla_gateway_sockets"),
        sessions=gauges.get("habla_gateway_sessions"),
    )


_GAUGES = frozenset(
    ("process_cpu_seconds_total", "process_resident_memory_bytes", "habla_gateway_sockets", "habla_gateway_sessions")
)


@dataclass(frozen=True)
class Snapshot:
    """Every target that answered one scrape, at wall time ``t``."""

    t: float
    raw: dict[str, Raw]


# --- the pure parts -----------------------------------------------------------------------------


def counter_delta(now: float, before: float) -> float:
    """How much a counter grew; a counter that went down was reset (its process restarted)."""
    return now - before if now >= before else now


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The ``q`` quantile of a histogram's cumulative ``buckets`` (upper bound -> count,
    ``+Inf`` included), interpolated linearly within its bucket; None with no observations.
    A quantile in the ``+Inf`` bucket is the highest finite bound (as Prometheus does)."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    total = buckets[bounds[-1]]
    rank = q * total
    lower, below = 0.0, 0.0
    for le in bounds:
        count = buckets[le]
        if count >= rank and count > below:
            if math.isinf(le):
                return lower
            return lower + (le - lower) * (rank - below) / (count - below)
        lower, below = (le if not math.isinf(le) else lower), count
    return lower


def _bucket_delta(now: Mapping[float, float], before: Mapping[float, float]) -> dict[float, float]:
    inf = math.inf
    if now.get(inf, 0.0) < before.get(inf, 0.0):  # reset: everything since the restart
        return dict(now)
    return {le: max(0.0, count - before.get(le, 0.0)) for le, count in now.items()}


def _rates(now: Mapping[str, float], before: Mapping[str, float], dt: float, out: dict[str, float]) -> None:
    for key, value in now.items():
        _add(out, key, counter_delta(value, before.get(key, 0.0)) / dt)


@dataclass(frozen=True)
class Point:
    """The ops view at one moment (JSON: :meth:`as_json`)."""

    t: float
    latency: dict[str, tuple[float | None, float | None]]  # stage -> (p50, p95) over the last 30 s, seconds
    behind: dict[str, float]
    shed: dict[str, float]
    lag: dict[str, float]  # group -> entries not yet delivered, summed over its streams
    throughput: dict[str, float]  # service -> messages / s
    errors: dict[str, float]  # service -> failures + dead letters / s
    cpu: dict[str, float]  # process -> % of one core
    rss: dict[str, float]  # process -> bytes
    gpu: dict[str, float] | None  # used, total (bytes), util (0..1); None: no GPU reported
    sockets: float | None
    sessions: float | None
    up: dict[str, bool]

    def as_json(self) -> dict[str, Any]:
        def r(d: Mapping[str, float], nd: int) -> dict[str, float]:
            return {k: round(v, nd) if nd else round(v) for k, v in sorted(d.items())}

        return {
            "t": round(self.t, 3),
            "latency": {
                k: [None if v is None else round(v, 3) for v in pair] for k, pair in sorted(self.latency.items())
            },
            "behind": r(self.behind, 2),
            "shed": r(self.shed, 0),
            "lag": r(self.lag, 0),
            "throughput": r(self.throughput, 3),
            "errors": r(self.errors, 3),
            "cpu": r(self.cpu, 1),
            "rss": r(self.rss, 0),
            "gpu": None if self.gpu is None else r(self.gpu, 3),
            "sockets": self.sockets,
            "sessions": self.sessions,
            "up": dict(sorted(self.up.items())),
        }


def readings_at(history: Sequence[Snapshot], at: float) -> dict[str, tuple[float, Raw]]:
    """Each target's reading to count from for a window starting at ``at``: the one in the
    newest snapshot taken at or before ``at`` that has the target, else (a shorter history, or
    a target that came up since) the oldest that has it. Target -> (time, reading)."""
    out: dict[str, tuple[float, Raw]] = {}
    for snap in history:  # oldest first
        for name, raw in snap.raw.items():
            if snap.t <= at or name not in out:
                out[name] = (snap.t, raw)
    return out


def derive(now: Snapshot, history: Sequence[Snapshot], up: Mapping[str, bool]) -> Point:
    """The point at ``now`` from the snapshots before it (oldest first): percentiles from each
    target's bucket deltas over the last 30 s, rates over the last 10 s (a target with no
    earlier reading adds nothing yet), levels as read at ``now``."""
    buckets: dict[str, dict[float, float]] = {}
    for name, (_t, base) in readings_at(history, now.t - LATENCY_WINDOW_S).items():
        raw = now.raw.get(name)
        if raw is None:
            continue
        for stage, counts in raw.stages.items():
            for le, n in _bucket_delta(counts, base.stages.get(stage, {})).items():
                _add(buckets.setdefault(stage, {}), le, n)
    latency = {stage: (quantile(0.5, b), quantile(0.95, b)) for stage, b in buckets.items()}

    throughput: dict[str, float] = {}
    errors: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for name, (t, base) in readings_at(history, now.t - RATE_WINDOW_S).items():
        raw = now.raw.get(name)
        if raw is None or now.t <= t:
            continue
        dt = now.t - t
        _rates(raw.handled, base.handled, dt, throughput)
        _rates(raw.errors, base.errors, dt, errors)
        if raw.cpu_seconds is not None and base.cpu_seconds is not None:
            cpu[name] = 100.0 * counter_delta(raw.cpu_seconds, base.cpu_seconds) / dt

    behind: dict[str, float] = {}
    shed: dict[str, float] = {}
    lag_by_stream: dict[tuple[str, str], float] = {}
    used: dict[str, float] = {}
    total: dict[str, float] = {}
    util: dict[str, float] = {}
    rss: dict[str, float] = {}
    sockets: float | None = None
    sessions: float | None = None
    for name, raw in now.raw.items():
        for k, v in raw.behind.items():
            behind[k] = max(v, behind.get(k, v))
        for k, v in raw.shed.items():
            shed[k] = max(v, shed.get(k, v))
        for key, v in raw.lag.items():  # one group's stream read by two workers: the same number twice
            lag_by_stream[key] = max(v, lag_by_stream.get(key, v))
        for src, dst in ((raw.gpu_used, used), (raw.gpu_total, total), (raw.gpu_util, util)):
            for k, v in src.items():  # one GPU seen by two services: count it once
                dst[k] = max(v, dst.get(k, v))
        if raw.rss is not None:
            rss[name] = raw.rss
        if raw.sockets is not None:
            sockets = (sockets or 0.0) + raw.sockets
        if raw.sessions is not None:
            sessions = (sessions or 0.0) + raw.sessions
    lag: dict[str, float] = {}
    for (group, _stream), v in lag_by_stream.items():
        _add(lag, group, v)
    gpu = None
    if used or total or util:
        gpu = {"used": sum(used.values()), "total": sum(total.values()), "util": max(util.values(), default=0.0)}
    return Point(
        t=now.t,
        latency=latency,
        behind=behind,
        shed=shed,
        lag=lag,
        throughput=throughput,
        errors=errors,
        cpu=cpu,
        rss=rss,
        gpu=gpu,
        sockets=sockets,
        sessions=sessions,
        up=dict(up),
    )


@dataclass(frozen=True)
class Health:
    """The badge: ``status`` ("keeping up", "falling behind", "GPU near its limit", "down: asr",
    several joined by " · "), ``level`` (ok / warn / bad) and the reasons, in words."""

    status: str
    level: str
    reasons: list[str]

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "level": self.level, "reasons": self.reasons}


def _since(points: Sequence[Point], seconds: float) -> list[Point]:
    return [p for p in points if p.t >= points[-1].t - seconds] if points else []


def _covers(window: Sequence[Point], seconds: float) -> bool:
    """``window`` (the points of the last ``seconds``) spans most of it."""
    return len(window) >= 2 and window[-1].t - window[0].t >= 0.75 * seconds


def growing_lag(points: Sequence[Point], seconds: float = LAG_TREND_S) -> dict[str, tuple[float, float]]:
    """Groups whose backlog grew over the last ``seconds``: every reading of the last third is
    above every reading of the first third (a steady climb, not one busy moment). Group ->
    (highest then, lowest now)."""
    window = _since(points, seconds)
    if not _covers(window, seconds):
        return {}
    t0, t1 = window[0].t, window[-1].t
    third = (t1 - t0) / 3
    first = [p for p in window if p.t <= t0 + third]
    last = [p for p in window if p.t >= t1 - third]
    out = {}
    for group in {g for p in window for g in p.lag}:
        before = [p.lag[group] for p in first if group in p.lag]
        after = [p.lag[group] for p in last if group in p.lag]
        if before and after and min(after) > max(before):
            out[group] = (max(before), min(after))
    return out


def _shedding(service: str, level: float) -> str:
    what = "thinning live partials" if level < 2 else "handling finals only"
    return f"{service} is {what} (shed level {level:.0f})"


def health(points: Sequence[Point]) -> Health:
    """What the badge says about the newest point (and the minute before it)."""
    if not points:
        return Health("starting", "warn", ["no metrics read yet"])
    latest = points[-1]
    states: list[str] = []
    reasons: list[str] = []
    down = sorted(name for name, ok in latest.up.items() if not ok)
    if down:
        states.append("down: " + ", ".join(down))
        reasons.extend(f"{name} does not answer" for name in down)

    behind = [f"{svc} is {s:.1f} s behind" for svc, s in sorted(latest.behind.items()) if s >= BEHIND_LIMIT_S]
    # thinning partials is coping (a warning); handling finals only is falling behind
    thinning = [_shedding(svc, lvl) for svc, lvl in sorted(latest.shed.items()) if 1 <= lvl < 2]
    shedding = [_shedding(svc, lvl) for svc, lvl in sorted(latest.shed.items()) if lvl >= 2]
    grown = [
        f"{group}'s backlog grew from {a:.0f} to {b:.0f} in the last minute"
        for group, (a, b) in sorted(growing_lag(points).items())
    ]
    if behind or shedding or grown:
        states.append("falling behind")
        reasons.extend(behind + shedding + grown)

    gpu = latest.gpu
    hot: list[str] = []
    if gpu is not None:
        if gpu["total"] > 0 and gpu["used"] / gpu["total"] >= GPU_MEMORY_LIMIT:
            hot.append(f"GPU memory {100 * gpu['used'] / gpu['total']:.0f} % used")
        window = _since(points, GPU_BUSY_FOR_S)
        if _covers(window, GPU_BUSY_FOR_S) and all(
            p.gpu is not None and p.gpu["util"] >= GPU_BUSY_LIMIT for p in window
        ):
            hot.append(f"GPU over {100 * GPU_BUSY_LIMIT:.0f} % busy for {GPU_BUSY_FOR_S:.0f} s")
    if hot:
        states.append("GPU near its limit")
        reasons.extend(hot)

    if not states and thinning:
        return Health("keeping up · thinning partials", "warn", thinning)
    if not states:
        most = max(latest.behind.values(), default=None)
        lag = sum(latest.lag.values())
        answering = sum(latest.up.values())
        reasons.append(
            f"{answering} process{'es' if answering != 1 else ''} answering; "
            + (f"consumers at most {most:.1f} s behind; " if most is not None else "")
            + f"{lag:.0f} entries waiting; no backlog growing"
        )
        return Health("keeping up", "ok", reasons)
    level = "bad" if down or behind or shedding or grown else "warn"
    return Health(" · ".join(states), level, reasons)


# --- scraping -----------------------------------------------------------------------------------


@dataclass
class TargetStatus:
    name: str
    url: str
    up: bool = False
    error: str = ""
    scrape_ms: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "up": self.up,
            "error": self.error,
            "scrape_ms": round(self.scrape_ms, 1),
        }


def fetch_metrics(url: str, timeout: float = SCRAPE_TIMEOUT_S) -> Raw:
    """GET a Prometheus endpoint and extract its numbers; OSError / ValueError when it fails."""
    req = urllib.request.Request(url, headers={"Accept": "text/plain"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        body = r.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise ValueError(f"more than {MAX_BODY // 2**20} MiB of metrics")
    text = body.decode("utf-8", errors="replace")
    return extract(s for family in text_string_to_metric_families(text) for s in family.samples)


def _why(e: Exception) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code}"
    if isinstance(e, urllib.error.URLError):
        return str(e.reason)
    if isinstance(e, TimeoutError):
        return f"no answer in {SCRAPE_TIMEOUT_S:.1f} s"
    return str(e) or type(e).__name__


class OpsMonitor:
    """Scrapes the targets and the gateway's own registry, keeping 15 minutes of points."""

    def __init__(
        self,
        targets: Sequence[tuple[str, str]],
        *,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.targets = tuple(targets)
        self.registry = registry  # the gateway's own metrics
        self.status = {GATEWAY: TargetStatus(GATEWAY, "(this process)")}
        self.status.update((name, TargetStatus(name, url)) for name, url in self.targets)
        self.snapshots: deque[Snapshot] = deque()
        self.points: deque[Point] = deque()
        self.watched_at = -math.inf
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()

    # the loop

    def interval(self) -> float:
        watched = time.monotonic() - self.watched_at < WATCH_GRACE_S
        return WATCHED_INTERVAL_S if watched else IDLE_INTERVAL_S

    async def run(self) -> None:
        """Scrape until cancelled (the gateway's lifespan runs this as a task)."""
        while True:
            try:
                await self.refresh(max_age=0.5)
            except Exception:  # a bug here must not take the gateway down; it is logged
                log.exception("ops: scraping failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval())

    def watch(self) -> None:
        """Someone is looking: scrape every 2 s from now (at once, if idle)."""
        idle = self.interval() > WATCHED_INTERVAL_S
        self.watched_at = time.monotonic()
        if idle:
            self._wake.set()

    async def refresh(self, max_age: float = WATCHED_INTERVAL_S * 0.75) -> None:
        """Scrape now, unless the newest point is younger than ``max_age`` seconds."""
        async with self._lock:
            if self.points and time.time() - self.points[-1].t < max_age:
                return
            await self.scrape()

    async def scrape(self) -> Point:
        raws: dict[str, Raw] = {}

        async def one(name: str, url: str) -> None:
            status = self.status[name]
            started = time.perf_counter()
            try:
                raws[name] = await to_thread.run_sync(fetch_metrics, url)
                status.up, status.error = True, ""
            except (OSError, ValueError, http.client.HTTPException) as e:
                if status.up:
                    log.warning("ops: %s stopped answering at %s: %s", name, url, _why(e))
                elif not status.error:  # at start, before it has loaded its models
                    log.info("ops: %s does not answer at %s yet: %s", name, url, _why(e))
                status.up, status.error = False, _why(e)
            status.scrape_ms = 1000 * (time.perf_counter() - started)

        async with anyio.create_task_group() as tg:
            for name, url in self.targets:
                tg.start_soon(one, name, url)
            tg.start_soon(self._own, raws)
        now = Snapshot(time.time(), raws)
        point = self.add(now)
        return point

    async def _own(self, raws: dict[str, Raw]) -> None:
        started = time.perf_counter()
        raws[GATEWAY] = await to_thread.run_sync(
            lambda: extract(
                s
                for family in self.registry.collect()
                for s in family.samples
                if not s.name.startswith(_CONSUMER_ONLY)  # the gateway runs no consumer
            )
        )
        status = self.status[GATEWAY]
        status.up, status.scrape_ms = True, 1000 * (time.perf_counter() - started)

    def add(self, now: Snapshot) -> Point:
        """Derive the point of a new snapshot and keep both (the old ones age out)."""
        point = derive(now, self.snapshots, {name: s.up for name, s in self.status.items()})
        self.snapshots.append(now)
        while self.snapshots[0].t < now.t - KEEP_SNAPSHOTS_S:
            self.snapshots.popleft()
        self.points.append(point)
        while self.points and self.points[0].t < now.t - HISTORY_S:
            self.points.popleft()
        return point

    def payload(self, since: float = 0.0) -> dict[str, Any]:
        """``GET /api/ops``: the health, the targets and the points newer than ``since``."""
        points = list(self.points)
        return {
            "now": round(time.time(), 3),
            "interval_s": self.interval(),
            "history_s": HISTORY_S,
            "health": health(points).as_json(),
            "targets": [s.as_json() for s in self.status.values()],
            "points": [j for j in (p.as_json() for p in points if p.t > since - 1) if j["t"] > since],  # t as sent
        }


# --- routes -------------------------------------------------------------------------------------

# The charting library (uPlot) ships in the uplot-python wheel, installed without its Python
# dependencies (requirements-nodeps.lock): its files are found, never imported.
VENDOR = {"uPlot.iife.js": "text/javascript", "uPlot.min.css": "text/css"}
MISSING_CHARTS = "the charting library is not installed: pip install --no-deps uplot-python==1.1.1"


def vendor_path(name: str) -> Path | None:
    """Where uplot-python's copy of ``name`` is, or None when it is not installed."""
    try:
        dist = importlib.metadata.distribution("uplot-python")
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(f"uplot/static/{name}")))
    return path if path.is_file() else None


async def vendor_file(request: Request) -> Response:
    """``GET /vendor/uPlot.iife.js`` and ``/vendor/uPlot.min.css`` (no token: a public library)."""
    name = request.path_params["name"]
    if name not in VENDOR:
        return error_response(404, "not_found", f"no vendored file {name!r}")
    path = vendor_path(name)
    if path is None:
        return error_response(404, "not_found", MISSING_CHARTS)
    return FileResponse(path, media_type=VENDOR[name], headers={"Cache-Control": "public, max-age=86400"})


async def ops_page(request: Request) -> Response:
    """``GET /ops``: the ops page (its data comes from ``/api/ops`` with the token)."""
    path = Path(request.state.config.web_dir) / "ops.html"
    if not path.is_file():
        return error_response(404, "not_found", f"no ops page at {path} (set GATEWAY_WEB_DIR)")
    return FileResponse(path, media_type="text/html", headers={"Cache-Control": "no-cache"})


@requires_token
async def ops_data(request: Request) -> Response:
    """``GET /api/ops[?since=T]``: the health badge, every target's state and the points newer
    than ``T`` (epoch seconds; all 15 minutes without it). Asking marks the view as watched."""
    try:
        since = float(request.query_params.get("since") or 0)
    except ValueError:
        return error_response(400, "bad_request", "since must be a time in epoch seconds")
    monitor: OpsMonitor = request.state.ops
    monitor.watch()
    await monitor.refresh()
    payload = monitor.payload(since)
    payload["charts"] = vendor_path("uPlot.iife.js") is not None
    return JSONResponse(payload, headers={"Cache-Control": "no-store"})
