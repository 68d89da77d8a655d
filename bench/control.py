#!/usr/bin/env python3
"""The control plane's cost: `GET /api/pm/list` latency with 50 managed
processes, and PocketBase's idle CPU with and without them.

In one run, on loopback, with the binary built from this repo:
  list latency   GET /api/pm/list as a superuser, sequentially: back to
                 back (the CPU/memory sample is reused for 1 s, as when a few
                 dashboards poll), and spaced 1.1 s apart (every request
                 samples /proc for all 50 process trees);
  idle CPU       utime+stime of the PocketBase process alone over
                 --idle-seconds, for: bare PocketBase (no processes), 50
                 processes nobody looks at, and 50 processes with the
                 list polled every 2 s (the dashboard's refresh).

Standard library only; every process started here is stopped at the end.
See README.md next to this file.
"""

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.dont_write_bytecode = True

from supervisor import (  # noqa: E402
    CLK_TCK, Manager, cpu_ticks, free_port, http_ok, install_signal_handlers, percentile,
    start_logged, step, sweep_marked_processes, wait_for,
)

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_REPO = BENCH_DIR.parent
SUPERUSER = ("control-bench@example.com", "control-bench-pass-1")


class PocketBase(Manager):
    """`pocketbase serve` with N sleeping processes."""

    label = "pocketbase"

    def __init__(self, workdir, binary, processes):
        super().__init__(workdir)
        self.binary = Path(binary)
        self.processes = processes
        self.url = ""

    def start(self, programs=None):
        data_dir = self.workdir / "pb_data"
        if self.processes:
            entries = [{"name": f"p{i:02d}", "script": "sleep", "args": ["100000"]} for i in range(self.processes)]
            (self.workdir / "pb_processes.json").write_text(json.dumps({"processes": entries}))
        subprocess.run([str(self.binary), "superuser", "upsert", *SUPERUSER, "--dir", str(data_dir)],
                       check=True, capture_output=True, timeout=60)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = start_logged([self.binary, "serve", "--dir", data_dir, "--http", f"127.0.0.1:{port}", "--dev=false"],
                                 self.workdir / "pocketbase.out")
        wait_for(lambda: http_ok(self.url + "/api/health") or self.proc.poll() is not None, 60,
                 "PocketBase health endpoint", interval=0.2)
        if self.proc.poll() is not None:
            raise RuntimeError(f"pocketbase exited; see {self.workdir / 'pocketbase.out'}")

    def token(self):
        req = urllib.request.Request(
            self.url + "/api/collections/_superusers/auth-with-password",
            data=json.dumps({"identity": SUPERUSER[0], "password": SUPERUSER[1]}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.load(resp)["token"]

    def version(self):
        res = subprocess.run([str(self.binary), "--version"], capture_output=True, text=True, timeout=30)
        return res.stdout.strip()


class Lister:
    """Keeps one HTTP connection to PocketBase and times list requests."""

    def __init__(self, url, token):
        import http.client
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        self.token = token

    def list(self):
        start = time.perf_counter()
        self.conn.request("GET", "/api/pm/list", headers={"Authorization": self.token})
        resp = self.conn.getresponse()
        body = resp.read()
        elapsed = (time.perf_counter() - start) * 1000
        if resp.status != 200:
            raise RuntimeError(f"list: {resp.status} {body[:200]!r}")
        return elapsed, json.loads(body)["items"]


def idle_cpu(pb, seconds, poll=None):
    """CPU percent of PocketBase's own process over seconds; poll, if
    given, is called every 2 s meanwhile."""
    time.sleep(3)  # let start-up work settle
    before = cpu_ticks([pb.proc.pid])
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if poll:
            poll()
        time.sleep(min(2, max(0, seconds - (time.monotonic() - start))))
    elapsed = time.monotonic() - start
    used = (cpu_ticks([pb.proc.pid]) - before) / CLK_TCK
    return used / elapsed * 100


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, default=DEFAULT_REPO)
    parser.add_argument("--binary", type=Path)
    parser.add_argument("--processes", type=int, default=50)
    parser.add_argument("--requests", type=int, default=1000, help="back-to-back list requests")
    parser.add_argument("--spaced", type=int, default=20, help="list requests spaced 1.1 s apart")
    parser.add_argument("--idle-seconds", type=int, default=60)
    args = parser.parse_args()
    binary = args.binary or args.repo / "bin" / "pocketbase"
    install_signal_handlers()

    with tempfile.TemporaryDirectory(prefix="processman-control-bench-") as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        step(f"PocketBase with {args.processes} processes")
        managed = PocketBase(root / "managed", binary, args.processes)
        stack.callback(managed.stop)
        managed.start()
        lister = Lister(managed.url, managed.token())
        wait_for(lambda: all(p["state"] == "online" for p in lister.list()[1]), 60, "every process online")

        step(f"{args.requests} back-to-back list requests")
        for _ in range(20):
            lister.list()  # warm up
        hot = [lister.list()[0] for _ in range(args.requests)]
        step(f"{args.spaced} list requests 1.1 s apart")
        cold = []
        for _ in range(args.spaced):
            time.sleep(1.1)
            elapsed, items = lister.list()
            cold.append(elapsed)
        trees = sum(1 for p in items if p["memory"] > 0)

        step(f"idle CPU, {args.idle_seconds} s each")
        managed_idle = idle_cpu(managed, args.idle_seconds)
        managed_polled = idle_cpu(managed, args.idle_seconds, poll=lister.list)
        managed.stop()

        bare = PocketBase(root / "bare", binary, 0)
        stack.callback(bare.stop)
        bare.start()
        bare_idle = idle_cpu(bare, args.idle_seconds)
        bare.stop()

    print()
    print(f"{managed.version()}, {args.processes} processes (sleep), {trees} with metrics in the list")
    print()
    print("| GET /api/pm/list | requests | p50 ms | p90 ms | p99 ms | max ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, xs in (("back to back (sample reused ≤ 1 s)", hot), ("1.1 s apart (fresh /proc sample)", cold)):
        print(f"| {label} | {len(xs)} | {percentile(xs, 50):.2f} | {percentile(xs, 90):.2f} | "
              f"{percentile(xs, 99):.2f} | {max(xs):.2f} |")
    print()
    print(f"| PocketBase process CPU over {args.idle_seconds} s | CPU % |")
    print("| --- | ---: |")
    print(f"| bare PocketBase, no processes | {bare_idle:.3f} |")
    print(f"| {args.processes} processes, nobody looking | {managed_idle:.3f} |")
    print(f"| {args.processes} processes, list polled every 2 s | {managed_polled:.3f} |")
    print()
    print(f"target: list p50 < 5 ms -> {'met' if statistics.median(cold) < 5 and statistics.median(hot) < 5 else 'MISSED'}; "
          f"idle CPU with processes {managed_idle:.3f}% vs bare {bare_idle:.3f}% "
          f"(difference {managed_idle - bare_idle:+.3f} points, one tick over {args.idle_seconds} s is "
          f"{100 / CLK_TCK / args.idle_seconds:.3f})")
    sweep_marked_processes()


if __name__ == "__main__":
    main()
