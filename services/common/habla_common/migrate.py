"""Schema migrations: the numbered SQL files in ``infra/migrations``, applied once each."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import psycopg
from psycopg import sql

from .errors import ConfigError, StoreUnavailable

__all__ = ["ensure_database", "migrate", "migrations_dir"]

log = logging.getLogger("habla.migrate")


def migrations_dir() -> Path:
    env = os.environ.get("HABLA_MIGRATIONS_DIR")
    if env:
        return Path(env)
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "infra" / "migrations"
        if candidate.is_dir():
            return candidate
    raise ConfigError("cannot find infra/migrations; set HABLA_MIGRATIONS_DIR")


def ensure_database(url: str) -> None:
    """Create the database named in ``url`` if the server does not have it yet."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    name = info.get("dbname") or "postgres"
    try:
        psycopg.connect(url, connect_timeout=5).close()
        return
    except psycopg.OperationalError as e:
        if "does not exist" not in str(e):
            raise StoreUnavailable(f"cannot reach Postgres at {url}: {e}. Set DATABASE_URL.") from e
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(name))))
    log.info("created database %s", name)


def migrate(url: str, directory: Path | None = None) -> list[str]:
    """Apply pending migrations in order; returns the ones applied now."""
    ensure_database(url)
    directory = directory or migrations_dir()
    applied: list[str] = []
    with psycopg.connect(url) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(7261)")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
        for path in sorted(directory.glob("*.sql")):
            if path.stem in done:
                continue
            conn.execute(sql.SQL(path.read_text()))
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (path.stem,))
            applied.append(path.stem)
            log.info("applied migration %s", path.stem)
    return applied
