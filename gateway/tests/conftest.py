"""Fixtures: real Redis (DB 13, flushed per test) and real Postgres (database ``habla_gw_test``).

The servers are the repository's test servers (root conftest.py): ``REDIS_URL`` /
``DATABASE_URL`` when set, else embedded ones the test session starts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import redis
from starlette.testclient import TestClient

from habla_common.bus import RedisBus, decode_entry
from habla_common.migrate import migrate
from habla_contracts import Event, partition_of, stream_key
from habla_gateway import GatewayConfig, create_app

TOKEN = "test-token-1234"
PARTITIONS = 2
TEST_REDIS_DB = 13
TEST_DATABASE = "habla_gw_test"


@pytest.fixture(scope="session")
def redis_url(redis_url_for: Any) -> str:
    return redis_url_for(TEST_REDIS_DB)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def database_url(pg_server_url: str) -> str:
    admin = psycopg.conninfo.make_conninfo(pg_server_url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEST_DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {TEST_DATABASE}")
    url = psycopg.conninfo.make_conninfo(pg_server_url, dbname=TEST_DATABASE)
    migrate(url)
    return url


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    assert client.connection_pool.connection_kwargs.get("db") == TEST_REDIS_DB  # never flush a real DB
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def bus(r: redis.Redis) -> RedisBus:
    b = RedisBus(r, PARTITIONS)
    b.ensure_topology()
    return b


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    tables = "sessions, utterances, translations, corrections, saved_terms, speakers, voiceprints, events"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {tables}")
        yield conn
        conn.execute(f"TRUNCATE {tables}")


def make_config(**overrides: Any) -> GatewayConfig:
    values: dict[str, Any] = dict(token=TOKEN, partitions=PARTITIONS, outbox_block_ms=1000)
    values.update(overrides)
    return GatewayConfig(**values)


@pytest.fixture
def client(r: redis.Redis, redis_url: str, database_url: str) -> Iterator[TestClient]:
    app = create_app(make_config(), redis_url, database_url)
    with TestClient(app) as c:
        yield c


# --- helpers used by the tests -------------------------------------------------------


def ws_path(token: str | None = TOKEN) -> str:
    return "/ws" if token is None else f"/ws?token={token}"


def start(ws: Any, **fields: Any) -> dict[str, Any]:
    ws.send_json({"type": "session.start", "codec": "pcm16", "sample_rate": 16000, **fields})
    msg = ws.receive_json()
    assert msg["type"] == "ready", msg
    return msg  # type: ignore[no-any-return]


def receive_until(ws: Any, pred: Any) -> list[dict[str, Any]]:
    """Frames up to and including the first one ``pred`` accepts (pytest-timeout guards hangs)."""
    out = []
    while True:
        msg = ws.receive_json()
        out.append(msg)
        if pred(msg):
            return out


def events_until(ws: Any, kind: str, **match: Any) -> list[dict[str, Any]]:
    """Event frames up to and including the first of ``kind`` whose data has ``match``."""

    def wanted(m: dict[str, Any]) -> bool:
        return m["type"] == "event" and m["kind"] == kind and all(m["data"].get(k) == v for k, v in match.items())

    frames = receive_until(ws, wanted)
    return [f for f in frames if f["type"] == "event"]


def stream_events(r: redis.Redis, kind: str, session_id: str) -> list[Event]:
    key = stream_key(kind, partition_of(session_id, PARTITIONS))
    return [
        d.event
        for d in (decode_entry(key, eid, fields) for eid, fields in r.xrange(key))
        if d.event.session_id == session_id
    ]


def wait_for(check: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


class Helpers:
    """The helpers above, for test modules (importlib mode cannot import conftest)."""

    TOKEN = TOKEN
    PARTITIONS = PARTITIONS
    ws_path = staticmethod(ws_path)
    start = staticmethod(start)
    receive_until = staticmethod(receive_until)
    events_until = staticmethod(events_until)
    stream_events = staticmethod(stream_events)
    wait_for = staticmethod(wait_for)
    make_config = staticmethod(make_config)


@pytest.fixture
def h() -> type[Helpers]:
    return Helpers
