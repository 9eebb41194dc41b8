"""The batch-job worker: ``python -m habla.worker`` (started by ``habla up``).

An rq ``SimpleWorker`` on the ``habla`` queue: jobs run in this process, one at a time,
so a model a job loads (re-translation loads the translation model on its first job)
stays loaded for the next. SIGTERM lets the job in hand finish (rq's warm shutdown).
"""

from __future__ import annotations

import os

from habla_common.bus import connect_redis
from habla_common.lifecycle import setup_logging, stop_with_parent
from habla_common.settings import Settings

__all__ = ["main"]


def main() -> None:
    from rq import Queue, SimpleWorker

    from habla_translate.jobs import QUEUE

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see habla_translate.main: share the CPU politely
    settings = Settings.from_env("worker")
    setup_logging(settings.log_level, "worker")
    stop_with_parent()
    redis = connect_redis(settings.redis_url)
    worker = SimpleWorker([Queue(QUEUE, connection=redis)], connection=redis, name=f"habla-worker-{os.getpid()}")
    worker.work(with_scheduler=True, logging_level=settings.log_level.upper())


if __name__ == "__main__":
    main()
