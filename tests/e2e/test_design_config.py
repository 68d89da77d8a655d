"""The pb_processes.json of the design that started processman, byte for
byte, as a new user would try it: a bare list, "interpreter": "auto",
"instances": 1, a script path written from the config file's directory, a
real virtualenv for the Python agent and a real `npm run start` for the
Node service; and the environment contract each child reads (PB_URL,
PB_PORT, DB_DSN). Also the lifecycle lines PocketBase prints on stdout."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time

import e2e_helpers as h
from e2e_helpers import FIXTURES, run_pb

# As the design writes it, indentation included.
DESIGN = """[
  {"name": "ai-agent", "script": "./agent/main.py", "cwd": "./agent", "instances": 1,
   "env": {"PORT": "8001", "OPENAI_API_KEY": "sk-..."}, "interpreter": "auto", "watch": true},
  {"name": "pdf-parser", "script": "npm", "args": ["run", "start"], "cwd": "./parser-service"}
]
"""


def design_project(base):
    """The design's two services in base, with a real .venv for the agent
    (the parser's node_modules come from the repository's install)."""
    shutil.copytree(FIXTURES / "design", base, symlinks=True, dirs_exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(base / "agent" / ".venv")], check=True)
    (base / "pb_processes.json").write_text(DESIGN)


def seen(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def test_the_design_file_runs_as_written(pocketbase, pb_binary, tmp_path):
    base = tmp_path / "app"
    design_project(base)

    # pm check takes the list and says which script it used.
    res = run_pb(pb_binary, "pm", "check", "--dir", str(base / "pb_data"), cwd=base)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert f"{base / 'pb_processes.json'}: ok, 2 process(es)" in res.stdout, out
    assert (
        f'note: script "./agent/main.py" is not under cwd {base / "agent"}; '
        f'using {base / "agent" / "main.py"}, relative to the config file'
    ) in res.stdout, out
    assert re.search(rf"^ai-agent\s+{re.escape(str(base / 'agent' / '.venv' / 'bin' / 'python'))}", res.stdout, re.M), out

    pb = pocketbase(base_dir=base)
    agent = h.wait_until(lambda: seen(base / "agent-seen.json"), 30, lambda: f"ai-agent wrote nothing\n{pb.logs()}")
    parser = h.wait_until(
        lambda: seen(base / "parser-service" / "seen.json"), 60, lambda: f"pdf-parser wrote nothing\n{pb.logs()}"
    )

    for name, child in (("ai-agent", agent), ("pdf-parser", parser)):
        env = child["env"]
        assert env["PB_URL"] == pb.url, (name, env)
        assert env["PB_PORT"] == str(pb.port), (name, env)  # PocketBase's own port
        assert env["DB_DSN"] == f"file://{base / 'pb_data' / 'data.db'}?mode=ro", (name, env)
        assert env["PB_DB_DRIVER"] == "sqlite", (name, env)
        assert env["PB_PROCESS_NAME"] == name, (name, env)
        assert child["collections"] > 0, f"{name} read no collections through DB_DSN: {child}"
        assert "readonly" in child["write"], f"{name} could write through DB_DSN: {child}"
    assert agent["env"]["PORT"] == "8001", "the agent's own env wins"
    assert agent["python"].startswith(str(base / "agent" / ".venv" / "bin" / "python")), "the agent did not run in its .venv"
    assert agent["env"]["VIRTUAL_ENV"] == str(base / "agent" / ".venv")

    listed = {p["name"]: p for p in pb.api("GET", "/api/pm/list")["items"]}
    assert set(listed) == {"ai-agent", "pdf-parser"}, listed
    for name in listed:
        assert listed[name]["state"] == "online" and listed[name]["restarts"] == 0, listed[name]
    # instances: 1 is one copy
    agents = [pid for pid in h.descendants(pb.pid) if any(a.endswith("agent/main.py") for a in h.cmdline(pid))]
    assert len(agents) == 1 and agents[0] == agent["pid"], h.describe(agents)

    # Each state change is a line on PocketBase's stdout.
    h.wait_until(lambda: "pdf-parser started (pid" in pb.stdout(), 10, pb.logs)
    assert re.search(rf"processman: ai-agent started \(pid {agent['pid']}\): \.venv/bin/python3? main\.py$", pb.stdout(), re.M), pb.stdout()

    # A watched file changes: the line names it, and the agent restarts.
    (base / "agent" / "main.py").write_text((base / "agent" / "main.py").read_text() + "\n# edited\n")
    h.wait_until(lambda: "ai-agent: files changed (main.py), restarting" in pb.stdout(), 15, pb.logs)
    h.wait_until(lambda: (seen(base / "agent-seen.json") or {}).get("pid") not in (None, agent["pid"]), 30, pb.logs)
    assert "ai-agent stopped" in pb.stdout(), pb.stdout()
    assert pb.stop() == 0


CRASHER = "import sys, time\nprint('up', flush=True)\ntime.sleep(0.3)\nprint('boom: no config', file=sys.stderr, flush=True)\nsys.exit(3)\n"


def test_lifecycle_lines_on_stdout(pocketbase):
    pb = pocketbase(
        [
            {"name": "crasher", "script": "crash.py", "max_restarts": 1, "restart_delay": "200ms"},
            {"name": "side", "script": "side.py", "route": "/api/e2e-side", "health": {"line": "listening"}},
        ],
        files={
            "crash.py": CRASHER,
            "side.py": "import time\ntime.sleep(0.5)\nprint('listening', flush=True)\ntime.sleep(600)\n",
        },
    )
    h.wait_until(lambda: "crasher errored:" in pb.stdout(), 30, pb.logs)
    h.wait_until(lambda: "side ready" in pb.stdout(), 30, pb.logs)
    lines = [line.split(" processman: ", 1)[1] for line in pb.stdout().splitlines() if " processman: " in line]
    crasher = [line for line in lines if line.startswith("crasher")]
    assert re.fullmatch(r"crasher started \(pid \d+\): \S+python3? crash\.py", crasher[0]), crasher
    assert re.fullmatch(
        r'crasher exited with code 3 after \d+(\.\d+)?m?s; last output: "boom: no config"; restarting in \d+ms', crasher[1]
    ), crasher
    assert crasher[2].startswith("crasher started (pid"), crasher
    assert crasher[3].startswith("crasher exited with code 3 after"), crasher
    assert "restarting" not in crasher[3], crasher
    assert re.fullmatch(r"crasher errored: .+", crasher[4]), crasher
    assert re.search(r"side ready \(pid \d+, after \d+(\.\d+)?m?s\)", "\n".join(lines)), lines
    # every line starts with the time, as PocketBase's banner does
    stamped = [line for line in pb.stdout().splitlines() if " processman: " in line]
    assert all(re.match(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d processman: ", line) for line in stamped), stamped

    assert pb.stop() == 0
    assert "side stopped" in pb.stdout(), pb.stdout()


def test_processes_quiet_turns_the_lines_off(pocketbase):
    pb = pocketbase(
        [{"name": "sleeper", "script": "sleep", "args": ["600"]}],
        extra_args=("--processesQuiet",),
    )
    h.wait_until(lambda: pb.api("GET", "/api/pm/sleeper")["state"] == "online", 30, pb.logs)
    time.sleep(0.5)
    assert "processman:" not in pb.stdout(), pb.stdout()
    assert "Server started" in pb.stdout(), pb.stdout()
