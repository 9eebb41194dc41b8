"""Fixtures of the repository-level tests (the servers come from the root conftest)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from habla.supervisor import Runtime, free_port, running
from habla_gateway import GatewayConfig, create_app
from tests.browser_kit import UI_TOKEN, wait_until


@pytest.fixture
def artifacts(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    base = os.environ.get("HABLA_ARTIFACTS_DIR")
    folder = (Path(base) / request.node.name) if base else tmp_path / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nartefacts: {folder}")
    return folder


@pytest.fixture
def gateway_only(redis_url: str, pg_url: str) -> Iterator[str]:
    """The gateway alone (no services), served by uvicorn in a thread: its URL."""
    import uvicorn

    port = free_port()
    config = GatewayConfig(token=UI_TOKEN, partitions=2, port=port)
    server = uvicorn.Server(uvicorn.Config(create_app(config, redis_url, pg_url), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 30, "the gateway")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def captioning_runtime(tmp_path: Path, redis_url: str, pg_url: str) -> Iterator[Runtime]:
    """The one-machine runtime's captioning path (no translation model, which on a small CPU
    would only slow tests about ingest, speakers and ASR down), on the test servers."""
    with running(
        data_dir=tmp_path / "data",
        extra_env={"REDIS_URL": redis_url, "DATABASE_URL": pg_url, "HABLA_LEASE_MS": "3000"},
        services=("recorder", "ingest", "diarize", "asr", "gateway"),
    ) as rt:
        yield rt
