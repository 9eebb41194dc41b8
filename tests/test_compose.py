"""The home-PC deployment: docker-compose.yml as Compose itself resolves it, and the Dockerfiles.

``docker-compose config`` validates and resolves the file without a Docker engine. CI uses
Debian's docker-compose 1.29 (scripts/test installs it); the Compose v2 plugin
(``docker compose``) is used when that is what the machine has.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
INFRA = ("redis", "postgres", "ollama")
APPS = {
    "ingest": "services/ingest/Dockerfile",
    "asr": "services/asr/Dockerfile",
    "recorder": "services/recorder/Dockerfile",
    "gateway": "gateway/Dockerfile",
}


def _compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode == 0:
        return [docker, "compose"]
    pytest.skip(
        "neither docker-compose nor the docker compose plugin is installed "
        "(Debian: apt-get install docker-compose; scripts/test does it when run as root)"
    )


def _config(env_file: Path) -> dict[str, Any]:
    """The resolved configuration, reading settings only from ``env_file`` (not the caller's
    environment, not a developer's .env)."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    result = subprocess.run(
        [*_compose_command(), "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config"],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    assert "is not set" not in result.stderr, f"a variable lacks a default:\n{result.stderr}"
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    empty = tmp_path_factory.mktemp("compose") / "empty.env"
    empty.write_text("")
    return _config(empty)


def test_services(config: dict[str, Any]) -> None:
    assert set(config["services"]) == {*INFRA, *APPS}
    assert {"redis-data", "pg-data", "ollama-models", "habla-cache"} <= set(config["volumes"])


def test_apps_are_built_from_the_repo_root(config: dict[str, Any]) -> None:
    for name, dockerfile in APPS.items():
        build = config["services"][name]["build"]
        assert Path(build["context"]).resolve() == ROOT, name
        assert build["dockerfile"] == dockerfile, name
        assert (ROOT / dockerfile).is_file(), dockerfile


def test_asr_reserves_the_gpu(config: dict[str, Any]) -> None:
    devices = config["services"]["asr"]["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and d["count"] == 1 and "gpu" in d["capabilities"] for d in devices)
    env = config["services"]["asr"]["environment"]
    assert (env["ASR_MODEL"], env["ASR_DEVICE"], env["ASR_COMPUTE_TYPE"]) == ("large-v3-turbo", "cuda", "float16")
    assert any(
        str(v).startswith("habla-cache:/cache") or (isinstance(v, dict) and v.get("source") == "habla-cache")
        for v in config["services"]["asr"]["volumes"]
    )


def test_every_app_has_the_common_setup(config: dict[str, Any]) -> None:
    for name in APPS:
        service = config["services"][name]
        env = service["environment"]
        assert str(env["PYANNOTE_METRICS_ENABLED"]) == "0", name
        assert env["REDIS_URL"] == "redis://redis:6379/0", name
        assert env["DATABASE_URL"].endswith("@postgres:5432/habla"), name
        assert env["OLLAMA_URL"] == "http://ollama:11434", name
        assert "HF_HUB_OFFLINE" not in env, name  # the home PC may download models once
        for dependency in ("redis", "postgres"):
            assert service["depends_on"][dependency]["condition"] == "service_healthy", (name, dependency)
        assert service["restart"] == "unless-stopped", name
    assert config["services"]["recorder"]["environment"]["HABLA_MIGRATIONS_DIR"] == "/app/infra/migrations"


def test_healthchecks(config: dict[str, Any]) -> None:
    for name in ("redis", "postgres", "gateway"):
        assert config["services"][name]["healthcheck"]["test"], name
    assert "/api/health" in " ".join(config["services"]["gateway"]["healthcheck"]["test"])
    assert config["services"]["redis"]["command"] == ["redis-server", "--appendonly", "yes"]


def test_gateway_without_env_file_has_no_token_and_listens_on_8000(config: dict[str, Any]) -> None:
    gateway = config["services"]["gateway"]
    assert gateway["environment"]["HABLA_TOKEN"] == ""  # the gateway then refuses to start
    assert [(str(p["published"]), p["target"]) for p in gateway["ports"]] == [("8000", 8000)]


def test_env_file_reaches_the_services(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "HABLA_TOKEN=s3cret\nHABLA_PORT=9000\nPOSTGRES_PASSWORD=pw\nASR_MODEL=medium\nLOG_LEVEL=DEBUG\n"
    )
    services = _config(env_file)["services"]
    assert services["gateway"]["environment"]["HABLA_TOKEN"] == "s3cret"
    assert [str(p["published"]) for p in services["gateway"]["ports"]] == ["9000"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "pw"
    assert services["recorder"]["environment"]["DATABASE_URL"] == "postgresql://habla:pw@postgres:5432/habla"
    assert services["asr"]["environment"]["ASR_MODEL"] == "medium"
    assert all(services[name]["environment"]["LOG_LEVEL"] == "DEBUG" for name in APPS)


def test_env_example_documents_only_keys_compose_uses() -> None:
    keys = re.findall(r"^([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), flags=re.M)
    compose = "\n".join(line for line in COMPOSE_FILE.read_text().splitlines() if not line.lstrip().startswith("#"))
    assert keys, ".env.example lists no keys"
    assert [k for k in keys if "${" + k + ":-" not in compose] == []
    assert [k for k in re.findall(r"\$\{([A-Z][A-Z0-9_]*):-", compose) if k not in keys] == []


def test_images_are_pinned() -> None:
    """Exact version tags at least (digests could not be looked up offline)."""
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    images = [s["image"] for s in compose["services"].values() if "image" in s]
    images += [
        re.search(r"^FROM\s+(\S+)", (ROOT / d).read_text(), flags=re.M).group(1)  # type: ignore[union-attr]
        for d in APPS.values()
    ]
    for image in images:
        assert re.search(r":\d+\.\d+(\.\d+)?([-.\w]*)(@sha256:[0-9a-f]{64})?$", image), image


def test_dependency_layer_lists_third_party_requirements_only() -> None:
    script = ROOT / "infra" / "docker" / "pyproject_deps.py"
    pyprojects = [ROOT / "services" / p / "pyproject.toml" for p in ("contracts", "common", "asr")]
    out = subprocess.run(
        [sys.executable, str(script), *map(str, pyprojects)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "faster-whisper==1.2.1" in out and "msgpack==1.2.4" in out
    assert not [r for r in out if r.startswith("habla")]
    only = subprocess.run(
        [
            sys.executable,
            str(script),
            "--only",
            "torch",
            *map(str, [*pyprojects[:2], ROOT / "services" / "ingest" / "pyproject.toml"]),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert len(only) == 1 and only[0].startswith("torch")
