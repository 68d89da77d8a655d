"""Bad pb_processes.json files: every problem is reported with its JSON path
and a hint, PocketBase keeps serving, valid entries still run; and
`pocketbase pm check` validates a file without serving."""

from __future__ import annotations

import json
import re
import subprocess
import uuid

import pytest

import e2e_helpers as h
from e2e_helpers import run_pb

GOOD_SCRIPT = 'import os, time\nprint("good process running as", os.environ["PB_PROCESS_NAME"], flush=True)\ntime.sleep(300)\n'

# (entry, JSON path of its error, a fragment of the message): one problem
# each. The scripts exist, so an entry that wrongly started would show up.
BAD_ENTRIES = [
    ({"name": "bad name!", "script": "good.py"}, "/processes/1/name", 'invalid value "bad name!"'),
    ({"name": "typo", "script": "good.py", "restrat": "always"}, "/processes/2/restrat", 'did you mean "restart"'),
    ({"name": "noscript"}, "/processes/3/script", 'missing required field "script"'),
    ({"name": "badtype", "script": "good.py", "max_restarts": "3"}, "/processes/4/max_restarts", "expected integer"),
    ({"name": "badcwd", "script": "good.py", "cwd": "does-not-exist"}, "/processes/5/cwd", "does not exist"),
    ({"name": "good", "script": "good.py"}, "/processes/6/name", 'duplicate name "good"'),
    ({"name": "baddur", "script": "good.py", "kill_timeout": "5 seconds"}, "/processes/7/kill_timeout", 'invalid value "5 seconds"'),
    ({"name": "badsig", "script": "good.py", "kill_signal": "SIGFOO"}, "/processes/8/kill_signal", 'invalid value "SIGFOO"'),
    ({"name": "badenv", "script": "good.py", "env": {"PORT": 8000}}, "/processes/9/env/PORT", "expected string"),
]

SYNTAX_ERROR_CONFIG = """{
  "processes": [
    {"name": "a", "script": "good.py",}
  ]
}
"""


def bad_config(marker: str = "") -> dict:
    """The good entry first, then BAD_ENTRIES; every entry gets E2E_MARKER
    when marker is given."""
    entries = [{"name": "good", "script": "good.py"}] + [dict(entry) for entry, _, _ in BAD_ENTRIES]
    if marker:
        for e in entries:
            e["env"] = dict(e.get("env") or {}, E2E_MARKER=marker)
    return {"processes": entries}


def error_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if "/processes/" in line]


def assert_reports_every_error(text: str, file_name: str) -> None:
    assert f"processman: {len(BAD_ENTRIES)} config errors:" in text, text
    lines = error_lines(text)
    assert len(lines) == len(BAD_ENTRIES), f"want {len(BAD_ENTRIES)} error lines:\n{text}"
    for (entry, path, fragment), line in zip(BAD_ENTRIES, lines):
        # "<file>: <json path> (process "<name>"): <message>; <hint>", in file order
        assert f"{file_name}: {path} " in line, f"want {path} in {line!r}\n{text}"
        assert fragment in line, f"want {fragment!r} in {line!r}"
        assert "; " in line, f"no hint in {line!r}"


def test_bad_entries_are_reported_and_the_good_one_runs(pocketbase, tmp_path):
    base = tmp_path / "pb0"
    base.mkdir()
    (base / "good.py").write_text(GOOD_SCRIPT)
    marker = uuid.uuid4().hex
    pb = pocketbase(raw_config=json.dumps(bad_config(marker), indent=2), base_dir=base, marker=marker, superuser=False)

    status, _ = pb.get("/api/health")
    assert status == 200

    # The good entry runs.
    h.wait_until(
        lambda: "good process running as good" in pb.process_log("good"),
        30,
        lambda: f"the valid process never wrote its line\n{pb.process_log('good')}\n{pb.logs()}",
    )
    assert pb.marker_counts() == {"good": 1}, h.describe(pb.marker_pids())

    # Every error, with its JSON path, is printed at once on stderr.
    h.wait_until(lambda: "config errors" in pb.stderr(), 10, pb.logs)
    assert_reports_every_error(pb.stderr(), str(base / "pb_processes.json"))

    # No invalid entry was started (each would run good.py and print).
    assert h.stays_true(lambda: pb.marker_counts() == {"good": 1}, 1.0), h.describe(pb.marker_pids())
    for entry, _, _ in BAD_ENTRIES:
        name = entry["name"]
        if name != "good":
            assert pb.process_log(name) == "", f"invalid process {name!r} produced output:\n{pb.process_log(name)}"
    assert pb.get("/api/health")[0] == 200


def wait_exit(pb, timeout: float = 30.0) -> int:
    try:
        return pb.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"pocketbase kept running with an unusable config\n{pb.logs()}") from None


def test_serve_refuses_a_file_with_a_syntax_error(pocketbase):
    # A superuser exists, so PocketBase's installer does not try to open a
    # browser (xdg-open would be a child of PocketBase).
    pb = pocketbase(raw_config=SYNTAX_ERROR_CONFIG, wait_healthy=False)
    (pb.base_dir / "good.py").write_text(GOOD_SCRIPT)

    # As docker compose does with a broken file: exit 1 with every error,
    # before PocketBase listens.
    assert wait_exit(pb) == 1, pb.logs()
    bad_line = SYNTAX_ERROR_CONFIG.splitlines()[2]
    line, column = 3, bad_line.index(",}") + 2  # the "}" after the trailing comma
    path = str(pb.base_dir / "pb_processes.json")
    assert f"{path}:{line}:{column}: invalid JSON" in pb.stderr(), pb.logs()
    assert "processman: 1 config error:" in pb.stderr(), pb.logs()
    assert f"{path} cannot be used (1 error above); PocketBase does not start" in pb.stdout(), pb.logs()
    assert "Server started" not in pb.stdout(), pb.logs()
    with pytest.raises(OSError):
        h.http_request("GET", pb.url + "/api/health", timeout=2)
    assert not (pb.data_dir / "processman" / "logs" / "a.log").exists()


@pytest.mark.parametrize(
    "raw, message",
    [
        ('"agent.py"', 'expected a list of processes or an object, got "agent.py"'),
        ('{"processes": {"a": {"script": "a.py"}}}', "/processes: expected array"),
        ('{"process": []}', 'unknown field "process"; did you mean "processes"?'),
    ],
    ids=["a string", "processes not a list", "a misspelled top-level field"],
)
def test_serve_refuses_a_file_that_is_not_processes(pocketbase, raw, message):
    pb = pocketbase(raw_config=raw, wait_healthy=False)
    assert wait_exit(pb) == 1, pb.logs()
    assert message in pb.stderr(), pb.logs()


def test_serve_refuses_a_missing_processes_file(pocketbase, tmp_path):
    missing = tmp_path / "nope" / "pb_processes.json"
    pb = pocketbase(processes_file=missing, wait_healthy=False)  # a superuser: no installer, no xdg-open
    assert wait_exit(pb) == 1, pb.logs()
    assert str(missing) in pb.stderr(), pb.logs()
    assert "processman: 1 config error:" in pb.stderr(), pb.logs()
    assert "--processes" in pb.stderr(), pb.logs()  # the hint


def test_bare_list_errors_have_list_paths(pb_binary, tmp_path):
    cfg = tmp_path / "list.json"
    cfg.write_text(json.dumps([{"name": "ok", "script": "sleep", "args": ["1"]}, {"name": "typo", "script": "x.py", "restrat": "always"}]))
    res, out = pm_check(pb_binary, cfg, tmp_path)
    assert res.returncode == 1, out
    assert f'{cfg}: /1/restrat (process "typo"): unknown field "restrat"; did you mean "restart"?' in out, out


def test_routed_tcp_process_may_not_set_port(pb_binary, tmp_path):
    cfg = tmp_path / "port.json"
    cfg.write_text(json.dumps([{"name": "api", "script": "sleep", "args": ["1"], "route": "/api/x", "listen": "tcp", "env": {"PORT": "8001"}}]))
    res, out = pm_check(pb_binary, cfg, tmp_path)
    assert res.returncode == 1, out
    assert f'{cfg}: /0/env/PORT (process "api"): PORT is set in env, but a routed process with listen "tcp"' in out, out
    assert "remove PORT from env" in out, out


def test_did_you_mean_prefers_the_closest_name(pb_binary, tmp_path):
    cfg = tmp_path / "typo.json"
    cfg.write_text(json.dumps([{"name": "api", "script": "sleep", "enviroment": {"A": "1"}}]))
    res, out = pm_check(pb_binary, cfg, tmp_path)
    assert res.returncode == 1, out
    assert 'unknown field "enviroment"; did you mean "env"?' in out, out


def test_python_project_without_venv_warns_with_the_fix(pocketbase, pb_binary, tmp_path):
    project = tmp_path / "pb0" / "agent"
    project.mkdir(parents=True)
    (project / "requirements.txt").write_text("agno\n")
    (project / "main.py").write_text("import agno_is_not_installed_here\n")
    entry = {"name": "agent", "script": "main.py", "cwd": "agent", "max_restarts": 1, "restart_delay": "50ms"}
    advice = f"cd {project} && python3 -m venv .venv && .venv/bin/pip install -r requirements.txt"

    cfg = tmp_path / "pb0" / "pb_processes.json"
    cfg.write_text(json.dumps([entry]))
    res, out = pm_check(pb_binary, cfg, tmp_path)
    assert res.returncode == 0, out  # a warning, not a problem
    assert f"warning: {project} has requirements.txt but no virtualenv (.venv or venv)" in res.stdout, out
    assert advice in res.stdout, out

    # At start: the warning on stdout and in the API; the crash of the
    # missing module carries the same advice.
    pb = pocketbase(raw_config=json.dumps([entry]), base_dir=tmp_path / "pb0")
    h.wait_until(lambda: pb.api("GET", "/api/pm/agent")["state"] == "errored", 30, pb.logs)
    detail = pb.api("GET", "/api/pm/agent")
    assert any("has requirements.txt but no virtualenv" in w for w in detail["warnings"]), detail
    hint = detail["last_crash"]["hint"]
    assert "a Python module is missing" in hint and advice in hint, hint
    assert "has requirements.txt but no virtualenv" in pb.stdout(), pb.logs()
    assert f"hint: a Python module is missing and {project} has no virtualenv" in pb.stdout(), pb.logs()


# ---------------------------------------------------------------------------
# pm check
#
# The content checks read stdout and stderr together: see
# test_pm_check_writes_problems_to_stderr for which stream is used.


def pm_check(pb_binary, cfg, tmp_path):
    res = run_pb(pb_binary, "pm", "check", str(cfg), "--dir", str(tmp_path / "pb_data"))
    return res, res.stdout + res.stderr


def test_pm_check_accepts_a_valid_file(pb_binary, tmp_path):
    (tmp_path / "good.py").write_text(GOOD_SCRIPT)
    cfg = tmp_path / "ok.json"
    cfg.write_text(json.dumps({"processes": [
        {"name": "good", "script": "good.py"},
        {"name": "sleeper", "script": "sleep", "args": ["1"], "restart": "never"},
    ]}))
    res, out = pm_check(pb_binary, cfg, tmp_path)
    assert res.returncode == 0, f"exit {res.returncode}\n{out}"
    assert f"{cfg}: ok, 2 process(es)" in res.stdout, out
    # each process with its resolved command line
    assert re.search(r"^good\s+\S*python3?\S* good\.py", res.stdout, re.M), out
    assert re.search(r"^sleeper\s+sleep 1\b", res.stdout, re.M), out
    assert "error" not in out.lower(), out


def test_pm_check_reports_every_error(pb_binary, tmp_path):
    (tmp_path / "good.py").write_text(GOOD_SCRIPT)
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps(bad_config(), indent=2))
    res, out = pm_check(pb_binary, cfg, tmp_path)
    assert res.returncode == 1, f"exit {res.returncode}\n{out}"
    assert_reports_every_error(out, str(cfg))
    assert f"{len(BAD_ENTRIES)} problem(s) in {cfg}" in out, out
    assert "ok," not in out


def test_pm_check_reports_syntax_error_with_line_and_column(pb_binary, tmp_path):
    cfg = tmp_path / "syntax.json"
    cfg.write_text(SYNTAX_ERROR_CONFIG)
    res, out = pm_check(pb_binary, cfg, tmp_path)
    assert res.returncode == 1, f"exit {res.returncode}\n{out}"
    column = SYNTAX_ERROR_CONFIG.splitlines()[2].index(",}") + 2
    assert f"{cfg}:3:{column}: invalid JSON" in out, out


def test_pm_check_reports_missing_script_and_command(pb_binary, tmp_path):
    (tmp_path / "good.py").write_text(GOOD_SCRIPT)
    cfg = tmp_path / "missing.json"
    cfg.write_text(json.dumps({"processes": [
        {"name": "good", "script": "good.py"},
        {"name": "ghost", "script": "missing.py"},
        {"name": "nocmd", "script": "no-such-command-e2e"},
    ]}))
    res, out = pm_check(pb_binary, cfg, tmp_path)
    assert res.returncode == 1, f"exit {res.returncode}\n{out}"
    assert f'process "ghost": script {tmp_path / "missing.py"} not found' in out, out
    assert 'process "nocmd": command "no-such-command-e2e" not found' in out, out
    assert f"2 problem(s) in {cfg}" in out, out
    assert re.search(r"^good\s", res.stdout, re.M), out


def test_pm_check_missing_file(pb_binary, tmp_path):
    cfg = tmp_path / "nope.json"
    res, out = pm_check(pb_binary, cfg, tmp_path)
    assert res.returncode == 1, f"exit {res.returncode}\n{out}"
    assert str(cfg) in out and "no such file" in out.lower(), out


def test_pm_check_writes_problems_to_stderr(pb_binary, tmp_path):
    (tmp_path / "good.py").write_text(GOOD_SCRIPT)
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps(bad_config(), indent=2))
    res, out = pm_check(pb_binary, cfg, tmp_path)
    assert res.returncode == 1, out
    assert_reports_every_error(res.stderr, str(cfg))
    assert "/processes/" not in res.stdout, f"problems on stdout:\n{res.stdout}"


def test_missing_script_is_reported_when_serving(pocketbase, tmp_path):
    """A valid entry whose script does not exist cannot be resolved: it is
    logged as an error in PocketBase's logs, and the others still run."""
    base = tmp_path / "pbm"
    base.mkdir()
    (base / "good.py").write_text(GOOD_SCRIPT)
    pb = pocketbase([
        {"name": "good", "script": "good.py"},
        {"name": "ghost", "script": "missing.py"},
    ], base_dir=base)
    h.wait_until(lambda: "good process running" in pb.process_log("good"), 30, pb.logs)

    def ghost_error():
        items = pb.api_logs("data.process='ghost' && message='processman: process could not start'")
        return items[0] if items else None

    item = pb.wait_for_logs(ghost_error, 40, "no 'could not start' log for ghost")
    assert item["level"] == 8, item
    assert f"script {base / 'missing.py'} not found" in item["data"]["error"], item
    assert pb.marker_counts() == {"good": 1}
