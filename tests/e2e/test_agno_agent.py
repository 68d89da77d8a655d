"""The agno example (examples/agno-agent) end to end: a real `pocketbase
serve` starts it from its own virtualenv, routes /api/agno to it, and a
user's run streams back through the gateway while the agent's tool writes a
note to PocketBase as that user.

The example runs its offline scripted model (OPENAI_API_KEY is blanked), so
no network is needed. Its virtualenv must exist:

    cd examples/agno-agent && python3 -m venv .venv && .venv/bin/pip install -r requirements.txt
"""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field

import e2e_helpers as h
import pytest
from e2e_helpers import REPO_ROOT, http_request

AGNO_DIR = REPO_ROOT / "examples" / "agno-agent"
MIGRATIONS = REPO_ROOT / "examples" / "pb_migrations"
ROUTE = "/api/agno"
RUN_PATH = f"{ROUTE}/agents/notes/runs"
READY_TIMEOUT = 90  # importing agno and building the AgentOS takes seconds on a busy 2-core machine


@dataclass
class Event:
    at: float  # seconds since the request was sent
    name: str
    data: dict


@dataclass
class Stream:
    status: int
    content_type: str
    events: list[Event] = field(default_factory=list)
    body: bytes = b""

    def content(self) -> str:
        return "".join(e.data.get("content") or "" for e in self.events if e.name == "RunContent")


@pytest.fixture
def agno(pocketbase):
    venv_python = AGNO_DIR / ".venv" / "bin" / "python"
    if not venv_python.exists():
        pytest.fail(
            f"{AGNO_DIR / '.venv'} does not exist: create it with\n"
            f"  cd {AGNO_DIR} && python3 -m venv .venv && .venv/bin/pip install -r requirements.txt",
            pytrace=False,
        )
    pb = pocketbase(
        processes=[
            {
                "name": "agno-agent",
                "script": "app.py",
                "cwd": str(AGNO_DIR),
                "route": ROUTE,
                "auth": "user",
                "env": {"OPENAI_API_KEY": ""},
            }
        ],
        extra_args=("--migrationsDir", str(MIGRATIONS)),
    )
    return pb


def create_user(pb) -> tuple[str, str]:
    """Signs a user up the way an app does (no superuser) and logs them in."""
    email = f"agno-{uuid.uuid4().hex[:12]}@example.com"
    password = "pw-" + uuid.uuid4().hex[:16]
    status, body = http_request(
        "POST",
        pb.url + "/api/collections/users/records",
        body={"email": email, "password": password, "passwordConfirm": password},
    )
    assert status == 200, f"sign-up failed: {status} {body}"
    status, auth = http_request(
        "POST", pb.url + "/api/collections/users/auth-with-password", body={"identity": email, "password": password}
    )
    assert status == 200 and auth.get("token"), f"login failed: {status} {auth}"
    return auth["token"], auth["record"]["id"]


def wait_agent_ready(pb, token: str) -> float:
    """Waits until the AgentOS answers through the gateway; returns the seconds waited."""
    start = time.monotonic()
    last: list[object] = []

    def ready() -> bool:
        try:
            status, body = http_request("GET", pb.url + f"{ROUTE}/health", headers={"Authorization": token}, timeout=20)
        except OSError as e:
            last[:] = [repr(e)]
            return False
        last[:] = [status, body]
        return status == 200

    h.wait_until(
        ready,
        READY_TIMEOUT,
        lambda: f"{ROUTE}/health never answered 200 (last: {last})\n{pb.process_log('agno-agent')}\n{pb.logs()}",
        interval=0.25,
    )
    return time.monotonic() - start


def run_agent(pb, message: str, headers: dict[str, str], **form: str) -> Stream:
    """POSTs a run (streaming unless form says stream="false") and reads the
    answer event by event, noting when each event arrived."""
    body = urllib.parse.urlencode({"message": message, "stream": "true", **form}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", pb.port, timeout=60)
    try:
        conn.putrequest("POST", RUN_PATH, skip_accept_encoding=True)
        for k, v in {
            **headers,
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "text/event-stream",
        }.items():
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(len(body)))
        sent = time.monotonic()
        conn.endheaders(body)
        resp = conn.getresponse()
        stream = Stream(resp.status, resp.getheader("Content-Type", ""))
        if resp.status != 200 or not stream.content_type.startswith("text/event-stream"):
            stream.body = resp.read()
            return stream
        name, data = "", []
        while True:
            line = resp.readline()
            if not line:
                return stream
            line = line.decode().rstrip("\r\n")
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif not line and data:
                stream.events.append(Event(time.monotonic() - sent, name, json.loads("\n".join(data))))
                name, data = "", []
    finally:
        conn.close()


def notes_with_text(pb, token: str, text: str) -> list[dict]:
    query = urllib.parse.urlencode({"filter": f'text = "{text}"'})
    status, body = http_request(
        "GET", f"{pb.url}/api/collections/notes/records?{query}", headers={"Authorization": token}
    )
    assert status == 200, f"listing notes failed: {status} {body}"
    return body["items"]


def test_agent_streams_and_writes_as_the_caller(agno) -> None:
    pb = agno
    token_a, id_a = create_user(pb)
    token_b, _ = create_user(pb)
    wait_agent_ready(pb, token_a)

    text = f"remember the milk {uuid.uuid4().hex[:8]}"
    stream = run_agent(pb, text, {"Authorization": token_a})
    assert stream.status == 200, f"{stream.status} {stream.body[:500]!r}\n{pb.process_log('agno-agent')}"
    assert stream.content_type.startswith("text/event-stream")
    names = [e.name for e in stream.events]
    assert names[0] == "RunStarted" and names[-1] == "RunCompleted", names
    assert "ToolCallCompleted" in names

    # Chunk by chunk: the words arrive over time, not in one piece at the end.
    chunks = [e for e in stream.events if e.name == "RunContent"]
    assert len(chunks) >= 8, names
    times = [e.at for e in chunks]
    assert times[-1] - times[0] > 0.5, f"content arrived all at once: {times}"
    assert len({round(t, 2) for t in times}) >= 5, f"too few distinct arrival times: {times}"
    assert stream.events[-1].at - times[0] > 0.5
    assert f'Saved "{text}"' in stream.content(), stream.content()

    # The tool wrote the note as user A, under the collection's API rules.
    tool = next(e for e in stream.events if e.name == "ToolCallCompleted" and e.data["tool"]["tool_name"] == "add_note")
    note_id = json.loads(tool.data["tool"]["result"])["id"]
    [note] = notes_with_text(pb, token_a, text)
    assert (note["id"], note["owner"], note["source"]) == (note_id, id_a, "agno")
    assert notes_with_text(pb, token_b, text) == [], "another user must not see the note"
    status, _ = http_request(
        "GET", f"{pb.url}/api/collections/notes/records/{note_id}", headers={"Authorization": token_b}
    )
    assert status == 404


def test_forged_identity_and_missing_token(agno) -> None:
    pb = agno
    token_a, id_a = create_user(pb)
    token_b, id_b = create_user(pb)
    wait_agent_ready(pb, token_a)

    # B claims to be A: the gateway drops the header and signs B.
    text = f"forged {uuid.uuid4().hex[:8]}"
    forged = {
        "Authorization": token_b,
        "X-PB-Auth-Id": id_a,
        "X-PB-Auth-Collection": "users",
        "X-PB-Auth-Superuser": "true",
    }
    stream = run_agent(pb, text, forged)
    assert stream.status == 200, stream.body
    assert notes_with_text(pb, token_a, text) == []
    [note] = notes_with_text(pb, token_b, text)
    assert note["owner"] == id_b

    # A user_id in the form does not make the run someone else's.
    answer = run_agent(pb, "hello", {"Authorization": token_b}, stream="false", user_id=id_a)
    assert answer.status == 200, answer.body
    assert json.loads(answer.body)["user_id"] == id_b

    # No token: the gateway answers 401 before the agent is reached.
    stream = run_agent(pb, "hello", {})
    assert stream.status == 401, stream
    body = json.loads(stream.body)
    assert body["status"] == 401 and isinstance(body["data"], dict)


def test_socket_refuses_unsigned_requests(agno) -> None:
    """A local program that reaches the agent's socket directly, around the
    gateway, is refused by the SDK (no identity proof)."""
    pb = agno
    token, user_id = create_user(pb)
    wait_agent_ready(pb, token)
    envs = [
        env for env in pb.marker_pids().values() if env.get("PB_PROCESS_NAME") == "agno-agent" and env.get("PB_SOCKET")
    ]
    assert envs, f"no agno-agent process with PB_SOCKET\n{pb.logs()}"
    path = envs[0]["PB_SOCKET"]

    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(20)
    sock.connect(path)
    conn = http.client.HTTPConnection("sidecar")
    conn.sock = sock
    body = urllib.parse.urlencode({"message": "hi", "stream": "true"}).encode()
    conn.request(
        "POST",
        "/agents/notes/runs",
        body=body,
        headers={
            "Authorization": token,
            "X-PB-Auth-Id": user_id,
            "X-PB-Auth-Collection": "users",
            "X-PB-Auth-Superuser": "false",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    resp = conn.getresponse()
    data = json.loads(resp.read())
    conn.close()
    assert resp.status == 401 and data["status"] == 401 and data["data"] == {}, data

    # The SDK announced where it listens (usable as health.line) and never printed the secret.
    log = pb.process_log("agno-agent")
    assert f"processman: ready on unix:{path}" in log, log
    assert envs[0]["PB_GATEWAY_SECRET"] not in log
