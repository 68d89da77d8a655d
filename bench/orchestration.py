#!/usr/bin/env python3
"""Orchestration: dependency-ordered start-up and shutdown, and `pm apply`.

Measures, on this machine and in one run:
  1. start-up of 20 processes in a 4-level dependency tree (5 per level,
     each depending on one of the level above), each ready 200 ms after it
     starts: from the first start to the last ready, against the
     critical-path floor of 4 x 200 ms, and from `pocketbase serve` to all
     ready as the control API reports it;
  2. shutdown of the same tree when every process ignores SIGTERM and
     kill_timeout is 1 s: from SIGTERM to PocketBase's exit, against the
     longest chain's kill time (4 x 1 s);
  3. `pm apply` of a one-process change while 50 processes run: how long
     the API call takes, and whether the other 49 kept their pids.

Targets: start-up within the floor + 10 %, shutdown under 2 x the longest
chain's kill time, 49 of 49 pids kept. Standard library only; everything
runs under one temporary directory and is stopped at the end.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.dont_write_bytecode = True  # no bench/__pycache__ from the imports below

from gateway import fmt, json_request, markdown  # noqa: E402
from supervisor import free_port, run_logged, run_main, serve_pocketbase, step, wait_for  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_REPO = BENCH_DIR.parent
SUPERUSER = ("orchestration-bench@example.com", "orchestration-bench-pass-1")


def tree(levels, width, ready_ms, ignore_term):
    """The processes of the tree: pN.M is process M of level N and depends on
    p(N-1).M. Each appends "<name> start|ready <ns>" to marks.log."""
    trap = "trap '' TERM; " if ignore_term else ""
    procs = []
    for level in range(levels):
        for i in range(width):
            name = f"p{level}.{i}"
            script = (f'{trap}echo "{name} start $(date +%s%N)" >> marks.log; sleep {ready_ms / 1000}; '
                      f'echo "{name} ready $(date +%s%N)" >> marks.log; echo ready; '
                      'while :; do sleep 1; done')
            entry = {"name": name, "script": "sh", "args": ["-c", script], "interpreter": "none",
                     "health": {"line": "ready"}, "kill_timeout": "1s", "log_file": False}
            if level > 0:
                entry["depends_on"] = [f"p{level - 1}.{i}"]
            procs.append(entry)
    return procs


class Server:
    """`pocketbase serve` in its own directory, with a superuser."""

    def __init__(self, root, binary, processes):
        self.dir = Path(root)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.binary = binary
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        (self.dir / "pb_processes.json").write_text(json.dumps(processes, indent=1))
        self.proc = None
        self.token = None

    def start(self):
        out = self.dir / "pocketbase.out"
        run_logged([self.binary, "superuser", "upsert", *SUPERUSER, "--dir", self.dir / "pb_data"], out)
        began = time.monotonic()
        self.proc = serve_pocketbase(self.binary, self.dir / "pb_data", self.port, out, extra=("--processesQuiet",))
        self.token = json_request(f"{self.base}/api/collections/_superusers/auth-with-password", "POST",
                                  {"identity": SUPERUSER[0], "password": SUPERUSER[1]})["token"]
        return began

    def api(self, method, path):
        req = urllib.request.Request(self.base + path, method=method, data=b"" if method == "POST" else None,
                                     headers={"Authorization": self.token})
        with urllib.request.urlopen(req, timeout=120) as resp:
            return json.load(resp)

    def processes(self):
        return {p["name"]: p for p in self.api("GET", "/api/pm/list")["items"]}

    def stop(self):
        """SIGTERM, as a service manager stops PocketBase; SIGKILL after 30 s."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def marks(path):
    out = {}
    for line in path.read_text().split("\n"):
        parts = line.split()
        if len(parts) == 3:
            out[(parts[0], parts[1])] = int(parts[2]) / 1e9
    return out


def measure_tree(root, binary, args):
    procs = tree(args.levels, args.width, args.ready_ms, ignore_term=True)
    server = Server(root, binary, procs)
    began = server.start()
    try:
        wait_for(lambda: all(p["ready"] for p in server.processes().values()), 60, "every process ready", 0.02)
        all_ready = time.monotonic() - began
        m = marks(server.dir / "marks.log")
        starts = [t for (name, what), t in m.items() if what == "start"]
        readies = [t for (name, what), t in m.items() if what == "ready"]
        first_to_last = max(readies) - min(starts)
        # parallel start: how far apart the roots started
        roots = [m[(f"p0.{i}", "start")] for i in range(args.width)]
        step("shutting down (every process ignores SIGTERM, kill_timeout 1s)")
        t0 = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(120)
        shutdown = time.monotonic() - t0
    finally:
        server.stop()
    return {"first_to_last": first_to_last, "serve_to_ready": all_ready, "roots_spread": max(roots) - min(roots),
            "shutdown": shutdown}


def measure_apply(root, binary, args):
    procs = [{"name": f"w{i}", "script": "sleep", "args": ["3600"], "interpreter": "none", "log_file": False}
             for i in range(args.apply_processes)]
    server = Server(root, binary, procs)
    server.start()
    try:
        wait_for(lambda: all(p["pid"] for p in server.processes().values()), 60, "every process running", 0.05)
        before = {n: p["pid"] for n, p in server.processes().items()}
        procs[0]["args"] = ["3599"]
        (server.dir / "pb_processes.json").write_text(json.dumps(procs, indent=1))
        t0 = time.monotonic()
        result = server.api("POST", "/api/pm/apply")
        took = time.monotonic() - t0
        after = {n: p["pid"] for n, p in server.processes().items()}
    finally:
        server.stop()
    kept = sum(1 for n in before if n != "w0" and after.get(n) == before[n])
    actions = {}
    for change in result["changes"]:
        actions[change["action"]] = actions.get(change["action"], 0) + 1
    return {"took": took, "kept": kept, "others": len(before) - 1, "replaced": after.get("w0") != before["w0"],
            "actions": actions}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, default=DEFAULT_REPO)
    parser.add_argument("--binary", type=Path, help="processman binary (default REPO/bin/pocketbase)")
    parser.add_argument("--levels", type=int, default=4)
    parser.add_argument("--width", type=int, default=5, help="processes per level (5)")
    parser.add_argument("--ready-ms", type=int, default=200, help="ms from start to ready (200)")
    parser.add_argument("--apply-processes", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="start-up/shutdown rounds (3)")
    parser.add_argument("--keep", action="store_true")
    return parser.parse_args()


def run_benchmark(args, root):
    binary = args.binary or args.repo / "bin" / "pocketbase"
    if not binary.exists():
        raise SystemExit(f"missing {binary} (make build)")
    runs = []
    for n in range(args.rounds):
        step(f"round {n + 1}/{args.rounds}: {args.levels * args.width} processes, {args.levels} levels")
        runs.append(measure_tree(root / f"tree{n}", binary, args))
    step(f"apply: one changed process among {args.apply_processes}")
    applied = measure_apply(root / "apply", binary, args)

    floor = args.levels * args.ready_ms / 1000
    kill_chain = args.levels * 1.0
    med = {k: sorted(r[k] for r in runs)[len(runs) // 2] for k in runs[0]}
    rows = [
        ["start-up: first start → last ready", fmt(med["first_to_last"], ".3f") + " s",
         f"{floor:.1f} s", fmt(med["first_to_last"] / floor, ".2f") + "×", "≤ 1.10×",
         "yes" if med["first_to_last"] <= floor * 1.10 else "NO"],
        ["start-up: `serve` → all ready (API)", fmt(med["serve_to_ready"], ".3f") + " s", "", "", "", ""],
        ["start-up: spread of the 5 roots' starts", fmt(med["roots_spread"] * 1000, ".0f") + " ms", "", "", "", ""],
        ["shutdown: SIGTERM → PocketBase exit", fmt(med["shutdown"], ".2f") + " s", f"{kill_chain:.0f} s",
         fmt(med["shutdown"] / kill_chain, ".2f") + "×", "< 2×", "yes" if med["shutdown"] < 2 * kill_chain else "NO"],
        [f"`pm apply`, 1 of {args.apply_processes} changed", fmt(applied["took"] * 1000, ".0f") + " ms", "", "", "", ""],
        ["pids kept by the other processes", f"{applied['kept']} / {applied['others']}", "", "", "all",
         "yes" if applied["kept"] == applied["others"] and applied["replaced"] else "NO"],
    ]
    commit = subprocess.run(["git", "-C", str(args.repo), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "?"
    print()
    print(f"- processman {commit} ({binary}); {os.cpu_count()} cores; median of {args.rounds} rounds; "
          f"apply answered {applied['actions']}")
    startups = ", ".join(f"{r['first_to_last']:.3f} s" for r in runs)
    shutdowns = ", ".join(f"{r['shutdown']:.2f} s" for r in runs)
    print(f"- rounds, first start → last ready: {startups}; shutdown: {shutdowns}")
    print()
    print(markdown(["figure", "value", "floor", "÷ floor", "target", "met"], rows))
    return 0 if all(r[5] in ("", "yes") for r in rows) else 1


def main():
    return run_main(run_benchmark, parse_args(), "pmbench-orchestration-", failures=(RuntimeError, TimeoutError))


if __name__ == "__main__":
    sys.exit(main())
