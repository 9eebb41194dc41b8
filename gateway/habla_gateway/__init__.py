"""Habla gateway: phone WebSockets in, session events out, REST for sessions and transcripts."""

from __future__ import annotations

from .app import create_app
from .config import GatewayConfig

__all__ = ["GatewayConfig", "create_app"]
