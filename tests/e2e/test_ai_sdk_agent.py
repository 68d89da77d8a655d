"""The Vercel AI SDK example agent (examples/ai-sdk-agent) end to end: a
real `pocketbase serve` runs it as a routed process (/api/ai, auth "user")
with the examples' `notes` collection; users sign up and log in through
PocketBase's API and talk to the agent through the gateway.

The agent runs its offline mock model (OPENAI_API_KEY is blanked), which
streams a few words, saves the user's message as a note, lists the notes
and answers. Its tools call PocketBase with the caller's token through
@processman/sidecar, so the note must belong to the caller whatever
headers the client adds.

Needs examples/ai-sdk-agent/node_modules (`npm ci --prefix examples/ai-sdk-agent`).
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

import e2e_helpers as h
from e2e_helpers import REPO_ROOT, http_request

AGENT_DIR = REPO_ROOT / "examples" / "ai-sdk-agent"
MIGRATIONS_DIR = REPO_ROOT / "examples" / "pb_migrations"
ROUTE = "/api/ai"
PASSWORD = "1234567890"
# Milliseconds between the mock model's chunks: the stream takes a few
# seconds, long enough to see its chunks arrive apart.
CHUNK_DELAY_MS = 100


@pytest.fixture
def agent_dir():
    if shutil.which("node") is None:
        pytest.fail("`node` is not on PATH: the ai-sdk-agent example needs Node.js 20+", pytrace=False)
    if not (AGENT_DIR / "node_modules" / "ai").is_dir() or not (AGENT_DIR / "node_modules" / "@processman" / "sidecar").is_dir():
        pytest.fail(
            f"{AGENT_DIR}/node_modules is missing or incomplete: run `npm ci --prefix examples/ai-sdk-agent` first",
            pytrace=False,
        )
    return AGENT_DIR


@pytest.fixture
def agent_pb(pocketbase, agent_dir):
    """PocketBase running the agent at /api/ai, with the notes collection."""
    return pocketbase(
        [
            {
                "name": "ai-sdk-agent",
                "script": "server.mjs",
                "cwd": str(agent_dir),
                "route": ROUTE,
                "auth": "user",
                # No real model, whatever the environment holds.
                "env": {"OPENAI_API_KEY": "", "MOCK_CHUNK_DELAY_MS": str(CHUNK_DELAY_MS)},
            }
        ],
        extra_args=("--migrationsDir", str(MIGRATIONS_DIR)),
    )


# ---------------------------------------------------------------------------
# helpers


@dataclass
class User:
    id: str
    token: str
    email: str


def sign_up(pb) -> User:
    """Signs up through PocketBase's public API (no superuser) and logs in."""
    email = f"agent-{uuid.uuid4().hex[:12]}@example.com"
    status, body = http_request(
        "POST",
        pb.url + "/api/collections/users/records",
        body={"email": email, "password": PASSWORD, "passwordConfirm": PASSWORD},
    )
    assert status == 200 and isinstance(body, dict) and body.get("id"), f"sign-up failed: {status} {body}"
    status, auth = http_request(
        "POST", pb.url + "/api/collections/users/auth-with-password", body={"identity": email, "password": PASSWORD}
    )
    assert status == 200 and isinstance(auth, dict) and auth.get("token"), f"login failed: {status} {auth}"
    return User(id=body["id"], token=auth["token"], email=email)


def wait_agent_ready(pb, user: User, timeout: float = 40) -> dict:
    """Waits until GET /api/ai/ answers 200; returns its JSON."""
    last: list[Any] = []

    def ok():
        try:
            status, body = http_request("GET", pb.url + ROUTE + "/", headers={"Authorization": user.token}, timeout=20)
        except OSError as e:
            last[:] = [repr(e)]
            return None
        last[:] = [status, body]
        return body if status == 200 and isinstance(body, dict) else None

    return h.wait_until(
        ok, timeout, lambda: f"{ROUTE}/ never answered 200 (last: {last})\n{pb.logs()}\n{pb.process_log('ai-sdk-agent')}", interval=0.2
    )


@dataclass
class Stream:
    status: int
    headers: dict[str, str]
    events: list[dict] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # seconds since the request, per event
    headers_at: float = 0.0
    raw: str = ""

    def of_type(self, kind: str) -> list[tuple[float, dict]]:
        return [(t, e) for t, e in zip(self.arrivals, self.events) if e.get("type") == kind]

    def text(self) -> str:
        return "".join(e["delta"] for _, e in self.of_type("text-delta"))

    def tool_output(self, tool: str) -> Any:
        calls = {e["toolCallId"]: e["toolName"] for _, e in self.of_type("tool-input-available")}
        outputs = [e["output"] for _, e in self.of_type("tool-output-available") if calls.get(e["toolCallId"]) == tool]
        assert len(outputs) == 1, f"want one {tool} output, got {outputs}; events {self.events}"
        return outputs[0]


def chat(pb, prompt: str, headers: dict[str, str], timeout: float = 60) -> Stream:
    """POSTs a prompt to the agent and reads the UI message stream event by
    event, noting when each one arrives."""
    conn = http.client.HTTPConnection("127.0.0.1", pb.port, timeout=timeout)
    try:
        start = time.monotonic()
        conn.request(
            "POST",
            ROUTE + "/chat",
            body=json.dumps({"prompt": prompt}),
            headers={"Content-Type": "application/json", "Accept": "text/event-stream", **headers},
        )
        resp = conn.getresponse()
        stream = Stream(resp.status, {k.lower(): v for k, v in resp.getheaders()}, headers_at=time.monotonic() - start)
        if resp.status != 200:
            stream.raw = resp.read().decode("utf-8", "replace")
            return stream
        while True:
            line = resp.readline()
            if not line:
                break
            stream.raw += line.decode("utf-8", "replace")
            if not line.startswith(b"data: "):
                continue
            data = line[len(b"data: ") :].strip()
            at = time.monotonic() - start
            if data == b"[DONE]":
                stream.events.append({"type": "[DONE]"})
            else:
                stream.events.append(json.loads(data))
            stream.arrivals.append(at)
        return stream
    finally:
        conn.close()


def notes_as(pb, user: User) -> list[dict]:
    status, body = http_request(
        "GET", pb.url + "/api/collections/notes/records?perPage=200", headers={"Authorization": user.token}
    )
    assert status == 200 and isinstance(body, dict), f"listing notes as {user.email}: {status} {body}"
    return body["items"]


def assert_pb_error(status: int, body: Any, want: int) -> None:
    assert status == want, f"want {want}, got {status}: {body}"
    assert isinstance(body, dict) and body.get("status") == want and body.get("message"), body
    assert isinstance(body.get("data"), dict), body


def sidecar_socket(pb) -> str:
    """PB_SOCKET of the running agent, read from its environment."""
    for env in pb.marker_pids().values():
        if env.get("PB_PROCESS_NAME") == "ai-sdk-agent" and env.get("PB_SOCKET"):
            return env["PB_SOCKET"]
    raise AssertionError(f"no ai-sdk-agent process with PB_SOCKET found\n{pb.logs()}")


def raw_unix_request(path: str, request: bytes, timeout: float = 10) -> tuple[int, Any]:
    """Sends a raw HTTP/1.1 request over a Unix socket; returns (status, JSON body)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body) if body else None


# ---------------------------------------------------------------------------
# tests


def test_agent_streams_through_the_gateway_and_writes_notes_as_the_caller(agent_pb):
    pb = agent_pb
    alice, bob = sign_up(pb), sign_up(pb)
    info = wait_agent_ready(pb, alice)
    assert info["user"] == {"id": alice.id, "collection": "users", "superuser": False}, info
    assert info["model"].startswith("mock"), f"the test must run offline, got model {info['model']!r}"

    prompt = f"remember the milk {uuid.uuid4().hex[:6]}"
    s = chat(pb, prompt, {"Authorization": alice.token})
    assert s.status == 200, f"{s.status}: {s.raw}\n{pb.process_log('ai-sdk-agent')}"
    assert s.headers.get("content-type", "").startswith("text/event-stream"), s.headers
    assert s.headers.get("x-vercel-ai-ui-message-stream") == "v1", s.headers
    assert "content-length" not in s.headers, f"a stream got a Content-Length: {s.headers}"

    # A well-formed UI message stream: tool calls, text, the end.
    kinds = [e["type"] for e in s.events]
    assert kinds[0] == "start" and kinds[-2:] == ["finish", "[DONE]"], kinds
    assert "error" not in kinds, s.raw
    saved = s.tool_output("saveNote")
    listed = s.tool_output("listNotes")
    assert saved["text"] == prompt, saved
    assert listed["total"] == 1 and listed["notes"][0]["id"] == saved["id"], listed
    assert f'You now have 1 note: "{prompt}".' in s.text(), s.text()

    # Chunk by chunk: the text deltas arrive spread over the whole answer,
    # the first long before the end (written CHUNK_DELAY_MS apart).
    deltas = [t for t, _ in s.of_type("text-delta")]
    assert len(deltas) >= 10, s.events
    finished_at = s.arrivals[-1]
    first_token = deltas[0]
    distinct = [t for i, t in enumerate(deltas) if i == 0 or t - deltas[i - 1] > CHUNK_DELAY_MS / 1000 / 3]
    print(
        f"headers at {s.headers_at:.3f}s, first token at {first_token:.3f}s, end at {finished_at:.3f}s, "
        f"{len(deltas)} deltas in {len(distinct)} separate arrivals"
    )
    assert len(distinct) >= len(deltas) // 2, f"text deltas arrived bunched together: {deltas}"
    assert finished_at - first_token >= 0.5 * (CHUNK_DELAY_MS / 1000) * len(deltas), (
        f"the stream was buffered: first token at {first_token:.3f}s, end at {finished_at:.3f}s; {deltas}"
    )

    # The note is Alice's, as PocketBase's own API shows her and Bob.
    status, note = http_request(
        "GET", f"{pb.url}/api/collections/notes/records/{saved['id']}", headers={"Authorization": alice.token}
    )
    assert status == 200, note
    assert (note["owner"], note["source"], note["text"]) == (alice.id, "ai-sdk", prompt), note
    status, hidden = http_request(
        "GET", f"{pb.url}/api/collections/notes/records/{saved['id']}", headers={"Authorization": bob.token}
    )
    assert status == 404, f"Bob can see Alice's note: {status} {hidden}"
    assert notes_as(pb, bob) == []

    # Bob's own conversation sees only Bob's notes.
    s = chat(pb, "bob's note", {"Authorization": bob.token})
    assert s.status == 200, s.raw
    assert s.tool_output("listNotes")["total"] == 1, s.events
    assert [n["text"] for n in notes_as(pb, alice)] == [prompt]


def test_identity_cannot_be_forged(agent_pb):
    pb = agent_pb
    alice, bob = sign_up(pb), sign_up(pb)
    wait_agent_ready(pb, alice)

    # Alice's token with headers claiming to be Bob (and a superuser): the
    # gateway replaces them, the agent acts as Alice.
    s = chat(
        pb,
        "forged note",
        {
            "Authorization": alice.token,
            "X-PB-Auth-Id": bob.id,
            "X-PB-Auth-Collection": "_superusers",
            "X-PB-Auth-Superuser": "true",
            "X_PB_Auth_Id": bob.id,
        },
    )
    assert s.status == 200, s.raw
    saved = s.tool_output("saveNote")
    assert [(n["id"], n["owner"]) for n in notes_as(pb, alice)] == [(saved["id"], alice.id)]
    assert notes_as(pb, bob) == []

    # No token, or a token that is not one: the gateway answers 401.
    for headers in ({}, {"Authorization": "not-a-token"}, {"X-PB-Auth-Id": alice.id}):
        status, body = http_request(
            "POST", pb.url + ROUTE + "/chat", body={"prompt": "as nobody"}, headers=headers
        )
        assert_pb_error(status, body, 401)

    # Straight to the agent's socket, around the gateway: without a valid
    # proof the SDK answers 401, even with Alice's token.
    sock = sidecar_socket(pb)
    body = json.dumps({"prompt": "around the gateway"}).encode()
    forged = (
        f"POST /chat HTTP/1.1\r\nHost: agent\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nAuthorization: {alice.token}\r\n"
        f"X-PB-Auth-Id: {alice.id}\r\nX-PB-Auth-Collection: users\r\nX-PB-Auth-Superuser: false\r\n"
        f"X-PB-Gateway-Time: {int(time.time())}\r\nX-PB-Gateway-Proof: {'0' * 64}\r\n\r\n"
    ).encode() + body
    status, answer = raw_unix_request(sock, forged)
    assert_pb_error(status, answer, 401)
    status, answer = raw_unix_request(
        sock, b"GET / HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n"
    )
    assert_pb_error(status, answer, 401)
    assert [n["text"] for n in notes_as(pb, alice)] == ["forged note"]
