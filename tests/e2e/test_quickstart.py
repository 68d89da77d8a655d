"""The repository's quick start: examples/pb_processes.json runs a Python
and a Node sidecar that answer with what PocketBase told them."""

from __future__ import annotations

import pytest

import e2e_helpers as h
from e2e_helpers import REPO_ROOT, http_request, port_in_use

EXAMPLES = REPO_ROOT / "examples"
SIDECARS = {"hello-python": 8091, "hello-node": 8092}


def test_examples_quickstart(pocketbase):
    taken = [f"{name} needs 127.0.0.1:{port}" for name, port in SIDECARS.items() if port_in_use(port)]
    if taken:
        pytest.skip("ports used by examples/pb_processes.json are taken: " + ", ".join(taken))

    pb = pocketbase(processes_file=EXAMPLES / "pb_processes.json", superuser=False)

    for name, port in SIDECARS.items():
        url = f"http://127.0.0.1:{port}/"

        def answer():
            try:
                status, body = http_request("GET", url, timeout=5)
            except OSError:
                return None
            return (status, body)

        status, body = h.wait_until(
            answer, 30, lambda: f"{name} never answered on {url}\n{pb.process_log(name)}\n{pb.logs()}", interval=0.2
        )
        assert status == 200, body
        assert isinstance(body, dict), f"{name} did not answer JSON: {body!r}"
        assert body.get("process") == name, body
        assert body.get("pocketbase") == pb.url, body
        # The sidecar is a child of this PocketBase.
        assert body.get("pid") in pb.descendants(), (body, h.describe(pb.descendants()))
        assert f"listening on http://127.0.0.1:{port}, PocketBase at {pb.url}" in pb.process_log(name), pb.process_log(name)

    # Both stop with PocketBase (their SIGTERM handlers print "stopping").
    sidecars = [h.stat(pid) for pid in pb.descendants()]
    assert pb.stop() == 0, pb.logs()
    for name, port in SIDECARS.items():
        assert "stopping" in pb.process_log(name), f"{name} was not stopped gracefully:\n{pb.process_log(name)}"
        assert not port_in_use(port), f"{name} still listens on {port} after PocketBase exited"
    assert not h.alive(st.pid for st in sidecars if st), h.describe(st.pid for st in sidecars if st)
