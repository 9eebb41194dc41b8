"""Real servers for every test in the repository.

Redis and Postgres come from REDIS_URL / DATABASE_URL when set; otherwise the test
session starts the same embedded servers `habla up` uses (never an in-memory fake).
Each test gets a clean Redis database and its own Postgres database.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
from psycopg import sql

from habla.embedded import embedded_postgres, embedded_redis
from habla_common.bus import RedisBus
from habla_common.migrate import migrate

EVAL = Path(__file__).resolve().parent.parent / "shared" / "eval"
SPEECH = EVAL / "speech"


@pytest.fixture(scope="session")
def _servers() -> Iterator[tuple[str, str]]:
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="habla-test-")))
        redis_url = os.environ.get("REDIS_URL") or stack.enter_context(embedded_redis(tmp / "redis"))
        pg_url = os.environ.get("DATABASE_URL") or stack.enter_context(embedded_postgres(tmp / "pg", "postgres"))
        yield redis_url, pg_url


@pytest.fixture(scope="session")
def redis_server_url(_servers: tuple[str, str]) -> str:
    return _servers[0]


@pytest.fixture(scope="session")
def pg_server_url(_servers: tuple[str, str]) -> str:
    return _servers[1]


def redis_db_url(base: str, db: int) -> str:
    """``base`` pointing at database ``db`` (tests never touch the server's db 0)."""
    parts = urlsplit(base)
    if parts.scheme == "unix":
        return f"unix://{parts.path}?db={db}"
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", ""))


@pytest.fixture(scope="session")
def redis_url_for(redis_server_url: str) -> object:
    """``redis_url_for(db)``: the test Redis server's URL for database ``db``."""
    return lambda db: redis_db_url(redis_server_url, db)


@pytest.fixture
def redis_url(redis_server_url: str) -> Iterator[str]:
    """Redis database 14 (``HABLA_TEST_REDIS_DB`` to use another, so two test runs can share
    a server), emptied before and after the test."""
    url = redis_db_url(redis_server_url, int(os.environ.get("HABLA_TEST_REDIS_DB", "14")))
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def bus(redis_url: str) -> RedisBus:
    b = RedisBus(redis.Redis.from_url(redis_url), partitions=2)
    b.ensure_topology()
    return b


@contextlib.contextmanager
def fresh_database(pg_server_url: str, prefix: str = "habla_t") -> Iterator[str]:
    """A new migrated database on the test server, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = psycopg.conninfo.make_conninfo(pg_server_url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(pg_server_url, dbname=name)
    migrate(url)
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def database_factory(pg_server_url: str) -> Callable[[str], contextlib.AbstractContextManager[str]]:
    """``with database_factory("prefix") as url:`` a fresh migrated database (module-scoped
    fixtures use it; importlib mode cannot import this file)."""
    return lambda prefix: fresh_database(pg_server_url, prefix)


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh migrated database for one test, dropped afterwards."""
    with fresh_database(pg_server_url) as url:
        yield url
