"""python -m habla_gateway.health [PATH]: exit 0 when the gateway on this machine answers
``PATH`` (default ``/api/health``) with 200; the container's health check. Over HTTPS when the
gateway serves it (its own certificate is not checked on loopback)."""

from __future__ import annotations

import sys
import urllib.request

from habla_common.settings import env_bool, env_int, env_str
from habla_common.tls import loopback_context


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else "/api/health"
    port = env_int("GATEWAY_PORT", 8000)
    https = bool(env_str("GATEWAY_TLS_CERT", "")) or env_bool("GATEWAY_HTTPS", False)
    context = loopback_context() if https else None
    url = f"{'https' if https else 'http'}://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=3, context=context) as r:
            sys.exit(0 if r.status == 200 else 1)
    except OSError as e:
        sys.exit(f"{url}: {e}")


if __name__ == "__main__":
    main()
