"""The agno example (examples/agno-agent) on two PocketBase replicas of the
fork sharing one PostgreSQL database: a session started through one replica
continues through the other, because both agents keep their sessions in the
schema `agno` of PocketBase's data database; and another user neither reads
nor continues it, on either replica.

Real processes: two `pocketbase serve` runs on the same NAME_data/NAME_aux,
each starting the example from its own virtualenv with the offline model.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import psycopg
import pytest
from conftest import Fork, create_notes, sign_up
from test_agno_agent import AGNO_DIR, ROUTE, run_agent, wait_agent_ready

import e2e_helpers as h

AGNO_SCHEMA = "agno"


@pytest.fixture(autouse=True)
def agno_venv() -> None:
    """The example's virtualenv, with psycopg (its processman[postgres])."""
    python = AGNO_DIR / ".venv" / "bin" / "python"
    if not python.exists() or subprocess.run([str(python), "-c", "import psycopg"], capture_output=True).returncode:
        pytest.fail(
            f"{AGNO_DIR / '.venv'} is missing or has no psycopg: (re)install it with\n"
            f"  cd {AGNO_DIR} && python3 -m venv .venv && .venv/bin/pip install -r requirements.txt",
            pytrace=False,
        )


def agno_process() -> list[dict]:
    return [
        {
            "name": "agno-agent",
            "script": str(AGNO_DIR / "app.py"),
            "cwd": str(AGNO_DIR),  # processman runs it with the example's .venv
            "route": ROUTE,
            "auth": "user",
            "env": {"OPENAI_API_KEY": ""},
        }
    ]


def run(pb: Fork, token: str, message: str, session_id: str) -> dict:
    answer = run_agent(pb, message, {"Authorization": token}, stream="false", session_id=session_id)
    assert answer.status == 200, f"{answer.status} {answer.body[:500]!r}\n{pb.process_log('agno-agent')}"
    return json.loads(answer.body)


def _get(pb: Fork, token: str, path: str) -> tuple[int, object]:
    return h.http_request("GET", pb.url + path, headers={"Authorization": token}, timeout=20)


def test_a_session_continues_on_another_replica(fork) -> None:
    db = f"fk_agno_{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    first = fork(agno_process(), db=db)
    create_notes(first)  # one collection, in the database both replicas serve
    second = fork(agno_process(), db=db)
    token, user_id = sign_up(first)
    waited = [wait_agent_ready(pb, token) for pb in (first, second)]
    print(f"replicas up in {time.monotonic() - started:.1f}s (agents ready after {waited[0]:.1f}s, {waited[1]:.1f}s)")

    session_id = f"s-{uuid.uuid4().hex}"
    messages = [f"first through replica 1 {uuid.uuid4().hex[:6]}", f"then through replica 2 {uuid.uuid4().hex[:6]}"]
    one = run(first, token, messages[0], session_id)
    two = run(second, token, messages[1], session_id)
    for answer, message in zip((one, two), messages, strict=True):
        assert answer["session_id"] == session_id and answer["user_id"] == user_id, answer
        assert f'Saved "{message}"' in answer["content"], answer["content"]
    assert one["run_id"] != two["run_id"]

    # Replica 2's AgentOS reads the session back with both runs.
    status, session = _get(second, token, f"{ROUTE}/sessions/{session_id}?type=agent")
    assert status == 200, (status, session)
    assert session["session_id"] == session_id and session["user_id"] == user_id, session
    said = [m["content"] for m in session["chat_history"] if m["role"] == "user"]
    assert said == messages, said
    status, runs = _get(second, token, f"{ROUTE}/sessions/{session_id}/runs?type=agent")
    assert status == 200, (status, runs)
    assert [r["run_id"] for r in runs] == [one["run_id"], two["run_id"]], runs
    assert [r["run_input"] for r in runs] == messages, runs

    # ... kept in PostgreSQL, in the schema `agno` of PocketBase's data database.
    with psycopg.connect(first.data_url()) as conn:
        tables = {
            t
            for (t,) in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (AGNO_SCHEMA,)
            )
        }
        assert {"agno_sessions", "agno_runs"} <= tables, tables
        rows = conn.execute(
            "SELECT user_id, agent_id FROM agno.agno_sessions WHERE session_id = %s", (session_id,)
        ).fetchall()
        assert rows == [(user_id, "notes")], rows
        stored = conn.execute("SELECT run_id FROM agno.agno_runs WHERE session_id = %s", (session_id,)).fetchall()
        assert sorted(r for (r,) in stored) == sorted([one["run_id"], two["run_id"]]), stored
        elsewhere = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_name LIKE 'agno%%' AND table_schema <> %s",
            (AGNO_SCHEMA,),
        ).fetchall()
        assert elsewhere == [], f"agno tables outside its schema: {elsewhere}"


def test_another_user_neither_reads_nor_continues_a_session(fork) -> None:
    """Sessions shared by the replicas stay their user's: AgentOS scopes its
    reads to the caller the gateway signed (app.py own_sessions_only)."""
    db = f"fk_agno_{uuid.uuid4().hex[:8]}"
    first = fork(agno_process(), db=db)
    create_notes(first)
    second = fork(agno_process(), db=db)
    token_a, id_a = sign_up(first)
    token_b, _ = sign_up(first)
    for pb in (first, second):
        wait_agent_ready(pb, token_a)
    session_id = f"s-{uuid.uuid4().hex}"
    run(first, token_a, "a secret of A", session_id)

    # A sees the session on the other replica; B sees nothing of it there.
    status, _ = _get(second, token_a, f"{ROUTE}/sessions/{session_id}?type=agent")
    assert status == 200
    status, body = _get(second, token_b, f"{ROUTE}/sessions/{session_id}?type=agent")
    assert status == 404, (status, body)
    status, listed = _get(second, token_b, f"{ROUTE}/sessions?type=agent")
    assert status == 200 and session_id not in json.dumps(listed), listed
    status, body = _get(second, token_b, f"{ROUTE}/sessions/{session_id}/runs?type=agent")
    assert status == 404, (status, body)
    answer = run_agent(second, "B writes here", {"Authorization": token_b}, stream="false", session_id=session_id)
    assert answer.status == 404, (answer.status, answer.body[:300])

    status, session = _get(first, token_a, f"{ROUTE}/sessions/{session_id}?type=agent")
    assert status == 200 and session["user_id"] == id_a, session
    assert [m["content"] for m in session["chat_history"] if m["role"] == "user"] == ["a secret of A"], session
