"""The gateway end to end (docs/gateway.md): a real `pocketbase serve`
routing HTTP to a real uvicorn sidecar (fixtures/asgi_app.py, a raw ASGI
app, run by fixtures/serve_asgi.py on the Unix socket in $PB_SOCKET).

Streaming, identity and its proof (checked with the Python reference
verifier of tests/contract), auth modes, WebSockets, large uploads,
client disconnects, requests held over a restart, and the 503 of a process
that never listens.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import signal
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pytest

import e2e_helpers as h
from e2e_helpers import FIXTURES, REPO_ROOT, http_request

websockets_sync = pytest.importorskip("websockets.sync.client", reason="needs `websockets` (requirements-dev.txt)")
pytest.importorskip("uvicorn", reason="needs `uvicorn` (requirements-dev.txt)")
from websockets.exceptions import InvalidStatus  # noqa: E402

SERVE_ASGI = FIXTURES / "serve_asgi.py"
USER_PASSWORD = "1234567890"


def _load_reference_verifier():
    """tests/contract/test_gateway_identity.py: the Python reference
    verifier of the identity headers (the one the SDKs follow)."""
    path = REPO_ROOT / "tests" / "contract" / "test_gateway_identity.py"
    spec = importlib.util.spec_from_file_location("gateway_identity_reference", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ref = _load_reference_verifier()


# ---------------------------------------------------------------------------
# helpers


def sidecar(name: str = "py", route: str | None = "/api/py", auth: Any = "public", **extra: Any) -> dict:
    """A process entry running the ASGI sidecar with this interpreter (the
    one running pytest, which has uvicorn)."""
    entry: dict[str, Any] = {
        "name": name,
        "script": str(SERVE_ASGI),
        "interpreter": sys.executable,
        "auth": auth,
    }
    if route is not None:
        entry["route"] = route
    env = dict(extra.pop("env", {}) or {})
    if sys.prefix != sys.base_prefix:  # running in a virtualenv: use it
        env.setdefault("VIRTUAL_ENV", sys.prefix)
    entry["env"] = env
    entry.update(extra)
    return entry


@dataclass
class Resp:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    elapsed: float

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise AssertionError(f"status {self.status}: not JSON: {self.body[:500]!r}") from None

    def __repr__(self) -> str:
        return f"<{self.status} {dict(self.headers)} {self.body[:500]!r}>"


def call(
    pb,
    method: str,
    path: str,
    headers: Iterable[tuple[str, str]] | dict[str, str] = (),
    body: bytes | None = None,
    timeout: float = 60,
) -> Resp:
    """One request on a fresh connection, headers sent exactly as given
    (repeats and odd cases included)."""
    if isinstance(headers, dict):
        headers = list(headers.items())
    conn = http.client.HTTPConnection("127.0.0.1", pb.port, timeout=timeout)
    start = time.monotonic()
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in headers:
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return Resp(resp.status, resp.headers, data, time.monotonic() - start)
    finally:
        conn.close()


def wait_ready(pb, path: str = "/api/py/echo", headers: dict[str, str] | None = None, timeout: float = 40) -> dict:
    """Waits until the sidecar answers through the gateway; returns its echo."""
    last: list[Any] = []

    def ok():
        try:
            r = call(pb, "GET", path, headers or {}, timeout=20)
        except OSError as e:
            last[:] = [repr(e)]
            return None
        last[:] = [r]
        return r.json() if r.status == 200 else None

    return h.wait_until(ok, timeout, lambda: f"{path} never answered 200 (last: {last})\n{pb.logs()}", interval=0.2)


def create_user(pb) -> tuple[str, str]:
    """Creates a record in `users` through PocketBase's API (as the
    superuser) and logs it in; returns (token, record id)."""
    email = f"user-{uuid.uuid4().hex[:12]}@example.com"
    status, body = http_request(
        "POST",
        pb.url + "/api/collections/users/records",
        body={"email": email, "password": USER_PASSWORD, "passwordConfirm": USER_PASSWORD},
        headers={"Authorization": pb.token()},
    )
    assert status == 200 and isinstance(body, dict) and body.get("id"), f"creating a user failed: {status} {body}"
    status, auth = http_request(
        "POST",
        pb.url + "/api/collections/users/auth-with-password",
        body={"identity": email, "password": USER_PASSWORD},
    )
    assert status == 200 and isinstance(auth, dict) and auth.get("token"), f"user login failed: {status} {auth}"
    assert auth["record"]["id"] == body["id"]
    return auth["token"], body["id"]


def header_values(echo: dict) -> dict[str, list[str]]:
    """The sidecar's headers, name (lower case) -> every value received."""
    out: dict[str, list[str]] = {}
    for k, v in echo["header_pairs"]:
        out.setdefault(k.lower(), []).append(v)
    return out


def received_path(echo: dict) -> str:
    """The path with query as the sidecar received it (the canonical
    string's path)."""
    qs = echo["query_string"]
    return echo["raw_path"] + ("?" + qs if qs else "")


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def assert_pb_error(r: Resp, status: int) -> dict:
    """PocketBase's JSON error format: {"status", "message", "data"}."""
    assert r.status == status, f"want {status}, got {r!r}"
    body = r.json()
    assert isinstance(body, dict) and set(body) >= {"status", "message", "data"}, f"not PocketBase's error format: {r!r}"
    assert body["status"] == status and isinstance(body["message"], str) and body["message"], r
    assert isinstance(body["data"], dict), r
    return body


FORGED = [
    ("X-PB-Auth-Id", "someone-else"),
    ("x-pb-auth-superuser", "true"),
    ("X-Pb-Auth-Collection", "_superusers"),
    ("X-PB-Gateway-Proof", "00" * 32),
    ("X-PB-GATEWAY-TIME", "1"),
    ("X-PB-Auth-Id", "a-second-forged-id"),
    ("X-Pb-Custom", "any X-PB- header is the gateway's"),
]

IDENTITY_HEADERS = ("x-pb-auth-id", "x-pb-auth-collection", "x-pb-auth-superuser", "x-pb-gateway-time", "x-pb-gateway-proof")


def assert_identity(echo: dict, id_: str, collection: str, superuser: bool) -> None:
    """The sidecar got exactly the gateway's identity headers, each once,
    and none of the client's X-PB- headers."""
    hv = header_values(echo)
    for name in IDENTITY_HEADERS:
        assert len(hv.get(name, [])) <= 1, f"{name} arrived {len(hv[name])} times: {hv[name]}"
    assert "x-pb-custom" not in hv, f"a client X-PB- header reached the sidecar: {hv}"
    got = {
        "id": hv.get("x-pb-auth-id", [""])[0],
        "collection": hv.get("x-pb-auth-collection", [""])[0],
        "superuser": hv.get("x-pb-auth-superuser", ["<absent>"])[0],
    }
    want = {"id": id_, "collection": collection, "superuser": "true" if superuser else "false"}
    assert got == want, f"sidecar saw identity {got}, want {want}; headers {hv}"
    proof = hv.get("x-pb-gateway-proof", [""])[0]
    assert proof != "00" * 32 and len(proof) == 64, f"proof {proof!r}"
    assert hv.get("x-pb-gateway-time", [""])[0] != "1"


# ---------------------------------------------------------------------------
# 1. streaming answers


def test_sse_arrives_event_by_event(pocketbase):
    pb = pocketbase([sidecar()])
    wait_ready(pb)
    n, gap = 5, 0.3
    conn = http.client.HTTPConnection("127.0.0.1", pb.port, timeout=30)
    try:
        start = time.monotonic()
        conn.request("GET", f"/api/py/sse?n={n}&gap={gap}", headers={"Accept": "text/event-stream"})
        resp = conn.getresponse()
        headers_at = time.monotonic() - start
        assert resp.status == 200, resp.read()
        assert resp.getheader("Content-Type", "").startswith("text/event-stream"), resp.getheaders()
        assert resp.getheader("Content-Length") is None, f"a streamed answer got a Content-Length: {resp.getheaders()}"
        arrivals, data = [], []
        while True:
            line = resp.readline()
            if not line:
                break
            if line.startswith(b"data: "):
                arrivals.append(time.monotonic() - start)
                data.append(line[6:].strip().decode())
    finally:
        conn.close()
    print(f"headers at {headers_at:.3f}s, events at {[round(a, 3) for a in arrivals]}")
    assert data == [str(i) for i in range(n)], data
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    for i, g in enumerate(gaps, 1):
        assert g >= 0.5 * gap, (
            f"event {i} arrived {g:.3f}s after the previous one (written {gap}s apart): the gateway buffered; "
            f"arrivals {arrivals}"
        )
    # The first event is there long before the stream ends.
    assert arrivals[-1] - arrivals[0] >= 0.5 * gap * (n - 1), arrivals


# ---------------------------------------------------------------------------
# 2 and 3. identity headers and their proof


def test_forged_identity_headers_never_reach_the_sidecar(pocketbase):
    pb = pocketbase([
        sidecar("pub", "/api/pub", auth="public"),
        sidecar("usr", "/api/usr", auth="user"),
    ])
    wait_ready(pb, "/api/pub/echo")
    wait_ready(pb, "/api/usr/echo", {"Authorization": pb.token()})

    # A guest, on a public route. Forwarding headers are the gateway's too.
    forwarded = [
        ("X-Forwarded-For", "6.6.6.6"),
        ("X-Forwarded-Prefix", "/evil"),
        ("X-Forwarded-Host", "evil.example.com"),
        ("X-Forwarded-Proto", "https"),
    ]
    r = call(pb, "GET", "/api/pub/echo/guest?a=1", FORGED + forwarded)
    assert r.status == 200, r
    echo = r.json()
    assert_identity(echo, "", "", False)
    assert echo["path"] == "/echo/guest" and echo["query_string"] == "a=1", echo
    fwd = {k: v for k, v in header_values(echo).items() if k.startswith("x-forwarded-")}
    assert fwd == {
        "x-forwarded-for": ["127.0.0.1"],
        "x-forwarded-prefix": ["/api/pub"],
        "x-forwarded-host": [f"127.0.0.1:{pb.port}"],
        "x-forwarded-proto": ["http"],
    }, fwd
    assert "authorization" not in echo["headers"], echo["headers"]

    # Naming the identity headers as hop-by-hop (Connection) does not
    # remove the gateway's own.
    hop = [("Connection", "keep-alive, X-PB-Auth-Id, X-Pb-Auth-Superuser, X-PB-Gateway-Proof, X-PB-Gateway-Time")]
    r = call(pb, "GET", "/api/pub/echo", FORGED + hop)
    assert r.status == 200, r
    assert_identity(r.json(), "", "", False)

    # A user of `users`, on a user route: its id and collection, its token.
    token, user_id = create_user(pb)
    r = call(pb, "POST", "/api/usr/echo/run", FORGED + [("Authorization", token)], body=b"{}")
    assert r.status == 200, r
    echo = r.json()
    assert_identity(echo, user_id, "users", False)
    assert echo["method"] == "POST" and echo["path"] == "/echo/run", echo
    assert echo["headers"].get("authorization") == token, "the caller's token must be forwarded as sent"
    assert echo["headers"].get("x-forwarded-prefix") == "/api/usr"

    # The same user on the public route is identified too.
    r = call(pb, "GET", "/api/pub/echo", FORGED + [("Authorization", token)])
    assert r.status == 200, r
    assert_identity(r.json(), user_id, "users", False)

    # A superuser.
    r = call(pb, "GET", "/api/usr/echo", FORGED + [("Authorization", pb.token())])
    assert r.status == 200, r
    echo = r.json()
    hv = header_values(echo)
    assert hv["x-pb-auth-collection"] == ["_superusers"] and hv["x-pb-auth-superuser"] == ["true"], hv
    assert hv["x-pb-auth-id"][0] not in ("", "someone-else"), hv


def test_proof_verifies_with_the_reference_verifier(pocketbase):
    pb = pocketbase([sidecar("pub", "/api/pub", auth="public")])
    wait_ready(pb, "/api/pub/echo")
    r = call(pb, "GET", "/api/pub/secret")
    assert r.status == 200, r
    env = r.json()
    secret = env["secret"]
    assert len(secret) == 64 and all(c in "0123456789abcdef" for c in secret), f"PB_GATEWAY_SECRET {secret!r}"
    assert env["route"] == "/api/pub", env
    assert env["socket"].endswith("/pub.0a.sock"), env
    sock_dir = Path(env["socket"]).parent
    assert (sock_dir.stat().st_mode & 0o777) == 0o700, oct(sock_dir.stat().st_mode)

    token, user_id = create_user(pb)
    callers = {"guest": ("", "", ""), "user": (token, user_id, "users")}
    cases = [
        ("GET", "/api/pub/echo"),
        ("GET", "/api/pub"),  # the bare prefix reaches "/"
        ("POST", "/api/pub/echo/run?stream=1&x=%2F"),
        ("DELETE", "/api/pub/echo/a%2Fb%20c/%41?q=%C3%A9&empty=&q=2"),
        ("PATCH", "/api/pub/echo/%E2%9C%93"),
    ]
    checked = 0
    for caller, (tok, id_, collection) in callers.items():
        for method, path in cases:
            headers = FORGED + ([("Authorization", tok)] if tok else [])
            r = call(pb, method, path, headers, body=b"x" if method in ("POST", "PATCH") else None)
            assert r.status == 200, (caller, method, path, r)
            echo = r.json()
            got_path = received_path(echo)
            want_path = path[len("/api/pub"):] or "/"
            assert got_path == want_path, f"{method} {path}: the sidecar received {got_path!r}, want {want_path!r}"
            hv = header_values(echo)
            identity = ref.reference_verify(hv, secret, int(time.time()), echo["method"], got_path)
            assert identity == {"id": id_, "collection": collection, "superuser": False}, (caller, identity)
            # The check can fail: another path, method or secret does not verify.
            for bad in (
                (secret, echo["method"], got_path + "x"),
                (secret, "PUT" if echo["method"] != "PUT" else "GET", got_path),
                ("0" * 64, echo["method"], got_path),
            ):
                with pytest.raises(ref.VerifyError) as exc:
                    ref.reference_verify(hv, bad[0], int(time.time()), bad[1], bad[2])
                assert exc.value.code == "bad_proof"
            # And a clock 61 s away rejects it as expired.
            with pytest.raises(ref.VerifyError) as exc:
                ref.reference_verify(hv, secret, int(hv["x-pb-gateway-time"][0]) + 61, echo["method"], got_path)
            assert exc.value.code == "expired"
            checked += 1
    assert checked == len(callers) * len(cases)


# ---------------------------------------------------------------------------
# 4. auth modes


def test_auth_modes(pocketbase):
    pb = pocketbase([
        sidecar("usr", "/api/usr", auth="user"),
        sidecar("sup", "/api/sup", auth="superuser"),
    ])
    su = {"Authorization": pb.token()}
    wait_ready(pb, "/api/usr/echo", su)
    wait_ready(pb, "/api/sup/echo", su)
    user_token, user_id = create_user(pb)

    # No token: 401 in PocketBase's format, the sidecar is not called.
    for route in ("/api/usr", "/api/sup"):
        assert_pb_error(call(pb, "GET", route + "/echo"), 401)
        assert_pb_error(call(pb, "POST", route + "/echo", body=b"{}"), 401)
    # A token that is not valid is no token.
    assert_pb_error(call(pb, "GET", "/api/usr/echo", {"Authorization": "not-a-token"}), 401)

    # A user: allowed on "user", 403 on "superuser".
    r = call(pb, "GET", "/api/usr/echo", {"Authorization": user_token})
    assert r.status == 200, r
    assert header_values(r.json())["x-pb-auth-id"] == [user_id]
    assert_pb_error(call(pb, "GET", "/api/sup/echo", {"Authorization": user_token}), 403)

    # A superuser may call both.
    for route in ("/api/usr", "/api/sup"):
        r = call(pb, "GET", route + "/echo", su)
        assert r.status == 200, r
        assert header_values(r.json())["x-pb-auth-superuser"] == ["true"]


# ---------------------------------------------------------------------------
# 5. WebSocket


def test_websocket_echo(pocketbase):
    pb = pocketbase([sidecar()])
    wait_ready(pb)
    uri = f"ws://127.0.0.1:{pb.port}/api/py/ws"
    try:
        ws = websockets_sync.connect(uri, open_timeout=15, close_timeout=5, additional_headers=FORGED)
    except InvalidStatus as e:
        resp = e.response
        pytest.fail(
            f"the WebSocket upgrade through the gateway was refused: status {resp.status_code}, "
            f"headers {dict(resp.headers.raw_items())}, body {resp.body[:500]!r}\n{pb.logs()}"
        )
    with ws:
        for msg in ("one", "two", "three"):
            ws.send(msg)
            assert ws.recv(timeout=10) == f"echo: {msg}"
        # The upgrade request was signed like any other.
        ws.send("__headers__")
        hv = json.loads(ws.recv(timeout=10))
    assert hv.get("x-pb-auth-id", "") == "" and hv.get("x-pb-auth-superuser") == "false", hv
    assert hv.get("x-pb-gateway-proof", "00" * 32) != "00" * 32 and "x-pb-custom" not in hv, hv


# ---------------------------------------------------------------------------
# 6. large uploads


def _stream_upload(pb, size: int, chunk: int, chunked: bool) -> Resp:
    conn = http.client.HTTPConnection("127.0.0.1", pb.port, timeout=300)
    block = b"\0" * chunk

    def gen():
        left = size
        while left > 0:
            n = min(chunk, left)
            yield block if n == chunk else block[:n]
            left -= n

    start = time.monotonic()
    try:
        conn.putrequest("POST", "/api/py/upload", skip_accept_encoding=True)
        conn.putheader("Content-Type", "application/octet-stream")
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        else:
            conn.putheader("Content-Length", str(size))
        conn.endheaders()
        for part in gen():
            if chunked:
                conn.send(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            else:
                conn.send(part)
        if chunked:
            conn.send(b"0\r\n\r\n")
        resp = conn.getresponse()
        return Resp(resp.status, resp.headers, resp.read(), time.monotonic() - start)
    finally:
        conn.close()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_large_upload_streams_to_the_sidecar(pocketbase, chunked):
    pb = pocketbase([sidecar()])
    wait_ready(pb)
    size = 200 * 1024 * 1024
    baseline = max(rss_kb(pb.pid) for _ in range(5))
    peak = [baseline]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], rss_kb(pb.pid))
            except (OSError, AssertionError):
                return
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        r = _stream_upload(pb, size, 1024 * 1024, chunked)
    finally:
        stop.set()
        sampler.join(5)
    grew_mb = (peak[0] - baseline) / 1024
    print(f"upload of {size >> 20} MB ({'chunked' if chunked else 'Content-Length'}) took {r.elapsed:.1f}s; "
          f"PocketBase RSS {baseline // 1024} MB -> peak {peak[0] // 1024} MB (+{grew_mb:.0f} MB); {r.body[:300]!r}")
    assert r.status == 200, f"the upload failed (PocketBase's 32 MB body limit must not apply): {r!r}"
    got = r.json()
    assert got["bytes"] == size, f"the sidecar counted {got['bytes']} bytes, want {size}: {got}"
    assert got["chunks"] > 1, f"the body reached the sidecar in one piece: {got}"
    assert grew_mb < 150, f"PocketBase's RSS grew by {grew_mb:.0f} MB while streaming 200 MB: the body was buffered"


def test_large_download_streams_to_the_client(pocketbase):
    pb = pocketbase([sidecar()])
    wait_ready(pb)
    size = 200 * 1024 * 1024
    baseline = max(rss_kb(pb.pid) for _ in range(5))
    peak = baseline
    conn = http.client.HTTPConnection("127.0.0.1", pb.port, timeout=120)
    try:
        conn.request("GET", f"/api/py/download?size={size}")
        resp = conn.getresponse()
        assert resp.status == 200, resp.read(500)
        got = 0
        while True:
            part = resp.read(1024 * 1024)
            if not part:
                break
            got += len(part)
            peak = max(peak, rss_kb(pb.pid))
    finally:
        conn.close()
    grew_mb = (peak - baseline) / 1024
    print(f"download of {size >> 20} MB: PocketBase RSS {baseline // 1024} MB -> peak {peak // 1024} MB")
    assert got == size, f"got {got} bytes, want {size}"
    assert grew_mb < 150, f"PocketBase's RSS grew by {grew_mb:.0f} MB while streaming 200 MB out: the answer was buffered"


# ---------------------------------------------------------------------------
# 7. client disconnects


def test_client_disconnect_reaches_the_sidecar(pocketbase, tmp_path):
    pb = pocketbase([sidecar()])
    wait_ready(pb)
    marker = tmp_path / "disconnected"
    sock = socket.create_connection(("127.0.0.1", pb.port), timeout=20)
    try:
        sock.sendall(
            f"GET /api/py/slow-stream?file={marker}&gap=0.1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        got = b""
        while b"data: 0" not in got:
            chunk = sock.recv(4096)
            assert chunk, f"the connection closed before the first event: {got!r}"
            got += chunk
        assert got.startswith(b"HTTP/1.1 200"), got
        time.sleep(0.3)  # a few more events
        assert not marker.exists(), "the sidecar saw a disconnect while the client was still reading"
    finally:
        sock.close()
    closed_at = time.monotonic()
    h.wait_until(marker.exists, 5, lambda: f"the sidecar never saw the client go away\n{pb.logs()}")
    print(f"the sidecar saw the disconnect {time.monotonic() - closed_at:.3f}s after the close: {marker.read_text().strip()}")
    # PocketBase keeps serving, and the sidecar too.
    assert call(pb, "GET", "/api/py/echo").status == 200


# ---------------------------------------------------------------------------
# 8. requests are held over a restart


def test_request_is_held_while_the_sidecar_restarts_after_a_crash(pocketbase):
    pb = pocketbase([sidecar(restart="always", restart_delay="500ms")])
    old = wait_ready(pb)["pid"]
    assert pb.marker_pids().get(old, {}).get("PB_PROCESS_NAME") == "py", h.describe([old])
    os.kill(old, signal.SIGKILL)
    h.wait_until(lambda: not h.is_alive(old), 10, f"pid {old} survived SIGKILL")
    # Sent while nothing listens (the restart is 500 ms away): held, then
    # answered by the new process.
    r = call(pb, "GET", "/api/py/echo/held")
    assert r.status == 200, f"a request during the restart was not held: {r!r}\n{pb.logs()}"
    new = r.json()["pid"]
    print(f"held {r.elapsed:.3f}s; pid {old} -> {new}")
    assert new != old
    assert r.elapsed >= 0.3, f"answered after {r.elapsed:.3f}s, before the restart delay ran out"

    # A request with a body is held as well, and its body arrives whole.
    os.kill(new, signal.SIGKILL)
    h.wait_until(lambda: not h.is_alive(new), 10, f"pid {new} survived SIGKILL")
    body = os.urandom(3 * 1024 * 1024)
    r = call(pb, "POST", "/api/py/upload", {"Content-Type": "application/octet-stream"}, body=body)
    assert r.status == 200, f"a POST during the restart was not held: {r!r}\n{pb.logs()}"
    assert r.json()["bytes"] == len(body), r
    assert r.elapsed >= 0.3, f"answered after {r.elapsed:.3f}s, before the restart delay ran out"


def test_requests_are_held_while_the_sidecar_restarts(pocketbase):
    pb = pocketbase([sidecar(env={"STARTUP_DELAY": "1.5"})])
    old = wait_ready(pb)["pid"]

    # Requests one after another during the whole restart: none may fail.
    results: list[tuple[float, int, Any]] = []
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            t = time.monotonic()
            try:
                r = call(pb, "GET", "/api/py/echo/during", timeout=30)
                results.append((t, r.status, r.json()["pid"] if r.status == 200 else r.body[:300]))
            except OSError as e:
                results.append((t, -1, repr(e)))
            time.sleep(0.05)

    worker = threading.Thread(target=hammer, daemon=True)
    worker.start()
    restart = threading.Thread(target=lambda: pb.api("POST", "/api/pm/py/restart"), daemon=True)
    try:
        time.sleep(0.3)
        restart.start()
        h.wait_until(lambda: not h.is_alive(old), 15, lambda: f"pid {old} was not restarted\n{pb.logs()}")
        dead_at = time.monotonic()
        # Sent while the new process sleeps before listening: held.
        r = call(pb, "GET", "/api/py/echo/held")
        h.wait_until(lambda: any(s == 200 and p != old for _, s, p in results), 20, "no answer from the new process")
    finally:
        stop.set()
        worker.join(40)
        restart.join(40)
    assert r.status == 200, f"a request during the restart was not held: {r!r}\n{pb.logs()}"
    assert r.json()["pid"] != old
    print(f"held {r.elapsed:.3f}s after pid {old} exited ({time.monotonic() - dead_at:.3f}s ago); "
          f"{len(results)} requests during the restart")
    assert r.elapsed >= 0.5, f"answered after {r.elapsed:.3f}s while the new process sleeps 1.5 s before listening"
    failed = [x for x in results if x[1] != 200]
    assert not failed, f"requests failed during the restart: {failed}\n{pb.logs()}"


def test_a_file_change_reloads_a_routed_sidecar_without_a_wait(pocketbase, tmp_path):
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    trigger = app_dir / "trigger.txt"
    trigger.write_text("v1\n")
    pb = pocketbase([
        sidecar(cwd=str(app_dir), watch=["trigger.txt"], env={"STARTUP_DELAY": "1.5"}),
    ])
    old = wait_ready(pb)["pid"]
    results: list[tuple[int, Any, float]] = []
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                r = call(pb, "GET", "/api/py/echo/during", timeout=30)
                results.append((r.status, r.json()["pid"] if r.status == 200 else r.body[:300], r.elapsed))
            except OSError as e:
                results.append((-1, repr(e), 0.0))
            time.sleep(0.05)

    worker = threading.Thread(target=hammer, daemon=True)
    worker.start()
    try:
        time.sleep(0.3)
        trigger.write_text("v2\n")
        h.wait_until(lambda: not h.is_alive(old), 20, lambda: f"pid {old} was not replaced on the change\n{pb.logs()}")
        time.sleep(0.3)
    finally:
        stop.set()
        worker.join(40)
    assert [x for x in results if x[0] != 200] == [], f"requests failed during the reload\n{pb.logs()}"
    assert {p for _, p, _ in results} >= {old}, "the old copy served until the new one was ready"
    assert any(p != old for _, p, _ in results), "the new copy served after the change"
    slowest = max(e for _, _, e in results)
    assert slowest < 0.5, f"a request waited {slowest:.2f}s: a reload must not hold requests"
    assert "files changed (trigger.txt), reloading" in pb.stdout()


# ---------------------------------------------------------------------------
# 9. a process that never listens


def test_not_ready_answers_503_after_the_hold(pocketbase):
    pb = pocketbase([
        {"name": "mute", "script": "sleep", "args": ["300"], "interpreter": "none", "route": "/api/mute", "auth": "public"},
    ])
    r = call(pb, "GET", "/api/mute/x", timeout=60)
    print(f"503 after {r.elapsed:.2f}s: {r!r}")
    body = assert_pb_error(r, 503)
    assert r.headers.get("Retry-After", "").isdigit(), f"Retry-After {r.headers.get('Retry-After')!r}"
    assert r.headers.get("Content-Type", "").startswith("application/json"), r
    # A sleeping process is running: its state is "online", it is just not ready.
    assert body["data"].get("process") == "mute" and body["data"].get("state") == "online", body
    assert "mute" in body["message"], body
    # Held for the default 10 s, not answered at once nor hanging on.
    assert 9.0 <= r.elapsed <= 15.0, f"answered after {r.elapsed:.2f}s; the default hold is 10 s"


# ---------------------------------------------------------------------------
# a failing sidecar


def test_sidecar_dying_mid_request_is_a_502(pocketbase):
    pb = pocketbase([sidecar(restart="always", restart_delay="200ms")])
    old = wait_ready(pb)["pid"]
    r = call(pb, "POST", "/api/py/exit", body=b"{}")
    body = assert_pb_error(r, 502)
    assert body["data"].get("process") == "py", body
    assert not h.is_alive(old) or h.wait_until(lambda: not h.is_alive(old), 10)
    # It comes back, and so does the route.
    assert wait_ready(pb)["pid"] != old


# ---------------------------------------------------------------------------
# known bugs


def test_encoded_prefix_keeps_the_rest_of_the_path_as_sent(pocketbase):
    pb = pocketbase([sidecar()])
    wait_ready(pb)
    plain = call(pb, "GET", "/api/py/echo/x%2Fy")
    assert plain.status == 200 and received_path(plain.json()) == "/echo/x%2Fy", plain
    r = call(pb, "GET", "/api/%70y/echo/x%2Fy")
    assert r.status == 200, r
    assert received_path(r.json()) == "/echo/x%2Fy", f"the sidecar received {received_path(r.json())!r}"


# ---------------------------------------------------------------------------
# calls from JS hooks


JS_HOOK = r"""
routerAdd("POST", "/api/hook/ask", (e) => {
    const res = $processman.send({
        process: "py",
        method: "post",
        path: "/echo/from-hook?x=1",
        headers: {"content-type": "application/json", "x-pb-auth-id": "forged"},
        body: {question: "hi"},
        auth: e.auth,
        timeout: 20,
    })
    return e.json(200, {status: res.statusCode, echo: res.json})
})

routerAdd("GET", "/api/hook/system", (e) => {
    return e.json(200, $processman.send({process: "py", path: "/echo/system"}).json)
})

routerAdd("POST", "/api/hook/apply", (e) => {
    try {
        const result = $processman.apply()
        return e.json(200, {changes: result.changes.map((c) => c.process + " " + c.action)})
    } catch (err) {
        return e.json(200, {error: String(err)})
    }
})

routerAdd("GET", "/api/hook/unknown", (e) => {
    try {
        $processman.send({process: "nope"})
    } catch (err) {
        return e.json(200, {error: String(err)})
    }
    return e.json(500, {error: "no error"})
})
"""


def test_js_hooks_call_a_sidecar(pocketbase, tmp_path):
    base = tmp_path / "pb"
    (base / "pb_hooks").mkdir(parents=True)
    (base / "pb_hooks" / "sidecar.pb.js").write_text(JS_HOOK)
    pb = pocketbase([sidecar()], base_dir=base)
    wait_ready(pb)
    token, user_id = create_user(pb)

    r = call(pb, "POST", "/api/hook/ask", {"Authorization": token})
    assert r.status == 200, r
    out = r.json()
    assert out["status"] == 200
    echo = out["echo"]
    assert echo["method"] == "POST" and received_path(echo) == "/echo/from-hook?x=1", echo
    assert_identity(echo, user_id, "users", False)  # as the hook's caller; the forged header is gone

    system = call(pb, "GET", "/api/hook/system").json()
    assert_identity(system, "", "", True)  # PocketBase itself

    err = call(pb, "GET", "/api/hook/unknown").json()["error"]
    assert 'no routed process "nope"' in err, err

    # $processman.apply(): the edited file, then a broken one (it throws).
    config = json.loads((base / "pb_processes.json").read_text())
    config["processes"].append({"name": "extra", "script": "sleep", "args": ["600"],
                                "env": {"E2E_MARKER": pb.marker}})
    (base / "pb_processes.json").write_text(json.dumps(config))
    applied = call(pb, "POST", "/api/hook/apply").json()
    assert applied.get("changes") == ["py unchanged", "extra added"], applied
    (base / "pb_processes.json").write_text(json.dumps([{"name": "py", "script": "x", "depends_on": ["ghost"]}]))
    refused = call(pb, "POST", "/api/hook/apply").json()
    assert "nothing was changed" in refused.get("error", "") and "ghost" in refused["error"], refused
