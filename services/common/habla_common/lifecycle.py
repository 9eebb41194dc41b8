"""Process lifecycle: logging set-up and graceful stop on SIGTERM/SIGINT.

The first signal asks the loop to stop (it finishes and acks the message in hand);
a second one exits at once.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType

__all__ = ["install_stop_handlers", "setup_logging"]


def setup_logging(level: str, service: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def install_stop_handlers(stop: threading.Event) -> None:
    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            logging.getLogger("habla").warning("second signal: exiting now")
            os._exit(1)
        logging.getLogger("habla").info("signal %d: stopping after the message in hand", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
