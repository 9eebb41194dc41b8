"""GPU metrics (habla_common.metrics.GpuStats): NVML readings turned into Prometheus gauges.

The development machine has no NVIDIA GPU and no driver, so the readings of a GPU come from
``FakeNvml``, a stand-in for the ``pynvml`` module with the calls GpuStats makes and NVML's
answers' shapes (memory in bytes, utilisation in percent, a process list whose memory may be
unknown, NVMLError for a query a GPU does not support). The last test uses the real ``pynvml``
on this machine: with no driver it must yield nothing, log once and not fail the scrape.
"""

from __future__ import annotations

import logging
import socket
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from habla_common import metrics
from habla_common.metrics import GPU_METRICS, GpuReading, GpuStats, gpu_families

GIB = 1 << 30
MY_PID = 4242


class FakeNvml:
    """Two GPUs as NVML would report them: GPU 0 busy with this process and another on it,
    GPU 1 idle and unable to report its utilisation (NVML_ERROR_NOT_SUPPORTED)."""

    class NVMLError(Exception):
        pass

    def __init__(self, fail_init: bool = False) -> None:
        self.fail_init = fail_init
        self.inits = 0

    def nvmlInit(self) -> None:
        self.inits += 1
        if self.fail_init:
            raise self.NVMLError("Driver Not Loaded")

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        return f"handle-{index}"

    def nvmlDeviceGetMemoryInfo(self, handle: str) -> Any:
        used = {"handle-0": 5 * GIB, "handle-1": 300 << 20}[handle]
        return SimpleNamespace(total=12 * GIB, used=used, free=12 * GIB - used)

    def nvmlDeviceGetUtilizationRates(self, handle: str) -> Any:
        if handle == "handle-1":
            raise self.NVMLError("Not Supported")
        return SimpleNamespace(gpu=37, memory=12)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: str) -> list[Any]:
        if handle == "handle-1":  # listed, but its memory unknown (NVML_VALUE_NOT_AVAILABLE)
            return [SimpleNamespace(pid=MY_PID, usedGpuMemory=None)]
        return [SimpleNamespace(pid=MY_PID, usedGpuMemory=2 * GIB), SimpleNamespace(pid=7, usedGpuMemory=GIB)]


def samples(collector: GpuStats) -> dict[tuple[str, str], float]:
    return {(s.name, s.labels["gpu"]): s.value for family in collector.collect() for s in family.samples}


def test_readings_become_gauges_per_gpu_and_unknown_values_no_sample() -> None:
    readings = [
        GpuReading(index=0, used_bytes=3 * GIB, total_bytes=8 * GIB, utilization_percent=50.0, process_bytes=GIB),
        GpuReading(index=1, used_bytes=None, total_bytes=None, utilization_percent=None, process_bytes=None),
    ]
    families = gpu_families(readings)
    assert [f.name for f in families] == list(GPU_METRICS)
    assert all(f.type == "gauge" for f in families)
    got = {(s.name, s.labels["gpu"]): s.value for f in families for s in f.samples}
    assert got == {
        ("habla_gpu_memory_used_bytes", "0"): 3 * GIB,
        ("habla_gpu_memory_total_bytes", "0"): 8 * GIB,
        ("habla_gpu_utilization_ratio", "0"): 0.5,
        ("habla_gpu_process_memory_bytes", "0"): GIB,
    }
    assert [f.samples for f in gpu_families([])] == [[], [], [], []]


def test_collect_reads_every_gpu_through_nvml_and_initialises_it_once() -> None:
    nvml = FakeNvml()
    gpu = GpuStats(nvml=nvml, pid=MY_PID)
    first = samples(gpu)
    assert first == {
        ("habla_gpu_memory_used_bytes", "0"): 5 * GIB,
        ("habla_gpu_memory_total_bytes", "0"): 12 * GIB,
        ("habla_gpu_utilization_ratio", "0"): 0.37,
        ("habla_gpu_process_memory_bytes", "0"): 2 * GIB,  # this process's own, not pid 7's
        ("habla_gpu_memory_used_bytes", "1"): 300 << 20,
        ("habla_gpu_memory_total_bytes", "1"): 12 * GIB,
        # GPU 1: no utilisation (not supported) and no process memory (unknown to NVML)
    }
    assert samples(gpu) == first and nvml.inits == 1
    # another process on the same GPUs sees only its own use
    assert ("habla_gpu_process_memory_bytes", "0") not in samples(GpuStats(nvml=FakeNvml(), pid=99))


def test_describe_names_what_collect_yields_and_a_registry_serves_it() -> None:
    gpu = GpuStats(nvml=FakeNvml(), pid=MY_PID)
    assert [f.name for f in gpu.describe()] == [f.name for f in gpu.collect()] == list(GPU_METRICS)
    registry = CollectorRegistry(auto_describe=True)
    registry.register(gpu)
    text = generate_latest(registry).decode()
    assert 'habla_gpu_utilization_ratio{gpu="0"} 0.37' in text
    with pytest.raises(ValueError, match="Duplicated"):
        registry.register(GpuStats(nvml=FakeNvml()))  # the reason serve_metrics registers one only


def test_without_a_driver_nothing_is_yielded_and_it_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    nvml = FakeNvml(fail_init=True)
    gpu = GpuStats(nvml=nvml)
    with caplog.at_level(logging.DEBUG, logger="habla.metrics"):
        assert list(gpu.collect()) == [] and list(gpu.collect()) == []
    assert nvml.inits == 1
    said = [r for r in caplog.records if "NVML" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.DEBUG and "Driver Not Loaded" in said[0].getMessage()


def test_a_failing_read_costs_one_scrape_not_the_process(caplog: pytest.LogCaptureFixture) -> None:
    nvml = FakeNvml()
    gpu = GpuStats(nvml=nvml, pid=MY_PID)

    def lost(*_: Any) -> int:
        raise nvml.NVMLError("GPU is lost")

    nvml.nvmlDeviceGetCount = lost  # type: ignore[method-assign]
    with caplog.at_level(logging.DEBUG, logger="habla.metrics"):
        assert list(gpu.collect()) == [] and list(gpu.collect()) == []
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.DEBUG]
    del nvml.nvmlDeviceGetCount  # the GPU is back
    assert samples(gpu)[("habla_gpu_memory_total_bytes", "1")] == 12 * GIB


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_metrics_serves_the_gpus_and_registers_them_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that calls serve_metrics twice (two ports) reports each GPU once. The GPUs are
    FakeNvml's (this machine has none); the registry is the test's own, served over real HTTP."""
    registry = CollectorRegistry(auto_describe=True)
    servers: list[Any] = []

    def start_http_server(port: int, addr: str) -> None:
        servers.append(prometheus_client.start_http_server(port, addr=addr, registry=registry))

    monkeypatch.setattr(metrics, "REGISTRY", registry)
    monkeypatch.setattr(metrics, "_gpu_stats", [])  # as in a process that has registered none yet
    monkeypatch.setattr(metrics, "GpuStats", lambda: GpuStats(nvml=FakeNvml(), pid=MY_PID))
    monkeypatch.setattr(metrics, "start_http_server", start_http_server)
    ports = [free_port(), free_port()]
    try:
        assert metrics.serve_metrics(ports[0]) and metrics.serve_metrics(ports[1])
        assert not metrics.serve_metrics(0)  # port 0: no endpoint
        for port in ports:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                text = r.read().decode()
            got = [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]
            assert got.count(("habla_gpu_memory_total_bytes", {"gpu": "1"}, 12 * GIB)) == 1
            assert got.count(("habla_gpu_process_memory_bytes", {"gpu": "0"}, 2 * GIB)) == 1
        assert metrics.watch_gpus() is metrics._gpu_stats[0]
    finally:
        for server, thread in servers:
            server.shutdown()
            thread.join(5)


def test_the_real_nvml_on_this_machine(caplog: pytest.LogCaptureFixture) -> None:
    """The development machine has no NVIDIA GPU or driver: the real pynvml cannot initialise,
    so collect() yields nothing and raises nothing. On a machine with one it reads it."""
    import pynvml  # the binding is installed: the failure must be NVML's, not a missing module

    assert pynvml.nvmlInit
    gpu = GpuStats()
    with caplog.at_level(logging.DEBUG, logger="habla.metrics"):
        families = list(gpu.collect())
    if not Path("/dev/nvidiactl").exists():
        assert families == []
        assert any("NVML is not available" in r.getMessage() for r in caplog.records)
    else:
        total = {s.labels["gpu"]: s.value for f in families for s in f.samples if s.name.endswith("total_bytes")}
        assert total and all(v > 0 for v in total.values())
