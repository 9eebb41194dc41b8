"""``habla export --format apkg|csv --out PATH``: the vocabulary as an Anki package or CSV.

Like ``habla retranslate``, the export is the rq job ``habla_vocab.jobs.run_export``: when
a job worker serves the queue (``habla up`` runs one) the command enqueues it and follows
its progress; otherwise (or with Redis unreachable) it runs the same function in this
process. Either way the file is written under ``<data dir>/exports`` first, then copied (or
moved) to PATH.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from habla_common.settings import default_data_dir

from .translate_cli import err

__all__ = ["export"]

_STAGES = {
    "queued": "waiting for the job worker",
    "reading": "reading the vocabulary",
    "exporting": "exporting items",
    "writing": "writing the file",
    "finished": "done",
}


def _target(out: Path, fmt: str) -> Path:
    """PATH, or a file in it when it is a folder; checked to be writable before the export runs."""
    if out.is_dir():
        out = out / f"habla-vocab.{fmt}"
    probe = out.with_name(f".{out.name}.habla-check")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise click.ClickException(f"cannot write {out}: {e.strerror or e}") from e
    return out


def _deliver(result: dict[str, Any], out: Path, *, move: bool) -> None:
    src = Path(result["path"])
    part = out.with_name(f".{out.name}.part")
    try:
        if move:
            shutil.move(src, part)
        else:
            shutil.copyfile(src, part)
        os.replace(part, out)
    except FileNotFoundError as e:
        raise click.ClickException(
            f"the export was written to {src}, which this command cannot read (is the worker on another machine?)"
        ) from e
    except OSError as e:
        part.unlink(missing_ok=True)
        raise click.ClickException(f"cannot write {out}: {e.strerror or e}") from e


@contextlib.contextmanager
def _bar() -> Iterator[Any]:
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} items"),
        TimeElapsedColumn(), console=err, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task(_STAGES["queued"], total=None)

        def update(done: int, total: int, stage: str) -> None:
            progress.update(task, completed=done, total=total or None, description=_STAGES.get(stage, stage))

        yield update


def _follow(job: Any, update: Any) -> dict[str, Any]:
    while True:
        job.refresh()
        meta = job.get_meta(refresh=False)
        update(int(meta.get("done", 0)), int(meta.get("total", 0)), str(meta.get("stage", "queued")))
        status = str(getattr(job.get_status(refresh=False), "value", ""))
        if status == "finished":
            return dict(job.return_value())
        if status in ("failed", "stopped", "canceled"):
            result = job.latest_result()
            detail = meta.get("error") or (result.exc_string.strip().splitlines()[-1] if result else status)
            raise click.ClickException(f"export job {job.id} {status}: {detail}")
        time.sleep(0.3)


def _worker_queue(redis_url: str) -> Any | None:
    """Redis, when a job worker serves the queue; None to run the export here."""
    from rq import Queue, Worker

    from habla_common.bus import connect_redis
    from habla_common.errors import BusUnavailable
    from habla_vocab.jobs import QUEUE

    try:
        redis = connect_redis(redis_url)
    except BusUnavailable:
        return None
    return redis if Worker.all(queue=Queue(QUEUE, connection=redis)) else None


@click.command()
@click.option("--format", "fmt", type=click.Choice(["apkg", "csv"]), required=True, help="Anki package or CSV.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="File to write (a folder: habla-vocab.<format> in it).",
)
@click.option("--data-dir", default=None, help="Where embedded servers and the exports folder live.")
def export(fmt: str, out: Path, data_dir: str | None) -> None:
    """Export the vocabulary as an Anki package (with the audio clips) or CSV."""
    from habla_common.errors import InfraError
    from habla_common.migrate import migrate
    from habla_vocab.errors import VocabError
    from habla_vocab.jobs import enqueue_export, run_export

    from .embedded import infra

    target = _target(out, fmt)
    folder = Path(data_dir) if data_dir else default_data_dir()
    exports = str(folder / "exports")
    with infra(folder) as inf:
        try:
            migrate(inf.database_url)
        except InfraError as e:
            raise click.ClickException(str(e)) from e
        redis = _worker_queue(inf.redis_url)
        with _bar() as update:
            if redis is not None:
                job = enqueue_export(redis, fmt, out_dir=exports, database_url=inf.database_url)
                err.print(f"queued the export as job {job.id} on the running job worker")
                result = _follow(job, update)
            else:
                try:
                    result = run_export(fmt, exports, database_url=inf.database_url, progress=update)
                except (VocabError, InfraError) as e:
                    raise click.ClickException(str(e)) from e
    _deliver(result, target, move=redis is None)
    clips = f", {result['clips']} clips" if fmt == "apkg" else ""
    click.echo(f"exported {result['items']} items{clips} to {target} ({result['bytes']:,} bytes)")
