"""The home-PC deployment: docker-compose.yml as Compose itself resolves it, and the Dockerfiles.

``docker-compose config`` validates and resolves the file without a Docker engine. CI uses
Debian's docker-compose 1.29 (scripts/test installs it); the Compose v2 plugin
(``docker compose``) is used when that is what the machine has.
"""

from __future__ import annotations

import json
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
INFRA = ("redis", "postgres", "ollama", "prometheus", "grafana")
APPS = {
    "ingest": "services/ingest/Dockerfile",
    "asr": "services/asr/Dockerfile",
    "diarize": "services/diarize/Dockerfile",
    "recorder": "services/recorder/Dockerfile",
    "vocab": "services/vocab/Dockerfile",
    "tts": "services/tts/Dockerfile",
    "gateway": "gateway/Dockerfile",
    "translate": "services/translate/Dockerfile",
    "worker": "services/translate/Dockerfile",
}
# The build target of the apps built from one stage of a multi-stage Dockerfile.
TARGETS = {"translate": "translate", "worker": "worker"}
# What each app's container runs: ``python -m <module>``.
MODULES = {
    "ingest": "habla_ingest",
    "asr": "habla_asr",
    "diarize": "habla_diarize",
    "recorder": "habla_recorder",
    "vocab": "habla_vocab",
    "tts": "habla_tts",
    "gateway": "habla_gateway",
    "translate": "habla_translate",
    "worker": "habla.worker",
}
NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"


def _stages(dockerfile: str) -> dict[str, tuple[str, str]]:
    """The stages of a Dockerfile, in order: name (the FROM's ``AS``, or its index) to
    (what it is FROM, its instructions without comments, continuation lines joined)."""
    text = re.sub(r"^\s*#.*\n", "", (ROOT / dockerfile).read_text(), flags=re.M)  # comments
    text = re.sub(r"\\\n", " ", text)
    stages: dict[str, tuple[str, str]] = {}
    for n, part in enumerate(re.split(r"^(?=FROM\s)", text, flags=re.M)[1:]):
        match = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", part, flags=re.I)
        assert match, part
        stages[match.group(2) or str(n)] = (match.group(1), part)
    return stages


def _build_chain(dockerfile: str, target: str | None) -> str:
    """The instructions an image built from ``target`` (default: the last stage) runs,
    its parent stages' first."""
    stages = _stages(dockerfile)
    name = target or list(stages)[-1]
    assert name in stages, (dockerfile, target)
    chain: list[str] = []
    while name in stages:
        base, text = stages[name]
        chain.insert(0, text)
        name = base
    return "".join(chain)


def _mounts_cache(service: dict[str, Any]) -> bool:
    return any(
        str(v).startswith("habla-cache:/cache") or (isinstance(v, dict) and v.get("source") == "habla-cache")
        for v in service.get("volumes", [])
    )


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
    assert {"prometheus-data", "grafana-data"} <= set(config["volumes"])


def test_apps_are_built_from_the_repo_root(config: dict[str, Any]) -> None:
    for name, dockerfile in APPS.items():
        build = config["services"][name]["build"]
        assert Path(build["context"]).resolve() == ROOT, name
        assert build["dockerfile"] == dockerfile, name
        assert (ROOT / dockerfile).is_file(), dockerfile
        assert build.get("target") == TARGETS.get(name), name
        if name in TARGETS:
            assert TARGETS[name] in _stages(dockerfile), (dockerfile, TARGETS[name])


def test_asr_reserves_the_gpu(config: dict[str, Any]) -> None:
    devices = config["services"]["asr"]["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and d["count"] == 1 and "gpu" in d["capabilities"] for d in devices)
    env = config["services"]["asr"]["environment"]
    assert (env["ASR_MODEL"], env["ASR_DEVICE"], env["ASR_COMPUTE_TYPE"]) == ("large-v3-turbo", "cuda", "float16")
    assert _mounts_cache(config["services"]["asr"])


def test_translate_and_worker_use_ollama(config: dict[str, Any]) -> None:
    services = config["services"]
    for name in ("translate", "worker"):
        service = services[name]
        env = service["environment"]
        assert (env["TRANSLATE_BACKEND"], env["TRANSLATE_MODEL"]) == ("ollama", "qwen3:4b"), name
        assert (str(env["TRANSLATE_PARTIALS"]), env["TRANSLATE_JSON"]) == ("true", "grammar"), name
        assert env["HABLA_CACHE_DIR"] == "/cache/habla", name
        assert service["depends_on"]["ollama"]["condition"] == "service_healthy", name
        assert _mounts_cache(service), name
    # The worker's re-translation jobs must translate as the live service does.
    assert services["worker"]["environment"] == services["translate"]["environment"]
    assert services["worker"]["command"] == ["python", "-m", "habla.worker"]


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
        chain = _build_chain(APPS[name], TARGETS.get(name))
        cmd = json.loads(re.findall(r"^CMD\s+(.+)$", chain, flags=re.M)[-1])
        assert cmd == ["python", "-m", MODULES[name]], name
        assert service.get("command", cmd) == cmd, name
        assert re.findall(r"^USER\s+(\S+)", chain, flags=re.M)[-1] == "habla", name
        assert re.search(r"^ENV HABLA_CACHE_DIR=/cache/habla$", chain, flags=re.M), name
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
        "TRANSLATE_BACKEND=llamacpp\nTRANSLATE_MODEL=qwen2.5-coder-1.5b-bundled\nTRANSLATE_PARTIALS=false\n"
    )
    env_file.write_text(
        env_file.read_text()
        + "GRAFANA_PORT=127.0.0.1:3001\nGRAFANA_ANONYMOUS=false\nGRAFANA_ADMIN_PASSWORD=gpw\n"
        + "PROMETHEUS_RETENTION=90d\nHABLA_HTTPS=0\n"
    )
    services = _config(env_file)["services"]
    assert services["gateway"]["environment"]["HABLA_TOKEN"] == "s3cret"
    # Prometheus scrapes the gateway with the same token, over plain HTTP when the gateway serves that
    assert services["prometheus"]["environment"]["HABLA_TOKEN"] == "s3cret"
    assert str(services["prometheus"]["environment"]["HABLA_HTTPS"]) == "0"
    assert "--storage.tsdb.retention.time=90d" in services["prometheus"]["command"]
    grafana = services["grafana"]
    assert _ports(grafana) == [("127.0.0.1", "3001", 3000)]
    assert (
        str(grafana["environment"]["GF_AUTH_ANONYMOUS_ENABLED"]),
        grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"],
    ) == (
        "false",
        "gpw",
    )
    assert [str(p["published"]) for p in services["gateway"]["ports"]] == ["9000"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "pw"
    assert services["recorder"]["environment"]["DATABASE_URL"] == "postgresql://habla:pw@postgres:5432/habla"
    assert services["asr"]["environment"]["ASR_MODEL"] == "medium"
    assert all(services[name]["environment"]["LOG_LEVEL"] == "DEBUG" for name in APPS)
    for name in ("translate", "worker"):
        env = services[name]["environment"]
        assert (env["TRANSLATE_BACKEND"], env["TRANSLATE_MODEL"]) == ("llamacpp", "qwen2.5-coder-1.5b-bundled")
        assert str(env["TRANSLATE_PARTIALS"]) == "false"


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
    for dockerfile in set(APPS.values()):
        stages = _stages(dockerfile)
        images += [base for base, _ in stages.values() if base not in stages]  # not FROM an earlier stage
    for image in images:
        assert re.search(r":v?\d+\.\d+(\.\d+)?([-.\w]*)(@sha256:[0-9a-f]{64})?$", image), image


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


def test_translate_image_builds_llama_cpp_apart_and_without_amx() -> None:
    stages = _stages(APPS["translate"])
    assert list(stages)[-1] == "translate"  # a build without --target gives the service
    builder = stages["llama-build"][1]
    assert re.search(r"apt-get install [^&]*\bbuild-essential\b", builder)
    assert re.search(r"apt-get install [^&]*\bcmake\b", builder)
    wheel = re.search(r"^RUN .*\bpip wheel .*$", builder, flags=re.M)
    assert wheel and "--no-deps" in wheel.group(0) and "llama-cpp-python==" in wheel.group(0)
    assert f'noamx="{NO_AMX}"' in wheel.group(0)
    assert 'CFLAGS="$noamx"' in wheel.group(0) and 'CXXFLAGS="$noamx"' in wheel.group(0)
    # The version built is the locked one (the lock is not copied into the build stage).
    version = re.search(r"^ARG LLAMA_CPP_PYTHON_VERSION=(\S+)$", builder, flags=re.M)
    assert version, "the build stage pins llama-cpp-python with ARG LLAMA_CPP_PYTHON_VERSION"
    assert f"llama-cpp-python=={version.group(1)}" in (ROOT / "requirements.lock").read_text().splitlines()
    for target in TARGETS.values():
        chain = _build_chain(APPS["translate"], target)
        assert "pip wheel" not in chain, target
        assert not re.search(r"\b(build-essential|cmake|gcc|g\+\+)\b", chain), f"a compiler in the {target} image"
        assert "COPY --from=llama-build /wheels " in chain, target
        assert re.search(r"pip install [^&]*--only-binary llama-cpp-python", chain), target
        assert re.search(r"apt-get install [^&]*\bapertium apertium-eng-spa\b", chain), target
        assert re.search(r"apt-get install [^&]*\blibgomp1\b", chain), target  # llama.cpp links OpenMP


def test_worker_image_adds_the_runtime_package_to_the_translate_image() -> None:
    stages = _stages(APPS["worker"])
    assert stages["worker"][0] == stages["translate"][0]  # both FROM the same app stage
    worker = stages["worker"][1]
    assert "COPY runtime /tmp/src/runtime" in worker
    assert re.search(r"pip install --no-deps --no-build-isolation [^&]*/tmp/src/runtime\b", worker)
    assert re.search(r"pip install --no-deps --no-build-isolation /tmp/src/vocab\b", worker)  # export jobs
    assert "habla_vocab.jobs" in worker
    assert "import habla.worker" in worker  # the build fails if habla.worker misses a dependency


def test_the_gateway_serves_the_exports_the_worker_writes(config: dict[str, Any]) -> None:
    services = config["services"]
    for name in ("worker", "gateway"):
        assert services[name]["environment"]["HABLA_DATA_DIR"] == "/cache/data", name
        assert any(
            str(v).startswith("habla-cache:/cache") or _volume_target(v) == "/cache" for v in services[name]["volumes"]
        ), name


def _volume_target(v: Any) -> str:
    return str(v.get("target", "")) if isinstance(v, dict) else str(v).split(":")[1]


def test_the_gateway_image_ships_the_web_client() -> None:
    chain = _build_chain(APPS["gateway"], None)
    assert re.search(r"^COPY web /app/web$", chain, flags=re.M)
    assert re.search(r"^ENV .*\bGATEWAY_WEB_DIR=/app/web\b", chain, flags=re.M)
    assert (ROOT / "web" / "index.html").is_file()
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert not [p for p in ignored if p.strip("/*") == "web"]  # in the build context


def _ports(service: dict[str, Any]) -> list[tuple[str, str, int]]:
    """A service's published ports as (host address or "", host port, container port)."""
    ports = []
    for p in service.get("ports", []):
        if isinstance(p, dict):
            ports.append((str(p.get("host_ip", "")), str(p["published"]), int(p["target"])))
        else:  # docker-compose 1.29 writes one with an address as "ip:published:target/proto"
            *host, published, target = str(p).split("/")[0].split(":")
            ports.append((host[0] if host else "", published, int(target)))
    return ports


def _mounts(service: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """A service's volumes as Compose resolved them: container path -> (source, read-only)."""
    mounts = {}
    for v in service.get("volumes", []):
        if isinstance(v, dict):  # Compose v2
            mounts[v["target"]] = (str(v.get("source", "")), bool(v.get("read_only")))
        else:  # docker-compose 1.29: "source:target[:mode]"
            source, target, *mode = str(v).split(":")
            mounts[target] = (source, bool(mode) and "ro" in mode[0].split(","))
    return mounts


def test_prometheus_and_grafana_mount_the_repositorys_config_read_only(config: dict[str, Any]) -> None:
    prometheus, grafana = config["services"]["prometheus"], config["services"]["grafana"]
    expected = {
        # service, container path -> the files it must hold (relative to the repository's folder)
        ("prometheus", "/etc/habla"): ("infra/prometheus", ["prometheus.yml", "entrypoint.sh"]),
        ("grafana", "/etc/grafana/provisioning/datasources"): (
            "infra/grafana/provisioning/datasources",
            ["prometheus.yml"],
        ),
        ("grafana", "/etc/grafana/provisioning/dashboards"): ("infra/grafana/provisioning/dashboards", ["habla.yml"]),
        ("grafana", "/etc/grafana/dashboards/habla"): ("infra/grafana/dashboards", ["habla.json"]),
    }
    for (name, target), (folder, files) in expected.items():
        source, read_only = _mounts(config["services"][name])[target]
        assert Path(source).resolve() == ROOT / folder, (name, target, source)
        assert read_only, (name, target)
        for file in files:
            assert (Path(source) / file).is_file(), (name, folder, file)
    # the entrypoint and the config Prometheus reads: the mounted script, the tmpfs it writes to
    assert prometheus["entrypoint"][-1] == "/etc/habla/entrypoint.sh"
    assert "--config.file=/run/habla/prometheus.yml" in prometheus["command"]
    assert prometheus["command"][0] == "/bin/prometheus"
    assert "/run/habla" in prometheus["tmpfs"]
    # their data on volumes of their own
    assert _mounts(prometheus)["/prometheus"][0] == "prometheus-data"
    assert _mounts(grafana)["/var/lib/grafana"][0] == "grafana-data"
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"
    assert prometheus["healthcheck"]["test"] and grafana["healthcheck"]["test"]


def test_grafana_is_published_like_the_gateway_and_tells_nobody_outside(config: dict[str, Any]) -> None:
    grafana = config["services"]["grafana"]
    assert _ports(grafana) == [("", "3000", 3000)]
    assert "ports" not in config["services"]["prometheus"]  # only Grafana reads it, inside the network
    env = {k: str(v) for k, v in grafana["environment"].items()}
    assert (env["GF_AUTH_ANONYMOUS_ENABLED"], env["GF_AUTH_ANONYMOUS_ORG_ROLE"]) == ("true", "Viewer")
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"
    for key in (
        "GF_ANALYTICS_REPORTING_ENABLED",
        "GF_ANALYTICS_CHECK_FOR_UPDATES",
        "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES",
        "GF_ANALYTICS_FEEDBACK_LINKS_ENABLED",
        "GF_NEWS_NEWS_FEED_ENABLED",
        "GF_SNAPSHOTS_EXTERNAL_ENABLED",
    ):
        assert env[key] == "false", key
    assert env["GF_SECURITY_DISABLE_GRAVATAR"] == env["GF_PLUGINS_PUBLIC_KEY_RETRIEVAL_DISABLED"] == "true"


def test_the_gateways_ops_view_reads_every_consumer(config: dict[str, Any]) -> None:
    services = config["services"]
    raw = services["gateway"]["environment"]["GATEWAY_OPS_TARGETS"]
    targets = dict(item.split("=", 1) for item in raw.split(","))
    consumers = ("ingest", "diarize", "asr", "recorder", "vocab", "translate", "tts")
    assert list(targets) == list(consumers)
    for name, url in targets.items():
        assert url == f"http://{name}:{services[name]['environment']['METRICS_PORT']}/metrics", name
