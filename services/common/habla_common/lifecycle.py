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
import time
from types import FrameType

__all__ = ["install_stop_handlers", "setup_logging", "stop_with_parent"]


def setup_logging(level: str, service: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def stop_with_parent(poll_s: float = 1.0) -> None:
    """If a supervisor started this process (``HABLA_PARENT_PID``), SIGTERM ourselves when it is gone.

    So a supervisor that is killed outright (no chance to stop its children) leaves no
    service running on its own.
    """
    parent = os.environ.get("HABLA_PARENT_PID")
    if not parent or not parent.isdigit():
        return

    def watch() -> None:
        while os.getppid() == int(parent):
            time.sleep(poll_s)
        logging.getLogger("habla").warning("supervisor %s is gone: stopping", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def install_stop_handlers(stop: threading.Event) -> None:
    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            logging.getLogger("habla").warning("second signal: exiting now")
            os._exit(1)
        logging.getLogger("habla").info("signal %d: stopping after the message in hand", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
