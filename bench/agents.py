#!/usr/bin/env python3
"""Cold start and streaming of the example agents, through the gateway and direct.

Measures, on this machine and in one run, with bin/pocketbase and
examples/agno-agent and examples/ai-sdk-agent as `make build examples` leaves
them (offline models, no API key):
  cold start   from the exec of `pocketbase serve` (fresh pb_data, the two
               agents routed) to /api/health answering, then to each agent
               answering through the gateway with a user's token; the median
               of --runs;
  streaming    one PocketBase serving both agents twice, with their models'
               own pacing (80 ms between words) and unpaced; per agent and
               pacing, --streams runs through the gateway and as many
               straight to the sidecar's Unix socket (PB_SOCKET, requests
               signed with PB_GATEWAY_SECRET as the gateway signs them),
               alternating: time to the first token and tokens/s. A token is
               one content delta of the stream: an agno `RunContent` event,
               an AI SDK `text-delta` chunk.

Standard library only. Everything runs on loopback under a temporary
directory, every process started here is stopped at the end (also on error or
Ctrl-C), and every wait is bounded. See README.md next to this file.
"""

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.dont_write_bytecode = True  # no bench/__pycache__ from the imports below

# Process, cleanup and wait helpers shared with the other benchmarks (the
# script's own directory comes first on sys.path).
from supervisor import (  # noqa: E402
    descendants, free_port, http_ok, Manager, run_main, start_logged, step, wait_for,
)
from gateway import ResponseReader, first_line, fmt, json_request, markdown, median  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_REPO = BENCH_DIR.parent
USER = ("agents-bench@example.com", "agents-bench-pass-1")

# The example's offline model sleeps `delay` seconds before each word and
# reads no setting for it, so the unpaced variant runs app.py through this
# launcher, which sets the delay on the agent's model before serving.
AGNO_LAUNCHER = '''"""The agno example with its offline model's pause set by BENCH_MODEL_DELAY."""
import os
import sys

sys.path.insert(0, os.getcwd())  # the example's directory: app.py, offline_model.py

import processman  # noqa: E402

import app as example  # noqa: E402

example.agent.model.delay = float(os.environ["BENCH_MODEL_DELAY"])
processman.serve(example.app)
'''


@dataclass
class Agent:
    """One example agent: how to reach it and what counts as a token."""
    key: str
    label: str
    example: str           # directory under examples/
    script: str
    route: str
    ready_path: str        # GET below the route that answers once the app is up
    run_path: str          # POST below the route that streams a run
    content_type: str

    def body(self, prompt):
        if self.content_type == "application/json":
            return json.dumps({"prompt": prompt}).encode()
        return urllib.parse.urlencode({"message": prompt, "stream": "true"}).encode()

    def is_token(self, event):
        name, data = event
        if not isinstance(data, dict):
            return False
        if self.key == "agno":
            # agno names the event in the SSE `event:` field and in the data.
            return (name or data.get("event")) == "RunContent" and bool(data.get("content"))
        return data.get("type") == "text-delta"


AGENTS = {
    "agno": Agent("agno", "agno (Python, AgentOS)", "agno-agent", "app.py", "/api/agno", "/health",
                  "/agents/notes/runs", "application/x-www-form-urlencoded"),
    "ai-sdk": Agent("ai-sdk", "AI SDK (Node.js)", "ai-sdk-agent", "server.mjs", "/api/ai", "/",
                    "/chat", "application/json"),
}

PACINGS = {"paced": "model's own pacing (80 ms)", "unpaced": "unpaced (0 ms)"}


# --------------------------------------------------------------------------
# PocketBase with the agents


class PocketBase(Manager):
    """`pocketbase serve` on a free loopback port with the example agents routed."""

    label = "pocketbase"

    def __init__(self, workdir, binary, repo, routes):
        super().__init__(workdir)
        self.binary = Path(binary)
        self.repo = Path(repo)
        self.routes = routes  # [(process name, agent, pacing or None)]
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.started = None  # perf_counter() just before the exec

    def config(self):
        processes = []
        for name, agent, pacing in self.routes:
            entry = {"name": name, "script": agent.script, "cwd": str(self.repo / "examples" / agent.example),
                     "route": self.route_of(name, agent), "auth": "user"}
            if pacing == "unpaced":
                if agent.key == "agno":
                    launcher = self.workdir / "agno_unpaced.py"
                    launcher.write_text(AGNO_LAUNCHER)
                    entry.update(script=str(launcher), env={"BENCH_MODEL_DELAY": "0"})
                else:
                    entry["env"] = {"MOCK_CHUNK_DELAY_MS": "0"}
            processes.append(entry)
        return {"processes": processes}

    @staticmethod
    def route_of(name, agent):
        return agent.route if name == agent.key else f"{agent.route}-{name.split('-')[-1]}"

    def start(self, programs=None):
        (self.workdir / "pb_processes.json").write_text(json.dumps(self.config(), indent=2))
        # --dev=false: PocketBase turns dev mode (every SQL statement printed)
        # on for a binary under the temp dir; the default of a built binary.
        argv = [self.binary, "serve", "--dev=false", "--dir", self.workdir / "pb_data",
                "--migrationsDir", self.repo / "examples" / "pb_migrations",
                "--http", f"127.0.0.1:{self.port}"]
        self.started = time.perf_counter()
        self.proc = start_logged(argv, self.workdir / "pocketbase.out")

    def wait_healthy(self, timeout=60):
        """Seconds from the exec to /api/health answering 200."""
        wait_for(lambda: http_ok(f"{self.base}/api/health") or self.proc.poll() is not None, timeout,
                 "PocketBase health endpoint", interval=0.02)
        self.check_alive()
        return time.perf_counter() - self.started

    def check_alive(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"pocketbase exited; see {self.workdir / 'pocketbase.out'}")

    def user_token(self):
        """Sign a user up (the fresh pb_data has none) and log in."""
        email, password = USER
        json_request(f"{self.base}/api/collections/users/records", "POST",
                     {"email": email, "password": password, "passwordConfirm": password})
        auth = json_request(f"{self.base}/api/collections/users/auth-with-password", "POST",
                            {"identity": email, "password": password})
        return auth["token"], auth["record"]["id"]

    def sidecar_env(self, name):
        """The environment processman gave the process `name` (read from /proc)."""
        for pid in descendants(self.manager_pids()):
            try:
                raw = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue
            env = dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)
            if env.get("PB_PROCESS_NAME") == name and env.get("PB_SOCKET"):
                return env
        raise RuntimeError(f"no process with PB_PROCESS_NAME={name} and a PB_SOCKET under PocketBase")


# --------------------------------------------------------------------------
# cold start


def wait_answering(url, token, deadline):
    """Seconds (perf_counter) when GET url with the token first answers 2xx.

    The gateway holds a request while the process starts (up to 10 s), then
    answers 503; so one request usually suffices, and a 503 is retried."""
    while time.perf_counter() < deadline:
        request = urllib.request.Request(url, headers={"Authorization": token})
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                resp.read()
                if 200 <= resp.status < 300:
                    return time.perf_counter()
        except urllib.error.HTTPError as exc:
            if exc.code not in (502, 503):
                raise RuntimeError(f"GET {url}: {exc.code} {exc.read()[:200]!r}") from exc
        except OSError:
            pass
        time.sleep(0.02)
    raise TimeoutError(f"timed out waiting for {url}")


@dataclass
class ColdStart:
    health: float
    token: float
    ready: dict  # agent key -> seconds from exec


def measure_cold_start(workdir, binary, repo, timeout):
    server = PocketBase(workdir, binary, repo, [(key, agent, None) for key, agent in AGENTS.items()])
    try:
        server.start()
        health = server.wait_healthy()
        token, _ = server.user_token()
        token_at = time.perf_counter() - server.started
        deadline = time.perf_counter() + timeout
        ready, errors = {}, []

        def poll(agent):
            try:
                ready[agent.key] = wait_answering(f"{server.base}{agent.route}{agent.ready_path}", token,
                                                  deadline) - server.started
            except (RuntimeError, TimeoutError, OSError) as exc:
                errors.append(f"{agent.key}: {exc}")

        threads = [threading.Thread(target=poll, args=(agent,)) for agent in AGENTS.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout + 5)
        if errors:
            raise RuntimeError("; ".join(errors))
        server.check_alive()
        return ColdStart(health, token_at, ready)
    finally:
        server.stop()


# --------------------------------------------------------------------------
# streaming


def gateway_headers(secret, method, target, user_id, collection="users", superuser=False):
    """The identity headers the gateway adds (docs/gateway.md): an HMAC-SHA256,
    keyed with the hex string PB_GATEWAY_SECRET, of the canonical string."""
    now = str(int(time.time()))
    flag = "true" if superuser else "false"
    canonical = "\n".join(["v1", now, method.upper(), target, user_id, collection, flag])
    proof = hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()
    return {"X-PB-Auth-Id": user_id, "X-PB-Auth-Collection": collection, "X-PB-Auth-Superuser": flag,
            "X-PB-Gateway-Time": now, "X-PB-Gateway-Proof": proof}


@dataclass
class Stream:
    tokens: int = 0
    first_token: float = None  # seconds after the request was sent
    last_token: float = None
    total: float = None        # to the end of the body
    events: int = 0

    @property
    def tokens_per_second(self):
        if self.tokens < 2 or self.last_token <= self.first_token:
            return None
        return (self.tokens - 1) / (self.last_token - self.first_token)


def stream_once(address, target, agent, prompt, headers, timeout=60):
    """POST one run and time its content deltas as they arrive.

    A raw HTTP/1.1 client (TCP or Unix socket), so that nothing buffers
    between recv() and the event parser: an event's time is that of the
    recv() that completed it."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    body = agent.body(prompt)
    head = [f"POST {target} HTTP/1.1", "Host: localhost", f"Content-Type: {agent.content_type}",
            f"Content-Length: {len(body)}", "Accept: text/event-stream", "Connection: close"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    result = Stream()
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)
        if family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sent = time.perf_counter()
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        reader = EventReader()
        while not reader.done:
            data = sock.recv(1 << 16)
            now = time.perf_counter() - sent
            if not data:
                break
            for event in reader.feed(data):
                result.events += 1
                if agent.is_token(event):
                    result.tokens += 1
                    result.last_token = now
                    if result.first_token is None:
                        result.first_token = now
        result.total = time.perf_counter() - sent
    if reader.status != 200:
        raise RuntimeError(f"POST {target}: status {reader.status}: {reader.body[:300]!r}")
    return result


class EventReader:
    """Server-sent events of an HTTP response as its bytes arrive, as
    (event name or None, decoded JSON data)."""

    def __init__(self):
        self.response = ResponseReader()

    @property
    def status(self):
        return self.response.status

    @property
    def body(self):
        return self.response.body

    @property
    def done(self):
        return self.response.done

    def feed(self, data):
        self.response.feed(data)
        events = []
        while True:
            match = re.search(rb"\r?\n\r?\n", self.response.body)
            if not match:
                break
            block, self.response.body = self.response.body[:match.start()], self.response.body[match.end():]
            name, data = None, []
            for line in block.splitlines():
                if line.startswith(b"event:"):
                    name = line[6:].strip().decode()
                elif line.startswith(b"data:"):
                    data.append(line[5:].strip())
            payload = b"\n".join(data)
            if not payload or payload == b"[DONE]":
                continue
            try:
                events.append((name, json.loads(payload)))
            except ValueError:
                continue
        return events


@dataclass
class Series:
    streams: list = field(default_factory=list)
    errors: list = field(default_factory=list)


def measure_streaming(server, token, user_id, streams_by_pacing, warmup):
    """{(agent key, pacing, path): Series}, gateway and direct alternating."""
    results = {}
    for name, agent, pacing in server.routes:
        streams = streams_by_pacing[pacing]
        env = server.sidecar_env(name)
        # (address, request target): PocketBase's port and the routed path,
        # or the sidecar's socket and the path the gateway would forward.
        paths = {"gateway": (("127.0.0.1", server.port), server.route_of(name, agent) + agent.run_path),
                 "direct": (env["PB_SOCKET"], agent.run_path)}

        def headers(path, target):
            if path == "gateway":  # PocketBase checks the token and signs the identity
                return {"Authorization": token}
            return {"Authorization": token, **gateway_headers(env["PB_GATEWAY_SECRET"], "POST", target, user_id)}

        for path in paths:
            results[(agent.key, pacing, path)] = Series()
        step(f"streaming {agent.key} ({PACINGS[pacing]}): {warmup} warm-up + {streams} runs per path")
        for i in range(warmup + streams):
            order = list(paths) if i % 2 == 0 else list(reversed(paths))
            for path in order:
                address, target = paths[path]
                try:
                    result = stream_once(address, target, agent, f"bench note {i} via {path}",
                                         headers(path, target))
                except (OSError, RuntimeError, ValueError) as exc:
                    results[(agent.key, pacing, path)].errors.append(str(exc))
                    continue
                if i >= warmup:
                    results[(agent.key, pacing, path)].streams.append(result)
    return results


# --------------------------------------------------------------------------
# report


def cold_table(runs):
    rows = []
    for i, run in enumerate(runs, 1):
        rows.append([str(i), f"{run.health:.2f}", f"{run.token:.2f}", f"{run.ready['agno']:.2f}",
                     f"{run.ready['ai-sdk']:.2f}", f"{max(run.ready.values()):.2f}"])
    if runs:
        rows.append(["**median**", f"{median([r.health for r in runs]):.2f}",
                     f"{median([r.token for r in runs]):.2f}",
                     f"{median([r.ready['agno'] for r in runs]):.2f}",
                     f"{median([r.ready['ai-sdk'] for r in runs]):.2f}",
                     f"{median([max(r.ready.values()) for r in runs]):.2f}"])
    return markdown(["run", "PocketBase health s", "user token s", "agno ready s", "AI SDK ready s",
                     "both ready s"], rows)


def stream_table(results, streams_by_pacing):
    rows = []
    for (key, pacing, path), series in results.items():
        streams = streams_by_pacing[pacing]
        got = series.streams
        first = [s.first_token * 1000 for s in got if s.first_token is not None]
        direct = results.get((key, pacing, "direct"))
        direct_first = [s.first_token * 1000 for s in direct.streams if s.first_token is not None] if direct else []
        added = (median(first) - median(direct_first)) if path == "gateway" and first and direct_first else None
        rows.append([AGENTS[key].label, PACINGS[pacing], path, f"{len(got)} / {streams}",
                     fmt(median([s.tokens for s in got]), ".0f"),
                     fmt(median(first), ".1f"),
                     fmt(min(first) if first else None, ".1f"), fmt(max(first) if first else None, ".1f"),
                     fmt(added, "+.1f"),
                     fmt(median([s.tokens_per_second for s in got]), ".1f"),
                     fmt(median([s.total * 1000 for s in got]), ".0f"),
                     str(len(series.errors))])
    return markdown(["agent", "model", "path", "streams", "tokens", "first token p50 ms", "min ms", "max ms",
                     "first token added ms", "tokens/s p50", "stream p50 ms", "errors"], rows)


def versions(binary, repo):
    agno = next((p.name[len("agno-"):-len(".dist-info")] for p in (repo / "examples/agno-agent/.venv/lib").glob(
        "python*/site-packages/agno-*.dist-info")), "?")
    ai = "?"
    with contextlib.suppress(OSError, ValueError, KeyError):
        ai = json.loads((repo / "examples/ai-sdk-agent/node_modules/ai/package.json").read_text())["version"]
    return {
        "processman": f"{first_line(['git', '-C', str(repo), 'describe', '--always', '--dirty'])} "
                      f"({first_line([str(binary), '--version'])})",
        "agno": agno,
        "ai (AI SDK)": ai,
        "python (agent venv)": first_line([str(repo / "examples/agno-agent/.venv/bin/python"), "--version"]),
        "node": first_line(["node", "--version"]),
        "kernel": first_line(["uname", "-sr"]),
    }


# --------------------------------------------------------------------------
# main


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, default=DEFAULT_REPO)
    parser.add_argument("--binary", type=Path, help="processman binary (default REPO/bin/pocketbase)")
    parser.add_argument("--runs", type=int, default=3, help="cold starts, each with a fresh pb_data")
    parser.add_argument("--streams", type=int, default=5,
                        help="measured streams per agent and path with the models' pacing")
    parser.add_argument("--unpaced-streams", type=int, default=20,
                        help="measured streams per agent and path unpaced (they take ~0.1 s each)")
    parser.add_argument("--warmup", type=int, default=1, help="streams per agent and path before measuring")
    parser.add_argument("--pacing", default="paced,unpaced", help="comma-separated subset of paced,unpaced")
    parser.add_argument("--ready-timeout", type=float, default=90, help="seconds for the agents to answer")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir for inspection")
    return parser.parse_args()


def run_benchmark(args, root):
    binary = args.binary or args.repo / "bin" / "pocketbase"
    pacings = [p.strip() for p in args.pacing.split(",") if p.strip()]
    unknown = [p for p in pacings if p not in PACINGS]
    if unknown:
        raise SystemExit(f"unknown pacing {unknown}; choose from {','.join(PACINGS)}")
    needs = [(str(binary), binary.exists()), ("node", shutil.which("node")),
             ("examples/agno-agent/.venv", (args.repo / "examples/agno-agent/.venv/bin/python").exists()),
             ("examples/ai-sdk-agent/node_modules", (args.repo / "examples/ai-sdk-agent/node_modules").exists())]
    missing = [what for what, ok in needs if not ok]
    if missing:
        raise SystemExit(f"missing: {', '.join(missing)} (run `make build examples`)")
    load_before = os.getloadavg()[0]
    streams_by_pacing = {"paced": args.streams, "unpaced": args.unpaced_streams}

    cold = []
    for i in range(args.runs):
        step(f"cold start {i + 1}/{args.runs}: serve with a fresh pb_data until both agents answer")
        cold.append(measure_cold_start(root / f"cold-{i + 1}", binary, args.repo, args.ready_timeout))
        run = cold[-1]
        step(f"  health {run.health:.2f}s, agno {run.ready['agno']:.2f}s, ai-sdk {run.ready['ai-sdk']:.2f}s")

    routes = [(f"{key}-{pacing}" if pacing != "paced" else key, agent, pacing)
              for pacing in pacings for key, agent in AGENTS.items()]
    server = PocketBase(root / "streaming", binary, args.repo, routes)
    try:
        step("starting PocketBase with " + ", ".join(name for name, _, _ in routes))
        server.start()
        server.wait_healthy()
        token, user_id = server.user_token()
        for name, agent, _ in routes:
            wait_answering(f"{server.base}{server.route_of(name, agent)}{agent.ready_path}", token,
                           time.perf_counter() + args.ready_timeout)
        results = measure_streaming(server, token, user_id, streams_by_pacing, args.warmup)
    finally:
        step("stopping PocketBase")
        server.stop()

    print()
    for name, version in versions(binary, args.repo).items():
        print(f"- {name}: {version}")
    print(f"- machine: {os.cpu_count()} cores, shared by PocketBase, the agents and this client; "
          f"load average {load_before:.2f} before the run, {os.getloadavg()[0]:.2f} after")
    print()
    print(f"Cold start, seconds from the exec of `pocketbase serve` (fresh pb_data, migrations "
          f"included) to /api/health answering, to a user's token (sign-up and login after health), "
          f"and to each agent answering through the gateway ({AGENTS['agno'].route}"
          f"{AGENTS['agno'].ready_path}, {AGENTS['ai-sdk'].route}{AGENTS['ai-sdk'].ready_path}):")
    print()
    print(cold_table(cold))
    print()
    print(f"Streaming one run (the offline models: text, a tool call saving a note in PocketBase, "
          f"a tool call listing notes, an answer), {args.streams} streams per row paced, "
          f"{args.unpaced_streams} unpaced, after {args.warmup} warm-up, gateway and direct alternating; first token = time from sending the request to "
          f"the first content delta; tokens/s = (tokens − 1) / (last − first token), tool calls "
          f"included; direct = the sidecar's Unix socket, signed like the gateway:")
    print()
    print(stream_table(results, streams_by_pacing))
    errors = [f"{key}/{pacing}/{path}: {e}" for (key, pacing, path), s in results.items() for e in s.errors]
    for error in errors[:10]:
        print(f"- error: {error}")
    return 1 if errors else 0


def main():
    return run_main(run_benchmark, parse_args(), "pmagents-",
                    failures=(RuntimeError, TimeoutError, OSError, ValueError, subprocess.SubprocessError))


if __name__ == "__main__":
    sys.exit(main())
