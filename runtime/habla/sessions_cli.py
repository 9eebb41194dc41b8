"""``habla sessions delete``: delete a stored session for good, after the user confirms.

The deletion is a fact (``session.deleted``, recorded in session "admin"): the recorder
removes the session's facts from the log, its read models, its stored audio and its
Redis state, and keeps a tombstone so nothing recorded later brings it back.
"""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from .voices_cli import _bus, _folder, _recorded, _servers

__all__ = ["sessions"]

err = Console(stderr=True)


def _session(database_url: str, session_id: str) -> dict[str, Any] | None:
    """What the user is about to delete, or None if there is no such session."""
    from psycopg.rows import dict_row

    from habla_common.eventlog import connect_pg

    with connect_pg(database_url) as conn:
        conn.row_factory = dict_row  # type: ignore[assignment]
        row = conn.execute(
            "SELECT s.title, s.started_at, "
            "(SELECT count(*) FROM utterances u WHERE u.session_id = s.session_id AND u.part = 0) AS utterances, "
            "(SELECT coalesce(sum(a.end_ms - a.start_ms), 0) FROM utterance_audio a "
            "WHERE a.session_id = s.session_id) AS audio_ms "
            "FROM sessions s WHERE s.session_id = %s",
            (session_id,),
        ).fetchone()
    return dict(row) if row else None


def _deleted_at(database_url: str, session_id: str) -> Any:
    from habla_common.eventlog import connect_pg

    with connect_pg(database_url) as conn:
        row = conn.execute("SELECT deleted_at FROM deleted_sessions WHERE session_id = %s", (session_id,)).fetchone()
    return row[0] if row else None


@click.group()
def sessions() -> None:
    """Stored sessions."""


@sessions.command()
@click.argument("session_id")
@click.option("--yes", is_flag=True, help="Delete without asking to type the id.")
@click.option("--data-dir", default=None, help="Where embedded servers keep their data.")
def delete(session_id: str, yes: bool, data_dir: str | None) -> None:
    """Delete session SESSION_ID for good: its transcript, translations, speakers and audio."""
    from habla_common.eventlog import connect_pg
    from habla_contracts import ADMIN_SESSION, SessionDeleted

    folder = _folder(data_dir)
    with _servers(folder) as inf:
        info = _session(inf.database_url, session_id)
        if info is None:
            when = _deleted_at(inf.database_url, session_id)
            if when is not None:
                raise click.ClickException(f"session {session_id!r} was already deleted ({when:%Y-%m-%d %H:%M})")
            raise click.ClickException(
                f"no session {session_id!r} (the ids are in GET /api/sessions, and in `habla replay --json`)"
            )
        started = f"{info['started_at']:%Y-%m-%d %H:%M}" if info["started_at"] else "start not recorded"
        title = f"{info['title']!r}, " if info["title"] else ""
        err.print(
            f"session {session_id}: {title}{started}, {info['utterances']} utterances, "
            f"{int(info['audio_ms']) / 1000:.0f} s of stored audio"
        )
        if not yes:
            typed = click.prompt(
                "This deletes its transcript, translations, speakers and audio for good. "
                "Type the session id to confirm",
                default="",
                show_default=False,
                err=True,
            )
            if typed.strip() != session_id:
                raise click.ClickException("not deleted: what you typed is not the session id")
        with connect_pg(inf.database_url) as conn:
            found = conn.execute("SELECT coalesce(max(seq), 0) FROM events WHERE session_id = %s", (ADMIN_SESSION,))
            recorded = int(found.fetchone()[0])  # type: ignore[index]
        done = lambda: _deleted_at(inf.database_url, session_id) is not None  # noqa: E731
        with _recorded(folder, inf.redis_url, inf.database_url, done, "the deletion"):
            bus = _bus(inf.redis_url)
            bus.ensure_seq_after(ADMIN_SESSION, recorded)
            bus.publish(SessionDeleted.of(session_id))
    err.print(f"deleted session {session_id}")
