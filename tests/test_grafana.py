"""Prometheus and Grafana on the home PC: infra/prometheus and infra/grafana against the code.

* prometheus.yml scrapes the compose services that serve metrics, on the port compose gives
  them, and the gateway with its token; its entrypoint writes the token to the tmpfs the
  config reads it from.
* The dashboard "Habla" has its panels, all on the provisioned data source, and every metric
  its PromQL names is one this code base really exposes (read from prometheus-client's
  registry and the collectors' describe(), not from a list kept by hand).
* With Prometheus installed (Debian: ``apt-get install prometheus``): promtool accepts the
  config, and a real Prometheus started from it scrapes a real gateway over HTTPS with the
  token and evaluates every dashboard query.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from prometheus_client import ProcessCollector, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import REGISTRY

import habla_common.metrics as common_metrics
import habla_common.shedding  # noqa: F401  (registers the load-shedding metrics)
import habla_gateway.metrics  # noqa: F401  (registers the gateway's metrics)
from habla.supervisor import free_port
from habla_common.tls import ensure_certificate
from habla_gateway import GatewayConfig
from habla_gateway.main import server_config

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS = ROOT / "infra" / "prometheus"
GRAFANA = ROOT / "infra" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "habla.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
# The compose services that serve /metrics on METRICS_PORT (the worker runs rq jobs, no consumer).
CONSUMERS = ("ingest", "diarize", "asr", "recorder", "vocab", "translate", "tts")

# Series Prometheus itself adds to every target.
PROMETHEUS_OWN = {
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
}
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}


def sample_names(name: str, kind: str) -> set[str]:
    """The series names Prometheus stores for a metric family ``name`` of type ``kind``
    (a counter ``x`` is ``x_total``; a histogram is ``x_bucket``, ``x_sum`` and ``x_count``)."""
    return {name + suffix for suffix in _SUFFIXES[kind]}


def exposed_metrics() -> set[str]:
    """Every series name a Habla process exposes: the metrics registered by the modules imported
    above, the collectors that read Redis and NVML when scraped (by their describe(), so neither
    is needed), prometheus-client's process collector, and Prometheus's own per-target series."""
    families: list[Metric] = [
        *REGISTRY.collect(),
        *common_metrics.StreamLag(redis.Redis(), "group", (), 1).describe(),
        *common_metrics.GpuStats().describe(),
        *ProcessCollector(registry=None).collect(),
    ]
    return {n for f in families for n in sample_names(f.name, f.type)} | PROMETHEUS_OWN


_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless"}
_KEYWORDS |= {"offset", "bool", "inf", "nan", "atan2"}


def promql_metrics(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: its identifiers that are not functions,
    aggregations, keywords, label names (in ``{…}``, ``by (…)`` and the like), strings,
    durations or Grafana variables."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\{[^}]*\}|\$\w+", " ", text)
    names = set()
    for m in re.finditer(r"(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?", text):
        if m.group(2) is None and m.group(1).lower() not in _KEYWORDS:
            names.add(m.group(1))
    return names


def unknown_metrics(expr: str, known: set[str]) -> set[str]:
    """The metrics ``expr`` names that no Habla process exposes (it must name at least one)."""
    names = promql_metrics(expr)
    assert names, f"no metric in {expr!r}"
    return names - known


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def queries(panel: dict[str, Any]) -> list[str]:
    return [t["expr"] for t in panel["targets"]]


def compose() -> dict[str, Any]:
    """docker-compose.yml as YAML reads it (anchors and merges resolved, ${…} left as written)."""
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def prometheus_config() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    return data


def jobs(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {job["job_name"]: job for job in config["scrape_configs"]}


# --- the dashboard --------------------------------------------------------------------------

# title -> series its queries must use
PANELS = {
    "Latency per stage (p50, p95)": {"habla_stage_seconds_bucket"},
    "Behind the live audio": {"habla_consumer_behind_seconds"},
    "Stream lag per group": {"habla_stream_lag"},
    "Load shedding level": {"habla_shed_level"},
    "Partials shed": {"habla_shed_total"},
    "Throughput": {"habla_events_handled_total"},
    "Errors": {"habla_handle_failures_total", "habla_dead_letters_total"},
    "CPU per service": {"process_cpu_seconds_total"},
    "Memory (RSS) per service": {"process_resident_memory_bytes"},
    "GPU memory": {"habla_gpu_memory_used_bytes", "habla_gpu_memory_total_bytes"},
    "GPU utilisation": {"habla_gpu_utilization_ratio"},
    "Sockets and sessions": {"habla_gateway_sockets", "habla_gateway_sessions"},
    "Model load time": {"habla_model_load_seconds"},
}


def test_the_dashboard_has_its_panels() -> None:
    dash = dashboard()
    assert (dash["title"], dash["uid"], dash["refresh"]) == ("Habla", "habla", "5s")
    assert dash["time"] == {"from": "now-30m", "to": "now"}
    assert dash["schemaVersion"] >= 39
    panels = {p["title"]: p for p in dash["panels"]}
    assert len(panels) == len(dash["panels"]), "two panels share a title"
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])
    for title, series in PANELS.items():
        assert title in panels, f"no panel {title!r}"
        used = set().union(*(promql_metrics(q) for q in queries(panels[title])))
        assert series <= used, (title, series - used)
    assert {panels[t]["type"] for t in PANELS if t != "Model load time"} == {"timeseries"}
    latency = queries(panels["Latency per stage (p50, p95)"])
    for q in ("0.5", "0.95"):
        expected = f"histogram_quantile({q}, sum by (stage, le) (rate(habla_stage_seconds_bucket[1m])))"
        assert expected in latency
    # per service: prometheus-client's process metrics have no service label, the job is the service
    for title in ("CPU per service", "Memory (RSS) per service"):
        assert all("by (job)" in q for q in queries(panels[title])), title
    assert "sum by (group)" in queries(panels["Stream lag per group"])[0]


def test_the_panels_do_not_overlap() -> None:
    taken: dict[tuple[int, int], str] = {}
    for p in dashboard()["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in taken, (p["title"], taken.get((x, y)))
                taken[(x, y)] = p["title"]


def test_every_panel_reads_the_provisioned_data_source() -> None:
    provisioned = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert len(provisioned) == 1
    source = provisioned[0]
    assert (source["type"], source["url"]) == ("prometheus", "http://prometheus:9090")
    assert "prometheus" in compose()["services"]
    expected = {"type": "prometheus", "uid": source["uid"]}
    for panel in dashboard()["panels"]:
        assert panel["datasource"] == expected, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == expected, (panel["title"], target["refId"])


def test_every_query_names_metrics_the_code_exposes() -> None:
    known = exposed_metrics()
    # the checker itself: real names pass; a counter without _total, a histogram's bare name
    # and a name nobody exposes are caught, wherever they sit in the expression
    assert unknown_metrics('sum by (le) (rate(habla_stage_seconds_bucket{stage="x"}[1m]))', known) == set()
    assert unknown_metrics("rate(habla_events_handled[1m])", known) == {"habla_events_handled"}
    assert unknown_metrics("histogram_quantile(0.5, rate(habla_stage_seconds[5m]))", known) == {"habla_stage_seconds"}
    assert unknown_metrics("sum by (job) (process_rss) / on (job) group_left up", known) == {"process_rss"}
    assert unknown_metrics("max(habla_gpu_memory_used_bytes_total offset 5m) > bool 1e3", known) == {
        "habla_gpu_memory_used_bytes_total"
    }
    for panel in dashboard()["panels"]:
        for q in queries(panel):
            assert unknown_metrics(q, known) == set(), (panel["title"], q)


def test_the_dashboard_provider_points_at_the_mounted_dashboards() -> None:
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "habla.yml").read_text())["providers"]
    assert [p["type"] for p in providers] == ["file"]
    path = providers[0]["options"]["path"]
    grafana = compose()["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"] if v.startswith("./"))
    assert mounts["./infra/grafana/dashboards"] == path
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{path}/{DASHBOARD.name}"


# --- Prometheus -----------------------------------------------------------------------------


def test_prometheus_scrapes_every_consumer_on_its_metrics_port() -> None:
    config = prometheus_config()
    assert config["global"]["scrape_interval"] == "5s"
    services = compose()["services"]
    by_job = jobs(config)
    assert set(by_job) == {*CONSUMERS, "gateway"}
    for name in CONSUMERS:
        env = services[name]["environment"]
        assert (env["METRICS_HOST"], env["METRICS_PORT"]) == ("0.0.0.0", "9100"), name
        assert by_job[name]["static_configs"] == [{"targets": [f"{name}:{env['METRICS_PORT']}"]}], name
        assert by_job[name].get("metrics_path", "/metrics") == "/metrics", name
    # every host named is a compose service
    for job in by_job.values():
        for group in job["static_configs"]:
            assert {t.split(":")[0] for t in group["targets"]} <= set(services), job["job_name"]


def test_prometheus_scrapes_the_gateway_with_its_token_over_its_https() -> None:
    services = compose()["services"]
    gateway, prometheus = services["gateway"], services["prometheus"]
    job = jobs(prometheus_config())["gateway"]
    assert job["static_configs"] == [{"targets": [f"gateway:{gateway['environment']['GATEWAY_PORT']}"]}]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    # compose's gateway serves HTTPS with its own certificate unless HABLA_HTTPS=0; the
    # entrypoint gets the same setting
    assert gateway["environment"]["GATEWAY_HTTPS"] == prometheus["environment"]["HABLA_HTTPS"] == "${HABLA_HTTPS:-1}"
    assert job["scheme"] == "https" and job["tls_config"] == {"insecure_skip_verify": True}
    # the token: from the environment into a file on a tmpfs, never in the repository
    assert prometheus["environment"]["HABLA_TOKEN"] == gateway["environment"]["HABLA_TOKEN"]
    credentials = Path(job["authorization"]["credentials_file"])
    assert job["authorization"].get("type", "Bearer") == "Bearer"
    assert str(credentials.parent) in prometheus["tmpfs"]
    config_flag = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    assert Path(config_flag.split("=", 1)[1]).parent == credentials.parent
    assert prometheus["entrypoint"] == ["/bin/sh", "/etc/habla/entrypoint.sh"]
    assert "./infra/prometheus:/etc/habla:ro" in prometheus["volumes"]


def run_entrypoint(tmp: Path, token: str, https: str | None, *command: str) -> Path:
    """Run infra/prometheus/entrypoint.sh as the container does, into ``tmp``: the run dir."""
    env = {"PATH": os.environ["PATH"], "HABLA_TOKEN": token, "HABLA_RUN_DIR": str(tmp)}
    env["HABLA_PROMETHEUS_CONFIG"] = str(PROMETHEUS / "prometheus.yml")
    if https is not None:
        env["HABLA_HTTPS"] = https
    result = subprocess.run(
        ["/bin/sh", str(PROMETHEUS / "entrypoint.sh"), *command],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return tmp


def test_the_entrypoint_writes_the_token_and_picks_the_gateways_scheme(tmp_path: Path) -> None:
    token = secrets.token_hex(16)
    run = run_entrypoint(tmp_path / "https", token, None, "true")
    assert (run / "token").read_text() == token
    assert oct((run / "token").stat().st_mode & 0o777) == "0o600"
    assert yaml.safe_load((run / "prometheus.yml").read_text()) == prometheus_config()
    for off in ("0", "false", "OFF"):
        run = run_entrypoint(tmp_path / off, token, off, "true")
        plain = jobs(yaml.safe_load((run / "prometheus.yml").read_text()))
        assert plain["gateway"]["scheme"] == "http", off
        assert {k: v for k, v in plain.items() if k != "gateway"} == {
            k: v for k, v in jobs(prometheus_config()).items() if k != "gateway"
        }
    env = {"PATH": os.environ["PATH"], "HABLA_TOKEN": "", "HABLA_RUN_DIR": str(tmp_path / "empty")}
    env["HABLA_PROMETHEUS_CONFIG"] = str(PROMETHEUS / "prometheus.yml")
    out = subprocess.run(
        ["/bin/sh", str(PROMETHEUS / "entrypoint.sh"), "echo", "prometheus", "--flag"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == "prometheus --flag\n"  # then it runs the command it was given
    assert "HABLA_TOKEN is empty" in out.stderr


def localised(run: Path, targets: dict[str, str], interval: str = "1s") -> Path:
    """The entrypoint's config with every target on this machine and the token file in ``run``."""
    config = yaml.safe_load((run / "prometheus.yml").read_text())
    config["global"].update(scrape_interval=interval, scrape_timeout=interval, evaluation_interval=interval)
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
        if "authorization" in job:
            assert job["authorization"]["credentials_file"] == "/run/habla/token"
            job["authorization"]["credentials_file"] = str(run / "token")
    path = run / "local.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def _promtool() -> str:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    return tool


def test_promtool_accepts_the_config_in_both_gateway_modes(tmp_path: Path) -> None:
    tool = _promtool()
    for https in ("1", "0"):
        run = run_entrypoint(tmp_path / https, "t0ken", https, "true")
        names = {name: f"{name}:9100" for name in CONSUMERS} | {"gateway": "gateway:8000"}
        path = localised(run, names, "5s")
        result = subprocess.run(
            [tool, "check", "config", str(path)], check=False, capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout + result.stderr


# --- a real Prometheus scraping a real gateway ----------------------------------------------


@pytest.fixture
def consumer_metrics() -> Iterator[str]:
    """This process's registry served the way a consumer serves it: its host:port."""
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1")
    yield f"127.0.0.1:{port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def https_gateway(redis_url: str, pg_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The real gateway over HTTPS with a certificate of its own, as in compose: host:port, token."""
    import uvicorn

    cert, key = ensure_certificate(tmp_path / "tls", [])
    token = secrets.token_hex(16)
    port = free_port()
    config = GatewayConfig(token=token, partitions=2, host="127.0.0.1", port=port, tls_cert=str(cert), tls_key=str(key))
    server = uvicorn.Server(server_config(config, redis_url, pg_url))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    _wait(lambda: server.started, 30, "the gateway")
    yield f"127.0.0.1:{port}", token
    server.should_exit = True
    thread.join(10)


def _wait(cond: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := cond():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Any]:
    """``start(config)``: a real Prometheus reading ``config``; its API's base URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (Debian: apt-get install prometheus)")
    started: list[subprocess.Popen[bytes]] = []

    def start(config: Path) -> str:
        port = free_port()
        log = (tmp_path / "prometheus.log").open("wb")
        args = [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}"]
        args.append(f"--web.listen-address=127.0.0.1:{port}")
        started.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT))
        base = f"http://127.0.0.1:{port}"
        _wait(lambda: _ready(base), 20, "Prometheus")
        return base

    yield start
    for process in started:
        process.terminate()
        process.wait(10)


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/-/ready", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def query(base: str, expr: str) -> list[dict[str, Any]]:
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.load(r)
    assert body["status"] == "success", (expr, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def by_label(result: Iterable[dict[str, Any]], label: str) -> dict[str, float]:
    return {s["metric"].get(label, ""): float(s["value"][1]) for s in result}


def test_a_real_prometheus_scrapes_the_gateway_with_the_token_and_runs_every_query(
    tmp_path: Path, consumer_metrics: str, https_gateway: tuple[str, str], prometheus: Any
) -> None:
    """The config as the entrypoint writes it, every consumer job pointed at this process's
    metrics and the gateway job at a real gateway serving HTTPS with its own certificate and
    refusing /metrics without the token."""
    gateway, token = https_gateway
    common_metrics.MODEL_LOAD_SECONDS.labels("asr").set(4.25)
    run = run_entrypoint(tmp_path / "run", token, "1", "true")
    config = localised(run, {name: consumer_metrics for name in CONSUMERS} | {"gateway": gateway})
    base = prometheus(config)

    every = {*CONSUMERS, "gateway"}

    def all_up() -> dict[str, float] | None:
        up = by_label(query(base, "up"), "job")
        return up if set(up) == every and all(up.values()) else None

    assert _wait(all_up, 15, "every target up") == dict.fromkeys(every, 1.0)
    assert "gateway" in by_label(query(base, "habla_gateway_sockets"), "job")
    assert set(by_label(query(base, "process_resident_memory_bytes"), "job")) == every
    for panel in dashboard()["panels"]:
        for q in queries(panel):
            query(base, q)  # valid PromQL that Prometheus evaluates
    assert by_label(query(base, "max by (service) (habla_model_load_seconds)"), "service")["asr"] == 4.25

    # the same scrape with a wrong token is refused: the token is what let it in
    (run / "token").write_text("wrong")  # Prometheus reads the file at every scrape
    _wait(lambda: by_label(query(base, 'up{job="gateway"}'), "job") == {"gateway": 0.0}, 10, "a refused scrape")
