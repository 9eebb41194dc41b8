"""The gateway app: ``create_app(config, redis_url, database_url)``.

Clients live in the lifespan state (never at module level): the sync Redis client
behind the bus (publishing, run in worker threads), an asyncio Redis client for the
outbox reads (``XREAD BLOCK``) and the health check. REST opens a Postgres
connection per request.

The phone client (``web/``: plain HTML, CSS and ES modules, no build step) is served
as static files at ``/``, after every API and socket route, without a token; so are the ops
page at ``/ops`` (its data, ``/api/ops``, needs the token) and its charting library at
``/vendor/``. A task of the lifespan scrapes the metrics behind the ops page
(:mod:`habla_gateway.ops`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import redis.asyncio as aredis
from anyio import to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route, WebSocketRoute
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

from habla_common.bus import RedisBus, connect_redis, redis_options

from .config import GatewayConfig
from .exports import create_export, export_file, export_status
from .metrics import SESSIONS, metrics_endpoint
from .ops import OpsMonitor, ops_data, ops_page, vendor_file
from .outbox import Outbox, read_timeout_s
from .rest import (
    delete_session,
    delete_voiceprint,
    error_response,
    get_session,
    get_transcript,
    get_utterance_audio,
    health,
    list_sessions,
    list_voiceprints,
    rename_speaker,
)
from .sessions import SessionStore
from .speech import stream_audio, stream_ws
from .vocab import delete_item, due_cards, get_item, item_clip, list_items, review_item, save_term
from .ws import Capacity, ws_endpoint

__all__ = ["create_app"]

log = logging.getLogger("habla.gateway")


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail))


class WebFiles(StaticFiles):
    """The web client's files, each revalidated on every load (``no-cache``: the ETag
    makes that a 304), so a new version (the service worker above all) is picked up at once."""

    def file_response(
        self, full_path: PathLike, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


class WebMount(Mount):
    """``/`` for the web client, leaving ``/api`` and ``/ws`` to their routes: an unknown API
    path stays a JSON 404 and a wrong method a 405, as if the client were not there."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in ("/api", "/ws") or path.startswith(("/api/", "/ws/")):
            return Match.NONE, {}
        return super().matches(scope)


def web_routes(web_dir: str) -> list[BaseRoute]:
    """The static mount for ``web_dir``, or nothing (with a warning) if there is no such folder."""
    if not Path(web_dir).is_dir():
        log.warning("no web client at %s (set GATEWAY_WEB_DIR); serving the API only", web_dir)
        return []
    mimetypes.add_type("application/manifest+json", ".webmanifest")
    mimetypes.add_type("text/javascript", ".js")
    return [WebMount("/", app=WebFiles(directory=web_dir, html=True), name="web")]


def create_app(config: GatewayConfig, redis_url: str, database_url: str) -> Starlette:
    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[dict[str, Any]]:
        sync_client = await to_thread.run_sync(connect_redis, redis_url)
        bus = RedisBus(sync_client, config.partitions)
        await to_thread.run_sync(bus.ensure_topology)
        # an outbox read blocks up to outbox_block_ms: the socket must wait longer than that,
        # or a reply that comes a moment late on a busy machine reads as a lost connection
        async_client = aredis.Redis.from_url(
            redis_url, **redis_options(redis_url), socket_timeout=read_timeout_s(config.outbox_block_ms)
        )
        log.info("gateway ready (max frame %d bytes)", config.max_frame_bytes)
        capacity = Capacity(config.max_sockets)
        SESSIONS.set_function(lambda: capacity.active)
        ops = OpsMonitor(config.ops_targets)
        scraping = asyncio.create_task(ops.run(), name="ops")
        try:
            yield {
                "config": config,
                "database_url": database_url,
                "redis": sync_client,  # rq jobs (exports)
                "aredis": async_client,
                "store": SessionStore(bus),
                "outbox": Outbox(async_client, config.outbox_block_ms),
                "capacity": capacity,
                "ops": ops,
            }
        finally:
            scraping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await scraping
            await async_client.aclose()
            sync_client.close()

    routes = [
        Route("/api/health", health),
        Route("/metrics", metrics_endpoint),
        Route("/api/ops", ops_data),
        Route("/ops", ops_page),
        Route("/vendor/{name}", vendor_file),
        Route("/api/sessions", list_sessions),
        Route("/api/sessions/{session_id}", get_session),
        Route("/api/sessions/{session_id}", delete_session, methods=["DELETE"]),
        Route("/api/sessions/{session_id}/transcript", get_transcript),
        Route("/api/sessions/{session_id}/utterances/{utterance_id}/audio", get_utterance_audio),
        Route("/api/sessions/{session_id}/speakers/{speaker}", rename_speaker, methods=["POST"]),
        Route("/api/voiceprints", list_voiceprints),
        Route("/api/voiceprints/{voiceprint_id}", delete_voiceprint, methods=["DELETE"]),
        Route("/api/exports", create_export, methods=["POST"]),
        Route("/api/exports/{job_id}", export_status),
        Route("/api/exports/{job_id}/file", export_file),
        Route("/api/sessions/{session_id}/terms", save_term, methods=["POST"]),
        Route("/api/vocab", list_items),
        Route("/api/vocab/due", due_cards),
        Route("/api/vocab/{item_id}", get_item),
        Route("/api/vocab/{item_id}", delete_item, methods=["DELETE"]),
        Route("/api/vocab/{item_id}/clip", item_clip),
        Route("/api/vocab/{item_id}/reviews", review_item, methods=["POST"]),
        Route("/api/stream-audio", stream_audio, methods=["POST"]),
        WebSocketRoute("/ws", ws_endpoint),
        WebSocketRoute("/ws/stream", stream_ws),
        *web_routes(config.web_dir),  # last: everything else is the web client
    ]
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: _http_error})
