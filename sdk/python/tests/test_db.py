"""connect_readonly and database() against the shared cases
(testdata/sidecar-sdk.json), and on a real PostgreSQL when POSTGRES_URL names
one (make test-fork starts one; the SQLite side is in test_client.py)."""

from __future__ import annotations

import json
import os
import sys
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

import processman

SDK = json.loads((Path(__file__).resolve().parents[3] / "testdata" / "sidecar-sdk.json").read_text())["database"]


@pytest.mark.parametrize("c", SDK["cases"], ids=lambda c: repr(c["env"]))
def test_database(c: dict[str, Any]) -> None:
    if "error" in c:
        with pytest.raises(ValueError, match=c["error"]):
            processman.database(c["env"])
        return
    assert processman.database(c["env"]) == (c["driver"], c["target"])


def test_postgres_without_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PB_DB_DRIVER", "postgres")
    monkeypatch.setenv("DB_DSN", "postgres://pb@127.0.0.1:1/app")
    monkeypatch.delenv("PB_DB_PATH", raising=False)
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if not installed
    with pytest.raises(ModuleNotFoundError) as e:
        processman.connect_readonly()
    assert SDK["missing_postgres"]["python"] in str(e.value)
    assert processman.POSTGRES_EXTRA == SDK["missing_postgres"]["python"]


@pytest.fixture
def postgres_database() -> Any:
    """A new database on the server of POSTGRES_URL with a notes table; its URL."""
    server = os.environ.get("POSTGRES_URL")
    if not server:
        pytest.skip("POSTGRES_URL is not set (make test-fork runs this on PostgreSQL 17)")
    import psycopg

    name = f"sdk_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(server)._replace(path="/" + name))
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("CREATE TABLE notes (id text PRIMARY KEY, text text)")
        db.execute("INSERT INTO notes VALUES ('n1', 'read me directly')")
    yield url
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_readonly_postgres(postgres_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg

    monkeypatch.setenv("PB_DB_DRIVER", "postgres")
    monkeypatch.setenv("DB_DSN", postgres_database)
    monkeypatch.delenv("PB_DB_PATH", raising=False)
    with closing(processman.connect_readonly()) as db:
        assert isinstance(db, psycopg.Connection)
        row = db.execute("SELECT text FROM notes WHERE id = %s", ("n1",)).fetchone()
        assert row == {"text": "read me directly"}
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            db.execute("DELETE FROM notes")
    with psycopg.connect(postgres_database) as check:
        assert check.execute("SELECT count(*) FROM notes").fetchone() == (1,)
