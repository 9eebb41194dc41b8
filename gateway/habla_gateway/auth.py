"""Token auth for sockets and REST, and keeping the token out of logs.

The token comes as ``?token=`` (browsers cannot set headers on a WebSocket) or as
``Authorization: Bearer <token>``; it is compared in constant time.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from functools import wraps

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response

__all__ = [
    "UNAUTHORIZED_REASON",
    "WS_4401_UNAUTHORIZED",
    "RedactTokenFilter",
    "is_authorized",
    "presented_token",
    "redact",
    "requires_token",
    "token_ok",
]

# Application close code (4000-4999) mirroring HTTP 401; starlette.status has none.
WS_4401_UNAUTHORIZED = 4401
UNAUTHORIZED_REASON = "unauthorized: missing or wrong token (use ?token= or Authorization: Bearer)"


def presented_token(query: Mapping[str, str], headers: Mapping[str, str]) -> str | None:
    """The token the client sent, from the Authorization header or the query."""
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    token = query.get("token")
    return token or None


def token_ok(expected: str, presented: str | None) -> bool:
    if not presented or not expected:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


def is_authorized(conn: HTTPConnection, expected: str) -> bool:
    return token_ok(expected, presented_token(conn.query_params, conn.headers))


Handler = Callable[[Request], Awaitable[Response]]


def requires_token(handler: Handler) -> Handler:
    """Wrap a REST endpoint: 401 JSON unless the request carries the token."""

    @wraps(handler)
    async def guarded(request: Request) -> Response:
        if not is_authorized(request, request.state.config.token):
            return JSONResponse(
                {"error": "unauthorized", "message": "missing or wrong token: send Authorization: Bearer <token>"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return await handler(request)

    return guarded


_TOKEN_IN_TEXT = re.compile(r"(token=)[^&\s\"']*", re.IGNORECASE)
_BEARER_IN_TEXT = re.compile(r"(bearer\s+)\S+", re.IGNORECASE)


def redact(text: str) -> str:
    return _BEARER_IN_TEXT.sub(r"\1***", _TOKEN_IN_TEXT.sub(r"\1***", text))


class RedactTokenFilter(logging.Filter):
    """Masks ``token=...`` in log records (uvicorn logs socket paths with their query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True
