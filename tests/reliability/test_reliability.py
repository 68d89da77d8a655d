"""processman under hostile input and faults, with real processes and a
real PocketBase: control storms, a log flood, gateway abuse, forged
control-plane tokens, secrets in every output, and faults (SIGSTOP, a lost
socket directory, a deleted script, large trees, a lost watchdog, then
SIGKILL). Each case records its figures against the targets of
docs/security.md; the table is printed at the end."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import e2e_helpers as h
from e2e_helpers import REPO_ROOT
from e2e_helpers import http_request, run_pb

ECHO = (REPO_ROOT / "testdata" / "echo-sidecar.mjs").read_text()

# What PocketBase itself keeps in pb_data; anything else there, outside
# processman's folder, was written by someone else.
POCKETBASE_OWN = re.compile(r"^((data|auxiliary)\.db(-wal|-shm|-journal)?|types\.d\.ts|\.gitignore|\.notify|storage|backups|\.pb_temp_to_delete|\.autocert_cache)(/|$)")


def foreign_files(pb) -> list[str]:
    found = []
    for path in pb.data_dir.rglob("*"):
        rel = path.relative_to(pb.data_dir).as_posix()
        if rel == "processman" or rel.startswith("processman/") or POCKETBASE_OWN.match(rel):
            continue
        found.append(rel)
    return found


def finish(record, case: str, pb, probe) -> None:
    """The figures every case has: health latency, panics, foreign writes."""
    record(case, "/api/health p99", round(probe.p99(), 1), "<= 50", "ms")
    if foreign_files(pb):
        print(case, "foreign files in pb_data:", foreign_files(pb))
    record(case, "panics", pb.stderr().count("panic:") + pb.stdout().count("panic:"), "== 0")
    record(case, "files written in pb_data outside processman/", len(foreign_files(pb)), "== 0")
    data = (pb.data_dir / "data.db").read_bytes()[:16]
    record(case, "PocketBase's database intact", int(data.startswith(b"SQLite format 3")), "== 1")


def superuser_request(pb, method: str, path: str, timeout: float = 130) -> tuple[int, object]:
    return http_request(method, pb.url + path, headers={"Authorization": pb.token()}, timeout=timeout)


# ---------------------------------------------------------------------------


def test_control_storm(pocketbase, record, health):
    case = "control storm"
    pb = pocketbase([{"name": "target", "script": "sh", "args": ["-c", "sleep 300 & wait"], "kill_timeout": "1s"}])
    h.wait_until(lambda: pb.marker_counts().get("target") == 2, 20, pb.logs)  # sh and its sleep
    most, stop = [0], threading.Event()

    def copies() -> int:
        # PocketBase's children that run the target (cheap to read, so that
        # sampling does not starve PocketBase of CPU)
        children = set()
        for task in Path(f"/proc/{pb.pid}/task").iterdir():
            try:
                children.update(int(c) for c in (task / "children").read_text().split())
            except OSError:
                pass
        return sum(1 for pid in children if (st := h.stat(pid)) and st.alive and h.cmdline(pid)[:2] == ["sh", "-c"])

    def sample():
        while not stop.is_set():
            most[0] = max(most[0], copies())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    actions = ["start", "stop", "restart", "restart"] * 40
    pb.token()  # logged in once: 32 concurrent password logins would be a storm of bcrypt
    with health(pb) as probe:
        sampler.start()
        with ThreadPoolExecutor(max_workers=32) as pool:
            statuses = list(pool.map(lambda a: superuser_request(pb, "POST", f"/api/pm/target/{a}")[0], actions))
        stop.set()
        sampler.join()
        superuser_request(pb, "POST", "/api/pm/target/start")
        h.wait_until(lambda: pb.api("GET", "/api/pm/target")["state"] == "online", 20, pb.logs)
    record(case, "concurrent actions answered", sum(s in (200, 400, 503) for s in statuses), f"== {len(actions)}")
    record(case, "most copies running at once", most[0], "<= 1")
    record(case, "copies after the storm", copies(), "== 1")
    finish(record, case, pb, probe)


FLOOD = r"""
import os, sys, time
line = (b"\xff\xfe<" * 21000)[:64 * 1024 - 1] + b"\n"   # 64 KiB: invalid UTF-8, and '<' that JSON escapes to 6 bytes
out = sys.stdout.buffer
total = int(os.environ["FLOOD_BYTES"])
while total > 0:
    out.write(line)
    total -= len(line)
out.flush()
print("flood done", flush=True)
time.sleep(600)
"""


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def log_db_bytes(pb) -> int:
    return sum(p.stat().st_size for p in pb.data_dir.glob("auxiliary.db*"))


def test_log_flood(pocketbase, record, health):
    case = "log flood, 200 MB"
    pb = pocketbase(
        [{"name": "flood", "script": "flood.py", "disabled": True, "env": {"FLOOD_BYTES": str(200 << 20)}}],
        files={"flood.py": FLOOD},
    )
    time.sleep(2)  # idle
    idle = rss_kb(pb.pid)
    db_before, started = log_db_bytes(pb), time.monotonic()
    peak = [idle]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kb(pb.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    with health(pb) as probe:
        sampler.start()
        pb.api("POST", "/api/pm/flood/start")
        h.wait_until(lambda: "flood done" in pb.process_log("flood")[-200:] or pb.api("GET", "/api/pm/flood")["logs"]["lines"] >= 3200, 120, pb.logs)
        time.sleep(3.5)  # PocketBase writes its log batch every few seconds
        elapsed = time.monotonic() - started
        # one request for many long lines: capped
        status, answer = superuser_request(pb, "GET", "/api/pm/flood/logs?lines=1000")
        answer_bytes = len(json.dumps(answer))
        stop.set()
        sampler.join()
    growth = (log_db_bytes(pb) - db_before) / elapsed / (1 << 20)
    record(case, "PocketBase RSS above idle", round((peak[0] - idle) / 1024, 1), "<= 64", "MB")
    record(case, "log database growth", round(growth, 2), "<= 2", "MB/s")
    record(case, "logs API answer for lines=1000", round(answer_bytes / (1 << 20), 1), "<= 4.1", "MB")
    record(case, "logs API status", status, "== 200")
    finish(record, case, pb, probe)


# ---------------------------------------------------------------------------


def raw(pb, request: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", pb.port), timeout=timeout) as s:
        try:
            s.sendall(request)
        except (ConnectionResetError, BrokenPipeError):
            pass  # answered (and closed) before the whole request was sent
        chunks = []
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
        except (socket.timeout, ConnectionResetError):
            pass
    return b"".join(chunks)


def echoed(answer: bytes) -> dict | None:
    head, _, body = answer.partition(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        return None
    if b"chunked" in head.lower():
        out, rest = b"", body
        while rest:
            size, _, rest = rest.partition(b"\r\n")
            n = int(size or b"0", 16)
            if n == 0:
                break
            out, rest = out + rest[:n], rest[n + 2:]
        body = out
    return json.loads(body)


def test_gateway_abuse(pocketbase, record, health):
    case = "gateway abuse"
    pb = pocketbase(
        [{"name": "side", "script": "side.mjs", "route": "/api/side", "auth": "public", "body_limit_mb": 1}],
        files={"side.mjs": ECHO},
    )
    h.wait_until(lambda: pb.api("GET", "/api/pm/side")["ready"], 30, pb.logs)
    host = f"127.0.0.1:{pb.port}".encode()
    admin = pb.token().encode()

    def req(lines: list[bytes], body: bytes = b"") -> bytes:
        return b"\r\n".join([*lines, b"", b""]) + body

    forged_headers = [b"X-PB-Auth-Superuser: true", b"X-Pb-Auth-Id: forged", b"x-pb-auth-collection: _superusers",
                      b"X_PB_AUTH_ID: forged", b"X-Pb-Gateway-Proof: 00", b"X-PB-Gateway-Time: 1"]
    shapes = {
        "forged identity headers": req([b"GET /api/side/x HTTP/1.1", b"Host: " + host, b"Connection: close", *forged_headers]),
        "identity headers named in Connection": req([b"GET /api/side/x HTTP/1.1", b"Host: " + host, b"Connection: close, X-PB-Auth-Id", b"X-PB-Auth-Id: forged"]),
        "declared identity trailer": req([b"POST /api/side/x HTTP/1.1", b"Host: " + host, b"Connection: close", b"Transfer-Encoding: chunked", b"Trailer: X-Pb-Auth-Superuser"],
                                         b"2\r\nhi\r\n0\r\nX-Pb-Auth-Superuser: true\r\n\r\n"),
        "undeclared identity trailers": req([b"POST /api/side/x HTTP/1.1", b"Host: " + host, b"Connection: close", b"Transfer-Encoding: chunked"],
                                            b"2\r\nhi\r\n0\r\nX-Pb-Auth-Superuser: true\r\nX_pb_auth_id: forged\r\nAuthorization: " + admin + b"\r\n\r\n"),
        "two Authorization headers": req([b"GET /api/side/x HTTP/1.1", b"Host: " + host, b"Connection: close", b"Authorization: nobody", b"Authorization: " + admin]),
        "Content-Length and chunked": req([b"POST /api/side/x HTTP/1.1", b"Host: " + host, b"Connection: close", b"Content-Length: 4", b"Transfer-Encoding: chunked"],
                                          b"0\r\n\r\nGET /api/pm/list HTTP/1.1\r\nHost: x\r\n\r\n"),
        "two Content-Lengths": req([b"POST /api/side/x HTTP/1.1", b"Host: " + host, b"Connection: close", b"Content-Length: 2", b"Content-Length: 40"], b"hi"),
        "chunked with a bad size": req([b"POST /api/side/x HTTP/1.1", b"Host: " + host, b"Connection: close", b"Transfer-Encoding: chunked"], b"zz\r\nhi\r\n0\r\n\r\n"),
        "path traversal to the control API": req([b"GET /api/side/../pm/list HTTP/1.1", b"Host: " + host, b"Connection: close"]),
        "escaped traversal": req([b"GET /api/side/%2e%2e/pm/list HTTP/1.1", b"Host: " + host, b"Connection: close"]),
        "oversized head": req([b"GET /api/side/x HTTP/1.1", b"Host: " + host, b"Connection: close", b"X-Big: " + b"a" * (2 << 20)]),
        "body over the route's limit": req([b"POST /api/side/x HTTP/1.1", b"Host: " + host, b"Connection: close", b"Content-Length: 2097152"], b"a" * (2 << 20)),
    }
    forged = reached_beyond = 0
    outcomes = {}
    with health(pb) as probe:
        for name, request in shapes.items():
            answer = raw(pb, request)
            outcomes[name] = answer.split(b"\r\n", 1)[0].decode(errors="replace")
            # one answer per request, and never the control API's
            if answer.count(b"HTTP/1.1 ") > 1 or b'"items"' in answer:
                reached_beyond += 1
            seen = echoed(answer)
            if seen is None:
                continue
            headers, trailers = seen.get("headers", {}), seen.get("trailers", {})
            if headers.get("x-pb-auth-superuser") != "false" or headers.get("x-pb-auth-id") or any(
                k.lower().replace("_", "-").startswith("x-pb-") or k.lower() == "authorization" for k in trailers
            ) or len([v for k, v in headers.items() if k == "authorization"]) > 1:
                forged += 1
        # slowloris: 100 connections that never finish their head
        slow = []
        for _ in range(100):
            s = socket.create_connection(("127.0.0.1", pb.port))
            s.sendall(b"GET /api/side/x HTTP/1.1\r\nHost: " + host + b"\r\nX-Slow: ")
            slow.append(s)
        time.sleep(3)
        status, _ = http_request("GET", pb.url + "/api/side/ok")
        for s in slow:
            s.close()
    record(case, "forged identities delivered", forged, "== 0")
    record(case, "request shapes tried", len(shapes), f">= {len(shapes)}")
    record(case, "answers from beyond the route (control API, a smuggled request)", reached_beyond, "== 0")
    record(case, "route answers during 100 slow connections", status, "== 200")
    finish(record, case, pb, probe)
    print(json.dumps(outcomes, indent=1))


def test_control_plane_auth(pocketbase, record, health):
    case = "control-plane auth"
    pb = pocketbase([{"name": "app", "script": "sleep", "args": ["300"]}])
    superusers = pb.api("GET", "/api/pm/list")  # the superuser works
    assert superusers["items"]
    status, body = http_request("POST", pb.url + "/api/collections/users/records",
                                body={"email": "u@example.com", "password": "1234567890", "passwordConfirm": "1234567890"})
    status, body = http_request("POST", pb.url + "/api/collections/users/auth-with-password", body={"identity": "u@example.com", "password": "1234567890"})
    user = body["token"]
    me = http_request("GET", pb.url + "/api/collections/_superusers/records?perPage=1", headers={"Authorization": pb.token()})[1]["items"][0]["id"]
    status, short = http_request("POST", pb.url + f"/api/collections/_superusers/impersonate/{me}", body={"duration": 1},
                                 headers={"Authorization": pb.token()})
    expired = short["token"]
    time.sleep(2.5)
    header, payload, signature = pb.token().split(".")
    tokens = {
        "none": None,
        "garbage": "not-a-token",
        "an ordinary user's": user,
        "an expired superuser's": expired,
        "a superuser's, re-signed": f"{header}.{payload}.{signature[::-1]}",
        "a forged payload": f"{header}.eyJpZCI6ImFkbWluIiwidHlwZSI6ImF1dGgiLCJjb2xsZWN0aW9uSWQiOiJwYmNfMzE0MjYzNTgyMyIsImV4cCI6OTk5OTk5OTk5OX0.{signature}",
    }
    # Every endpoint of the control API, as its OpenAPI document lists them.
    spec = json.loads((REPO_ROOT / "control" / "openapi.json").read_text())
    endpoints = [(method.upper(), path.replace("{name}", "app")) for path, ops in spec["paths"].items() for method in ops]
    assert ("POST", "/api/pm/apply") in endpoints and len(endpoints) >= 10, endpoints
    refused = calls = 0
    with health(pb) as probe:
        for token in tokens.values():
            for method, path in endpoints:
                headers = {"Authorization": token} if token else {}
                status, _ = http_request(method, pb.url + path, headers=headers, timeout=10)
                calls += 1
                refused += status in (401, 403)
    record(case, "non-superuser calls refused", refused, f"== {calls}")
    record(case, "the process untouched", int(pb.api("GET", "/api/pm/app")["restarts"] == 0 and pb.api("GET", "/api/pm/app")["state"] == "online"), "== 1")
    finish(record, case, pb, probe)


# ---------------------------------------------------------------------------

SECRETS = {
    "OPENAI_API_KEY": "sk-proj-fake-0001",
    "DATABASE_URL": "postgres://app:pg-pass-0002@db/app",
    "UPSTREAM": "https://api.example.com/v1?api_key=q-key-0003&model=x",
    "MSSQL": "Server=db;User Id=sa;Password=conn-pass-0004;",
}
FILE_SECRET = "file-value-0005"
ARG_SECRET = "arg-token-0006"


def test_secret_redaction(pocketbase, pb_binary, record, health):
    case = "secret redaction"
    files = {"app/.env": f"FROM_FILE={FILE_SECRET}\n", "app/app.sh": "#!/bin/sh\necho started; exec sleep 300\n"}
    entry = {"name": "app", "script": "app.sh", "cwd": "app", "env_file": ".env", "env": dict(SECRETS),
             "args": ["--api-token", ARG_SECRET]}
    pb = pocketbase([entry], files=files)
    os.chmod(pb.base_dir / "app" / "app.sh", 0o755)
    h.wait_until(lambda: pb.api("GET", "/api/pm/app")["state"] == "online", 20, pb.logs)
    pb.api("POST", "/api/pm/app/restart")
    dir_args = ("--dir", str(pb.data_dir), "--url", pb.url, "--token", pb.token(), "--dev=false")
    outputs = {
        "API list": json.dumps(pb.api("GET", "/api/pm/list")),
        "API describe": json.dumps(pb.api("GET", "/api/pm/app")),
        "API logs": json.dumps(pb.api("GET", "/api/pm/app/logs")),
        "CLI describe": run_pb(pb_binary, "pm", "describe", "app", *dir_args).stdout,
        "CLI describe --json": run_pb(pb_binary, "pm", "describe", "app", "--json", *dir_args).stdout,
        "CLI list --json": run_pb(pb_binary, "pm", "list", "--json", *dir_args).stdout,
        "pm check": (lambda r: r.stdout + r.stderr)(run_pb(pb_binary, "pm", "check", "--dir", str(pb.data_dir), cwd=pb.base_dir)),
        "PocketBase stdout": pb.stdout(),
        "PocketBase stderr": pb.stderr(),
        "PocketBase's Logs page": json.dumps(pb.api_logs()),
    }
    secrets = [*SECRETS.values(), "pg-pass-0002", "q-key-0003", "conn-pass-0004", FILE_SECRET, ARG_SECRET]
    secrets = [s for s in secrets if "://" not in s and "=" not in s]
    with health(pb) as probe:
        leaks = [(where, s) for where, text in outputs.items() for s in secrets if s in text]
    record(case, "outputs checked", len(outputs), f">= {len(outputs)}")
    record(case, "secrets leaked", len(leaks), "== 0")
    finish(record, case, pb, probe)
    assert not leaks, leaks


# ---------------------------------------------------------------------------

TREE = r"""
import os, subprocess, sys, time
n = int(os.environ.get("TREE", "200"))
for _ in range(n // 2):
    subprocess.Popen(["sh", "-c", "sleep 600 & exec sleep 600"])
print("tree up", flush=True)
time.sleep(600)
"""


def test_faults(pocketbase, record, health):
    case = "faults"
    pb = pocketbase(
        [
            {"name": "stopped", "script": "side.mjs", "route": "/api/stopped", "auth": "public",
             "health": {"http": "/health", "interval": "200ms", "timeout": "300ms", "failures": 3}},
            {"name": "routed", "script": "side.mjs", "route": "/api/routed", "auth": "public", "restart_delay": "50ms"},
            {"name": "doomed", "script": "doomed.py", "max_restarts": 2, "restart_delay": "50ms", "min_uptime": "1s"},
            {"name": "tree", "script": "tree.py", "kill_timeout": "2s"},
        ],
        files={"side.mjs": ECHO, "doomed.py": "import time\ntime.sleep(600)\n", "tree.py": TREE},
    )
    for name in ("stopped", "routed"):
        h.wait_until(lambda: pb.api("GET", f"/api/pm/{name}")["ready"], 30, pb.logs)
    h.wait_until(lambda: "tree up" in pb.process_log("tree"), 30, pb.logs)
    with health(pb) as probe:
        # SIGSTOP: the liveness check restarts a process that stopped answering
        frozen = pb.api("GET", "/api/pm/stopped")["pid"]
        os.kill(frozen, signal.SIGSTOP)
        h.wait_until(lambda: pb.api("GET", "/api/pm/stopped")["pid"] not in (0, frozen), 30, pb.logs)
        record(case, "SIGSTOPped process restarted", 1, "== 1")

        # the socket directory removed: made again at the next start
        detail = pb.api("GET", "/api/pm/routed")
        sock = next(v["value"] for v in detail["env"] if v["name"] == "PB_SOCKET")
        shutil.rmtree(Path(sock).parent)
        os.kill(detail["pid"], signal.SIGKILL)
        h.wait_until(lambda: pb.api("GET", "/api/pm/routed")["ready"] and pb.api("GET", "/api/pm/routed")["pid"] != detail["pid"], 30, pb.logs)
        status, _ = http_request("GET", pb.url + "/api/routed/x")
        record(case, "route answers after its socket directory was removed", status, "== 200")

        # a deleted script: errored with the reason, not a restart loop
        (pb.base_dir / "doomed.py").unlink()
        os.kill(pb.api("GET", "/api/pm/doomed")["pid"], signal.SIGKILL)
        doomed = h.wait_until(lambda: (d := pb.api("GET", "/api/pm/doomed"))["state"] == "errored" and d, 30, pb.logs)
        record(case, "deleted script: errored naming the script", int("doomed.py" in doomed["error"]), "== 1")

        # large trees, then the watchdog lost, then PocketBase SIGKILLed
        tree = pb.marker_counts().get("tree", 0)
        record(case, "processes in the tree", tree, ">= 200")
        for pid in pb.watchdog_pids():
            os.kill(pid, signal.SIGKILL)
        h.wait_until(lambda: pb.watchdog_pids(), 10, "no new watchdog after the first was killed")
        time.sleep(0.5)
    pb.record_pgids()
    os.kill(pb.pid, signal.SIGKILL)
    pb.proc.wait(timeout=10)
    h.wait_until(lambda: not pb.marker_pids(), 15, lambda: h.describe(pb.marker_pids()))
    record(case, "survivors of SIGKILL after a watchdog loss", len(pb.marker_pids()), "== 0")
    record(case, "/api/health p99", round(probe.p99(), 1), "<= 50", "ms")
    record(case, "panics", pb.stderr().count("panic:"), "== 0")
