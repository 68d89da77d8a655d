"""Read-only access to PocketBase's database: its SQLite file, or the
PostgreSQL database of a fork.

PocketBase is the only writer of its database: write through its API
(:class:`~processman.PocketBase`) so that rules, hooks and realtime events
apply. Reading directly suits reports and bulk reads that API rules need not
filter; such reads see every record, whoever asked.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote, urlsplit
from urllib.request import url2pathname

from .env import Environment

if TYPE_CHECKING:
    import psycopg

__all__ = ["POSTGRES_EXTRA", "Database", "connect_readonly", "database"]

POSTGRES_EXTRA = "pip install 'processman[postgres]'"
"""What installs PostgreSQL support (psycopg 3)."""


class Database(NamedTuple):
    """Which database ``DB_DSN`` / ``PB_DB_PATH`` name."""

    driver: str
    """``sqlite`` or ``postgres``."""
    target: str
    """The SQLite file, or the PostgreSQL URL (it may hold a password)."""


def database(environ: Mapping[str, str] | None = None) -> Database:
    """The database processman told this process about (``PB_DB_DRIVER``,
    ``DB_DSN``, ``PB_DB_PATH``; default ``os.environ``).

    Raises ``ValueError`` naming the variable that is missing or names a
    database this SDK cannot open.
    """
    env = Environment.load(environ)
    dsn, driver = env.db_dsn, env.db_driver.lower()
    scheme = urlsplit(dsn).scheme.lower() if "://" in dsn or dsn.startswith("file:") else ""
    if driver == "postgres" or scheme in ("postgres", "postgresql"):
        if scheme not in ("postgres", "postgresql"):
            raise ValueError(
                "PB_DB_DRIVER is postgres but DB_DSN is not a postgres:// URL "
                "(run under processman, or set DB_DSN to the database's URL)"
            )
        return Database("postgres", dsn)
    if driver not in ("", "sqlite"):
        raise ValueError(
            f"PB_DB_DRIVER is {env.db_driver!r}: connect_readonly opens sqlite and postgres; "
            "open DB_DSN with that database's own driver"
        )
    if env.db_path:
        return Database("sqlite", env.db_path)
    if scheme == "file":
        return Database("sqlite", url2pathname(urlsplit(dsn).path))
    raise ValueError("no database: DB_DSN and PB_DB_PATH are not set (run under processman, or pass the path)")


def connect_readonly(
    path: str | Path | None = None, *, timeout: float = 5.0
) -> sqlite3.Connection | psycopg.Connection[dict[str, Any]]:
    """Opens PocketBase's database read-only.

    - SQLite (``PB_DB_PATH``, or the file of ``DB_DSN``; or ``path``): an
      :class:`sqlite3.Connection` opened ``file:...?mode=ro`` with
      ``PRAGMA query_only``, rows as :class:`sqlite3.Row`. Writes fail with
      ``sqlite3.OperationalError`` ("attempt to write a readonly database").
    - PostgreSQL (``PB_DB_DRIVER=postgres``, ``DB_DSN`` a ``postgres://``
      URL): a ``psycopg.Connection`` (psycopg 3, the ``processman[postgres]``
      extra) in autocommit mode whose session has
      ``default_transaction_read_only`` on, rows as dicts. Writes fail with
      ``psycopg.errors.ReadOnlySqlTransaction``. Queries take ``%s``
      placeholders, where SQLite's take ``?``.

    ``timeout`` is how long a read waits for a lock (SQLite), or for the
    connection (PostgreSQL). Close it when done
    (``with contextlib.closing(connect_readonly()) as db:``).
    """
    if path is not None:
        return _sqlite(str(path), timeout)
    db = database()
    if db.driver == "postgres":
        return _postgres(db.target, timeout)
    return _sqlite(db.target, timeout)


def _sqlite(target: str, timeout: float) -> sqlite3.Connection:
    if not Path(target).is_file():
        raise FileNotFoundError(
            f"PocketBase's database {target} does not exist (has PocketBase run with this pb_data?)"
        )
    uri = f"file:{quote(str(Path(target).resolve()))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=timeout, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA query_only = ON")
    return conn


def _postgres(dsn: str, timeout: float) -> psycopg.Connection[dict[str, Any]]:
    try:
        import psycopg
        from psycopg.rows import dict_row
    except ImportError as e:
        raise ModuleNotFoundError(
            f"DB_DSN is a PostgreSQL database, which needs psycopg 3: {POSTGRES_EXTRA}", name="psycopg"
        ) from e
    return psycopg.connect(
        dsn,
        autocommit=True,
        row_factory=dict_row,
        connect_timeout=max(1, round(timeout)),
        options="-c default_transaction_read_only=on",
    )
