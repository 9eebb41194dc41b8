"""Token auth on sockets (4401 + reason) and REST (401 JSON); health needs none."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from habla_gateway.auth import RedactTokenFilter, presented_token, token_ok


@pytest.mark.parametrize("path", ["/ws", "/ws?token=", "/ws?token=wrong", "/ws?token=test-token-123"])
def test_socket_without_the_right_token_is_closed_4401(client: Any, path: str) -> None:
    with client.websocket_connect(path) as ws:
        err = ws.receive_json()
        assert err["type"] == "error" and err["code"] == "unauthorized" and "token" in err["message"]
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4401
    assert "unauthorized" in closed.value.reason and "token" in closed.value.reason


def test_socket_with_wrong_bearer_header_is_closed(client: Any) -> None:
    with client.websocket_connect("/ws", headers={"Authorization": "Bearer nope"}) as ws:
        assert ws.receive_json()["code"] == "unauthorized"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4401


def test_socket_with_bearer_header(client: Any, h: Any) -> None:
    with client.websocket_connect("/ws", headers={"Authorization": f"Bearer {h.TOKEN}"}) as ws:
        assert h.start(ws)["type"] == "ready"


@pytest.mark.parametrize("path", ["/api/sessions", "/api/sessions/x", "/api/sessions/x/transcript"])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dGVzdA=="}])
def test_rest_needs_the_token(client: Any, path: str, headers: dict[str, str]) -> None:
    res = client.get(path, headers=headers)
    assert res.status_code == 401
    assert res.json()["error"] == "unauthorized" and res.json()["message"]


def test_rest_accepts_header_or_query_token(client: Any, db: Any, h: Any) -> None:
    assert client.get("/api/sessions", headers={"Authorization": f"Bearer {h.TOKEN}"}).status_code == 200
    assert client.get(f"/api/sessions?token={h.TOKEN}").status_code == 200


def test_health_needs_no_token(client: Any) -> None:
    res = client.get("/api/health")
    assert res.status_code == 200
    assert res.json() == {"status": "ok", "redis": True, "postgres": True}


def test_health_reports_an_unreachable_postgres(r: Any, redis_url: str, h: Any) -> None:
    from starlette.testclient import TestClient

    from habla_gateway import create_app

    app = create_app(h.make_config(), redis_url, "postgresql://postgres@127.0.0.1:1/nothing")
    with TestClient(app) as client:
        res = client.get("/api/health")
        assert res.status_code == 503
        assert res.json() == {"status": "degraded", "redis": True, "postgres": False}
        res = client.get("/api/sessions", headers={"Authorization": f"Bearer {h.TOKEN}"})
        assert res.status_code == 503 and res.json()["error"] == "unavailable"


def test_token_helpers() -> None:
    assert presented_token({"token": "q"}, {"authorization": "Bearer h"}) == "h"
    assert presented_token({"token": "q"}, {}) == "q"
    assert presented_token({}, {"authorization": "bearer  h "}) == "h"
    assert presented_token({}, {}) is None
    assert token_ok("abc", "abc") and not token_ok("abc", "abd") and not token_ok("abc", None)
    assert not token_ok("", "")


def test_token_is_redacted_from_logs() -> None:
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5", "/ws?token=s3cret&x=1"),
        None,
    )
    RedactTokenFilter().filter(record)
    assert "s3cret" not in record.getMessage() and "token=***" in record.getMessage()
