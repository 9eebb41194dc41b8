"""Shared fixtures: the real engines, each built once per test session, and a local speech
server over real HTTP.

``speech_server`` STANDS IN for the GPU PC's speech server (e.g. Kokoro-FastAPI), which
cannot run here: a stdlib ``http.server`` in a thread that speaks the same OpenAI-compatible
API (``POST /v1/audio/speech`` with JSON, a WAV in answer). It really synthesises, with
espeak-ng, and records each request; it answers HTTP 500 for an input that contains its
``fail_on`` text, and a JSON body (no WAV) for the model ``not-wav``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from habla_tts.engines import EspeakSynthesizer, PiperSynthesizer, bundled_piper_model
from habla_tts.http_engine import HttpSynthesizer


@pytest.fixture(scope="session")
def espeak_es() -> EspeakSynthesizer:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng; scripts/test does it)")
    return EspeakSynthesizer("es", "es")


@pytest.fixture(scope="session")
def espeak_en(espeak_es: EspeakSynthesizer) -> EspeakSynthesizer:
    return EspeakSynthesizer("en-us", "en")


@pytest.fixture(scope="session")
def piper_en() -> PiperSynthesizer:
    """The bundled English Piper voice, loaded once."""
    return PiperSynthesizer(bundled_piper_model(), "en", voice="joe")


@dataclass
class SpeechServer:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_on: str = "\x00never"


def _handler(server: SpeechServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep the test output clean
            pass

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            server.requests.append(request)
            if self.path != "/v1/audio/speech":
                self._answer(404, b'{"detail": "Not Found"}', "application/json")
            elif server.fail_on in request["input"]:
                self._answer(500, b'{"detail": "synthesis failed on the GPU"}', "application/json")
            elif request["model"] == "not-wav":
                self._answer(200, b'{"audio": "elsewhere"}', "application/json")
            else:
                voice = "es" if request["voice"].startswith("e") else "en-us"
                wav = subprocess.run(
                    ["espeak-ng", "-v", voice, "-b", "1", "--stdout"],
                    input=request["input"].encode(),
                    check=True,
                    capture_output=True,
                ).stdout
                self._answer(200, wav, "audio/wav")

    return Handler


@pytest.fixture(scope="session")
def speech_server(espeak_es: EspeakSynthesizer) -> Iterator[SpeechServer]:
    """The stand-in for the GPU PC's speech server (see the module docstring)."""
    state = SpeechServer(url="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1/audio/speech"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def server(speech_server: SpeechServer) -> Iterator[SpeechServer]:
    """The stand-in server with its request log emptied and no failure set for this test."""
    speech_server.requests.clear()
    yield speech_server
    speech_server.fail_on = "\x00never"


@pytest.fixture(scope="session")
def http_es(speech_server: SpeechServer) -> HttpSynthesizer:
    return HttpSynthesizer(speech_server.url, "ef_dora", "es", model="kokoro", timeout_s=10)
