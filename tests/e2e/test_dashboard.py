"""The dashboard's Processes page (package dashboard), in a real Chromium
driven by Playwright against a real `pocketbase serve`.

Needs the packages of requirements-browser.txt and Debian's chromium
(`apt-get install chromium`; E2E_CHROMIUM=/path overrides the binary).
Without them these tests are skipped, unless E2E_REQUIRE_BROWSER=1, which
makes that a failure. Screenshots go to test-output/dashboard/.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid

import pytest

import e2e_helpers as h
from e2e_helpers import REPO_ROOT

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:
    if os.environ.get("E2E_REQUIRE_BROWSER") == "1":
        raise
    pytest.skip(
        "playwright is not installed (pip install -r tests/e2e/requirements-browser.txt)",
        allow_module_level=True,
    )

from conftest import SUPERUSER_EMAIL, SUPERUSER_PASSWORD

SCREENSHOTS = REPO_ROOT / "test-output" / "dashboard"
UI_TIMEOUT_MS = 30_000  # the machine is small and shared

expect.set_options(timeout=UI_TIMEOUT_MS)

# Prints a burst (enough to scroll the log viewer), then a line every
# 0.3 s, every third one also on stderr.
TICKER = r"""
import sys, time
run = time.time_ns()
for i in range(40):
    print(f"boot {i} run={run}", flush=True)
i = 0
while True:
    i += 1
    print(f"tick {i} run={run}", flush=True)
    if i % 3 == 0:
        print(f"warn {i} run={run}", file=sys.stderr, flush=True)
    time.sleep(0.3)
"""

SECRET = "s3cret-" + uuid.uuid4().hex[:8]


def chromium_path() -> str | None:
    return os.environ.get("E2E_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    path = chromium_path()
    if path is None:
        message = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("E2E_REQUIRE_BROWSER") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=path,
            args=[
                "--no-sandbox",  # root in CI
                "--disable-gpu",
                # the machine has no network: no background connections
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(UI_TIMEOUT_MS)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(f"{e}\n{e.stack}"))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield pg
    context.close()
    # A script error in the page is a failure even when the checks passed.
    assert not [e for e in errors if "Failed to load resource" not in e], f"errors in the page: {errors}"


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def api(pb, method: str, path: str):
    status, body = h.http_request(method, pb.url + path, headers={"Authorization": pb.token()})
    assert status == 200, f"{method} {path}: {status} {body}"
    return body


def open_processes_page(page, pb) -> None:
    page.goto(pb.url + "/_/")
    page.fill("#login_identity", SUPERUSER_EMAIL)
    page.fill("#login_pass", SUPERUSER_PASSWORD)
    page.keyboard.press("Enter")
    link = page.locator(".app-header a.header-link[href='#/processes']")
    expect(link).to_have_text("Processes")
    link.click()
    expect(page.locator(".page-header .breadcrumbs")).to_have_text("Processes")


def row(page, name: str):
    return page.locator(f"tr.pm-process-row[data-process='{name}']")


def test_processes_page_restart_and_logs(pocketbase, page):
    pb = pocketbase([
        {"name": "ticker", "script": "python3", "args": ["-c", TICKER], "env": {"API_TOKEN": SECRET, "GREETING": "hello"}},
    ])
    first_pid = h.wait_until(
        lambda: next(iter(pb.marker_pids()), None), 30, lambda: f"ticker did not start\n{pb.logs()}"
    )

    open_processes_page(page, pb)
    ticker = row(page, "ticker")
    expect(ticker.locator(".pm-state-label")).to_have_attribute("data-state", "online")
    expect(ticker.locator(".pm-state-label")).to_have_class(re.compile(r"\bsuccess\b"))
    expect(ticker.locator(".pm-col-pid")).to_have_text(str(first_pid))
    expect(ticker.locator(".pm-col-restarts")).to_have_text("0")
    expect(ticker.locator(".pm-col-ready")).to_have_text("ready")
    # cpu and memory come from the list's samples
    expect(ticker.locator(".pm-col-memory")).to_have_text(re.compile(r"\d+(\.\d+)? (KB|MB)"))
    expect(ticker.locator(".pm-col-cpu")).to_have_text(re.compile(r"\d+\.\d%"))
    expect(ticker.locator("button[data-action=start]")).to_be_disabled()
    expect(ticker.locator("button[data-action=stop]")).to_be_enabled()
    screenshot(page, "processes-online")

    # Restart from the row: a new pid, the old one gone, one restart.
    ticker.locator("button[data-action=restart]").click()
    expect(page.locator(".toast.success", has_text='Restarted "ticker"')).to_be_visible()
    expect(ticker.locator(".pm-col-pid")).not_to_have_text(str(first_pid))
    expect(ticker.locator(".pm-state-label")).to_have_attribute("data-state", "online")
    expect(ticker.locator(".pm-col-restarts")).to_have_text("1")
    new_pid = int(ticker.locator(".pm-col-pid").inner_text())
    assert new_pid != first_pid
    h.wait_until(lambda: not h.is_alive(first_pid), 30, f"the old pid {first_pid} still runs")
    assert h.is_alive(new_pid), f"the page shows pid {new_pid}, which does not run:\n{h.describe([new_pid])}"
    assert api(pb, "GET", "/api/pm/ticker")["pid"] == new_pid
    screenshot(page, "processes-restarted")

    # The row's visible Logs action opens the panel at the output.
    logs_button = ticker.locator("button[data-action=logs]")
    expect(logs_button).to_be_visible()
    expect(logs_button).to_have_text("Logs")
    logs_button.click()
    panel = page.locator(".pm-process-modal[data-process='ticker']")
    expect(panel.locator(".pm-logs-section")).to_be_in_viewport()
    expect(panel.locator(".pm-panel-title")).to_have_text("ticker")
    expect(panel.locator(".pm-detail-pid td")).to_have_text(str(new_pid))
    expect(panel.locator(".pm-command-line")).to_contain_text("python3 -c")
    expect(panel.locator("tr[data-env=GREETING] .pm-env-value")).to_have_text("hello")
    expect(panel.locator("tr[data-env=API_TOKEN] .pm-env-value .label.warning")).to_be_visible()
    expect(panel.locator("tr[data-env=API_TOKEN] .pm-env-value")).not_to_contain_text(SECRET)
    assert SECRET not in page.content(), "the secret reached the page"

    viewer = panel.locator(".pm-log-follow")
    lines = viewer.locator(".pm-log-line")
    expect(lines.filter(has_text="tick")).not_to_have_count(0)
    # a divider starts each run's lines
    expect(viewer.locator(".pm-log-run", has_text=f"pid {new_pid}")).to_have_count(1)
    last = lines.last.inner_text()
    # a line printed after the panel opened arrives
    expect(lines.last).not_to_have_text(last)
    # stderr lines are marked as such, stdout lines are not
    expect(viewer.locator(".pm-log-line.pm-stderr").filter(has_text="warn")).not_to_have_count(0)
    expect(viewer.locator(".pm-log-line.pm-stderr").filter(has_text="tick")).to_have_count(0)
    # ...quietly: a stderr line is not drawn as an error (uvicorn logs INFO
    # there): the same background as stdout, its tag in the hint colour
    style = "el => { const s = getComputedStyle(el); return [s.backgroundColor, s.color]; }"
    err_line = viewer.locator(".pm-log-line.pm-stderr").first
    out_line = viewer.locator(".pm-log-line.pm-stdout").first
    assert err_line.evaluate(style)[0] == out_line.evaluate(style)[0], "a stderr line has a background of its own"
    err_tag = err_line.locator(".pm-log-stream").evaluate(style)[1]
    time_colour = err_line.locator(".pm-log-time").evaluate(style)[1]
    assert err_tag == time_colour, f"the err tag is coloured {err_tag}, not in the hint colour {time_colour}"

    def distance_from_bottom() -> float:
        return viewer.evaluate("el => el.scrollHeight - el.clientHeight - el.scrollTop")

    # Following: the viewer overflows and stays scrolled to the end.
    assert viewer.evaluate("el => el.scrollHeight > el.clientHeight"), "the output does not fill the viewer"
    count = lines.count()
    expect(lines).not_to_have_count(count)
    h.wait_until(lambda: distance_from_bottom() < 10, 10, "the viewer does not follow new lines")
    page.wait_for_timeout(3500)  # let the restart toast go, for the picture
    screenshot(page, "process-panel")

    # Scrolled up: new lines no longer move the view, a button offers to follow.
    viewer.evaluate("el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }")
    jump = panel.locator(".pm-log-jump")
    expect(jump).to_be_visible()
    expect(jump).to_contain_text(re.compile(r"\d+ new lines"))
    assert viewer.evaluate("el => el.scrollTop") == 0
    jump.click()
    expect(jump).to_be_hidden()
    h.wait_until(lambda: distance_from_bottom() < 10, 10, "the viewer does not follow after the button")

    # The panel's Stop acts on the process.
    panel.locator("button[data-action=stop]").click()
    expect(panel.locator(".pm-state-label")).to_have_attribute("data-state", "stopped")
    expect(panel.locator(".pm-detail-pid td")).to_have_text("not running")
    h.wait_until(lambda: not h.is_alive(new_pid), 30, f"pid {new_pid} still runs after Stop")
    panel.locator(".modal-footer button", has_text="Close").click()
    expect(ticker.locator(".pm-state-label")).to_have_attribute("data-state", "stopped")
    expect(ticker.locator("button[data-action=start]")).to_be_enabled()


def test_errored_process_shows_its_crash_record(pocketbase, page):
    tag = uuid.uuid4().hex[:8]
    pb = pocketbase([
        {
            "name": "crasher",
            "script": "sh",
            "args": ["-c", f"echo starting {tag}; echo 'boom: missing config {tag}' >&2; exit 3"],
            "max_restarts": 1,
            "restart_delay": "100ms",
        },
        {"name": "sleeper", "script": "sleep", "args": ["600"]},
        # a Python project without its virtualenv, missing its module
        {"name": "noenv", "script": "main.py", "cwd": "noenv", "max_restarts": 1, "restart_delay": "100ms"},
    ], files={
        "noenv/main.py": "import agno_is_not_installed_here\n",
        "noenv/requirements.txt": "agno\n",
    })
    h.wait_until(
        lambda: api(pb, "GET", "/api/pm/crasher")["state"] == "errored",
        30,
        lambda: f"crasher is not errored: {api(pb, 'GET', '/api/pm/crasher')}\n{pb.logs()}",
    )
    detail = api(pb, "GET", "/api/pm/crasher")

    open_processes_page(page, pb)
    crasher = row(page, "crasher")
    expect(crasher.locator(".pm-state-label")).to_have_attribute("data-state", "errored")
    expect(crasher.locator(".pm-state-label")).to_have_class(re.compile(r"\bdanger\b"))
    expect(crasher.locator(".pm-status-hint")).to_have_text("exit code 3")
    expect(crasher.locator("button[data-action=start]")).to_be_enabled()
    expect(crasher.locator("button[data-action=stop]")).to_be_disabled()
    expect(row(page, "sleeper").locator(".pm-state-label")).to_have_attribute("data-state", "online")
    screenshot(page, "processes-errored")

    crasher.click()
    panel = page.locator(".pm-process-modal[data-process='crasher']")
    expect(panel.locator(".pm-error")).to_have_text(detail["error"])
    crash = panel.locator(".pm-crash")
    expect(crash.locator(".pm-crash-exit")).to_have_text("exit code 3")
    expect(crash).to_contain_text(f"pid {detail['last_crash']['pid']}")
    expect(crash.locator(".pm-log-line.pm-stdout")).to_contain_text([f"starting {tag}"])
    expect(crash.locator(".pm-log-line.pm-stderr")).to_contain_text([f"boom: missing config {tag}"])
    crash.scroll_into_view_if_needed()
    screenshot(page, "process-crash-record")
    panel.locator(".modal-footer button", has_text="Close").click()

    # A missing Python module: the crash says what to do, and so does the
    # warning about the project's missing virtualenv.
    h.wait_until(lambda: api(pb, "GET", "/api/pm/noenv")["state"] == "errored", 30, pb.logs)
    row(page, "noenv").click()
    panel = page.locator(".pm-process-modal[data-process='noenv']")
    expect(panel.locator(".pm-crash-hint")).to_contain_text("a Python module is missing")
    expect(panel.locator(".pm-crash-hint")).to_contain_text("python3 -m venv .venv && .venv/bin/pip install -r requirements.txt")
    expect(panel.locator(".pm-warnings")).to_contain_text("has requirements.txt but no virtualenv")
    panel.locator(".pm-crash").scroll_into_view_if_needed()
    screenshot(page, "process-crash-hint")


def test_actions_show_pending_state_and_errors(pocketbase, page):
    pb = pocketbase([
        # ignores SIGTERM: a stop takes its whole kill_timeout
        {
            "name": "stubborn",
            "script": "sh",
            "args": ["-c", "trap '' TERM; echo up; while true; do sleep 0.2; done"],
            "kill_timeout": "4s",
        },
        # cannot start: the command does not exist
        {"name": "ghost", "script": "/nonexistent/processman-e2e-command"},
        # routed, but never listens on its socket: online and not ready
        {"name": "deaf", "script": "sleep", "args": ["600"], "route": "/api/e2e-deaf", "auth": ["users"]},
    ])
    open_processes_page(page, pb)
    stubborn, ghost, deaf = row(page, "stubborn"), row(page, "ghost"), row(page, "deaf")
    expect(stubborn.locator(".pm-state-label")).to_have_attribute("data-state", "online")
    expect(ghost.locator(".pm-state-label")).to_have_attribute("data-state", "errored")
    expect(deaf.locator(".pm-state-label")).to_have_attribute("data-state", "online")
    expect(deaf.locator(".pm-col-ready")).to_have_text("not ready")
    expect(deaf.locator(".pm-col-route .txt-code")).to_have_text("/api/e2e-deaf")
    expect(deaf.locator(".pm-col-route")).to_contain_text("auth: users")
    expect(stubborn.locator(".pm-col-ready")).to_have_text("ready")
    expect(stubborn.locator(".pm-col-route")).to_have_text("–")

    # While the stop runs, its button spins and the row's buttons are disabled.
    stop = stubborn.locator("button[data-action=stop]")
    stop.click()
    expect(stop).to_have_class(re.compile(r"\bloading\b"))
    for action in ("start", "stop", "restart"):
        expect(stubborn.locator(f"button[data-action={action}]")).to_be_disabled()
    expect(stubborn.locator(".pm-state-label")).to_have_attribute("data-state", "stopping")
    screenshot(page, "processes-stopping")
    expect(stubborn.locator(".pm-state-label")).to_have_attribute("data-state", "stopped")
    expect(stop).not_to_have_class(re.compile(r"\bloading\b"))
    expect(stubborn.locator("button[data-action=start]")).to_be_enabled()
    assert not pb.marker_counts().get("stubborn"), f"stubborn still runs: {pb.marker_counts()}"

    # A failed action: the server's message in the dashboard's error toast.
    message = api(pb, "GET", "/api/pm/ghost")["error"]
    assert "processman-e2e-command" in message
    ghost.locator("button[data-action=start]").click()
    expect(page.locator(".toast.error", has_text=message)).to_be_visible()
    expect(ghost.locator("button[data-action=start]")).to_be_enabled()
    expect(ghost.locator(".pm-state-label")).to_have_attribute("data-state", "errored")
    screenshot(page, "processes-action-error")


def test_instances_have_their_rows_and_a_routed_process_reloads(pocketbase, page):
    import sys

    serve_asgi = REPO_ROOT / "tests" / "e2e" / "fixtures" / "serve_asgi.py"
    env = {"VIRTUAL_ENV": sys.prefix} if sys.prefix != sys.base_prefix else {}
    pb = pocketbase([
        {"name": "web", "script": str(serve_asgi), "interpreter": sys.executable, "route": "/api/web",
         "auth": "public", "instances": 2, "env": env},
    ])
    h.wait_until(lambda: all(i["ready"] for i in api(pb, "GET", "/api/pm/web")["instances"]), 60,
                 lambda: f"web not ready\n{pb.logs()}")
    before = [i["pid"] for i in api(pb, "GET", "/api/pm/web")["instances"]]

    open_processes_page(page, pb)
    web = row(page, "web")
    expect(web.locator(".pm-instances")).to_have_text("×2")
    expect(web.locator(".pm-status-hint")).to_have_text("2 of 2 ready")
    for i, pid in enumerate(before):
        instance = page.locator(f"tr.pm-instance-row[data-instance='web:{i}']")
        expect(instance.locator(".pm-col-pid")).to_have_text(str(pid))
        expect(instance.locator(".pm-state-label")).to_have_attribute("data-state", "online")

    # instance 1 alone restarts from its row
    page.locator("tr.pm-instance-row[data-instance='web:1'] button[data-action='restart']").click()
    h.wait_until(lambda: api(pb, "GET", "/api/pm/web")["instances"][1]["pid"] not in (0, before[1]), 30, "web:1 restarted")
    assert api(pb, "GET", "/api/pm/web")["instances"][0]["pid"] == before[0]

    # the process's Reload replaces both, one at a time
    web.locator("button[data-action='reload']").click()
    h.wait_until(lambda: all(i["reloads"] == 1 for i in api(pb, "GET", "/api/pm/web")["instances"]), 60,
                 lambda: f"not reloaded: {api(pb, 'GET', '/api/pm/web')}")
    after = [i["pid"] for i in api(pb, "GET", "/api/pm/web")["instances"]]
    expect(page.locator("tr.pm-instance-row[data-instance='web:0'] .pm-col-pid")).to_have_text(str(after[0]))
    expect(page.locator(".toast").filter(has_text='Reloaded "web"')).to_have_count(1)
    screenshot(page, "instances")


def test_dependencies_schedule_and_apply(pocketbase, page):
    import json

    from conftest import add_marker

    processes = [
        {"name": "migrate", "script": "sh", "args": ["-c", "echo failed >&2; exit 4"], "restart": "never"},
        {"name": "agent", "script": "sleep", "args": ["600"],
         "depends_on": {"migrate": {"condition": "completed_successfully"}}},
        {"name": "nightly", "script": "sleep", "args": ["1"], "cron": "0 3 * * *"},
    ]
    pb = pocketbase(processes)
    h.wait_until(lambda: "migrate" in api(pb, "GET", "/api/pm/agent")["waiting_for"], 20,
                 lambda: f"{api(pb, 'GET', '/api/pm/agent')}\n{pb.logs()}")

    open_processes_page(page, pb)
    agent = row(page, "agent")
    expect(agent.locator(".pm-state-label")).to_have_attribute("data-state", "waiting")
    expect(agent.locator(".pm-status-hint")).to_contain_text("waiting for migrate: exited unsuccessfully (code 4)")
    expect(row(page, "nightly").locator(".pm-status-hint")).to_contain_text("cron 0 3 * * *, next in")
    agent.click()
    panel = page.locator(".pm-process-modal[data-process='agent']")
    expect(panel).to_contain_text("migrate: completed successfully")
    screenshot(page, "process-waiting")
    panel.locator(".modal-footer button", has_text="Close").click()

    # Fix the migration in the file, add a process, and apply from the page.
    processes[0]["args"] = ["-c", "echo migrated"]
    processes.append({"name": "extra", "script": "sleep", "args": ["600"]})
    (pb.base_dir / "pb_processes.json").write_text(json.dumps({"processes": add_marker(processes, pb.marker)}))
    page.locator("button.pm-apply").click()
    result = page.locator(".pm-apply-result")
    expect(result.locator(".pm-apply-replaced")).to_contain_text("migrate replaced")
    expect(result.locator(".pm-apply-added")).to_contain_text("extra added")
    expect(result.locator(".pm-apply-unchanged")).to_have_count(2)
    expect(row(page, "extra").locator(".pm-state-label")).to_have_attribute("data-state", "online")
    expect(row(page, "migrate").locator(".pm-state-label")).to_have_attribute("data-state", "completed")
    expect(agent.locator(".pm-state-label")).to_have_attribute("data-state", "online")
    screenshot(page, "processes-applied")

    # A broken file: the errors are listed, nothing changes.
    (pb.base_dir / "pb_processes.json").write_text(json.dumps({"processes": [{"name": "agent", "script": "x", "depends_on": ["ghost"]}]}))
    page.locator("button.pm-apply").click()
    expect(result.locator(".pm-apply-error")).to_contain_text(["depends on \"ghost\", which is not a process here"])
    expect(result).to_contain_text("nothing was changed")
    expect(row(page, "extra").locator(".pm-state-label")).to_have_attribute("data-state", "online")
