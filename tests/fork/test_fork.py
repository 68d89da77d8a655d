"""processman on a PostgreSQL fork of PocketBase (fondoger/pocketbase), on a
real PostgreSQL 17: serve with a Python and a Node sidecar, a routed request
as a signed-in user, children reading a record through DB_DSN, their output
in PostgreSQL's _logs, and `pm list` (with and without the server's database
settings)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest
from conftest import PYTHON_SDK, Fork, create_note, create_notes, sign_up

import e2e_helpers as h

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def sidecars(tag: str, replica: str = "") -> list[dict]:
    env = {"FORK_TEST_TAG": tag, "REPLICA": replica}
    return [
        {
            "name": "py",
            "script": str(PYTHON_SDK),
            "args": [f"{FIXTURES}/py_sidecar.py"],
            "cwd": "app",
            "route": "/api/py",
            "auth": "user",
            "env": env,
        },
        {
            "name": "node",
            "script": "node",
            "args": [f"{FIXTURES}/node_sidecar.mjs"],
            "cwd": "app",
            "route": "/api/node",
            "auth": "user",
            "env": env,
        },
    ]


def app_dir(pb_files: dict[str, str] | None = None) -> dict[str, str]:
    # cwd "app" beside pb_data; the fixtures are run from the repository.
    return {"app/.keep": "", **(pb_files or {})}


def wait_ready(pb: Fork, *names: str) -> None:
    def ready() -> bool:
        items = {p["name"]: p for p in pb.api("GET", "/api/pm/list")["items"]}
        return all(items.get(n, {}).get("state") == "online" and items[n].get("ready") for n in names)

    h.wait_until(ready, 60, lambda: f"{names} not ready\n{pb.logs()}")


@pytest.mark.parametrize("settings", ["flags", "env"])
def test_children_on_postgres(fork, settings: str) -> None:
    tag = uuid.uuid4().hex[:10]
    pb = fork(sidecars(tag), settings=settings, files=app_dir())
    wait_ready(pb, "py", "node")
    create_notes(pb)
    token, uid = sign_up(pb)
    note = create_note(pb, token, uid, f"note {tag}")

    for name in ("py", "node"):
        # the gateway: a routed request as the signed-in user
        status, who = h.http_request("GET", f"{pb.url}/api/{name}/whoami", headers={"Authorization": token})
        assert status == 200 and who["id"] == uid and who["collection"] == "users", (name, status, who)
        status, guest = h.http_request("GET", f"{pb.url}/api/{name}/whoami")
        assert status == 401, (name, status, guest)
        # DB_DSN: the record, read straight from PostgreSQL, read-only
        status, got = h.http_request("GET", f"{pb.url}/api/{name}/note/{note['id']}", headers={"Authorization": token})
        assert status == 200, (name, status, got)
        assert got["driver"] == "postgres" and got["text"] == f"note {tag}" and got["owner"] == uid, (name, got)
        assert got["write"] in ("ReadOnlySqlTransaction", "25006"), (name, got)
        assert got["db_path_given"] is False, (name, got)

    # the environment the children got: DB_DSN is the data database's URL
    env = next(e for e in pb.marker_pids().values() if e.get("PB_PROCESS_NAME") == "py")
    assert env["PB_DB_DRIVER"] == "postgres" and "PB_DB_PATH" not in env, env
    assert env["DB_DSN"].startswith("postgres://") and f"/{pb.db}_data?" in env["DB_DSN"], env["DB_DSN"]
    # ... and is redacted where processman shows it
    detail = pb.api("GET", "/api/pm/py")
    shown = json.dumps(detail)
    assert "fork-test-secret" not in shown and "fork-test-secret" not in pb.stdout() + pb.stderr()

    # the children's output is in PostgreSQL's _logs (the auxiliary database)
    def logged() -> list:
        with psycopg.connect(pb.aux_url()) as db:
            return db.execute(
                "SELECT data->>'process', message FROM _logs WHERE message LIKE %s ORDER BY created",
                (f"%started {tag}%",),
            ).fetchall()

    rows = h.wait_until(
        lambda: len(logged()) >= 2 and logged(), 40, lambda: f"no output in _logs\n{pb.logs()}", interval=1
    )
    assert {r[0] for r in rows} == {"py", "node"}, rows

    # pm list with the server's database settings
    listed = pb.command("pm", "list")
    assert listed.returncode == 0, listed.stderr
    assert "py" in listed.stdout and "node" in listed.stdout and "online" in listed.stdout, listed.stdout


def test_pm_without_the_servers_database_settings_says_so(fork, postgres_url: str) -> None:
    """pm run with the server's PostgreSQL URL but not its database names
    opens the fork's default databases (which the fork creates): pm sees
    that they are not the server's and says which settings to give."""
    pb = fork([{"name": "idle", "script": "sleep", "args": ["300"]}], settings="flags")
    wait_ready(pb, "idle")
    try:
        bare = pb.command("pm", "list", settings=False, env_extra={"POSTGRES_URL": postgres_url})
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            for name in ("pb-data", "pb-auxiliary"):
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert bare.returncode == 1, bare.stdout + bare.stderr
    message = bare.stderr
    assert "uses the database postgres://127.0.0.1:" in message and f"/{pb.db}_data" in message, message
    assert "this command opened postgres://127.0.0.1:" in message and "/pb-data" in message, message
    assert "--postgresUrl" in message and "POSTGRES_DATA_DB" in message, message
    assert "fork-test-secret" not in message
