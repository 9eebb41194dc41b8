"""HTTPS for the phone: this machine's own certificate, the gateway serving it, and the page in
Chromium as a secure context that records and streams over wss://.

The certificate is made by :mod:`habla.tls` the way ``habla up --https`` makes it; the gateway
runs with GATEWAY_TLS_CERT/KEY through the same uvicorn config as ``python -m habla_gateway``.
"""

from __future__ import annotations

import json
import os
import ssl
import threading
import urllib.error
import urllib.request
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from habla.supervisor import free_port
from habla_common.errors import ConfigError
from habla_common.tls import ensure_certificate, fingerprint, names_of
from habla_gateway import GatewayConfig
from habla_gateway.main import server_config
from tests.browser_kit import CHROMIUM, UI_TOKEN, phone, wait_js, wait_until


def test_the_certificate_covers_the_machine_and_is_kept(tmp_path: Path) -> None:
    cert, key = ensure_certificate(tmp_path, ["pc.home", "192.168.1.20"])
    assert {"localhost", "127.0.0.1", "pc.home", "192.168.1.20"} <= names_of(cert)
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    first = fingerprint(cert)
    assert len(first.split(":")) == 32
    # the same names (or fewer): the same certificate, so the phone's exception still holds
    assert ensure_certificate(tmp_path, ["192.168.1.20"]) == (cert, key) and fingerprint(cert) == first
    # a new address (another network, a VPN): a new certificate that covers it too
    ensure_certificate(tmp_path, ["pc.home", "192.168.1.20", "100.64.0.7"])
    assert "100.64.0.7" in names_of(cert) and fingerprint(cert) != first
    # a damaged file is replaced, not trusted
    cert.write_text("not a certificate")
    ensure_certificate(tmp_path, [])
    assert "localhost" in names_of(cert)


def test_the_gateway_refuses_half_a_tls_configuration(tmp_path: Path) -> None:
    cert, key = ensure_certificate(tmp_path, [])
    with pytest.raises(ConfigError, match="both"):
        GatewayConfig(token="t", tls_cert=str(cert))
    with pytest.raises(ConfigError, match="no such file"):
        GatewayConfig(token="t", tls_cert=str(cert), tls_key=str(tmp_path / "missing.pem"))
    assert GatewayConfig(token="t", tls_cert=str(cert), tls_key=str(key)).https


def test_habla_up_chooses_https_when_the_phone_comes_over_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default of ``--https``: on for 0.0.0.0, off on loopback or behind an https:// proxy."""
    from habla import cli

    chosen: list[bool] = []

    class Stop(Exception):
        pass

    def fake_running(**kwargs: object) -> object:  # a fake: records the choice, starts nothing
        chosen.append(bool(kwargs["https"]))
        raise Stop

    monkeypatch.setattr("habla.supervisor.running", fake_running)
    monkeypatch.delenv("HABLA_HTTPS", raising=False)
    runner = CliRunner()
    for args in (
        ["--host", "0.0.0.0"],
        ["--host", "127.0.0.1"],
        ["--host", "0.0.0.0", "--pair-host", "https://pc.tailnet.ts.net"],
        ["--host", "127.0.0.1", "--https"],
        ["--host", "0.0.0.0", "--http"],
    ):
        result = runner.invoke(cli.main, ["up", *args])
        assert isinstance(result.exception, Stop), result.output
    assert chosen == [True, False, False, True, False]


@pytest.fixture
def https_gateway(redis_url: str, pg_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The gateway alone over HTTPS with a certificate made as ``habla up --https`` makes it."""
    import uvicorn

    cert, key = ensure_certificate(tmp_path / "tls", [])
    port = free_port()
    tls = {"tls_cert": str(cert), "tls_key": str(key)}
    config = GatewayConfig(token=UI_TOKEN, partitions=2, host="127.0.0.1", port=port, **tls)
    server = uvicorn.Server(server_config(config, redis_url, pg_url))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 30, "the gateway")
    yield f"https://127.0.0.1:{port}", cert
    server.should_exit = True
    thread.join(10)


def test_the_gateway_serves_https_and_the_page_is_a_secure_context(
    https_gateway: tuple[str, Path], tmp_path: Path, artifacts: Path
) -> None:
    """A client that trusts the certificate talks to the gateway; plain HTTP on that port gets
    nothing. In Chromium (told to accept the unknown issuer, as the user does on the phone) the
    page is a secure context: the microphone opens and the audio goes out over wss://."""
    url, cert = https_gateway
    trusting = ssl.create_default_context(cafile=str(cert))
    with urllib.request.urlopen(f"{url}/api/health", context=trusting, timeout=10) as r:
        assert json.loads(r.read())["status"] == "ok"
    strict = ssl.create_default_context()
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(f"{url}/api/health", context=strict, timeout=10)
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(url.replace("https://", "http://") + "/api/health", timeout=10)

    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    mic = tmp_path / "tone.wav"
    with wave.open(str(mic), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        t = np.arange(16000 * 5) / 16000
        w.writeframes((np.sin(2 * np.pi * 220 * t) * 8000).astype("<i2").tobytes())
    with phone(mic, extra_args=["--ignore-certificate-errors"]) as page:
        sockets: list[str] = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        page.goto(f"{url}/#token={UI_TOKEN}")
        page.wait_for_selector("body[data-screen=app]", timeout=15000)
        assert page.evaluate("window.isSecureContext")
        page.click("#start")
        page.wait_for_selector("body[data-listening=true]", timeout=15000)
        wait_js(page, "window.habla.app.link && window.habla.app.link.sessionId", 20)
        wait_js(page, "window.habla.app.link.status().state === 'live'", 20)
        wait_until(lambda: page.evaluate("window.habla.app.metrics.firstChunkAt"), 15, "the first chunk", page)
        assert page.inner_text("#mic-text") == "Listening"
        page.screenshot(path=str(artifacts / "phone-https.png"))
        page.click("#start")
        page.wait_for_selector("body[data-listening=false]")
        assert not page.errors, page.errors
    assert sockets and all(s.startswith("wss://127.0.0.1:") for s in sockets), sockets


def test_the_gateway_container_makes_its_own_certificate_and_checks_its_health(
    https_gateway: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compose runs the gateway with GATEWAY_HTTPS=1 and the phone's name in GATEWAY_TLS_NAMES:
    it makes (once) a certificate for that name in the data dir. Its health check speaks HTTPS
    to it, and fails against a gateway that is not there."""
    import subprocess
    import sys

    from habla_gateway.main import with_own_certificate

    monkeypatch.setenv("HABLA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GATEWAY_TLS_NAMES", "pc.tailnet.ts.net, 100.64.0.7")
    config = with_own_certificate(GatewayConfig(token="t"))
    assert config.https and Path(config.tls_cert).parent == tmp_path / "data" / "tls"
    assert {"pc.tailnet.ts.net", "100.64.0.7", "localhost"} <= names_of(Path(config.tls_cert))
    assert with_own_certificate(GatewayConfig(token="t")).tls_cert == config.tls_cert  # kept

    url, _ = https_gateway
    port = url.rsplit(":", 1)[1]

    def health(**env: str) -> int:
        run_env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        command = [sys.executable, "-m", "habla_gateway.health", "/api/health"]
        done = subprocess.run(command, check=False, env={**run_env, **env}, capture_output=True, timeout=30)
        return done.returncode

    assert health(GATEWAY_PORT=port, GATEWAY_HTTPS="1") == 0
    assert health(GATEWAY_PORT=port, GATEWAY_HTTPS="0") != 0  # plain HTTP to an HTTPS port
    assert health(GATEWAY_PORT=str(free_port()), GATEWAY_HTTPS="1") != 0  # nobody there
