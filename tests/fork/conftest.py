"""Fixtures of the end-to-end tests on a PostgreSQL fork (make test-fork).

- ``fork_binary``: the ready binary built against the fork (FORK_PB_BIN).
- ``postgres_url``: the test server (POSTGRES_URL), which may create databases.
- ``fork``: a factory of ``pocketbase serve`` runs on the fork, each on the
  databases it is given (``db="name"``: NAME_data and NAME_aux, so that
  replicas share them by sharing a name). The settings are passed as the
  fork's flags (``settings="flags"``) or its environment (``"env"``). The
  runs are the end-to-end tests' :class:`PocketBase` (tests/e2e/conftest.py),
  so the kill-everything teardown is the same.

Without FORK_PB_BIN or POSTGRES_URL (outside make test-fork) every test here
is skipped, saying so.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

HERE = Path(__file__).resolve().parent
E2E = HERE.parent / "e2e"
sys.path.insert(0, str(E2E))

import e2e_helpers as h  # noqa: E402

_spec = importlib.util.spec_from_file_location("e2e_conftest", E2E / "conftest.py")
assert _spec and _spec.loader
e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(e2e)

REPO = HERE.parents[1]
PYTHON_SDK = REPO / "sdk" / "python" / ".venv" / "bin" / "python"
SUPERUSER = (e2e.SUPERUSER_EMAIL, e2e.SUPERUSER_PASSWORD)


@pytest.fixture(scope="session")
def fork_binary() -> Path:
    path = os.environ.get("FORK_PB_BIN")
    if not path:
        pytest.skip("FORK_PB_BIN is not set: make test-fork builds the binary against a fork and runs these")
    return Path(path)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get("POSTGRES_URL")
    if not url:
        pytest.skip("POSTGRES_URL is not set: make test-fork starts PostgreSQL 17 and runs these")
    return url


def database_url(server: str, name: str) -> str:
    return urlunsplit(urlsplit(server)._replace(path="/" + name))


class Fork(e2e.PocketBase):
    """A PocketBase of the fork on the databases NAME_data and NAME_aux."""

    def __init__(self, *args: Any, server: str, db: str, settings: str, **kw: Any):
        self.server, self.db, self.settings = server, db, settings
        flags: tuple[str, ...] = ()
        if settings == "flags":
            flags = ("--postgresUrl", server, "--postgresDataDB", f"{db}_data", "--postgresAuxDB", f"{db}_aux")
        super().__init__(*args, **kw)
        self.db_flags = flags
        self.extra_args = flags + self.extra_args

    def db_env(self) -> dict[str, str]:
        """The fork's settings as its environment (settings="env")."""
        if self.settings != "env":
            return {}
        return {"POSTGRES_URL": self.server, "POSTGRES_DATA_DB": f"{self.db}_data", "POSTGRES_AUX_DB": f"{self.db}_aux"}

    def start(self, wait_healthy: bool = True) -> None:
        saved = {k: os.environ.get(k) for k in ("POSTGRES_URL", "POSTGRES_DATA_DB", "POSTGRES_AUX_DB")}
        os.environ.pop("POSTGRES_URL", None)  # only what this run is given
        os.environ.update(self.db_env())
        try:
            super().start(wait_healthy)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def command(
        self, *args: str, settings: bool = True, env_extra: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """`pocketbase ARGS --dir pb_data` (not serve), with this run's
        database settings, or without them (``settings=False``) and with
        ``env_extra`` instead."""
        env = {k: v for k, v in os.environ.items() if k not in ("POSTGRES_URL", "POSTGRES_DATA_DB", "POSTGRES_AUX_DB")}
        env.update(env_extra or {})
        extra: tuple[str, ...] = ()
        if settings:
            env.update(self.db_env())
            extra = self.db_flags
        return subprocess.run(
            [str(self.binary), *args, "--dir", str(self.data_dir), *extra],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
        )

    def data_url(self) -> str:
        return database_url(self.server, f"{self.db}_data")

    def aux_url(self) -> str:
        return database_url(self.server, f"{self.db}_aux")


@pytest.fixture
def fork(fork_binary: Path, postgres_url: str, tmp_path: Path):
    """Factory: ``fork(processes, db=..., settings="flags"|"env")`` serves and
    returns a :class:`Fork`; the databases it made are dropped at the end."""
    import psycopg

    started: list[Fork] = []
    made: set[str] = set()

    def factory(
        processes: list[dict[str, Any]],
        *,
        db: str | None = None,
        settings: str = "flags",
        superuser: bool = True,
        files: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
    ) -> Fork:
        db = db or f"fk_{uuid.uuid4().hex[:8]}"
        made.add(db)
        base = tmp_path / f"pb{len(started)}"
        base.mkdir()
        for name, text in (files or {}).items():
            (base / name).parent.mkdir(parents=True, exist_ok=True)
            (base / name).write_text(text)
        marker = uuid.uuid4().hex
        (base / "pb_processes.json").write_text(json.dumps({"processes": e2e.add_marker(processes, marker)}, indent=2))
        pb = Fork(fork_binary, base, None, (), marker, server=postgres_url, db=db, settings=settings)
        started.append(pb)
        if superuser:
            res = pb.command("superuser", "upsert", *SUPERUSER)
            assert res.returncode == 0, f"superuser upsert failed:\n{res.stdout}\n{res.stderr}"
        saved = dict(os.environ)
        os.environ.update(env or {})
        try:
            pb.start()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        return pb

    yield factory

    for pb in reversed(started):
        pb.kill_all()
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        for db in made:
            for suffix in ("_data", "_aux"):
                admin.execute(f'DROP DATABASE IF EXISTS "{db}{suffix}" WITH (FORCE)')


def create_notes(pb: Fork) -> None:
    """A notes collection any signed-in user may read and write."""
    status, body = h.http_request(
        "POST",
        pb.url + "/api/collections",
        body={
            "name": "notes",
            "type": "base",
            "fields": [{"name": "text", "type": "text"}, {"name": "owner", "type": "text"}],
            "listRule": "@request.auth.id != ''",
            "viewRule": "@request.auth.id != ''",
            "createRule": "@request.auth.id != ''",
        },
        headers={"Authorization": pb.token()},
    )
    assert status == 200, f"create notes: {status} {body}"


def sign_up(pb: Fork) -> tuple[str, str]:
    """A new user in users, signed in on pb: (token, id)."""
    email = f"u{uuid.uuid4().hex[:8]}@example.com"
    status, body = h.http_request(
        "POST",
        pb.url + "/api/collections/users/records",
        body={"email": email, "password": "1234567890", "passwordConfirm": "1234567890"},
    )
    assert status == 200, f"sign up: {status} {body}"
    status, auth = h.http_request(
        "POST", pb.url + "/api/collections/users/auth-with-password", body={"identity": email, "password": "1234567890"}
    )
    assert status == 200, f"sign in: {status} {auth}"
    return auth["token"], auth["record"]["id"]


def create_note(pb: Fork, token: str, owner: str, text: str) -> dict[str, Any]:
    """A note created through pb's API as the user of token."""
    status, note = h.http_request(
        "POST",
        pb.url + "/api/collections/notes/records",
        body={"text": text, "owner": owner},
        headers={"Authorization": token},
    )
    assert status == 200, note
    return note
