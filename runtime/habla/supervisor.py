"""Run every service as its own process, restart the ones that die, stop them all cleanly."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from habla_common.migrate import migrate
from habla_common.settings import default_data_dir

from .embedded import Infra, infra

log = logging.getLogger("habla.supervisor")

__all__ = ["SERVICES", "Runtime", "free_port", "load_token", "local_addresses", "running"]

# name -> python module run with -m. Order is start order.
SERVICES: dict[str, str] = {
    "recorder": "habla_recorder",
    "ingest": "habla_ingest",
    "diarize": "habla_diarize",
    "asr": "habla_asr",
    "translate": "habla_translate",
    "tts": "habla_tts",
    "vocab": "habla_vocab",
    "worker": "habla.worker",
    "gateway": "habla_gateway",
}
# services that read streams as a consumer group (same name); ready once a member holds leases
CONSUMERS = ("recorder", "ingest", "diarize", "asr", "translate", "tts", "vocab")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def local_addresses() -> list[str]:
    """This machine's IPv4 addresses a phone could reach (LAN, VPN), private LAN ones first;
    no loopback, link-local or container bridges."""
    import ipaddress

    import psutil

    found: list[tuple[int, str]] = []
    for name, addrs in psutil.net_if_addrs().items():
        if name.startswith(("docker", "br-", "veth", "virbr", "lo")):
            continue
        for a in addrs:
            if a.family != socket.AF_INET:
                continue
            ip = ipaddress.ip_address(a.address)
            if ip.is_loopback or ip.is_link_local:
                continue
            found.append((0 if ip.is_private else 1, a.address))
    return [address for _, address in sorted(found, key=lambda f: f[0])]


def load_token(data_dir: Path) -> str:
    """HABLA_TOKEN if set, else the token kept in the data dir (made on first run)."""
    env = os.environ.get("HABLA_TOKEN")
    if env:
        return env
    path = data_dir / "token"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token


@dataclass
class Child:
    name: str
    module: str
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0


@dataclass
class Runtime:
    infra: Infra
    env: dict[str, str]
    host: str
    port: int
    token: str
    log_dir: Path
    children: dict[str, Child] = field(default_factory=dict)
    tls_cert: Path | None = None  # the gateway serves HTTPS with this certificate
    tls_self_signed: bool = False  # ... which is this machine's own (habla.tls), not the user's
    metrics_ports: dict[str, int] = field(default_factory=dict)  # consumer service -> its /metrics port

    def metrics_urls(self) -> dict[str, str]:
        """Where each service's Prometheus metrics are (the gateway's need the token)."""
        urls = {name: f"http://127.0.0.1:{port}/metrics" for name, port in self.metrics_ports.items()}
        if "gateway" in self.children:
            urls["gateway"] = self.url + "/metrics"
        return urls

    @property
    def ops_url(self) -> str:
        """The ops view (its page asks for the token, or takes it after ``#token=``)."""
        return self.url + "/ops"

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws", 1) + "/ws"

    def ssl_context(self) -> ssl.SSLContext | None:
        """For talking to this runtime's own gateway on loopback; None over plain HTTP."""
        from habla_common.tls import loopback_context

        return loopback_context() if self.tls_cert else None

    def pairing_urls(self, public_host: str | None = None) -> list[str]:
        """Links that pair a phone: the web client with the token after ``#`` (a fragment
        never reaches the server or its logs; the page keeps the token and drops it from the
        address). One per address the phone may use: ``public_host`` when given (a name, or a
        whole base URL such as ``https://pc.tailnet.ts.net`` for an HTTPS proxy in front), else
        every LAN/VPN address of this machine when the gateway listens on all of them."""
        token = urllib.parse.quote(self.token, safe="")
        if public_host and "://" in public_host:
            return [f"{public_host.rstrip('/')}/#token={token}"]
        if public_host:
            hosts = [public_host]
        elif self.host in ("0.0.0.0", "", "::"):
            hosts = local_addresses() or ["127.0.0.1"]
        else:
            hosts = [self.host]
        return [f"{self.scheme}://{host}:{self.port}/#token={token}" for host in hosts]

    def start(self, name: str) -> None:
        child = self.children.setdefault(name, Child(name, SERVICES[name]))
        logf = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        child.proc = subprocess.Popen(
            [sys.executable, "-m", child.module],
            env=self.env,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops the children in order
        )
        logf.close()
        child.started_at = time.monotonic()
        log.info("started %s (pid %d)", name, child.proc.pid)

    def stop(self, name: str, timeout: float = 20.0, sig: int = signal.SIGTERM) -> int | None:
        child = self.children.get(name)
        if child is None or child.proc is None:
            return None
        proc = child.proc
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        child.proc = None
        return proc.returncode

    def kill(self, name: str) -> None:
        """Kill a service abruptly (SIGKILL), as a crash would. Used by resilience tests."""
        self.stop(name, timeout=5, sig=signal.SIGKILL)

    def supervise(self) -> list[str]:
        """Restart services that died on their own; returns the names restarted."""
        restarted = []
        for name, child in self.children.items():
            if child.proc is not None and child.proc.poll() is not None:
                code = child.proc.returncode
                backoff = min(30.0, 2.0 ** min(child.restarts, 5))
                if time.monotonic() - child.started_at < backoff:
                    continue
                log.warning("%s exited with %s; restarting (see %s)", name, code, self.log_dir / f"{name}.log")
                child.restarts += 1
                self.start(name)
                restarted.append(name)
        return restarted

    def wait_healthy(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, child in self.children.items():
                if child.proc is not None and child.proc.poll() is not None:
                    tail = (self.log_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{name} exited with {child.proc.returncode} at start:\n{tail}")
            if self._gateway_healthy() and self._workers_ready():
                return
            time.sleep(0.3)
        raise RuntimeError(f"services not ready after {timeout:.0f} s; logs in {self.log_dir}")

    def _gateway_healthy(self) -> bool:
        if "gateway" not in self.children:
            return True
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(self.url + "/api/health", timeout=2, context=self.ssl_context()) as r,
        ):
            return bool(r.status == 200)
        return False

    def _workers_ready(self) -> bool:
        """Every consumer group has a live member holding leases."""
        import redis

        r = redis.Redis.from_url(self.infra.redis_url)
        try:
            return all(r.zcard(f"members:{g}") > 0 for g in CONSUMERS if g in self.children)
        finally:
            r.close()

    def stop_all(self) -> None:
        """Stop every service, last started first; one that will not stop does not keep the rest running."""
        errors = []
        for name in reversed(list(self.children)):
            try:
                self.stop(name)
            except (OSError, subprocess.SubprocessError) as e:
                errors.append(f"{name}: {e}")
        if errors:
            log.error("some services did not stop cleanly: %s", "; ".join(errors))


@contextlib.contextmanager
def running(
    *,
    data_dir: Path | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    extra_env: Mapping[str, str] | None = None,
    services: tuple[str, ...] = tuple(SERVICES),
    wait: bool = True,
    https: bool = False,
) -> Iterator[Runtime]:
    """Start infra and services; stop everything on exit (also on Ctrl-C). ``https``: the
    gateway serves HTTPS with GATEWAY_TLS_CERT/KEY when set, else with this machine's own
    certificate (made in the data dir, see :mod:`habla.tls`)."""
    data_dir = data_dir or default_data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_dir = data_dir / "logs"
    log_dir.mkdir(exist_ok=True)
    extra = dict(extra_env or {})
    with infra(data_dir, extra.pop("REDIS_URL", ""), extra.pop("DATABASE_URL", "")) as inf:
        migrate(inf.database_url)
        token = load_token(data_dir)
        port = port or free_port()
        env = dict(os.environ)
        env.update(
            REDIS_URL=inf.redis_url,
            DATABASE_URL=inf.database_url,
            HABLA_TOKEN=token,
            GATEWAY_HOST=host,
            GATEWAY_PORT=str(port),
            HABLA_DATA_DIR=str(data_dir),
            PYANNOTE_METRICS_ENABLED="0",
            HF_HUB_DISABLE_TELEMETRY="1",
            HABLA_PARENT_PID=str(os.getpid()),
        )
        # every consumer serves its metrics on a port of its own (habla_common.metrics)
        metrics_ports = {name: free_port() for name in services if name in CONSUMERS}
        env.update({f"{name.upper()}_METRICS_PORT": str(port) for name, port in metrics_ports.items()})
        # ... which the gateway's ops view (/ops) scrapes
        env["GATEWAY_OPS_TARGETS"] = ",".join(
            f"{name}=http://127.0.0.1:{port}/metrics" for name, port in metrics_ports.items()
        )
        env.update(extra)
        tls_cert, own = None, False
        if https or env.get("GATEWAY_TLS_CERT"):
            if not env.get("GATEWAY_TLS_CERT"):
                from habla_common.tls import ensure_certificate

                names = [socket.gethostname(), *local_addresses()] if host in ("0.0.0.0", "", "::") else [host]
                cert, key = ensure_certificate(data_dir / "tls", names)
                env.update(GATEWAY_TLS_CERT=str(cert), GATEWAY_TLS_KEY=str(key))
                own = True
            tls_cert = Path(env["GATEWAY_TLS_CERT"])
        rt = Runtime(
            inf, env, host, port, token, log_dir, tls_cert=tls_cert, tls_self_signed=own, metrics_ports=metrics_ports
        )
        try:
            for name in services:
                rt.start(name)
            if wait:
                rt.wait_healthy()
            yield rt
        finally:
            rt.stop_all()
