#!/usr/bin/env python3
"""Reload under load: processman's rolling reload against PM2's reload.

A constant-rate client (open loop, 200 requests/s, a new connection per
request, for 20 s) calls a sidecar while it is reloaded every 5 s, and once
more without reloads. Both sidecars take 1 s to start (STARTUP_DELAY), as an
agent importing its framework does:
  processman python   pyapp.py (uvicorn) routed by the gateway, /api/pm/py/reload
  processman node     nodeapp.mjs routed by the gateway, /api/pm/node/reload
  pm2 node cluster    nodeapp.mjs in PM2's cluster mode, `pm2 reload` (its
                      zero-downtime mode)
  pm2 python fork     pyapp.py in PM2's fork mode, `pm2 reload` (a restart)

Reported per sidecar and run: requests, failed ones by kind, latency
p50/p99/max (measured from each request's scheduled time, so a stall counts in
full), p99 against the run without reloads, and how long the reloads took.
Targets for processman: 0 failed and p99 within 2x of the run without reloads.

Everything runs under one temporary directory; every process started here is
stopped at the end (also on error or Ctrl-C). See README.md next to this file.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.dont_write_bytecode = True  # no bench/__pycache__ from the imports below

from gateway import fmt, json_request, markdown, ratio  # noqa: E402
from supervisor import (  # noqa: E402
    PM2, PM2_CLI, Manager, free_port, http_ok, percentile, run_logged, run_main, serve_pocketbase,
    step, wait_for,
)

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_REPO = BENCH_DIR.parent
VENV_PYTHON = BENCH_DIR / ".venv" / "bin" / "python"
PY_APP = BENCH_DIR / "pyapp.py"
NODE_APP = BENCH_DIR / "nodeapp.mjs"
SUPERUSER = ("reload-bench@example.com", "reload-bench-pass-1")

TARGET_FAILED = 0
TARGET_P99_RATIO = 2.0


# --------------------------------------------------------------------------
# the systems under test: start() / stop() / url(name) / reload(name)


class Processman(Manager):
    """PocketBase with the plugin, the two sidecars routed as /api/py and /api/node."""

    label = "processman"

    def __init__(self, workdir, binary, startup_delay):
        super().__init__(workdir)
        self.binary = Path(binary)
        self.port = free_port()
        self.data_dir = self.workdir / "pb_data"
        self.startup_delay = startup_delay
        self.token = None

    def start(self):
        env = {"STARTUP_DELAY": str(self.startup_delay)}
        processes = [
            {"name": "py", "script": str(VENV_PYTHON), "args": [str(PY_APP)], "interpreter": "none",
             "cwd": str(BENCH_DIR), "route": "/api/py", "auth": "public", "env": env},
            {"name": "node", "script": str(NODE_APP), "cwd": str(BENCH_DIR),
             "route": "/api/node", "auth": "public", "env": env},
        ]
        (self.workdir / "pb_processes.json").write_text(json.dumps({"processes": processes}, indent=2))
        out = self.workdir / "pocketbase.out"
        run_logged([self.binary, "superuser", "upsert", *SUPERUSER, "--dir", self.data_dir], out)
        self.proc = serve_pocketbase(self.binary, self.data_dir, self.port, out)
        base = f"http://127.0.0.1:{self.port}"
        for name in ("py", "node"):
            wait_for(lambda n=name: http_ok(self.url(n)) or self.proc.poll() is not None, 60,
                     f"gateway route → {name}", interval=0.2)
        if self.proc.poll() is not None:
            raise RuntimeError(f"pocketbase exited; see {out}")
        auth = json_request(f"{base}/api/collections/_superusers/auth-with-password", "POST",
                            {"identity": SUPERUSER[0], "password": SUPERUSER[1]})
        self.token = auth["token"]

    def url(self, name):
        return f"http://127.0.0.1:{self.port}/api/{name}/ping"

    def reload(self, name):
        """POST /api/pm/{name}/reload: answers once the new copy serves."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/pm/{name}/reload",
                                     data=b"", method="POST", headers={"Authorization": self.token})
        with urllib.request.urlopen(req, timeout=120) as resp:
            resp.read()

    def version(self):
        result = subprocess.run([str(self.binary), "--version"], capture_output=True, text=True,
                                timeout=30, stdin=subprocess.DEVNULL)
        return (result.stdout or result.stderr).strip() or "?"


class PM2Apps(PM2):
    """PM2 with nodeapp.mjs in cluster mode and pyapp.py in fork mode, each on a port."""

    def __init__(self, workdir, startup_delay):
        super().__init__(workdir)
        self.ports = {"node": free_port(), "py": free_port()}
        self.startup_delay = startup_delay

    def start(self):
        env = {"STARTUP_DELAY": str(self.startup_delay)}
        common = {"cwd": str(BENCH_DIR), "autorestart": True, "vizion": False, "merge_logs": True}
        apps = [
            {**common, "name": "node", "script": str(NODE_APP), "exec_mode": "cluster", "instances": 1,
             "env": {**env, "PORT": str(self.ports["node"])},
             "out_file": str(self.workdir / "node.log"), "error_file": str(self.workdir / "node.err.log")},
            {**common, "name": "py", "script": str(PY_APP), "interpreter": str(VENV_PYTHON),
             "exec_mode": "fork", "env": {**env, "PORT": str(self.ports["py"])},
             "out_file": str(self.workdir / "py.log"), "error_file": str(self.workdir / "py.err.log")},
        ]
        ecosystem = self.workdir / "ecosystem.json"
        ecosystem.write_text(json.dumps({"apps": apps}, indent=2))
        self._cli("start", ecosystem)
        for name in ("py", "node"):
            wait_for(lambda n=name: http_ok(self.url(n)), 60, f"PM2 {name} app", interval=0.2)

    def url(self, name):
        return f"http://127.0.0.1:{self.ports[name]}/ping"

    def reload(self, name):
        self._cli("reload", name, timeout=120)


# --------------------------------------------------------------------------
# the constant-rate client


@dataclass
class Run:
    label: str
    latencies_ms: list = field(default_factory=list)  # of the requests that succeeded
    failures: Counter = field(default_factory=Counter)  # kind -> count
    reloads_s: list = field(default_factory=list)  # duration of each reload
    reload_errors: list = field(default_factory=list)

    @property
    def requests(self):
        return len(self.latencies_ms) + sum(self.failures.values())

    @property
    def failed(self):
        return sum(self.failures.values())


async def one_request(host, port, target, scheduled, timeout):
    """GET target over a new connection (Connection: close); (ok, latency ms or failure kind)."""
    request = f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            data = await reader.read()  # to EOF: the server closes after the response
    except TimeoutError:
        return False, "timeout"
    except ConnectionRefusedError:
        return False, "connection refused"
    except OSError as exc:
        return False, type(exc).__name__
    finally:
        if writer is not None:
            writer.close()
    status = data.split(b" ", 2)[1:2]
    if status != [b"200"]:
        return False, f"status {status[0].decode() if status else 'none'}"
    return True, (time.monotonic() - scheduled) * 1000


async def constant_rate(url, rate, seconds, timeout):
    """Starts a request every 1/rate s for seconds, whatever the answers take."""
    rest = url.removeprefix("http://")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    start = time.monotonic() + 0.05
    tasks = []
    for i in range(int(rate * seconds)):
        scheduled = start + i / rate
        delay = scheduled - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one_request(host, int(port), "/" + path, scheduled, timeout)))
    return await asyncio.gather(*tasks)


def measure(system, name, label, args, reloads):
    """One run of the client against system's sidecar name, with reloads at
    every --reload-every seconds when reloads is true."""
    run = Run(label)
    stop = threading.Event()

    def reloader():
        next_at = time.monotonic() + args.reload_every
        end = time.monotonic() + args.seconds - 1  # the last reload starts before the run ends
        while not stop.wait(max(0, next_at - time.monotonic())) and next_at < end:
            began = time.monotonic()
            try:
                system.reload(name)
                run.reloads_s.append(time.monotonic() - began)
            except Exception as exc:  # reported in the table, the run goes on
                run.reload_errors.append(f"{type(exc).__name__}: {exc}")
            next_at += args.reload_every

    thread = threading.Thread(target=reloader, daemon=True) if reloads else None
    if thread:
        thread.start()
    try:
        results = asyncio.run(constant_rate(system.url(name), args.rate, args.seconds, args.timeout))
    finally:
        stop.set()
        if thread:
            thread.join(130)
    for ok, value in results:
        if ok:
            run.latencies_ms.append(value)
        else:
            run.failures[value] += 1
    return run


# --------------------------------------------------------------------------
# report


def lat(run, pct):
    return percentile(run.latencies_ms, pct) if run.latencies_ms else None


def results_table(pairs):
    rows = []
    for label, base, loaded in pairs:
        for kind, run in (("no reload", base), (f"reload ×{len(loaded.reloads_s)}", loaded)):
            p99_ratio = ratio(lat(run, 99), lat(base, 99)) if run is loaded else None
            failures = ", ".join(f"{k} {v}" for k, v in run.failures.most_common()) or "0"
            reload_time = (f"{statistics.median(run.reloads_s):.2f} s" if run.reloads_s else "")
            if run.reload_errors:
                reload_time += f" ({len(run.reload_errors)} failed)"
            rows.append([label, kind, f"{run.requests:,}", failures, fmt(lat(run, 50), ".1f"),
                         fmt(lat(run, 99), ".1f"), fmt(max(run.latencies_ms, default=None), ".1f"),
                         fmt(p99_ratio, ".2f"), reload_time])
    return markdown(["sidecar", "run", "requests", "failed", "p50 ms", "p99 ms", "max ms",
                     "p99 × no reload", "reload takes (median)"], rows)


def targets_table(pairs):
    rows = []
    for label, base, loaded in pairs:
        if not label.startswith("processman"):
            continue
        ok = loaded.failed <= TARGET_FAILED and not loaded.reload_errors and loaded.reloads_s
        rows.append([f"{label}: failed requests", str(loaded.failed), f"= {TARGET_FAILED}",
                     "yes" if ok else "NO"])
        p99_ratio = ratio(lat(loaded, 99), lat(base, 99))
        ok = p99_ratio is not None and p99_ratio <= TARGET_P99_RATIO
        rows.append([f"{label}: p99 × no reload", fmt(p99_ratio, ".2f"), f"≤ {TARGET_P99_RATIO:g}",
                     "yes" if ok else "NO"])
    return markdown(["figure", "value", "target", "met"], rows)


# --------------------------------------------------------------------------
# main


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, default=DEFAULT_REPO)
    parser.add_argument("--binary", type=Path, help="processman binary (default REPO/bin/pocketbase)")
    parser.add_argument("--systems", default="processman,pm2", help="processman,pm2 or one of them")
    parser.add_argument("--rate", type=float, default=200, help="requests per second (200)")
    parser.add_argument("--seconds", type=float, default=20, help="length of each run (20)")
    parser.add_argument("--reload-every", type=float, default=5, help="seconds between reloads (5)")
    parser.add_argument("--startup-delay", type=float, default=1.0,
                        help="seconds each sidecar sleeps before it listens (1)")
    parser.add_argument("--timeout", type=float, default=10, help="seconds one request may take (10)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir with configs and logs")
    return parser.parse_args()


SIDECARS = (("py", "python"), ("node", "node"))
MODES = {"processman": {"py": "processman python", "node": "processman node"},
         "pm2": {"py": "pm2 python fork", "node": "pm2 node cluster"}}


def run_benchmark(args, root):
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    binary = args.binary or args.repo / "bin" / "pocketbase"
    missing = [what for what, ok in (
        (str(VENV_PYTHON), VENV_PYTHON.exists()),
        (str(binary), "processman" not in systems or binary.exists()),
        (str(PM2_CLI), "pm2" not in systems or PM2_CLI.exists()),
    ) if not ok]
    if missing:
        raise SystemExit(f"missing: {', '.join(missing)} (bench/reload-run installs them)")

    pairs, versions = [], {}
    for system_name in systems:
        if system_name == "processman":
            system = Processman(root / "processman", binary, args.startup_delay)
        elif system_name == "pm2":
            system = PM2Apps(root / "pm2", args.startup_delay)
        else:
            raise SystemExit(f"unknown system {system_name!r} (processman, pm2)")
        versions[system_name] = system.version()
        if system_name == "processman":
            commit = subprocess.run(["git", "-C", str(args.repo), "rev-parse", "--short", "HEAD"],
                                    capture_output=True, text=True).stdout.strip() or "?"
            versions[system_name] = f"{commit} ({binary}, {versions[system_name]})"
        step(f"starting {system_name}")
        system.start()
        try:
            for name, _ in SIDECARS:
                label = MODES[system_name][name]
                step(f"{label}: {args.seconds:g} s at {args.rate:g} req/s without reloads")
                base = measure(system, name, label, args, reloads=False)
                step(f"{label}: the same, reloading every {args.reload_every:g} s")
                loaded = measure(system, name, label, args, reloads=True)
                for error in loaded.reload_errors:
                    step(f"{label}: reload failed: {error}")
                pairs.append((label, base, loaded))
        finally:
            system.stop()

    print()
    for name, version in versions.items():
        print(f"- {name}: {version}")
    print(f"- client: {args.rate:g} req/s for {args.seconds:g} s, a new connection per request, "
          f"reload every {args.reload_every:g} s; sidecars start in {args.startup_delay:g} s; "
          f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, node "
          f"{subprocess.run(['node', '--version'], capture_output=True, text=True).stdout.strip()}")
    print()
    print(results_table(pairs))
    print()
    print(targets_table(pairs))
    failed_targets = "| NO |" in targets_table(pairs)
    return 1 if failed_targets else 0


def main():
    return run_main(run_benchmark, parse_args(), "pmbench-reload-", failures=(RuntimeError, TimeoutError))


if __name__ == "__main__":
    sys.exit(main())
