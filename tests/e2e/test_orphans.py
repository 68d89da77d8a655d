"""No managed process, child or grandchild, outlives PocketBase.

Process trees of every common shape run under PocketBase; then PocketBase
is killed (SIGKILL: parent-death signal plus the watchdog must clean up) or
stopped (SIGTERM/SIGINT: graceful stop of every group, with SIGKILL after
kill_timeout for processes that ignore the signal).
"""

from __future__ import annotations

import signal
import time

import pytest

import e2e_helpers as h
from e2e_helpers import FIXTURES

# Live processes expected per process name (PB_PROCESS_NAME is inherited by
# descendants, so it tells which tree a process belongs to).
TREES = {
    "py-tree": 2,  # python -> sleep
    "node-tree": 2,  # node -> sleep
    "sh-chain": 3,  # sh -> sh -> sleep
    "term-ignorer": 2,  # sh (trap '' TERM) -> sleep (inherits the ignored TERM)
}


def tree_processes() -> list[dict]:
    return [
        {"name": "py-tree", "script": str(FIXTURES / "spawn_grandchild.py"), "kill_timeout": "1s"},
        {"name": "node-tree", "script": str(FIXTURES / "spawn_child.mjs"), "kill_timeout": "1s"},
        # "; true" keeps each sh from exec'ing its last command, so the
        # chain really is three processes deep.
        {"name": "sh-chain", "script": "sh", "args": ["-c", "sh -c 'sleep 300; true'; true"], "kill_timeout": "1s"},
        {"name": "term-ignorer", "script": "sh", "args": ["-c", "trap '' TERM; sleep 300; true"], "kill_timeout": "1s"},
    ]


def wait_for_trees(pb, expected: dict[str, int], timeout: float = 30) -> dict[int, dict[str, str]]:
    """Waits until the live marker processes match expected exactly and
    returns them."""
    h.wait_until(
        lambda: pb.marker_counts() == expected,
        timeout,
        lambda: f"marker processes per name {pb.marker_counts()}, want {expected}\n"
        f"{h.describe(pb.marker_pids())}\n{pb.logs()}",
    )
    return pb.marker_pids()


def pid_of(procs: dict[int, dict[str, str]], name: str, ppid: int) -> int:
    """The process of tree name whose parent is ppid."""
    found = [pid for pid, env in procs.items() if env.get("PB_PROCESS_NAME") == name and h.stat(pid) and h.stat(pid).ppid == ppid]
    assert len(found) == 1, f"want one {name} process with parent {ppid}, got {found}\n{h.describe(procs)}"
    return found[0]


def test_sigkill_of_pocketbase_kills_every_descendant(pocketbase):
    pb = pocketbase(tree_processes())
    procs = wait_for_trees(pb, TREES)

    # Each managed process leads its own process group, and its descendants
    # are in that group.
    leaders = {name: pid_of(procs, name, pb.pid) for name in TREES}
    for name, leader in leaders.items():
        assert h.stat(leader).pgid == leader, f"{name} (pid {leader}) does not lead its own process group"
    for pid, env in procs.items():
        leader = leaders[env["PB_PROCESS_NAME"]]
        assert h.stat(pid).pgid == leader, (
            f"pid {pid} of {env['PB_PROCESS_NAME']} is in group {h.stat(pid).pgid}, want {leader}"
        )

    watchdogs = pb.watchdog_pids()
    assert len(watchdogs) == 1, f"want one processman-watchdog child of PocketBase, got {watchdogs}\n{h.describe(pb.descendants())}"

    t0 = time.monotonic()
    pb.proc.send_signal(signal.SIGKILL)
    pb.proc.wait(timeout=10)

    every = list(procs) + watchdogs
    left = h.wait_until(
        lambda: not h.alive(every) and not pb.marker_pids(),
        max(0.1, t0 + 5 - time.monotonic()),
        lambda: "still alive 5 s after SIGKILL of PocketBase:\n"
        + h.describe(h.alive(every) + [p for p in pb.marker_pids() if p not in every]),
    )
    assert left
    assert not h.is_alive(watchdogs[0]), "the watchdog did not exit"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_stop_of_pocketbase_stops_every_descendant(pocketbase, tmp_path, sig):
    stop_file = tmp_path / "graceful-stopped"
    processes = tree_processes()
    processes.append(
        {
            "name": "graceful",
            "script": str(FIXTURES / "graceful.py"),
            "env": {"STOP_FILE": str(stop_file)},
            "kill_timeout": "10s",
        }
    )
    expected = dict(TREES, graceful=2)
    pb = pocketbase(processes)
    procs = wait_for_trees(pb, expected)
    h.wait_until(lambda: "ready" in pb.process_log("graceful"), 30, lambda: f"graceful never got ready\n{pb.process_log('graceful')}")
    ignorer = pid_of(procs, "term-ignorer", pb.pid)
    watchdogs = pb.watchdog_pids()
    assert len(watchdogs) == 1, f"want one processman-watchdog child of PocketBase, got {watchdogs}"
    assert not stop_file.exists()

    t0 = time.monotonic()
    pb.proc.send_signal(sig)
    # Watch the TERM-ignoring process die while PocketBase shuts down.
    ignorer_died = None
    deadline = t0 + 30
    while True:
        running = pb.proc.poll() is None
        now = time.monotonic()
        if ignorer_died is None and not h.is_alive(ignorer):
            ignorer_died = now - t0
        if not running or now > deadline:
            break
        time.sleep(0.02)
    exited_after = time.monotonic() - t0
    print(f"{sig.name}: TERM-ignoring process died after {ignorer_died}s, PocketBase exited after {exited_after:.2f}s")
    code = pb.proc.poll()
    assert code is not None, f"PocketBase did not exit within 30 s of {sig.name}\n{pb.logs()}"
    assert code == 0, f"PocketBase exited with {code} after {sig.name}\n{pb.logs()}"

    # Stopped first: nothing of the trees survives PocketBase, and the
    # watchdog, told that PocketBase is done, exits too.
    h.wait_until(
        lambda: not h.alive(list(procs) + watchdogs) and not pb.marker_pids(),
        2,
        lambda: f"still alive after PocketBase exited on {sig.name}:\n"
        f"{h.describe(h.alive(list(procs) + watchdogs) + list(pb.marker_pids()))}",
    )

    # The SIGTERM handler ran: a graceful stop, not a kill.
    assert stop_file.exists(), "graceful.py's SIGTERM handler did not run (no stop file)"
    assert stop_file.read_text().startswith("SIGTERM "), stop_file.read_text()
    assert "graceful: got SIGTERM, exiting" in pb.process_log("graceful"), (
        "the handler's last line is missing from the log file:\n" + pb.process_log("graceful")
    )

    # The process ignoring SIGTERM was SIGKILLed after its kill_timeout (1 s),
    # not at once and not after the default 5 s.
    assert ignorer_died is not None, f"the TERM-ignoring process (pid {ignorer}) was never seen dying"
    assert ignorer_died >= 0.9, f"TERM-ignoring process died {ignorer_died:.2f}s after {sig.name}: before its kill_timeout"
    assert ignorer_died < 4.5, (
        f"TERM-ignoring process died {ignorer_died:.2f}s after {sig.name}: kill_timeout 1s not honoured"
    )
    assert exited_after >= ignorer_died - 0.1
