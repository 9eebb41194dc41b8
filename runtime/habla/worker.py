"""The batch-job worker: ``python -m habla.worker`` (started by ``habla up``).

An rq ``SimpleWorker`` on the ``habla`` queue: jobs run in this process, one at a time,
so a model a job loads (re-translation loads the translation model on its first job)
stays loaded for the next. SIGTERM lets the job in hand finish (rq's warm shutdown).
"""

from __future__ import annotations

import os
import threading
import time

from habla_common.bus import connect_redis
from habla_common.lifecycle import setup_logging
from habla_common.settings import Settings

__all__ = ["main"]


def main() -> None:
    from rq import Queue, SimpleWorker

    from habla_translate.jobs import QUEUE

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see habla_translate.main: share the CPU politely
    settings = Settings.from_env("worker")
    setup_logging(settings.log_level, "worker")
    _exit_with_parent()
    redis = connect_redis(settings.redis_url)
    worker = SimpleWorker([Queue(QUEUE, connection=redis)], connection=redis, name=f"habla-worker-{os.getpid()}")
    # no scheduler: rq would fork it as a second process that outlives this one if the
    # supervisor is killed; jobs retry at once instead of after an interval
    worker.work(with_scheduler=False, logging_level=settings.log_level.upper())


def _exit_with_parent(poll_s: float = 1.0) -> None:
    """If the supervisor that started us is gone, exit at once, job or not: rq's warm
    shutdown would finish a re-translation first (minutes) with nobody left to stop us.
    An interrupted job stays in rq's started-job registry; run `habla retranslate` again."""
    parent = os.environ.get("HABLA_PARENT_PID", "")
    if not parent.isdigit():
        return

    def watch() -> None:
        while os.getppid() == int(parent):
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


if __name__ == "__main__":
    main()
