"""PocketBase restarts itself in place (execve) when a pb_hooks file
changes. processman must stop its children before the new image starts
them again: afterwards exactly one copy of each process runs."""

from __future__ import annotations

import sys

import e2e_helpers as h


def test_hooks_change_restarts_children_once(pocketbase, tmp_path):
    base = tmp_path / "pb"
    hooks = base / "pb_hooks"
    hooks.mkdir(parents=True)
    hook = hooks / "main.pb.js"
    hook.write_text("// version 1\n")

    pb = pocketbase(
        [
            {"name": "worker", "script": "sh", "args": ["-c", "sleep 300 & wait"], "kill_timeout": "2s"},
            {"name": "py", "script": sys.executable, "args": ["-c", "import time; time.sleep(300)"]},
        ],
        base_dir=base,
    )
    h.wait_until(lambda: sum(pb.marker_counts().values()) == 3, 30, lambda: f"marker processes: {pb.marker_counts()}\n{pb.logs()}")
    before = set(pb.marker_pids())
    pocketbase_pid = pb.pid

    hook.write_text("// version 2\n")

    # The same PocketBase process (execve keeps the pid) runs a new set of
    # children, and none of the old ones survive.
    def replaced() -> bool:
        now = set(pb.marker_pids())
        return len(now) == 3 and not (now & before)

    h.wait_until(replaced, 60, lambda: f"before {sorted(before)}, now {h.describe(pb.marker_pids())}\n{pb.logs()}")
    assert pb.proc.poll() is None and pb.pid == pocketbase_pid, "PocketBase did not restart in place"
    assert not h.alive(before), f"old children survived the restart: {h.describe(before)}"
    # and it stays at one copy each
    assert h.stays_true(lambda: len(pb.marker_pids()) == 3, 2.0), h.describe(pb.marker_pids())
    pb.wait_healthy()
    assert len(pb.watchdog_pids()) == 1, f"watchdogs: {pb.watchdog_pids()}"
