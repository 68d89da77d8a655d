#!/usr/bin/env python3
"""Instances: a CPU-bound Python sidecar with 1 and 2 instances behind the
gateway, against the same app under `uvicorn --workers 2` reached directly.

The handler (pyapp.py) runs a pure-Python loop that holds the GIL for about
5 ms per request (the loop count is calibrated on this machine first), so one
process is the ceiling and a second one can only help through a second core.
Paths, all measured with wrk (-t2 -c8) in rounds, interleaved, once with
keep-alive connections and once with a new connection per request
(`Connection: close`), which is how uvicorn's workers share connections best
(a worker's event loop can accept every waiting keep-alive connection at once
and leave the other worker idle):
  gateway, 1 instance     PocketBase route /api/cpu1 -> one uvicorn process
  gateway, 2 instances    route /api/cpu2, "instances": 2, balanced
  uvicorn --workers 2     wrk -> 127.0.0.1:<port>, uvicorn's own workers
  uvicorn, 1 worker       the same with one worker (reference)

Targets, for both client modes: 2 instances >= 1.6x the throughput of 1,
and >= 0.85x of `uvicorn --workers 2`. Everything runs under one temporary directory; every
process started here is stopped at the end. See README.md next to this file.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # no bench/__pycache__ from the imports below

from gateway import Endpoint, fmt, markdown, median, ratio, run_wrk  # noqa: E402
from supervisor import (  # noqa: E402
    Manager, cmdline, descendants, free_port, http_ok, run_main, serve_pocketbase, start_logged, step,
    wait_for,
)

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_REPO = BENCH_DIR.parent
VENV_PYTHON = BENCH_DIR / ".venv" / "bin" / "python"
PY_APP = BENCH_DIR / "pyapp.py"

PATHS = {
    "gateway-1": "gateway, 1 instance",
    "gateway-2": "gateway, 2 instances",
    "uvicorn-2": "uvicorn --workers 2, direct",
    "uvicorn-1": "uvicorn, 1 worker, direct",
}
MODES = {"keep-alive": (), "new connection": ("Connection: close",)}
TARGET_SCALE = 1.6
TARGET_VS_UVICORN = 0.85


def calibrate(work_ms):
    """Iterations of pyapp.work that take work_ms on this machine (best of 5)."""
    code = ("import sys, time; sys.path.insert(0, sys.argv[1]); from pyapp import work\n"
            "n = 200_000; best = min((lambda t: (work(n), time.perf_counter() - t)[1])"
            "(time.perf_counter()) for _ in range(5))\n"
            "print(int(n * float(sys.argv[2]) / 1000 / best))")
    out = subprocess.run([str(VENV_PYTHON), "-c", code, str(BENCH_DIR), str(work_ms)],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return int(out.strip())


def app_pids(roots):
    """pyapp.py among roots and their descendants (uvicorn's workers, started
    by multiprocessing, count as descendants of the one that is)."""
    mark = PY_APP.name.encode()
    apps = [pid for pid in roots + descendants(roots) if mark in cmdline(pid)]
    return apps + descendants(apps)


class Gateway(Manager):
    """PocketBase serving pyapp.py as /api/cpu1 (1 instance) and /api/cpu2 (2 instances)."""

    label = "gateway"

    def __init__(self, workdir, binary, work_iters):
        super().__init__(workdir)
        self.binary = Path(binary)
        self.port = free_port()
        self.work_iters = work_iters

    def start(self):
        processes = [{"name": f"cpu{n}", "script": str(VENV_PYTHON), "args": [str(PY_APP)],
                      "interpreter": "none", "cwd": str(BENCH_DIR), "route": f"/api/cpu{n}",
                      "auth": "public", "instances": n, "log_file": False,
                      "env": {"WORK_ITERS": str(self.work_iters)}} for n in (1, 2)]
        (self.workdir / "pb_processes.json").write_text(json.dumps({"processes": processes}, indent=2))
        out = self.workdir / "pocketbase.out"
        self.proc = serve_pocketbase(self.binary, self.workdir / "pb_data", self.port, out)
        for n in (1, 2):
            wait_for(lambda n=n: http_ok(self.url(n)) or self.proc.poll() is not None, 60,
                     f"gateway route /api/cpu{n}", interval=0.2)
        if self.proc.poll() is not None:
            raise RuntimeError(f"pocketbase exited; see {out}")

    def url(self, n):
        return f"http://127.0.0.1:{self.port}/api/cpu{n}/json"

    def endpoint(self, n):
        process_mark = f"cpu{n}".encode()

        def upstream():
            # The instances of process cpuN: pyapp.py children whose
            # environment names them cpuN.
            pids = []
            for pid in app_pids(self.manager_pids()):
                try:
                    environ = Path(f"/proc/{pid}/environ").read_bytes()
                except OSError:
                    continue
                if b"PB_PROCESS_NAME=" + process_mark in environ.split(b"\0"):
                    pids.append(pid)
            return pids

        return Endpoint(f"gateway-{n}", f"http://127.0.0.1:{self.port}/api/cpu{n}",
                        proxy_pids=self.manager_pids, upstream_pids=upstream, server=self)


class Uvicorn(Manager):
    """pyapp.py under uvicorn with WORKERS workers on a loopback port."""

    label = "uvicorn"
    stop_timeout = 10

    def __init__(self, workdir, workers, work_iters):
        super().__init__(workdir)
        self.workers = workers
        self.work_iters = work_iters
        self.port = free_port()

    def start(self):
        env = {**{k: v for k, v in os.environ.items() if k != "PB_SOCKET"},
               "PORT": str(self.port), "WORKERS": str(self.workers), "WORK_ITERS": str(self.work_iters)}
        self.proc = start_logged([VENV_PYTHON, PY_APP], self.workdir / "uvicorn.out", env=env)
        wait_for(lambda: http_ok(f"http://127.0.0.1:{self.port}/json") or self.proc.poll() is not None,
                 60, f"uvicorn --workers {self.workers}", interval=0.2)
        if self.proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited; see {self.workdir / 'uvicorn.out'}")

    def endpoint(self):
        return Endpoint(f"uvicorn-{self.workers}", f"http://127.0.0.1:{self.port}",
                        upstream_pids=lambda: app_pids(self.manager_pids()), server=self)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, default=DEFAULT_REPO)
    parser.add_argument("--binary", type=Path, help="processman binary (default REPO/bin/pocketbase)")
    parser.add_argument("--work-ms", type=float, default=5.0, help="CPU work per request in ms (5)")
    parser.add_argument("--rounds", type=int, default=3, help="wrk rounds per path (3)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk round (10)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (8)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir with configs and logs")
    return parser.parse_args()


def run_benchmark(args, root):
    binary = args.binary or args.repo / "bin" / "pocketbase"
    missing = [p for p in (VENV_PYTHON, binary) if not Path(p).exists()]
    if missing or not subprocess.run(["sh", "-c", "command -v wrk"], capture_output=True).returncode == 0:
        raise SystemExit(f"missing: {', '.join(map(str, missing)) or 'wrk'} (bench/instances-run installs them)")

    iters = calibrate(args.work_ms)
    step(f"{iters:,} loop iterations take {args.work_ms:g} ms here")
    servers = [Gateway(root / "gateway", binary, iters),
               Uvicorn(root / "uvicorn-2", 2, iters), Uvicorn(root / "uvicorn-1", 1, iters)]
    results = {(mode, key): [] for mode in MODES for key in PATHS}
    try:
        for server in servers:
            step(f"starting {server.label}")
            server.start()
        gateway = servers[0]
        endpoints = {"gateway-1": gateway.endpoint(1), "gateway-2": gateway.endpoint(2),
                     "uvicorn-2": servers[1].endpoint(), "uvicorn-1": servers[2].endpoint()}
        log = root / "wrk.log"
        for key, endpoint in endpoints.items():  # warm-up: every worker has answered
            run_wrk(endpoint, args.threads, args.connections, 2, log)
        for round_no in range(1, args.rounds + 1):
            for mode, headers in MODES.items():
                for key, endpoint in endpoints.items():
                    step(f"round {round_no}/{args.rounds}, {mode}: {PATHS[key]}")
                    results[mode, key].append(run_wrk(endpoint, args.threads, args.connections,
                                                      args.duration, log, headers=headers))
    finally:
        for server in servers:
            server.stop()

    med = {mode_key: {attr: median([getattr(r, attr) for r in runs])
                      for attr in ("rps", "p50_ms", "p99_ms", "proxy_cpu_us", "upstream_cpu_us")}
           for mode_key, runs in results.items()}
    rows, targets = [], []
    for mode in MODES:
        one, uvicorn2 = med[mode, "gateway-1"]["rps"], med[mode, "uvicorn-2"]["rps"]
        for key in PATHS:
            m = med[mode, key]
            app_ms = m["upstream_cpu_us"] / 1000 if m["upstream_cpu_us"] is not None else None
            rows.append([mode, PATHS[key], fmt(m["rps"], ",.0f"), fmt(ratio(m["rps"], one), ".2f"),
                         fmt(ratio(m["rps"], uvicorn2), ".2f"), fmt(m["p50_ms"], ".1f"),
                         fmt(m["p99_ms"], ".1f"), fmt(app_ms, ".2f"), fmt(m["proxy_cpu_us"], ".0f"),
                         str(sum(r.errors for r in results[mode, key]))])
        scale = ratio(med[mode, "gateway-2"]["rps"], one)
        versus = ratio(med[mode, "gateway-2"]["rps"], uvicorn2)
        targets += [
            [f"{mode}: gateway req/s, 2 instances ÷ 1", fmt(scale, ".2f"), f"≥ {TARGET_SCALE:g}",
             "yes" if scale and scale >= TARGET_SCALE else "NO"],
            [f"{mode}: gateway 2 instances ÷ uvicorn --workers 2", fmt(versus, ".2f"),
             f"≥ {TARGET_VS_UVICORN:g}", "yes" if versus and versus >= TARGET_VS_UVICORN else "NO"],
        ]
    commit = subprocess.run(["git", "-C", str(args.repo), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "?"
    print()
    print(f"- processman {commit} ({binary}); uvicorn from bench/.venv; "
          f"{os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(f"- handler: {iters:,} iterations of a pure-Python loop, {args.work_ms:g} ms when calibrated; "
          f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, median of {args.rounds} rounds")
    print()
    print(markdown(["client", "path", "req/s", "× 1 instance", "× uvicorn -w 2", "p50 ms", "p99 ms",
                    "app CPU ms/req", "gateway CPU µs/req", "errors"], rows))
    print()
    print(markdown(["figure", "value", "target", "met"], targets))
    return 0 if all(row[3] == "yes" for row in targets) else 1


def main():
    return run_main(run_benchmark, parse_args(), "pmbench-instances-", failures=(RuntimeError, TimeoutError))


if __name__ == "__main__":
    sys.exit(main())
