"""A FAKE Ollama server for tests, answering with a REAL model.

The Ollama binary cannot be installed on this project's machines (no registry ships it),
yet :class:`habla_translate.llm.OllamaChat` must be tested through the real ``ollama``
client and real HTTP. This server implements just the part of Ollama's REST API that
client uses, the way Ollama answers it, and generates every answer with a real
:class:`~habla_translate.llm.ChatModel` (the bundled model via llama.cpp):

* ``POST /api/chat`` (non-streaming only): ``messages``, ``format`` (a JSON schema, or
  ``"json"``), ``options.num_predict``, ``options.stop``, ``keep_alive``; a trailing
  assistant message is continued (a prefill), and only the continuation is returned, with
  ``done_reason``, ``prompt_eval_count`` and ``eval_count``. An unknown model gets Ollama's
  404 ``model "x" not found, try pulling it first``.
* ``GET /api/tags``: the served models; ``GET /``: "Ollama is running".

Every /api/chat request body is kept in :attr:`FakeOllamaServer.requests` so tests can
check what the client sent.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from habla_translate.llm import ChatModel, Message

__all__ = ["FakeOllamaServer"]

_ANY_JSON_OBJECT = {"type": "object"}


class FakeOllamaServer:
    """``with FakeOllamaServer(model, ["qwen2.5-coder:1.5b"]) as server: server.url``."""

    def __init__(self, backend: ChatModel, models: Iterable[str]) -> None:
        self.backend = backend
        self.models = set(models)
        self.requests: list[dict[str, Any]] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fake-ollama", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeOllamaServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def chat(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Answer one /api/chat body as Ollama would: (HTTP status, JSON answer)."""
        self.requests.append(body)
        model = body.get("model", "")
        if model not in self.models:
            return 404, {"error": f'model "{model}" not found, try pulling it first'}
        if body.get("stream", True):
            return 400, {"error": "this fake Ollama server only answers stream=false requests"}
        messages = [Message(m["role"], m.get("content", "")) for m in body.get("messages", [])]
        prefill = ""
        if messages and messages[-1].role == "assistant":
            prefill = messages.pop().content
        options = body.get("options") or {}
        fmt = body.get("format")
        schema = _ANY_JSON_OBJECT if fmt == "json" else fmt or None
        started = time.perf_counter_ns()
        done = self.backend.chat(
            messages,
            schema=schema,
            prefill=prefill,
            max_tokens=int(options.get("num_predict", 128)),
            stop=list(options.get("stop") or ()),
        )
        took = time.perf_counter_ns() - started
        return 200, {
            "model": model,
            "created_at": datetime.now(UTC).isoformat(),
            "message": {"role": "assistant", "content": done.text},
            "done": True,
            "done_reason": done.finish_reason,
            "total_duration": took,
            "load_duration": 0,
            "prompt_eval_count": done.prompt_tokens,
            "eval_count": done.completion_tokens,
            "eval_duration": took,
        }

    def tags(self) -> dict[str, Any]:
        return {"models": [{"name": m, "model": m} for m in sorted(self.models)]}


def _handler_for(server: FakeOllamaServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects from Ollama

        def do_GET(self) -> None:
            if self.path == "/api/tags":
                self._send(200, server.tags())
            elif self.path == "/":
                self._send_text(200, "Ollama is running")
            else:
                self._send_text(404, "404 page not found")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                self._send(400, {"error": "invalid JSON"})
                return
            if self.path != "/api/chat":
                self._send_text(404, "404 page not found")
                return
            try:
                status, answer = server.chat(body)
            except (ValueError, KeyError, TypeError) as e:
                status, answer = 400, {"error": str(e)}
            except Exception as e:  # noqa: BLE001 - a real server answers 500, it does not die
                status, answer = 500, {"error": f"{type(e).__name__}: {e}"}
            self._send(status, answer)

        def _send(self, status: int, answer: dict[str, Any]) -> None:
            self._send_bytes(status, json.dumps(answer).encode(), "application/json; charset=utf-8")

        def _send_text(self, status: int, text: str) -> None:
            self._send_bytes(status, text.encode(), "text/plain; charset=utf-8")

        def _send_bytes(self, status: int, data: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests read :attr:`FakeOllamaServer.requests` instead of access logs."""

    return Handler
