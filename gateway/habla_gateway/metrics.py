"""The gateway's metrics, served with the process's own at ``GET /metrics`` (token required,
as ``Authorization: Bearer``; Prometheus sends it with ``authorization: {credentials: …}``).

* ``habla_gateway_sockets``: open WebSockets; ``habla_gateway_sessions``: sockets holding a
  session (the ``busy`` limit counts these);
* ``habla_events_delivered_total{kind}``: event frames sent to sockets;
* ``habla_stage_seconds{stage}`` (see :mod:`habla_common.metrics`), here the end of the live path:
  from the gateway receiving the audio to the frame going out on the socket, for events
  published while that socket was following its session (a resumed socket's catch-up is not
  a latency).
"""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from habla_common.metrics import observe_stage
from habla_contracts import Event

from .auth import requires_token

__all__ = ["DELIVERED", "SESSIONS", "SOCKETS", "delivered", "metrics_endpoint"]

SOCKETS = Gauge("habla_gateway_sockets", "Open WebSockets")
SESSIONS = Gauge("habla_gateway_sessions", "WebSockets holding a session")
DELIVERED = Counter("habla_events_delivered", "Event frames sent to sockets", ["kind"])

# event kind -> stage name of "received audio -> on the socket"
_STAGES = {
    "asr.partial": "window_to_partial_delivered",
    "asr.final": "speech_end_to_transcript_delivered",
    "translation.final": "speech_end_to_translation_delivered",
    "tts.audio": "speech_end_to_audio_delivered",
}


def delivered(event: Event, following_since: float) -> None:
    """Count an event frame sent, and its stage latency if it is live."""
    DELIVERED.labels(event.KIND).inc()
    stage = _STAGES.get(event.KIND)
    if stage is None or event.occurred_at < following_since:
        return
    if event.KIND == "translation.final" and getattr(event, "revision", 0) != 0:
        return  # a re-translation, not the live path
    if event.KIND == "tts.audio" and getattr(event, "chunk", 0) != 0:
        return  # the first spoken sentence is what the user waits for
    observe_stage(stage, getattr(event, "received_at", 0.0), time.time())


@requires_token
async def metrics_endpoint(request: Request) -> Response:
    """``GET /metrics``: Prometheus text format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
