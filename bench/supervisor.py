#!/usr/bin/env python3
"""Compare the supervisor overhead of PM2, supervisord and processman.

Measures, on this machine and in one run:
  1. restart latency: gap from a crashing child's exit to its next start;
  2. log throughput: a child writing N lines to stdout, against a `| cat` floor;
  3. memory: manager RSS with 10 idle children;
  4. idle CPU: manager utime+stime over a window with those 10 idle children.

Standard library only. Everything runs under a temporary directory, every
process started here is stopped at the end (also on error or Ctrl-C), and every
wait is bounded. See README.md next to this file.
"""

import argparse
import contextlib
import gzip
import json
import math
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_REPO = BENCH_DIR.parent
PM2_CLI = BENCH_DIR / "node_modules" / "pm2" / "bin" / "pm2"
SUPERVISORD = BENCH_DIR / ".venv" / "bin" / "supervisord"

# Every process started by this run inherits this variable, so leftovers can
# be found in /proc/<pid>/environ even if a manager lost track of them.
RUN_MARKER_VAR = "PROCESSMAN_BENCH_RUN"
RUN_ID = uuid.uuid4().hex

LINE_MARKER = "pmbench-line"
WATCHDOG_ARGV_MARK = b"processman-watchdog"
CLK_TCK = os.sysconf("SC_CLK_TCK")

CRASH_SCRIPT = """#!/bin/sh
# Restart-latency child: record start, live ~50 ms, record exit, fail.
echo "start $(date +%s%N)" >> "$1"
sleep 0.05
echo "exit $(date +%s%N)" >> "$1"
exit 1
"""

LOG_CHILD = f'''"""Log-throughput child: write N lines to stdout and time the writes."""
import os
import sys
import time

if not os.environ.get("PYTHONUNBUFFERED"):
    # Same behaviour under every manager: one write(2) per line.
    os.environ["PYTHONUNBUFFERED"] = "1"
    os.execv(sys.executable, [sys.executable] + sys.argv)

count, result_path = int(sys.argv[1]), sys.argv[2]
linger = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
write = sys.stdout.write
pad = "x" * 36  # "{LINE_MARKER} 000000000 " + pad + newline = 60 bytes

start = time.perf_counter()
for i in range(count):
    write(f"{LINE_MARKER} {{i:09d}} {{pad}}\\n")
elapsed = time.perf_counter() - start

with open(result_path + ".tmp", "w") as out:
    out.write(f"{{elapsed:.6f}}\\n")
os.replace(result_path + ".tmp", result_path)
time.sleep(linger)  # stay up so no restart policy comes into play
'''


# --------------------------------------------------------------------------
# /proc helpers


def proc_stat(pid):
    """(ppid, utime+stime ticks, starttime) of pid, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    # fields[0] is field 3 (state) of proc(5).
    return int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[19])


def all_pids():
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def descendants(roots):
    """All live descendants of the given pids (not including the roots)."""
    children = {}
    for pid in all_pids():
        stat = proc_stat(pid)
        if stat:
            children.setdefault(stat[0], []).append(pid)
    found, todo = [], list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def rss_kb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_ticks(pids):
    return sum((proc_stat(pid) or (0, 0, 0))[1] for pid in pids)


def snapshot(pids):
    """{pid: starttime} so a pid can be killed later without hitting a reused pid."""
    return {pid: stat[2] for pid in pids if (stat := proc_stat(pid))}


def kill_snapshot(snap):
    for pid, started in snap.items():
        stat = proc_stat(pid)
        if stat and stat[2] == started:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def sweep_marked_processes():
    """SIGKILL any process still carrying this run's marker; return their pids."""
    needle = f"{RUN_MARKER_VAR}={RUN_ID}".encode()
    killed = []
    for pid in all_pids():
        if pid == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
    return killed


# --------------------------------------------------------------------------
# small utilities


def wait_for(predicate, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def wait_exit(proc, timeout):
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout)
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def run_logged(argv, log_path, env=None, timeout=60):
    """Run a short command, appending its output to log_path; raise on failure."""
    with open(log_path, "ab") as log:
        result = subprocess.run([str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{shlex.join(map(str, argv))} failed ({result.returncode}); see {log_path}")


def start_logged(argv, log_path, env=None):
    """Start a long-running command in its own session, output to log_path."""
    with open(log_path, "ab") as log:
        return subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)


def serve_pocketbase(binary, data_dir, port, log_path, extra=()):
    """Starts `pocketbase serve` on 127.0.0.1:port and waits for its health
    endpoint. --dev=false is already a built binary's default, but
    PocketBase turns dev mode (every log record and SQL statement printed)
    on for a binary under the temp dir, as for `go run`."""
    proc = start_logged([binary, "serve", "--dev=false", *extra, "--dir", data_dir,
                         "--http", f"127.0.0.1:{port}"], log_path)
    wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/api/health") or proc.poll() is not None, 60,
             "PocketBase health endpoint", interval=0.05)
    if proc.poll() is not None:
        raise RuntimeError(f"pocketbase exited; see {log_path}")
    return proc


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_ok(url):
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


def percentile(values, pct):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def write_executable(path, text):
    path.write_text(text)
    path.chmod(0o755)
    return path


# --------------------------------------------------------------------------
# managers: start(programs) / stop() / manager_pids() / version()


@dataclass
class Program:
    name: str
    argv: list  # argv[0] is an absolute path to an executable
    cwd: Path
    log_file: Path
    restart_immediately: bool = False  # restart on exit, zero delay, no limit


class Manager:
    """A supervisor (or proxy) run in the foreground as ``self.proc``."""

    label = "?"
    stop_timeout = 30  # seconds a graceful stop (SIGTERM) may take

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = None

    def start(self, programs):
        raise NotImplementedError

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def manager_pids(self):
        return [self.proc.pid] if self.running() else []

    def version(self):
        raise NotImplementedError

    def baseline_rss_kb(self):
        """RSS that the manager has even without supervising anything (subtracted)."""
        return 0

    def stop(self):
        """Shut down gracefully, then kill whatever the manager left behind."""
        pids = self.manager_pids()
        leftovers = snapshot(pids + descendants(pids))
        try:
            self._shutdown()
        finally:
            kill_snapshot(leftovers)

    def _shutdown(self):
        if self.running():
            self.proc.terminate()
            wait_exit(self.proc, self.stop_timeout)


class PM2(Manager):
    label = "pm2"

    def __init__(self, workdir):
        super().__init__(workdir)
        self.home = self.workdir / "pm2home"
        self.env = {**os.environ, "PM2_HOME": str(self.home)}
        self.cli_log = self.workdir / "pm2-cli.log"

    def _cli(self, *args, timeout=60):
        run_logged(["node", PM2_CLI, *args], self.cli_log, env=self.env, timeout=timeout)

    def start(self, programs):
        ecosystem = self.workdir / "ecosystem.json"
        ecosystem.write_text(json.dumps({"apps": [self._app(p) for p in programs]}, indent=2))
        self._cli("start", ecosystem)
        wait_for(lambda: self.manager_pids(), 20, "PM2 daemon pid file")

    @staticmethod
    def _app(program):
        app = {
            "name": program.name,
            "script": program.argv[0],
            "args": program.argv[1:],
            "interpreter": "none",
            "cwd": str(program.cwd),
            "out_file": str(program.log_file),
            "error_file": str(program.log_file.with_suffix(".err.log")),
            "merge_logs": True,
            "vizion": False,
            "autorestart": True,
        }
        if program.restart_immediately:
            app.update(restart_delay=0, max_restarts=1_000_000, min_uptime=100)
        return app

    def manager_pids(self):
        try:
            return [int((self.home / "pm2.pid").read_text())]
        except (OSError, ValueError):
            return []

    def version(self):
        env = {**self.env, "PM2_HOME": str(self.workdir / "pm2home-version")}
        try:
            out = subprocess.run(["node", str(PM2_CLI), "--version"], env=env, capture_output=True,
                                 text=True, timeout=60, stdin=subprocess.DEVNULL).stdout
        finally:
            # `pm2 --version` spawns a daemon in its PM2_HOME; kill that one too.
            with contextlib.suppress(Exception):
                run_logged(["node", PM2_CLI, "kill"], self.cli_log, env=env, timeout=30)
        return out.strip().splitlines()[-1] if out.strip() else "?"

    def _shutdown(self):
        with contextlib.suppress(Exception):
            self._cli("kill", timeout=30)


class Supervisord(Manager):
    label = "supervisord"

    def __init__(self, workdir):
        super().__init__(workdir)
        self.socket = self.workdir / "supervisor.sock"

    def start(self, programs):
        conf = self.workdir / "supervisord.conf"
        conf.write_text(self._config(programs))
        self.proc = start_logged([SUPERVISORD, "--nodaemon", "--configuration", conf],
                                 self.workdir / "supervisord.out")
        wait_for(lambda: self.socket.exists() or self.proc.poll() is not None, 20,
                 "supervisord socket")
        if self.proc.poll() is not None:
            raise RuntimeError(f"supervisord exited; see {self.workdir / 'supervisord.out'}")

    def _config(self, programs):
        d = self.workdir
        sections = [
            f"[unix_http_server]\nfile={self.socket}\n",
            f"[supervisord]\nnodaemon=true\nlogfile={d / 'supervisord.log'}\n"
            f"pidfile={d / 'supervisord.pid'}\nchildlogdir={d}\n",
            "[rpcinterface:supervisor]\n"
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n",
            f"[supervisorctl]\nserverurl=unix://{self.socket}\n",
        ]
        sections += [self._program(p) for p in programs]
        return "\n".join(sections)

    @staticmethod
    def _program(program):
        lines = [
            f"[program:{program.name}]",
            f"command={shlex.join(map(str, program.argv))}",
            f"directory={program.cwd}",
            "autostart=true",
            "redirect_stderr=true",
            f"stdout_logfile={program.log_file}",
            "stdout_logfile_maxbytes=0",  # no rotation: every line stays in one file
            "stopasgroup=true",
            "killasgroup=true",
            "stopwaitsecs=5",
        ]
        if program.restart_immediately:
            lines += ["autorestart=true", "startsecs=0", "startretries=1000000"]
        return "\n".join(lines) + "\n"

    def version(self):
        out = subprocess.run([str(SUPERVISORD), "--version"], capture_output=True, text=True,
                             timeout=30, stdin=subprocess.DEVNULL).stdout
        return out.strip() or "?"


class Processman(Manager):
    label = "processman"

    def __init__(self, workdir, binary, bare_rss_kb=0):
        super().__init__(workdir)
        self.binary = Path(binary)
        self.bare_rss_kb = bare_rss_kb

    def start(self, programs):
        data_dir = self.workdir / "pb_data"
        if programs:  # no programs: serve bare, without a processes file
            config = {"processes": [self._process(p) for p in programs]}
            (self.workdir / "pb_processes.json").write_text(json.dumps(config, indent=2))
        port = free_port()
        self.proc = start_logged([self.binary, "serve", "--dir", data_dir,
                                  "--http", f"127.0.0.1:{port}"], self.workdir / "pocketbase.out")
        health = f"http://127.0.0.1:{port}/api/health"
        wait_for(lambda: http_ok(health) or self.proc.poll() is not None, 60,
                 "PocketBase health endpoint", interval=0.2)
        if self.proc.poll() is not None:
            raise RuntimeError(f"pocketbase exited; see {self.workdir / 'pocketbase.out'}")

    @staticmethod
    def _process(program):
        entry = {
            "name": program.name,
            "script": str(program.argv[0]),
            "args": [str(a) for a in program.argv[1:]],
            "interpreter": "none",
            "cwd": str(program.cwd),
            "log_file": str(program.log_file),
            "log_max_size_mb": 4096,  # no rotation, as for supervisord (default 10 MB x 5 files)
        }
        if program.restart_immediately:
            entry.update({"restart": "always", "restart_delay": "0s", "backoff_factor": 1,
                          "max_restarts": -1, "min_uptime": "1s"})
        return entry

    def watchdog_pids(self):
        if not self.proc:
            return []
        return [pid for pid in descendants([self.proc.pid]) if WATCHDOG_ARGV_MARK in cmdline(pid)]

    def manager_pids(self):
        if not self.running():
            return []
        return [self.proc.pid] + self.watchdog_pids()

    def baseline_rss_kb(self):
        return self.bare_rss_kb

    def version(self):
        result = subprocess.run([str(self.binary), "--version"], capture_output=True, text=True,
                                timeout=30, stdin=subprocess.DEVNULL)
        return (result.stdout or result.stderr).strip() or "?"


@contextlib.contextmanager
def running(manager, programs):
    try:
        manager.start(programs)
        yield manager
    finally:
        manager.stop()


# --------------------------------------------------------------------------
# measurement 1: restart latency


def read_records(path):
    try:
        lines = path.read_text().split("\n")
    except OSError:
        return []
    records = []
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("start", "exit") and parts[1].isdigit():
            records.append((parts[0], int(parts[1])))
    return records


def restart_gaps_ms(records):
    """Gap from each exit record to the start record right after it."""
    return [(b[1] - a[1]) / 1e6 for a, b in zip(records, records[1:])
            if a[0] == "exit" and b[0] == "start"]


def crash_program(workdir):
    script = write_executable(workdir / "crash.sh", CRASH_SCRIPT)
    records = workdir / "restarts.log"
    return Program("crasher", [str(script), str(records)], workdir, workdir / "crasher.log",
                   restart_immediately=True), records


def measure_restarts(manager, restarts, timeout):
    program, records = crash_program(manager.workdir)
    with running(manager, [program]):
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: len(restart_gaps_ms(read_records(records))) >= restarts,
                     timeout, "restarts", interval=0.2)
    return restart_gaps_ms(read_records(records))[:restarts]


def measure_restarts_floor(workdir, restarts):
    """The same script restarted by a bare loop here: fork/exec + sh + date cost."""
    workdir.mkdir(parents=True, exist_ok=True)
    program, records = crash_program(workdir)
    for _ in range(restarts + 1):
        # No timeout: Popen.wait(timeout) polls with sleeps and would inflate the gap.
        # The script ends by itself after ~50 ms.
        subprocess.run(program.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return restart_gaps_ms(read_records(records))[:restarts]


# --------------------------------------------------------------------------
# measurement 2: log throughput


def log_program(workdir, lines):
    child = workdir / "log_child.py"
    child.write_text(LOG_CHILD)
    result = workdir / "log_child.result"
    argv = [sys.executable, str(child), str(lines), str(result), "3600"]
    return Program("logger", argv, workdir, workdir / "logger.log"), result


def log_files(log_file):
    """The log file plus any rotated siblings (logger.log.1, logger-2024….log.gz, …)."""
    return sorted(p for p in log_file.parent.glob(log_file.stem + "*") if p.is_file())


def count_marker_lines(paths):
    marker = LINE_MARKER.encode()
    total = 0
    for path in paths:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            tail = b""
            while chunk := f.read(1 << 22):
                data = tail + chunk
                total += data.count(marker)
                tail = data[-(len(marker) - 1):]  # too short to hold a whole marker
    return total


def wait_log_settled(log_file, timeout, quiet_for=2.0):
    """Wait until the log files stop growing (the manager drained the pipe)."""
    deadline = time.monotonic() + timeout
    last_size, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        size = sum(p.stat().st_size for p in log_files(log_file))
        if size != last_size:
            last_size, last_change = size, time.monotonic()
        elif time.monotonic() - last_change >= quiet_for:
            return
        time.sleep(0.25)


def read_seconds(result):
    return float(result.read_text())


def measure_log_throughput(manager, lines, timeout):
    program, result = log_program(manager.workdir, lines)
    with running(manager, [program]):
        wait_for(result.exists, timeout, "log child result", interval=0.2)
        wait_log_settled(program.log_file, timeout=60)
        count = count_marker_lines(log_files(program.log_file))
    return read_seconds(result), count


def measure_log_floor(workdir, lines, timeout):
    workdir.mkdir(parents=True, exist_ok=True)
    program, result = log_program(workdir, lines)
    command = f"{shlex.join(program.argv[:-1])} | cat > /dev/null"
    subprocess.run(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL, timeout=timeout,
                   check=True)
    return read_seconds(result)


# --------------------------------------------------------------------------
# measurements 3 and 4: memory and idle CPU with idle children


def idle_programs(workdir, count):
    sleep = shutil.which("sleep") or "/bin/sleep"
    return [Program(f"idle{i}", [sleep, "3600"], workdir, workdir / f"idle{i}.log")
            for i in range(1, count + 1)]


def sleeping_children(manager):
    return [pid for pid in descendants(manager.manager_pids())
            if cmdline(pid).split(b"\0")[0].endswith(b"sleep")]


def measure_bare_rss(manager, settle):
    with running(manager, []):
        time.sleep(settle)
        return sum(rss_kb(pid) for pid in manager.manager_pids())


def measure_idle(managers, children, settle, seconds):
    """Run all managers at once with idle children; return {label: (rss_kb, cpu_pct)}."""
    with contextlib.ExitStack() as stack:
        for manager in managers:
            stack.enter_context(running(manager, idle_programs(manager.workdir, children)))
        for manager in managers:
            wait_for(lambda: len(sleeping_children(manager)) >= children, 30,
                     f"{manager.label} idle children")
        time.sleep(settle)
        pids = {m.label: m.manager_pids() for m in managers}
        rss = {m.label: {pid: rss_kb(pid) for pid in pids[m.label]} for m in managers}
        ticks0, wall0 = {k: cpu_ticks(v) for k, v in pids.items()}, time.monotonic()
        time.sleep(seconds)
        ticks1, wall1 = {k: cpu_ticks(v) for k, v in pids.items()}, time.monotonic()
    results = {}
    for m in managers:
        cpu_pct = 100 * (ticks1[m.label] - ticks0[m.label]) / CLK_TCK / (wall1 - wall0)
        added_kb = sum(rss[m.label].values()) - m.baseline_rss_kb()
        results[m.label] = (added_kb, cpu_pct, describe_rss(rss[m.label], m.baseline_rss_kb()))
    return results


def describe_rss(rss_by_pid, baseline_kb):
    parts = [f"pid {pid} {kb / 1024:.1f}" for pid, kb in rss_by_pid.items()]
    text = " + ".join(parts) or "no pids"
    if baseline_kb:
        text += f" − bare {baseline_kb / 1024:.1f}"
    return text + " MB"


# --------------------------------------------------------------------------
# report


def fmt(value, spec, missing="n/a"):
    return missing if value is None else format(value, spec)


def restart_cells(gaps, wanted):
    if not gaps:
        return ["n/a", "n/a"]
    note = "" if len(gaps) >= wanted else f" (n={len(gaps)})"
    return [f"{statistics.median(gaps):.1f}{note}", f"{percentile(gaps, 90):.1f}"]


def print_table(rows, lines, restarts, floor_seconds):
    million = f"{lines / 1e6:g}M" if lines >= 1_000_000 else f"{lines:,}"
    headers = ["manager", "restart gap p50 ms", "restart gap p90 ms", f"{million} lines s",
               "× floor", "lines in log", "manager RSS MB (added)", "idle CPU %"]
    table = [headers, ["---"] + ["---:"] * (len(headers) - 1)]
    for row in rows:
        seconds = row.get("log_seconds")
        ratio = seconds / floor_seconds if seconds is not None else None
        rss = row.get("rss_kb")
        table.append([row["label"], *restart_cells(row.get("gaps"), restarts),
                      fmt(seconds, ".2f"), fmt(ratio, ".2f"),
                      fmt(row.get("log_lines"), ",", "–" if row.get("floor") else "n/a"),
                      fmt(rss / 1024 if rss is not None else None, ".1f",
                          "–" if row.get("floor") else "n/a"),
                      fmt(row.get("cpu_pct"), ".2f", "–" if row.get("floor") else "n/a")])
    for cells in table:
        print("| " + " | ".join(cells) + " |")


def step(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def guarded(errors, label, what, func, *args):
    """Run one measurement; record and report a failure instead of aborting the run."""
    step(f"{label}: {what}")
    try:
        return func(*args)
    except (TimeoutError, RuntimeError, OSError, subprocess.SubprocessError, ValueError) as exc:
        errors.append(f"{label} {what}: {exc}")
        step(f"  failed: {exc}")
        return None


# --------------------------------------------------------------------------
# main


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--managers", default="pm2,supervisord,processman",
                        help="comma-separated subset of pm2,supervisord,processman")
    parser.add_argument("--repo", type=Path, default=DEFAULT_REPO)
    parser.add_argument("--binary", type=Path, help="processman binary (default REPO/bin/pocketbase)")
    parser.add_argument("--restarts", type=int, default=40)
    parser.add_argument("--restart-timeout", type=float, default=90)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--log-timeout", type=float, default=300)
    parser.add_argument("--children", type=int, default=10)
    parser.add_argument("--settle", type=float, default=5)
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir for inspection")
    return parser.parse_args()


def choose_factories(args):
    """[(label, factory(workdir, **kw))] for the managers that can run here."""
    wanted = [m.strip() for m in args.managers.split(",") if m.strip()]
    binary = args.binary or args.repo / "bin" / "pocketbase"
    available = {
        "pm2": (PM2, PM2_CLI.exists(), f"{PM2_CLI} missing (run bench/run)"),
        "supervisord": (Supervisord, SUPERVISORD.exists(), f"{SUPERVISORD} missing (run bench/run)"),
        "processman": (lambda d, **kw: Processman(d, binary, **kw), binary.exists(),
                       f"{binary} missing (build ./cmd/pocketbase)"),
    }
    factories = []
    for name in wanted:
        factory, ok, why = available[name]
        if ok:
            factories.append((name, factory))
        else:
            step(f"skipping {name}: {why}")
    return factories


def install_signal_handlers():
    def interrupt(signum, _frame):
        # Ignore further signals so cleanup can finish, then unwind.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)


def run_benchmark(args, root):
    errors, rows = [], []
    factories = choose_factories(args)
    if not factories:
        raise SystemExit("no manager available")

    step("floors: direct restart loop and `| cat`")
    floor_seconds = measure_log_floor(root / "floor-log", args.lines, args.log_timeout)
    rows.append({"label": "floor (no manager)", "floor": True, "log_seconds": floor_seconds,
                 "gaps": measure_restarts_floor(root / "floor-restart", args.restarts)})

    versions = {}
    for name, factory in factories:
        row = {"label": name}
        manager = factory(root / f"{name}-version")
        versions[name] = guarded(errors, name, "version", manager.version) or "?"
        row["gaps"] = guarded(errors, name, "restart latency", measure_restarts,
                              factory(root / f"{name}-restart"), args.restarts, args.restart_timeout)
        log = guarded(errors, name, "log throughput", measure_log_throughput,
                      factory(root / f"{name}-log"), args.lines, args.log_timeout)
        if log:
            row["log_seconds"], row["log_lines"] = log
        rows.append(row)

    idle_managers = []
    for name, factory in factories:
        kwargs = {}
        if name == "processman":
            bare = guarded(errors, name, "bare RSS", measure_bare_rss,
                           factory(root / "processman-bare"), args.settle)
            if bare is None:
                continue
            kwargs["bare_rss_kb"] = bare
        idle_managers.append(factory(root / f"{name}-idle", **kwargs))
    step(f"idle: {len(idle_managers)} managers × {args.children} children, "
         f"{args.settle:g}s settle + {args.idle_seconds:g}s CPU window")
    idle = guarded(errors, "all", "idle RSS/CPU", measure_idle, idle_managers, args.children,
                   args.settle, args.idle_seconds) or {}
    for row in rows:
        if row["label"] in idle:
            row["rss_kb"], row["cpu_pct"], row["rss_detail"] = idle[row["label"]]

    print()
    for name, version in versions.items():
        print(f"- {name} version: {version}")
    print(f"- floor: {args.lines:,} lines through `| cat > /dev/null` in {floor_seconds:.2f} s; "
          f"direct restart loop gap p50 {statistics.median(rows[0]['gaps']):.1f} ms")
    print(f"- machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
          f"{args.restarts} restarts, {args.children} idle children, {args.idle_seconds:g} s CPU window")
    print()
    print_table(rows, args.lines, args.restarts, floor_seconds)
    print()
    for row in rows:
        if row.get("rss_detail"):
            print(f"- {row['label']} RSS: {row['rss_detail']}")
    if errors:
        print("\nErrors:")
        for error in errors:
            print(f"- {error}")
    return 1 if errors else 0


def run_main(run_benchmark, args, prefix, failures=()):
    """Runs run_benchmark(args, root) in a fresh temp dir named prefix*:
    signals handled, every marked leftover process killed and the dir
    removed at the end (kept with --keep, or after one of failures, whose
    logs tell why). Returns the exit status."""
    os.environ[RUN_MARKER_VAR] = RUN_ID  # sweep_marked_processes finds leftovers by it
    install_signal_handlers()
    root = Path(tempfile.mkdtemp(prefix=prefix))
    started = time.monotonic()
    status, keep = 1, args.keep
    try:
        status = run_benchmark(args, root)
    except KeyboardInterrupt:
        step("interrupted; cleaning up")
        status = 130
    except tuple(failures) as exc:
        step(f"failed: {exc}")
        keep = True
    finally:
        leftovers = sweep_marked_processes()
        if leftovers:
            step(f"killed {len(leftovers)} leftover processes: {leftovers}")
        if keep:
            step(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
        step(f"done in {time.monotonic() - started:.0f}s")
    return status


def main():
    return run_main(run_benchmark, parse_args(), "pmbench-")


if __name__ == "__main__":
    sys.exit(main())
