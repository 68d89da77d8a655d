"""Instances behind the gateway, zero-downtime reload and memory limits,
end to end (docs/supervision.md#instances): a real `pocketbase serve`
with real uvicorn sidecars (fixtures/serve_asgi.py), a Node sidecar on the
Node SDK (fixtures/leak_sidecar.mjs) and a leaking Python worker
(fixtures/leak.py).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

import e2e_helpers as h
from e2e_helpers import FIXTURES, REPO_ROOT, http_request
from test_gateway import call, sidecar, wait_ready

pytest.importorskip("uvicorn", reason="needs `uvicorn` (requirements-dev.txt)")


def instances(pb, name: str) -> list[dict]:
    return pb.api("GET", f"/api/pm/{name}")["instances"]


def wait_all_ready(pb, name: str, n: int, timeout: float = 60) -> list[dict]:
    def ready():
        items = instances(pb, name)
        return items if len(items) == n and all(i["ready"] and i["pid"] for i in items) else None

    return h.wait_until(ready, timeout, lambda: f"{name}: not all {n} instances ready: {instances(pb, name)}\n{pb.logs()}")


class SteadyClient:
    """Clients sending GET path through the gateway in a loop until
    stopped, counting failures and the slowest answer."""

    def __init__(self, pb, path: str, workers: int = 4, pause: float = 0.005):
        self.pb, self.path, self.pause = pb, path, pause
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.total = 0
        self.failures: list[str] = []
        self.slowest = 0.0
        self.pids: Counter[int] = Counter()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(workers)]

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                r = call(self.pb, "GET", self.path, timeout=30)
                ok, note = r.status == 200, f"{r.status} {r.body[:200]!r}"
                pid = r.json().get("pid") if ok else None
            except OSError as e:
                ok, note, pid = False, repr(e), None
                r = None
            with self.lock:
                self.total += 1
                if not ok:
                    self.failures.append(note)
                if r is not None:
                    self.slowest = max(self.slowest, r.elapsed)
                if pid:
                    self.pids[pid] += 1
            time.sleep(self.pause)

    def __enter__(self) -> SteadyClient:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(30)


def test_three_uvicorn_instances_share_the_route(pocketbase):
    pb = pocketbase([sidecar("py", instances=3)])
    items = wait_all_ready(pb, "py", 3)
    pids = {i["pid"] for i in items}
    assert len(pids) == 3 and [i["instance"] for i in items] == [0, 1, 2]

    with concurrent.futures.ThreadPoolExecutor(60) as pool:
        answers = list(pool.map(lambda _: call(pb, "GET", "/api/py/echo", timeout=30), range(60)))
    assert [a.status for a in answers] == [200] * 60
    served = Counter(a.json()["pid"] for a in answers)
    assert set(served) == pids, f"answered by {served}, instances {pids}"
    assert min(served.values()) >= 5, f"60 concurrent requests were shared {dict(served)}"

    # each instance saw its own index and socket
    for i in items:
        env = h.environ(i["pid"])
        assert env["PB_INSTANCE"] == str(i["instance"]) == env["NODE_APP_INSTANCE"]
    assert len({h.environ(i["pid"])["PB_SOCKET"] for i in items}) == 3

    # pm list shows a row per instance
    res = h.run_pb(pb.binary, "pm", "list", "--dir", str(pb.data_dir))
    assert res.returncode == 0, res.stderr
    for i in range(3):
        assert f"py:{i}" in res.stdout, res.stdout


def test_killing_one_instance_loses_no_request_that_had_not_reached_it(pocketbase):
    pb = pocketbase([sidecar("py", instances=3, restart_delay="50ms")])
    items = wait_all_ready(pb, "py", 3)
    victim = items[1]["pid"]
    with SteadyClient(pb, "/api/py/echo") as client:
        time.sleep(0.5)
        os.kill(victim, signal.SIGKILL)
        h.wait_until(lambda: instances(pb, "py")[1]["ready"] and instances(pb, "py")[1]["pid"] != victim, 30, "instance 1 back")
        time.sleep(0.5)
    assert client.total > 50
    # a request in flight on the killed copy may fail; none other may
    assert len(client.failures) <= 4, f"{len(client.failures)} of {client.total} failed: {client.failures[:5]}"
    others = instances(pb, "py")
    assert others[0]["pid"] == items[0]["pid"] and others[2]["pid"] == items[2]["pid"]


def test_reload_under_a_steady_client(pocketbase):
    pb = pocketbase([sidecar("py", instances=2, env={"STARTUP_DELAY": "1"})])
    before = wait_all_ready(pb, "py", 2)
    stream_events: list[str] = []

    def stream():
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", pb.port, timeout=60)
        conn.request("GET", "/api/py/sse?n=15&gap=0.2")
        resp = conn.getresponse()
        for line in resp.read().decode().splitlines():
            if line.startswith("data:"):
                stream_events.append(line)
        conn.close()

    streamer = threading.Thread(target=stream)
    with SteadyClient(pb, "/api/py/echo") as client:
        streamer.start()
        time.sleep(0.5)
        res = h.run_pb(pb.binary, "pm", "reload", "py", "--dir", str(pb.data_dir), timeout=120)
        assert res.returncode == 0, res.stdout + res.stderr
        time.sleep(0.5)
    streamer.join(30)
    after = instances(pb, "py")
    assert all(a["pid"] != b["pid"] and a["reloads"] == 1 for a, b in zip(after, before)), after
    assert client.failures == [], f"{len(client.failures)} of {client.total} failed: {client.failures[:5]}"
    assert client.slowest <= 0.5, f"a request waited {client.slowest:.2f}s during the reload"
    assert len(stream_events) == 15, f"the stream got {len(stream_events)} of 15 events across the reload"
    for b in before:  # the old copies are gone
        assert not h.is_alive(b["pid"])
    lines = pb.stdout()
    assert "py:0 reloading: new copy started" in lines and "py:1 reloaded: pid" in lines, lines


def test_a_reload_whose_new_copy_never_becomes_ready_keeps_the_old_one(pocketbase):
    pb = pocketbase([sidecar("py", ready_timeout="2s", env={"HANG_IF": "hang"})])
    wait_ready(pb)
    old = instances(pb, "py")[0]["pid"]
    (pb.base_dir / "hang").write_text("")
    with SteadyClient(pb, "/api/py/echo") as client:
        res = h.run_pb(pb.binary, "pm", "reload", "py", "--dir", str(pb.data_dir), timeout=120)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "not ready within ready_timeout (2s)" in res.stderr and "keeps serving" in res.stderr, res.stderr
    assert "hangs before listening" in res.stderr, "the new copy's output is printed"
    assert client.failures == [] and set(client.pids) == {old}, (client.failures[:5], client.pids)
    detail = pb.api("GET", "/api/pm/py")
    assert detail["pid"] == old and detail["ready"]
    assert "ready_timeout" in detail["last_reload_failure"]["error"]
    # the given-up copy does not linger
    h.wait_until(lambda: len(h.pids_with_env("E2E_MARKER", pb.marker)) == 1, 10, "the new copy stopped")


def test_a_leaking_python_worker_is_restarted_at_its_limit(pocketbase):
    pb = pocketbase(
        [{"name": "leak", "script": str(FIXTURES / "leak.py"), "interpreter": sys.executable,
          "max_memory_restart": "80MB", "instances": 2, "env": {"GROW_IF": "grow"}}],
        files={"grow": ""},
    )
    first = h.wait_until(lambda: all(i["pid"] for i in instances(pb, "leak")) and instances(pb, "leak"), 30, "running")
    h.wait_until(lambda: all(i["restarts"] >= 1 for i in instances(pb, "leak")), 60,
                 lambda: f"no restart at the limit: {instances(pb, 'leak')}")
    (pb.base_dir / "grow").unlink()
    detail = pb.api("GET", "/api/pm/leak:1")
    exit = detail["instances"][1]["last_exit"]
    assert exit["requested"] and exit["reason"].startswith("memory ") and "over max_memory_restart 80MB" in exit["reason"], exit
    assert exit["pid"] in {i["pid"] for i in first} or exit["pid"] > 0
    assert "stopped pid" in pb.stdout() and "over max_memory_restart 80MB" in pb.stdout()
    records = pb.wait_for_logs(
        lambda: pb.api_logs("message ~ 'max_memory_restart' && data.process = 'leak'"),
        message="the reason in PocketBase's logs",
    )
    assert any(r["data"].get("instance") in (0, 1) for r in records), records


def test_a_leaking_node_sdk_sidecar_is_reloaded_at_its_limit(pocketbase):
    if not (REPO_ROOT / "sdk" / "node" / "node_modules").is_dir():
        pytest.skip("the Node SDK's packages are not installed (make test-e2e installs them)")
    pb = pocketbase(
        [{"name": "node", "script": str(FIXTURES / "leak_sidecar.mjs"), "route": "/api/node", "auth": "public",
          "max_memory_restart": "120MB", "env": {"GROW_IF": "grow"}}],
        files={"grow": ""},
    )
    first = wait_ready(pb, "/api/node/")["pid"]
    (pb.base_dir / "grow").unlink()  # the new copy stays small
    with SteadyClient(pb, "/api/node/") as client:
        h.wait_until(lambda: instances(pb, "node")[0]["reloads"] >= 1, 60,
                     lambda: f"no reload at the limit: {instances(pb, 'node')}\n{pb.logs()}")
        time.sleep(0.3)
    inst = instances(pb, "node")[0]
    assert inst["pid"] != first and inst["last_exit"]["pid"] == first
    assert "over max_memory_restart 120MB" in inst["last_exit"]["reason"], inst["last_exit"]
    assert client.failures == [], f"{len(client.failures)} of {client.total} failed during the reload"
    assert not h.is_alive(first)
