"""``habla voices``: enrol a voice from a recording, list the stored voices, forget one.

Voiceprints are facts in the log (``voiceprint.saved`` / ``voiceprint.deleted``); the diarize
service recognises stored voices in every later session and the recorder lists them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from habla_common.settings import default_data_dir

__all__ = ["voices"]

err = Console(stderr=True)
console = Console()

_LIVE = "saved_at IS NOT NULL AND (deleted_at IS NULL OR saved_at > deleted_at)"


def _folder(data_dir: str | None) -> Path:
    return Path(data_dir) if data_dir else default_data_dir()


@contextlib.contextmanager
def _servers(data_dir: Path) -> Iterator[Any]:
    """Redis and Postgres (embedded unless configured), the schema up to date."""
    from habla_common.migrate import migrate

    from .embedded import infra

    with infra(data_dir) as inf:
        migrate(inf.database_url)
        yield inf


def _bus(redis_url: str) -> Any:
    from habla_common.bus import RedisBus, connect_redis
    from habla_common.settings import Settings

    return RedisBus(connect_redis(redis_url), Settings.from_env().partitions)


def _live_voiceprint(database_url: str, voiceprint_id: str) -> dict[str, Any] | None:
    from psycopg.rows import dict_row

    from habla_common.eventlog import connect_pg

    with connect_pg(database_url) as conn:
        conn.row_factory = dict_row  # type: ignore[assignment]
        row = conn.execute(
            f"SELECT voiceprint_id, name, session_id, saved_at FROM voiceprints WHERE voiceprint_id = %s AND {_LIVE}",
            (voiceprint_id,),
        ).fetchone()
    return dict(row) if row else None


@contextlib.contextmanager
def _recorded(data_dir: Path, redis_url: str, database_url: str, done: Any, what: str) -> Iterator[None]:
    """After the body publishes, wait for ``done()`` (the recorder projected it); when no
    `habla up` is running, start the recorder for this command."""
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(0.2)
    from .supervisor import running

    err.print("the recorder is not running: starting it for this command")
    env = {"REDIS_URL": redis_url, "DATABASE_URL": database_url}
    with running(data_dir=data_dir, services=("recorder",), extra_env=env):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if done():
                return
            time.sleep(0.3)
    raise click.ClickException(f"{what} was published but is not recorded yet; is the recorder up?")


@click.group()
def voices() -> None:
    """Voices recognised in every session: yours, and people you named with "remember"."""


@voices.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="The name to show on this voice's cards (e.g. 'Me', 'Profe Ana').")
@click.option("--me", "is_user", is_flag=True, help="This is your own voice: your speech is labelled as yours.")
@click.option("--data-dir", default=None, help="Where embedded servers keep their data.")
def enroll(file: Path, name: str, is_user: bool, data_dir: str | None) -> None:
    """Learn a voice from FILE (any audio file; 10-30 s of that one person speaking)."""
    import numpy as np

    from habla_diarize.config import DiarizeConfig
    from habla_diarize.embedders import build_embedder
    from habla_diarize.enrol import enrol
    from habla_diarize.errors import DiarizeError
    from habla_ingest.adapters import decode_file
    from habla_ingest.errors import IngestError

    config = DiarizeConfig.from_env()
    if config.backend == "none":
        raise click.ClickException("DIARIZE_BACKEND=none: speaker recognition is off, so there is nothing to enrol")
    try:
        pcm = decode_file(file)
    except IngestError as e:
        raise click.ClickException(str(e)) from e
    with err.status(f"learning the voice in {file.name} ({config.backend})"):
        try:
            saved = enrol(
                np.asarray(pcm, dtype=np.float32) / 32768.0,
                build_embedder(config),
                name=name,
                is_user=is_user,
                hop_ms=config.hop_ms,
            )
        except DiarizeError as e:
            raise click.ClickException(str(e)) from e
    folder = _folder(data_dir)
    with _servers(folder) as inf:
        done = lambda: _live_voiceprint(inf.database_url, saved.voiceprint_id) is not None  # noqa: E731
        with _recorded(folder, inf.redis_url, inf.database_url, done, "the voiceprint"):
            _bus(inf.redis_url).publish(saved)
    whose = "your own voice" if is_user else "a voice"
    err.print(f"enrolled {whose} as {saved.name!r} from {saved.speech_ms / 1000:.1f} s of speech ({saved.backend})")
    click.echo(saved.voiceprint_id)


@voices.command("list")
@click.option("--data-dir", default=None, help="Where embedded servers keep their data.")
def list_voices(data_dir: str | None) -> None:
    """The stored voices."""
    from habla_common.eventlog import connect_pg

    with _servers(_folder(data_dir)) as inf, connect_pg(inf.database_url) as conn:
        rows = conn.execute(
            "SELECT voiceprint_id, name, is_user, backend, speech_ms, saved_at FROM voiceprints "
            f"WHERE {_LIVE} ORDER BY is_user DESC, name, voiceprint_id"
        ).fetchall()
    if not rows:
        err.print("no stored voices: enrol one with `habla voices enroll FILE --name NAME [--me]`")
        return
    table = Table("name", "yours", "speech", "saved", "backend")
    table.add_column("id", no_wrap=True)
    for vp_id, name, is_user, backend, speech_ms, saved_at in rows:
        when = saved_at.strftime("%Y-%m-%d %H:%M") if saved_at else ""
        table.add_row(name, "yes" if is_user else "", f"{speech_ms / 1000:.0f} s", when, backend, vp_id)
    console.print(table)


@voices.command()
@click.argument("voiceprint_id")
@click.option("--data-dir", default=None, help="Where embedded servers keep their data.")
def forget(voiceprint_id: str, data_dir: str | None) -> None:
    """Forget a stored voice (see `habla voices list`); later sessions no longer recognise it."""
    from habla_common.eventlog import connect_pg
    from habla_contracts import VoiceprintDeleted

    folder = _folder(data_dir)
    with _servers(folder) as inf:
        row = _live_voiceprint(inf.database_url, voiceprint_id)
        if row is None:
            raise click.ClickException(f"no stored voice {voiceprint_id!r} (see `habla voices list`)")
        session_id = row["session_id"] or "voiceprints"
        with connect_pg(inf.database_url) as conn:
            found = conn.execute("SELECT coalesce(max(seq), 0) FROM events WHERE session_id = %s", (session_id,))
            recorded = int(found.fetchone()[0])  # type: ignore[index]
        done = lambda: _live_voiceprint(inf.database_url, voiceprint_id) is None  # noqa: E731
        with _recorded(folder, inf.redis_url, inf.database_url, done, "forgetting the voice"):
            bus = _bus(inf.redis_url)
            bus.ensure_seq_after(session_id, recorded)
            saved_at = row["saved_at"].isoformat() if row["saved_at"] else ""
            bus.publish(VoiceprintDeleted.of_save(session_id, voiceprint_id, saved_at))
    err.print(f"forgot {row['name']!r} ({voiceprint_id})")
