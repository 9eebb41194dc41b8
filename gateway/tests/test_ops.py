"""The ops view: percentiles, rates and the health badge from real Prometheus text; ``/api/ops``
behind the token, scraping a live endpoint and reporting one that is down; uPlot's files;
``/metrics``; a malformed ``GATEWAY_OPS_TARGETS``."""

from __future__ import annotations

import importlib.metadata
import math
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from habla_common.errors import ConfigError
from habla_gateway import create_app
from habla_gateway.config import GatewayConfig, parse_ops_targets
from habla_gateway.ops import (
    Point,
    Raw,
    Snapshot,
    counter_delta,
    derive,
    extract,
    health,
    quantile,
)

BUCKETS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    """A registry holding the metrics a Habla consumer exports, as Prometheus text."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.stage = Histogram("habla_stage_seconds", "", ["stage"], buckets=BUCKETS, registry=self.registry)
        self.handled = Counter("habla_events_handled", "", ["service", "kind"], registry=self.registry)
        self.failures = Counter("habla_handle_failures", "", ["service", "kind", "error"], registry=self.registry)
        self.lag = Gauge("habla_stream_lag", "", ["group", "stream"], registry=self.registry)
        self.cpu = Counter("process_cpu_seconds", "", registry=self.registry)
        self.rss = Gauge("process_resident_memory_bytes", "", registry=self.registry)

    def raw(self) -> Raw:
        """Through the text format and its parser, as the gateway reads a service."""
        text = generate_latest(self.registry).decode()
        return extract(s for family in text_string_to_metric_families(text) for s in family.samples)


# --- the pure parts --------------------------------------------------------------------------


def test_quantile_interpolates_within_the_bucket_like_prometheus() -> None:
    buckets = {0.5: 2.0, 1.0: 6.0, 2.0: 10.0, math.inf: 10.0}
    assert quantile(0.5, buckets) == pytest.approx(0.5 + 0.5 * 3 / 4)  # rank 5: 3rd of 4 in (0.5, 1]
    assert quantile(0.95, buckets) == pytest.approx(1.0 + 1.0 * 3.5 / 4)
    assert quantile(0.5, {1.0: 1.0, math.inf: 10.0}) == 1.0  # in +Inf: the highest finite bound
    assert quantile(0.5, {1.0: 0.0, math.inf: 0.0}) is None
    assert quantile(0.5, {}) is None


def test_percentiles_come_from_the_bucket_deltas_of_the_window() -> None:
    """Old observations (before the window's base) do not count; the new ones set p50/p95."""
    p = Process("asr")
    for _ in range(50):
        p.stage.labels("speech_end_to_asr_final").observe(4.0)  # slow, long ago
    base = Snapshot(100.0, {"asr": p.raw()})
    fast = [0.3, 0.4, 0.6, 0.7, 0.8, 0.9, 1.2, 1.4, 1.6, 2.5]
    for v in fast:
        p.stage.labels("speech_end_to_asr_final").observe(v)
    now = Snapshot(130.0, {"asr": p.raw()})
    point = derive(now, [base], {"asr": True})
    p50, p95 = point.latency["speech_end_to_asr_final"]
    assert p50 is not None and p95 is not None
    assert 0.5 <= p50 <= 1.0  # the true median (0.85) is in the (0.5, 1] bucket
    assert 2.0 <= p95 <= 3.0  # the true p95 (2.5) is in (2, 3]
    # with no base (the first scrape) there is no window yet
    assert derive(now, [], {"asr": True}).latency == {}
    # a restarted process (counts went down) counts everything it has since its start
    q = Process("asr")
    q.stage.labels("speech_end_to_asr_final").observe(0.2)
    restarted = derive(Snapshot(160.0, {"asr": q.raw()}), [base, now], {"asr": True})
    assert restarted.latency["speech_end_to_asr_final"][0] == pytest.approx(0.125)  # in (0, 0.25]


def test_a_target_that_came_up_late_counts_from_its_first_reading() -> None:
    """The asr's endpoint answers only once its model is loaded, after the gateway's first scrape."""
    asr = Process("asr")
    gateway_only = Snapshot(0.0, {})
    first = Snapshot(10.0, {"asr": asr.raw()})
    for v in (0.7, 0.8, 0.9):
        asr.stage.labels("speech_end_to_asr_final").observe(v)
    asr.handled.labels("asr", "speech.segmented").inc(3)
    point = derive(Snapshot(40.0, {"asr": asr.raw()}), [gateway_only, first], {"asr": True})
    assert point.latency["speech_end_to_asr_final"][0] == pytest.approx(0.5 + 0.5 * 1.5 / 3)
    assert point.throughput == pytest.approx({"asr": 0.1})  # 3 in the 30 s since its first reading


def test_rates_per_service_and_process_and_a_reset_counter() -> None:
    assert counter_delta(15.0, 10.0) == 5.0
    assert counter_delta(3.0, 10.0) == 3.0  # reset: the process restarted
    asr, ingest = Process("asr"), Process("ingest")
    asr.handled.labels("asr", "speech.window").inc(100)
    asr.cpu.inc(2.0)
    ingest.handled.labels("ingest", "audio.chunk").inc(40)
    base = Snapshot(1000.0, {"asr": asr.raw(), "ingest": ingest.raw()})
    asr.handled.labels("asr", "speech.window").inc(30)
    asr.handled.labels("asr", "speech.segmented").inc(20)  # a new kind since the base: all of it counts
    asr.failures.labels("asr", "speech.window", "ValueError").inc(5)
    asr.cpu.inc(4.0)
    asr.rss.set(300e6)
    asr.lag.labels("asr", "speech.window:0").set(3)
    asr.lag.labels("asr", "speech.window:1").set(4)
    ingest.handled.labels("ingest", "audio.chunk").inc(40)
    late = Process("diarize")  # answered now, not at the base: no rate yet
    late.handled.labels("diarize", "speech.segmented").inc(7)
    now = Snapshot(1010.0, {"asr": asr.raw(), "ingest": ingest.raw(), "diarize": late.raw()})
    point = derive(now, [base], {"asr": True, "ingest": True, "diarize": True})
    assert point.throughput == pytest.approx({"asr": 5.0, "ingest": 4.0})
    assert point.errors == pytest.approx({"asr": 0.5})
    assert point.cpu["asr"] == pytest.approx(40.0)  # 4 CPU-seconds in 10 s
    assert point.rss["asr"] == 300e6
    assert point.lag == {"asr": 7.0}
    assert point.gpu is None
    assert point.as_json()["throughput"] == {"asr": 5.0, "ingest": 4.0}


def test_gpu_metrics_seen_by_two_services_count_once() -> None:
    text = (
        'habla_gpu_memory_used_bytes{service="asr",gpu="0"} 20e9\n'
        'habla_gpu_memory_total_bytes{service="asr",gpu="0"} 24e9\n'
        'habla_gpu_utilization_ratio{service="asr",gpu="0"} 0.5\n'
    )
    asr = extract(s for f in text_string_to_metric_families(text) for s in f.samples)
    other = extract(s for f in text_string_to_metric_families(text.replace("asr", "translate")) for s in f.samples)
    point = derive(Snapshot(1.0, {"asr": asr, "translate": other}), [], {})
    assert point.gpu == {"used": 20e9, "total": 24e9, "util": 0.5}


def point(t: float, **kw: Any) -> Point:
    values: dict[str, Any] = dict(
        latency={},
        behind={},
        shed={},
        lag={},
        throughput={},
        errors={},
        cpu={},
        rss={},
        gpu=None,
        sockets=0.0,
        sessions=0.0,
        up={"gateway": True, "asr": True},
    )
    values.update(kw)
    return Point(t=t, **values)


def series(seconds: float, **kw: Any) -> list[Point]:
    """A point every 2 s for ``seconds``; a callable keyword gets the point's index."""
    n = int(seconds // 2) + 1
    return [point(1000.0 + 2 * i, **{k: v(i) if callable(v) else v for k, v in kw.items()}) for i in range(n)]


def test_health_keeping_up_says_why() -> None:
    h = health(series(60, behind={"asr": 0.4}, lag={"asr": 1.0}))
    assert (h.status, h.level) == ("keeping up", "ok")
    assert "0.4 s behind" in h.reasons[0] and "no backlog growing" in h.reasons[0]
    assert health([]).status == "starting"


def test_health_falling_behind_when_a_consumer_is_far_behind_or_handles_finals_only() -> None:
    h = health(series(10, behind={"asr": 15.2, "ingest": 0.1}))
    assert (h.status, h.level) == ("falling behind", "bad")
    assert h.reasons == ["asr is 15.2 s behind"]
    # a few seconds behind is latency on a slow CPU, not falling behind
    assert health(series(10, behind={"translate": 6.0})).status == "keeping up"
    h = health(series(10, shed={"translate": 1.0, "asr": 2.0, "ingest": 0.0}))
    assert h.status == "falling behind"
    assert h.reasons == ["asr is handling finals only (shed level 2)"]
    # thinning live partials is coping: a warning, not falling behind
    h = health(series(10, shed={"translate": 1.0, "asr": 0.0}))
    assert (h.status, h.level) == ("keeping up · thinning partials", "warn")
    assert h.reasons == ["translate is thinning live partials (shed level 1)"]


def test_health_falling_behind_when_a_backlog_grows_over_the_minute() -> None:
    h = health(series(60, lag=lambda i: {"asr": float(i)}))  # 0 -> 30 entries, steadily
    assert h.status == "falling behind"
    assert h.reasons == ["asr's backlog grew from 10 to 20 in the last minute"]
    # one busy moment, a backlog that stays where it was, or too short a history: not growing
    assert health(series(60, lag=lambda i: {"asr": 20.0 if i == 25 else 0.0})).status == "keeping up"
    assert health(series(60, lag={"asr": 30.0})).status == "keeping up"
    assert health(series(20, lag=lambda i: {"asr": float(i)})).status == "keeping up"


def test_health_gpu_near_its_limit() -> None:
    full = {"used": 23e9, "total": 24e9, "util": 0.3}
    h = health(series(4, gpu=full))
    assert (h.status, h.level) == ("GPU near its limit", "warn")
    assert h.reasons == ["GPU memory 96 % used"]
    busy = {"used": 4e9, "total": 24e9, "util": 0.97}
    assert health(series(30, gpu=busy)).status == "GPU near its limit"
    assert health(series(10, gpu=busy)).status == "keeping up"  # not busy for 30 s yet
    assert health(series(30, gpu=lambda i: busy if i != 8 else {**busy, "util": 0.5})).status == "keeping up"


def test_health_names_a_target_that_does_not_answer() -> None:
    h = health(series(4, up={"gateway": True, "asr": False}, behind={"ingest": 16.0}))
    assert h.status == "down: asr · falling behind" and h.level == "bad"
    assert "asr does not answer" in h.reasons


# --- configuration ---------------------------------------------------------------------------


def test_ops_targets_are_parsed_and_malformed_ones_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_ops_targets("") == ()
    assert parse_ops_targets(" asr=http://127.0.0.1:9101/metrics , ingest=http://h:9100/metrics,") == (
        ("asr", "http://127.0.0.1:9101/metrics"),
        ("ingest", "http://h:9100/metrics"),
    )
    for bad, why in [
        ("asr", "is not name=url"),
        ("=http://h/metrics", "is not name=url"),
        ("asr=127.0.0.1:9101/metrics", "http:// or https://"),
        ("a sr=http://h/metrics", "letters, digits"),
        ("gateway=http://h/metrics", "always read"),
        ("asr=http://a/metrics,asr=http://b/metrics", "named twice"),
    ]:
        with pytest.raises(ConfigError, match="GATEWAY_OPS_TARGETS") as e:
            parse_ops_targets(bad)
        assert why in str(e.value), bad
    monkeypatch.setenv("HABLA_TOKEN", "t")
    monkeypatch.setenv("GATEWAY_OPS_TARGETS", "asr:http://127.0.0.1:9101/metrics")
    with pytest.raises(ConfigError, match="is not name=url"):
        GatewayConfig.from_env()
    from habla_gateway.main import main

    with pytest.raises(SystemExit) as exit_:
        main()
    assert "GATEWAY_OPS_TARGETS" in str(exit_.value.code) and "name=url" in str(exit_.value.code)


# --- the routes ------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
def test_api_ops_needs_the_token(client: TestClient, headers: dict[str, str]) -> None:
    res = client.get("/api/ops", headers=headers)
    assert res.status_code == 401 and res.json()["error"] == "unauthorized"
    assert client.get("/api/ops?token=wrong").status_code == 401


def test_metrics_need_the_token_and_are_prometheus_text(client: TestClient, h: Any) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    res = client.get("/metrics", headers={"Authorization": f"Bearer {h.TOKEN}"})
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(res.text)}
    assert {"habla_gateway_sockets", "habla_gateway_sessions", "process_resident_memory_bytes"} <= names


def test_api_ops_with_the_token_reports_the_gateway_itself(client: TestClient, h: Any) -> None:
    res = client.get("/api/ops", headers={"Authorization": f"Bearer {h.TOKEN}"})
    assert res.status_code == 200 and res.headers["cache-control"] == "no-store"
    data = res.json()
    assert data["health"]["status"] == "keeping up" and data["health"]["level"] == "ok"
    assert [(t["name"], t["up"]) for t in data["targets"]] == [("gateway", True)]
    assert data["points"] and data["points"][-1]["rss"]["gateway"] > 10e6
    assert data["points"][-1]["sockets"] == 0 and data["interval_s"] == 2.0 and data["charts"] is True
    newest = data["points"][-1]["t"]
    later = client.get(f"/api/ops?since={newest}", headers={"Authorization": f"Bearer {h.TOKEN}"}).json()
    assert all(p["t"] > newest for p in later["points"])
    assert client.get("/api/ops?since=yesterday", headers={"Authorization": f"Bearer {h.TOKEN}"}).status_code == 400


@pytest.fixture
def live_target() -> Iterator[tuple[str, Process]]:
    """A real Prometheus endpoint (prometheus-client's own server) holding an asr's metrics."""
    process = Process("asr")
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=process.registry)
    yield f"http://127.0.0.1:{port}/metrics", process
    server.shutdown()
    thread.join(5)


def test_api_ops_scrapes_a_live_target_and_reports_one_that_is_down(
    r: Any, redis_url: str, database_url: str, h: Any, live_target: tuple[str, Process]
) -> None:
    url, asr = live_target
    down = f"http://127.0.0.1:{free_port()}/metrics"  # nothing listens there
    config = h.make_config(ops_targets=(("asr", url), ("translate", down)))
    auth = {"Authorization": f"Bearer {h.TOKEN}"}
    with TestClient(create_app(config, redis_url, database_url)) as client:
        first = client.get("/api/ops", headers=auth).json()
        for _ in range(12):
            asr.handled.labels("asr", "speech.window").inc()
            asr.stage.labels("speech_end_to_asr_final").observe(0.7)
        asr.lag.labels("asr", "speech.window:0").set(2)
        time.sleep(1.6)  # the next request scrapes again
        data = client.get("/api/ops", headers=auth).json()
    targets = {t["name"]: t for t in data["targets"]}
    assert targets["asr"]["up"] and targets["asr"]["url"] == url and targets["asr"]["error"] == ""
    assert not targets["translate"]["up"] and targets["translate"]["error"]  # connection refused, in words
    assert data["health"]["status"] == "down: translate" and data["health"]["level"] == "bad"
    assert "translate does not answer" in data["health"]["reasons"]
    last = data["points"][-1]
    assert last["up"] == {"asr": True, "gateway": True, "translate": False}
    assert last["throughput"]["asr"] > 0
    assert 0.5 < last["latency"]["speech_end_to_asr_final"][0] <= 1.0
    assert last["lag"] == {"asr": 2}
    assert len(data["points"]) > len(first["points"])


def test_the_page_and_uplot_are_served_without_a_token(client: TestClient) -> None:
    page = client.get("/ops")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'src="ops.js"' in page.text and 'src="vendor/uPlot.iife.js"' in page.text
    js = client.get("/vendor/uPlot.iife.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "var uPlot" in js.text
    css = client.get("/vendor/uPlot.min.css")
    assert css.status_code == 200 and ".uplot" in css.text
    assert client.get("/vendor/other.js").status_code == 404
    assert client.get("/ops.js").status_code == 200  # the page's own script, from web/


def test_without_uplot_the_board_says_so(client: TestClient, h: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> Any:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    res = client.get("/vendor/uPlot.iife.js")
    assert res.status_code == 404 and "uplot-python" in res.json()["message"]
    assert client.get("/api/ops", headers={"Authorization": f"Bearer {h.TOKEN}"}).json()["charts"] is False
