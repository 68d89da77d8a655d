"""Two PocketBase replicas of the fork on one PostgreSQL, each with its own
sidecars, behind a client that alternates between them: a user who signed in
on one is served through the other, and kill -9 of one replica leaves the
other serving and leaves no orphans."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import secrets
import signal
import subprocess
import uuid
from pathlib import Path

from conftest import create_note, create_notes, sign_up
from test_fork import sidecars, wait_ready

import e2e_helpers as h


ECHO = Path(__file__).resolve().parents[2] / "testdata" / "echo-sidecar.mjs"


def test_two_replicas_share_users_and_records(fork, tmp_path) -> None:
    db = f"rep_{uuid.uuid4().hex[:8]}"
    tag = uuid.uuid4().hex[:8]
    # one agent outside both replicas, reached by each through an upstream route
    shared = secrets.token_hex(32)
    port = h.free_port()
    agent = subprocess.Popen(
        ["node", str(ECHO)],
        env={**os.environ, "PORT": str(port), "PB_GATEWAY_SECRET": shared},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert agent.stdout and agent.stdout.readline().strip() == "ready"
        elsewhere = {
            "name": "elsewhere",
            "upstream": f"http://127.0.0.1:{port}",
            "route": "/api/elsewhere",
            "gateway_secret_env": "SHARED_SECRET",
        }
        one = fork(
            [*sidecars(tag, replica="1"), elsewhere],
            db=db,
            settings="flags",
            files={"app/.keep": ""},
            env={"SHARED_SECRET": shared},
        )
        two = fork(
            [*sidecars(tag, replica="2"), elsewhere],
            db=db,
            settings="env",
            files={"app/.keep": ""},
            env={"SHARED_SECRET": shared},
        )
        replicas_serve(one, two, tag, shared)
    finally:
        agent.kill()
        agent.wait()


def proof_ok(echo: dict, secret: str) -> bool:
    """The gateway's identity proof of an echoed request (docs/gateway.md)."""
    hd = echo["headers"]
    canonical = "\n".join(
        [
            "v1",
            hd["x-pb-gateway-time"],
            echo["method"],
            echo["url"],
            hd.get("x-pb-auth-id", ""),
            hd.get("x-pb-auth-collection", ""),
            hd["x-pb-auth-superuser"],
        ]
    )
    return hmac.compare_digest(
        hd["x-pb-gateway-proof"], hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()
    )


def replicas_serve(one, two, tag: str, shared: str) -> None:
    for pb in (one, two):
        wait_ready(pb, "py", "node")
    create_notes(one)
    token, uid = sign_up(one)  # signed in on replica 1 only
    note = create_note(two, token, uid, f"via two {tag}")

    # each replica has its own sidecars and its own gateway secret
    replica_secrets = {
        pb.url: {e["PB_GATEWAY_SECRET"] for e in pb.marker_pids().values() if e.get("PB_PROCESS_NAME") == "py"}
        for pb in (one, two)
    }
    assert (
        all(len(s) == 1 for s in replica_secrets.values()) and replica_secrets[one.url] != replica_secrets[two.url]
    ), "each replica signs with its own secret"

    # the client alternates; every answer is the same user, from the replica asked
    seen: dict[str, set[str]] = {"1": set(), "2": set()}
    for pb, name in itertools.islice(itertools.cycle([(one, "py"), (two, "py"), (one, "node"), (two, "node")]), 24):
        status, who = h.http_request("GET", f"{pb.url}/api/{name}/whoami", headers={"Authorization": token})
        assert status == 200 and who["id"] == uid, (pb.url, name, status, who)
        seen[who["replica"]].add(name)
        status, got = h.http_request("GET", f"{pb.url}/api/{name}/note/{note['id']}", headers={"Authorization": token})
        assert status == 200 and got["text"] == f"via two {tag}", (pb.url, name, got)
    assert seen == {"1": {"py", "node"}, "2": {"py", "node"}}, seen

    # the agent elsewhere: the same user through either replica, verified with the shared secret
    for pb in (one, two, one, two):
        status, echo = h.http_request("GET", f"{pb.url}/api/elsewhere/who", headers={"Authorization": token})
        assert status == 200 and echo["headers"]["x-pb-auth-id"] == uid and echo["url"] == "/who", (
            pb.url,
            status,
            echo,
        )
        assert proof_ok(echo, shared), ("the proof does not verify with the shared secret", echo["headers"])

    # the replicas' control APIs each see their own processes only
    for pb, replica in ((one, "1"), (two, "2")):
        pids = {p["name"]: p["pid"] for p in pb.api("GET", "/api/pm/list")["items"]}
        own = pb.marker_pids()
        assert set(pids) == {"py", "node"}, pids
        assert all(own.get(pid, {}).get("REPLICA") == replica for pid in pids.values()), (replica, pids)

    # kill -9 replica 1: replica 2 goes on serving, replica 1 leaves nothing behind
    orphans_before = set(one.marker_pids())
    assert orphans_before, "replica 1 has sidecars"
    os.kill(one.pid, signal.SIGKILL)
    one.proc.wait(timeout=10)
    h.wait_until(
        lambda: not h.alive(orphans_before), 20, lambda: f"orphans of replica 1: {h.describe(h.alive(orphans_before))}"
    )
    for name in ("py", "node") * 5:
        status, who = h.http_request("GET", f"{two.url}/api/{name}/whoami", headers={"Authorization": token})
        assert status == 200 and who["id"] == uid and who["replica"] == "2", (name, status, who)
    status, again = h.http_request(
        "GET", f"{two.url}/api/collections/notes/records/{note['id']}", headers={"Authorization": token}
    )
    assert status == 200 and again["text"] == f"via two {tag}", again
