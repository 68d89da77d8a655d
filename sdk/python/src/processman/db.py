"""Read-only access to PocketBase's SQLite database.

PocketBase is the only writer of its database: write through its API
(:class:`~processman.PocketBase`) so that rules, hooks and realtime events
apply. Reading directly suits reports and bulk reads that API rules need not
filter; such reads see every record, whoever asked.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote, urlsplit
from urllib.request import url2pathname

from .env import Environment

__all__ = ["connect_readonly"]


def connect_readonly(path: str | Path | None = None, *, timeout: float = 5.0) -> sqlite3.Connection:
    """Opens the database read-only (``file:...?mode=ro``); ``path``
    defaults to ``PB_DB_PATH`` (``DB_DSN`` holds the same file as a URI).
    Rows come back as :class:`sqlite3.Row`.

    Writes fail with ``sqlite3.OperationalError`` ("attempt to write a
    readonly database"); ``timeout`` is how long a read waits for a lock.
    Close it when done (``with contextlib.closing(connect_readonly()) as db:``;
    a bare ``with`` only ends a transaction).
    """
    env = Environment.load()
    target = str(path) if path is not None else env.db_path
    if not target and env.db_dsn.startswith("file:"):
        target = url2pathname(urlsplit(env.db_dsn).path)
    if not target:
        raise ValueError("no database path: PB_DB_PATH and DB_DSN are not set (run under processman, or pass the path)")
    if not Path(target).is_file():
        raise FileNotFoundError(
            f"PocketBase's database {target} does not exist (has PocketBase run with this pb_data?)"
        )
    uri = f"file:{quote(str(Path(target).resolve()))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=timeout, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA query_only = ON")
    return conn
