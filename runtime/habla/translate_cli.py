"""``habla translate``, ``habla idioms``, ``habla retranslate``, ``habla eval translate`` and ``habla eval diarize``.

``translate`` feeds each line to the translate service's own handler, as if it were a
final transcript of one session (so earlier lines are context, exactly as live), and
prints each TranslationFinal as a JSON line. ``idioms`` only runs the idiom database.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from habla_common.settings import default_data_dir

__all__ = ["eval_group", "idioms", "render_translation", "retranslate", "translate"]

err = Console(stderr=True)


def render_translation(d: dict[str, Any]) -> str:
    """One translation final for the terminal: the English under the Spanish."""
    status = d.get("status", "ok")
    flag = {"fallback": " [yellow](literal fallback)[/]", "untranslated": " [red](untranslated)[/]"}.get(status, "")
    lines = [f"         [green]{escape(d.get('translation') or '')}[/]{flag}"]
    for c in d.get("corrections") or []:
        lines.append(f"         [yellow]heard[/] {escape(c['heard'])} → {escape(c['fixed'])} ({escape(c['reason'])})")
    return "\n".join(lines)


def _lines(text: str | None, file: Path | None) -> list[str]:
    if file is not None:
        try:
            raw = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise click.ClickException(f"cannot read {file}: {e}") from e
        lines = [ln.strip() for ln in raw.splitlines() if ln.strip()]
    else:
        lines = [text.strip()] if text and text.strip() else []
    if not lines:
        raise click.UsageError("give a sentence, or --file with one sentence per line")
    return lines


@click.command()
@click.argument("text", required=False)
@click.option(
    "--file", "file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="One sentence per line."
)
@click.option("--direction", type=click.Choice(["es-en", "en-es"]), default="es-en", show_default=True)
@click.option("--backend", type=click.Choice(["llamacpp", "ollama"]), default=None, help="Default: TRANSLATE_BACKEND.")
@click.option("--model", default=None, help="Default: TRANSLATE_MODEL (the bundled Qwen2.5-Coder-1.5B).")
@click.option("--classroom", is_flag=True, help="Also look for teacher corrections between lines.")
def translate(
    text: str | None, file: Path | None, direction: str, backend: str | None, model: str | None, classroom: bool
) -> None:
    """Translate TEXT (or --file) like the live service and print JSON lines."""
    from habla_contracts import CorrectionDetected, Event, TranscriptFinal, TranslationFinal, derived_id
    from habla_translate.config import TranslateConfig
    from habla_translate.handlers import TranslateHandler
    from habla_translate.main import build_interpreter

    lines = _lines(text, file)
    config = TranslateConfig.from_env()
    config = replace(config, backend=backend or config.backend, model=model or config.model, partials=False)
    with err.status(f"loading {config.model_label}…"):
        interpreter = build_interpreter(config)
    settings = {"direction": direction, "mode": "classroom" if classroom else "conversation"}
    handler = TranslateHandler(interpreter, config, lambda _sid: settings)
    found: dict[str, Any] = {}

    def publish(event: Event) -> None:
        if isinstance(event, TranslationFinal):
            out = {
                "source": event.source_text,
                "corrected": event.corrected,
                "corrections": list(event.corrections),
                "translation": event.translation,
                "idioms": list(event.idioms),
                "status": event.status,
                "language": {"source": event.source_language, "target": event.target_language},
                "ms": event.translate_ms,
            }
            if "correction" in found:
                out["teacher_correction"] = found.pop("correction")
            click.echo(json.dumps(out, ensure_ascii=False))
        elif isinstance(event, CorrectionDetected):
            found["correction"] = {"said": event.said, "correct": event.correct, "why": event.why}

    language = "en" if direction == "en-es" else "es"
    for i, line in enumerate(lines):
        final = TranscriptFinal(
            session_id="cli",
            event_id=derived_id("cli", i, line),
            utterance_id=f"u{i}",
            index=i,
            text=line,
            language=language,
        )
        handler.on_final(final, publish)


@click.command()
@click.argument("text", required=False)
@click.option(
    "--file", "file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="One sentence per line."
)
def idioms(text: str | None, file: Path | None) -> None:
    """Print the idiom-database matches of TEXT (or --file) as JSON lines; no model involved."""
    from habla_translate.idioms import IdiomDatabase

    lines = _lines(text, file)
    db = IdiomDatabase.load()
    for line in lines:
        hits = [
            {**h.as_dict(), "region": h.entry.region, "register": h.entry.register, "kind": h.entry.kind}
            for h in db.match(line)
        ]
        click.echo(json.dumps({"text": line, "idioms": hits}, ensure_ascii=False))


@click.command()
@click.argument("session_id")
@click.option("--backend", type=click.Choice(["llamacpp", "ollama"]), default=None, help="Default: TRANSLATE_BACKEND.")
@click.option("--model", default=None, help="Model for this pass, e.g. qwen3:4b with --backend ollama.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Follow the job until it is done.")
@click.option("--data-dir", default=None)
def retranslate(session_id: str, backend: str | None, model: str | None, wait: bool, data_dir: str | None) -> None:
    """Translate a stored SESSION again (an rq job); the new revision is appended to the log."""
    from rq import Queue, Worker

    from habla_common.bus import RedisBus, connect_redis
    from habla_common.eventlog import PostgresEventStore
    from habla_common.settings import Settings
    from habla_contracts import RetranslationRequested, TranscriptFinal
    from habla_translate.jobs import QUEUE, enqueue_retranslation, next_revision

    from .embedded import infra

    folder = Path(data_dir) if data_dir else default_data_dir()
    with infra(folder) as inf:
        events = [s.event for s in PostgresEventStore(inf.database_url).session_events(session_id)]
        if not any(isinstance(e, TranscriptFinal) for e in events):
            raise click.ClickException(f"no session {session_id!r} with final transcripts in the log")
        redis = connect_redis(inf.redis_url)
        revision = next_revision(events)
        partitions = Settings.from_env().partitions
        job = enqueue_retranslation(
            redis,
            session_id,
            redis_url=inf.redis_url,
            database_url=inf.database_url,
            revision=revision,
            backend=backend or "",
            model=model or "",
            partitions=partitions,
        )
        RedisBus(redis, partitions).publish(
            RetranslationRequested(
                session_id=session_id, revision=revision, model=model or "", backend=backend or "", job_id=job.id
            )
        )
        err.print(f"queued revision {revision} of {session_id} as job {job.id}")
        if not wait:
            return
        has_worker = bool(Worker.all(queue=Queue(QUEUE, connection=redis)))
        with _workers(folder, inf.redis_url, inf.database_url, start=not has_worker):
            result = _follow(job)
            _wait_recorded(inf.database_url, session_id, revision, int(result["count"]))
    click.echo(json.dumps(result, ensure_ascii=False))


@contextlib.contextmanager
def _workers(data_dir: Path, redis_url: str, database_url: str, *, start: bool) -> Iterator[None]:
    """When no `habla up` is running, start a job worker and the recorder for this command."""
    if not start:
        yield
        return
    from .supervisor import running

    err.print("no job worker is running: starting one (and the recorder) for this command")
    env = {"REDIS_URL": redis_url, "DATABASE_URL": database_url}
    with running(data_dir=data_dir, services=("recorder", "worker"), extra_env=env):
        yield


def _follow(job: Any) -> dict[str, Any]:
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=err, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task("re-translating", total=None)
        while True:
            job.refresh()
            meta = job.get_meta(refresh=False)
            if "total" in meta:
                progress.update(task, completed=meta["done"], total=meta["total"])
            status = job.get_status(refresh=False)
            if status == "finished":
                return dict(job.return_value())
            if status in ("failed", "stopped", "canceled"):
                raise click.ClickException(f"re-translation job {job.id} {status}: {job.latest_result().exc_string}")
            time.sleep(0.5)


def _wait_recorded(database_url: str, session_id: str, revision: int, count: int, timeout_s: float = 60.0) -> None:
    from habla_common.eventlog import connect_pg

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with connect_pg(database_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM translations WHERE session_id = %s AND revision = %s", (session_id, revision)
            ).fetchone()
        if row and int(row[0]) >= count:
            return
        time.sleep(0.3)
    raise click.ClickException(
        f"revision {revision} was published but not all of it is recorded yet; is the recorder up?"
    )


@click.group("eval")
def eval_group() -> None:
    """Benchmarks with the bundled evaluation data."""


@eval_group.command("translate")
@click.option(
    "--flores", "n_flores", default=50, show_default=True, help="FLORES-200 devtest sentences (fixed sample)."
)
@click.option("--idioms", "n_idioms", default=0, help="Idiom test sentences (0 = all).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("bench/out/translate.json"))
@click.option("--backend", type=click.Choice(["llamacpp", "ollama"]), default=None)
@click.option("--model", default=None)
def eval_translate(n_flores: int, n_idioms: int, out: Path, backend: str | None, model: str | None) -> None:
    """chrF with and without idiom hints and context, pass-through rate and latency per final."""
    from .translate_eval import run

    report = run(n_flores=n_flores, n_idioms=n_idioms, backend=backend, model=model, console=err)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    click.echo(json.dumps(report["summary"], indent=2))
    err.print(f"wrote {out}")


@eval_group.command("diarize")
@click.option(
    "--pools",
    default="named,tune,test,synthetic,pairs",
    show_default=True,
    help="Conversation sets (comma-separated).",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("bench/out/diarize.json"))
def eval_diarize(pools: str, out: Path) -> None:
    """Diarization error rate and speaker-change precision/recall of the online speaker
    pipeline on conversations built from real speech; embedding cost and memory. Needs
    Redis (REDIS_URL, default redis://127.0.0.1:6379/0)."""
    import os

    from .diarize_eval import run
    from .evaluation import default_speech_dir

    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    report = run(default_speech_dir(), pools=pools.split(","), redis_url=redis_url, progress=err.print)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    click.echo(json.dumps({p: v["summary"] for p, v in report["pools"].items()}, indent=2))
    err.print(f"wrote {out}")
