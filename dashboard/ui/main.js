// processman: the "Processes" page of the PocketBase dashboard.
//
// PocketBase joins this file into /_/extensions.js inside an async function
// and runs it before the dashboard's router starts. It uses the dashboard's
// globals: `app` (store, routes, the `pb` SDK client signed in as the
// superuser, utils, components, toasts, modals) and Shablon's `t`, `store`
// and `watch`. No inline scripts or handlers: the dashboard's
// Content-Security-Policy forbids them.
//
// Data comes from processman's control API (/api/pm, superuser-only):
// the list is polled for cpu/memory and updated at once from the
// /api/pm/events stream; the log viewer follows /api/pm/{name}/logs.

const ROUTE = "#/processes";
const API = "/api/pm";
const PROCESS_QUERY_KEY = "process";

const LIST_POLL_MS = 3000; // cpu, memory and everything the events missed
const DETAIL_POLL_MS = 3000;
const LOG_BACKLOG_LINES = 200; // lines shown when the viewer opens
const LOG_MAX_LINES = 2000; // lines kept in the viewer
const STREAM_RETRY_MAX_MS = 10000;

const RUNNING_STATES = ["starting", "online", "stopping"];

const STATE_LABELS = {
    stopped: "",
    starting: "info",
    online: "success",
    stopping: "info",
    "waiting-restart": "warning",
    errored: "danger",
    waiting: "warning", // for its depends_on
    completed: "success", // a one-shot run that exited 0
    mixed: "warning", // instances in different states
};

const ACTIONS = {
    start: { label: "Start", done: "Started", icon: "ri-play-line" },
    stop: { label: "Stop", done: "Stopped", icon: "ri-stop-line" },
    restart: { label: "Restart", done: "Restarted", icon: "ri-restart-line" },
    // routed processes: a new copy takes over once ready, without downtime
    reload: { label: "Reload", done: "Reloaded", icon: "ri-refresh-line" },
};

document.head.appendChild(t.link({
    rel: "stylesheet",
    href: app.pb.buildURL("/_/extensions/processman/processman.css"),
}));

const settingsLinkIndex = app.store.headerLinks.findIndex((link) => link.href == "#/settings");
app.store.headerLinks.splice(
    settingsLinkIndex < 0 ? app.store.headerLinks.length : settingsLinkIndex,
    0,
    { href: ROUTE, icon: "ri-cpu-line", label: "Processes" },
);

app.routes.superuserOnly(ROUTE, pageProcesses);

// -------------------------------------------------------------------
// API

function processPath(name, suffix = "") {
    return `${API}/${encodeURIComponent(name)}${suffix}`;
}

function api(path, options = {}) {
    return app.pb.send(path, Object.assign({ requestKey: null }, options));
}

// apiError turns a failed fetch response into an error shaped like the
// SDK's ClientResponseError, which app.checkApiError understands.
async function apiError(response) {
    let body = {};
    try {
        body = await response.json();
    } catch {
        // not JSON: keep the status text
    }
    const err = new Error(body?.message || `${response.status} ${response.statusText}`);
    err.status = response.status;
    err.response = body || {};
    return err;
}

/**
 * Reads a text/event-stream of the control API until it ends, calling
 * onevent(name, data) for each event. The dashboard's SDK has no helper
 * for it and EventSource can't send the Authorization header, hence fetch.
 *
 * @param {string} path
 * @param {AbortSignal} signal
 * @param {Function} onopen
 * @param {Function} onevent
 */
async function readEventStream(path, signal, onopen, onevent) {
    const response = await fetch(app.pb.buildURL(path), {
        signal,
        cache: "no-store",
        headers: {
            Accept: "text/event-stream",
            Authorization: app.pb.authStore.token,
            "x-request-source": "pbui",
        },
    });
    if (!response.ok) {
        throw await apiError(response);
    }
    onopen?.();

    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    while (true) {
        const { value, done } = await reader.read();
        if (done) {
            return;
        }
        buffer = (buffer + value).replace(/\r\n?/g, "\n");

        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.substring(0, end);
            buffer = buffer.substring(end + 2);

            let event = "message";
            const dataLines = [];
            for (const line of block.split("\n")) {
                if (line.startsWith(":")) {
                    continue; // comment, e.g. a keep-alive
                }
                const colon = line.indexOf(":");
                const field = colon < 0 ? line : line.substring(0, colon);
                let fieldValue = colon < 0 ? "" : line.substring(colon + 1);
                if (fieldValue.startsWith(" ")) {
                    fieldValue = fieldValue.substring(1);
                }
                if (field == "event") {
                    event = fieldValue;
                } else if (field == "data") {
                    dataLines.push(fieldValue);
                }
            }
            if (dataLines.length) {
                onevent(event, dataLines.join("\n"));
            }
        }
    }
}

/**
 * Keeps an event stream open until stop() is called: reconnects with a
 * growing delay after an error or an end. The first error of a run of
 * failures is reported with the dashboard's toast; a 401 signs out.
 */
function followEventStream(path, { onopen, onevent, onstatus }) {
    const controller = new AbortController();
    let retryDelay = 0;
    let retryTimeout;
    let reported = false;

    async function connect() {
        try {
            await readEventStream(path, controller.signal, () => {
                retryDelay = 0;
                reported = false;
                onstatus?.(true);
                onopen?.();
            }, onevent);
        } catch (err) {
            if (controller.signal.aborted) {
                return;
            }
            if (!reported && err?.status) {
                reported = true;
                app.checkApiError(err);
            } else if (!reported) {
                console.warn("processman: event stream", path, err);
            }
        }
        if (controller.signal.aborted) {
            return;
        }
        onstatus?.(false);
        retryDelay = Math.min(STREAM_RETRY_MAX_MS, Math.max(1000, retryDelay * 2));
        retryTimeout = setTimeout(connect, retryDelay);
    }

    connect();

    return {
        stop() {
            clearTimeout(retryTimeout);
            controller.abort();
        },
    };
}

// -------------------------------------------------------------------
// state shared by the page and the process panel

const state = store({
    processes: [],
    isLoading: false,
    loadError: "",
    pending: {}, // name -> the action in flight
    liveEvents: false, // whether /api/pm/events is connected
    applying: false, // POST /api/pm/apply under way
    applyResult: null, // its last answer: {file, changes, errors, message}
    now: Date.now(), // ticks every second, for uptimes
});

function findProcess(name) {
    return state.processes.find((p) => p.name == name);
}

// Fields that the events stream leaves out and the list keeps.
const SAMPLED_FIELDS = ["cpu", "memory", "tree_size"];

// Fields of a process that change while it just runs; the panel shows
// them from the list, which is kept current.
const VOLATILE_FIELDS = [...SAMPLED_FIELDS, "uptime_ms", "logs"];

/**
 * Merges a Summary into the list: in place, so that the rows already
 * rendered for it (which hold the object) update.
 *
 * @param {Object} summary
 * @param {boolean} [partial] the summary lacks the sampled fields (an event)
 */
function upsertProcess(summary, partial = false) {
    if (!summary?.name) {
        return;
    }
    if (partial) {
        // events carry no samples (or zeros): keep the list's
        for (const field of SAMPLED_FIELDS) {
            delete summary[field];
        }
    }
    summary._received = Date.now();

    const existing = findProcess(summary.name);
    if (!existing) {
        state.processes.push(summary);
        return;
    }
    for (const key of Object.keys(existing)) {
        if (!(key in summary) && !(partial && SAMPLED_FIELDS.includes(key))) {
            delete existing[key];
        }
    }
    Object.assign(existing, summary);
}

async function loadProcesses() {
    state.isLoading = true;
    try {
        const result = await api(`${API}/list`, { requestKey: "processman.list" });
        const items = result?.items || [];
        const names = new Set(items.map((item) => item.name));
        for (let i = state.processes.length - 1; i >= 0; i--) {
            if (!names.has(state.processes[i].name)) {
                state.processes.splice(i, 1);
            }
        }
        for (const item of items) {
            upsertProcess(item);
        }
        if (state.loadError) {
            state.loadError = "";
        }
    } catch (err) {
        if (err?.isAbort) {
            return;
        }
        const message = err?.response?.message || err?.message || "Failed to load the processes.";
        if (!state.loadError) {
            app.checkApiError(err); // once per run of failures, not every poll
        }
        state.loadError = message;
    } finally {
        state.isLoading = false;
    }
}

// applyConfig asks the server to apply the edited config file, and shows
// what it did to each process (or the file's errors, which change nothing).
async function applyConfig() {
    if (state.applying) {
        return;
    }
    state.applying = true;
    try {
        const result = await api(`${API}/apply`, { method: "POST" });
        state.applyResult = { file: result.file, changes: result.changes || [], errors: [] };
        const changed = state.applyResult.changes.filter((c) => c.action != "unchanged").length;
        app.toasts.success(changed ? `Applied ${changed} change(s).` : "Nothing to change.");
        await loadProcesses();
    } catch (err) {
        if (err?.isAbort) {
            return;
        }
        const errors = err?.response?.data?.errors;
        if (Array.isArray(errors)) {
            state.applyResult = { file: err.response.data.file, changes: [], errors, message: err.response.message };
        } else {
            app.checkApiError(err);
        }
    } finally {
        state.applying = false;
    }
}

function applyPanel() {
    return t.div(
        {
            className: () => `alert m-b-sm pm-apply-result ${state.applyResult?.errors?.length ? "danger" : "info"}`,
            hidden: () => !state.applyResult,
        },
        t.div(
            { className: "content" },
            t.div({ className: "txt-bold" }, () => state.applyResult?.message || (state.applyResult ? `Applied ${state.applyResult.file}` : "")),
            t.ul(
                { className: "pm-apply-lines" },
                () => (state.applyResult?.errors || []).map((e) =>
                    t.li({ className: "pm-apply-error" }, `${e.path || ""} ${e.process ? `(${e.process}) ` : ""}${e.message}${e.hint ? `; ${e.hint}` : ""}`)
                ),
                () => (state.applyResult?.changes || []).map((c) =>
                    t.li(
                        { className: `pm-apply-change pm-apply-${c.action}` },
                        t.span({ className: "txt-code" }, c.process),
                        ` ${c.action}`,
                        c.detail ? t.span({ className: "txt-hint" }, ` ${c.detail}`) : null,
                        c.error ? t.span({ className: "txt-danger" }, `: ${c.error}`) : null,
                    )
                ),
            ),
        ),
        t.button(
            { type: "button", className: "close", ariaLabel: "Dismiss", onclick: () => (state.applyResult = null) },
            t.i({ ariaHidden: true, className: "ri-close-line" }),
        ),
    );
}

async function runAction(name, action) {
    if (state.pending[name]) {
        return;
    }
    state.pending[name] = action;
    try {
        const summary = await api(processPath(name, "/" + action), { method: "POST" });
        upsertProcess(summary);
        app.toasts.success(`${ACTIONS[action].done} "${name}".`);
    } catch (err) {
        if (!err?.isAbort) {
            app.checkApiError(err);
        }
    } finally {
        delete state.pending[name];
    }
}

// scheduleText describes a cron schedule and its runs.
function scheduleText(schedule) {
    const parts = [`cron ${schedule.cron}`, `${schedule.runs} runs`];
    if (schedule.skipped) {
        parts.push(`${schedule.skipped} skipped (the last run was still going)`);
    }
    if (schedule.last_run) {
        parts.push(`last ${new Date(schedule.last_run).toLocaleString()}`);
    }
    if (schedule.next_run) {
        parts.push(`next ${new Date(schedule.next_run).toLocaleString()}`);
    }
    return parts.join(", ");
}

// Which actions make sense in a state; the server has the last word.
// A process of several instances in different states is "mixed".
function actionAllowed(process, action) {
    switch (action) {
        case "start":
            return ["stopped", "errored", "waiting-restart", "waiting", "completed", "mixed"].includes(process.state);
        case "stop":
            return ["starting", "online", "waiting-restart", "waiting", "mixed"].includes(process.state);
        case "restart":
            return process.state != "stopping";
        case "reload":
            return !!process.route && ["online", "mixed"].includes(process.state) && !process.reloading;
    }
    return false;
}

// actionsOf are the actions shown for a process: reload only for a
// routed one (for another it would be a restart).
function actionsOf(process) {
    return Object.keys(ACTIONS).filter((action) => action != "reload" || process.route);
}

// -------------------------------------------------------------------
// formatting

function formatDuration(ms) {
    if (!(ms > 0)) {
        return "0s";
    }
    if (ms < 1000) {
        return `${Math.round(ms)}ms`;
    }
    const s = Math.floor(ms / 1000);
    if (s < 60) {
        return `${s}s`;
    }
    const m = Math.floor(s / 60);
    if (m < 60) {
        return `${m}m ${s % 60}s`;
    }
    const h = Math.floor(m / 60);
    if (h < 24) {
        return `${h}h ${m % 60}m`;
    }
    return `${Math.floor(h / 24)}d ${h % 24}h`;
}

// uptime ticks from the server's uptime_ms (no clock skew between the two).
function uptime(process) {
    if (!process.pid || !RUNNING_STATES.includes(process.state)) {
        return 0;
    }
    return (process.uptime_ms || 0) + Math.max(0, state.now - (process._received || state.now));
}

function formatCPU(cpu) {
    return typeof cpu == "number" ? `${cpu.toFixed(1)}%` : "";
}

function formatMemory(bytes) {
    return typeof bytes == "number" && bytes > 0 ? app.utils.formattedFileSize(bytes) : "";
}

// auth is a mode ("user", "superuser", "public") or a list of collections.
function formatAuth(auth) {
    return Array.isArray(auth) ? auth.join(", ") : String(auth);
}

function formatLocalTime(value) {
    return value ? app.utils.toLocalDatetime(value) : "";
}

function describeExit(exit) {
    if (!exit) {
        return "";
    }
    let text = exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
    if (exit.reason) {
        text += ` (${exit.reason})`;
    } else if (exit.requested) {
        text += " (requested)";
    }
    return text;
}

const SHELL_SAFE = /^[A-Za-z0-9_\-+=.,/:@%]+$/;

function shellQuote(arg) {
    return SHELL_SAFE.test(arg) ? arg : "'" + String(arg).replaceAll("'", "'\\''") + "'";
}

function hint(text) {
    return t.span({ className: "txt-hint" }, text);
}

function statusBadge(process) {
    return t.span(
        {
            className: () => `label pm-state-label pm-state-${process.state} ${STATE_LABELS[process.state] || ""}`,
            "html-data-state": () => process.state,
            title: () => process.error || undefined,
        },
        t.span({ className: "txt" }, () => process.state || "unknown"),
    );
}

function readinessLabel(process) {
    return () => {
        if (process.state != "online") {
            return hint("–");
        }
        return process.ready
            ? t.span({ className: "label sm success pm-ready" }, "ready")
            : t.span({ className: "label sm warning pm-ready" }, "not ready");
    };
}

// actionButton runs action on process; target is the name acted on (the
// process's, or "api:1" for one instance).
function actionButton(process, action, classes, target = process.name) {
    const spec = ACTIONS[action];
    const label = action == "reload" ? "Reload without downtime" : spec.label;
    return t.button(
        {
            type: "button",
            "html-data-action": action,
            ariaLabel: app.attrs.tooltip(label),
            className: () => `${classes} ${state.pending[target] == action ? "loading" : ""}`,
            disabled: () => !!state.pending[target] || !actionAllowed(process, action),
            onclick: (e) => {
                e.stopPropagation();
                runAction(target, action);
            },
            onkeypress: (e) => e.stopPropagation(),
        },
        t.i({ className: spec.icon, ariaHidden: true }),
    );
}

// -------------------------------------------------------------------
// the page

function pageProcesses(route) {
    app.store.title = "Processes";

    const timers = [];
    let events;

    function openFromQuery() {
        const name = route.query[PROCESS_QUERY_KEY]?.[0];
        if (name && !document.querySelector(".pm-process-modal")) {
            openProcessPanel(name);
        }
    }

    return t.div(
        {
            pbEvent: "pageProcesses",
            className: "page pm-page",
            onmount() {
                state.loadError = "";
                loadProcesses().then(openFromQuery);
                timers.push(
                    setInterval(loadProcesses, LIST_POLL_MS),
                    setInterval(() => (state.now = Date.now()), 1000),
                );
                events = followEventStream(`${API}/events`, {
                    onopen: loadProcesses, // catch up on what happened while disconnected
                    onstatus: (connected) => (state.liveEvents = connected),
                    onevent: (name, raw) => {
                        if (name != "process") {
                            return;
                        }
                        try {
                            upsertProcess(JSON.parse(raw), true);
                        } catch (err) {
                            console.warn("processman: bad process event", raw, err);
                        }
                    },
                });
            },
            onunmount() {
                timers.forEach(clearInterval);
                events?.stop();
                state.liveEvents = false;
            },
        },
        t.div(
            { className: "page-content full-height" },
            t.header(
                { className: "page-header" },
                t.nav({ className: "breadcrumbs" }, t.div(null, "Processes")),
                t.div(
                    { className: "inline-flex gap-sm" },
                    app.components.refreshButton({ onclick: loadProcesses }),
                    t.button(
                        {
                            type: "button",
                            className: () => `btn sm secondary pm-apply ${state.applying ? "btn-loading" : ""}`,
                            disabled: () => state.applying,
                            title: "Re-read pb_processes.json and apply the changes, without restarting PocketBase",
                            onclick: applyConfig,
                        },
                        t.i({ ariaHidden: true, className: "ri-file-settings-line" }),
                        t.span({ className: "txt" }, "Apply config"),
                    ),
                ),
                t.div(
                    { className: "meta m-l-auto txt-hint txt-sm inline-flex gap-5 pm-live" },
                    t.i({
                        ariaHidden: true,
                        className: () => `ri-circle-fill pm-live-dot ${state.liveEvents ? "on" : ""}`,
                    }),
                    t.span(null, () => state.liveEvents ? "Live" : "Polling"),
                ),
            ),
            t.div(
                { className: "alert danger m-b-sm pm-load-error", hidden: () => !state.loadError },
                t.span(null, () => state.loadError),
            ),
            applyPanel(),
            processesTable(),
            t.footer(
                { className: "page-footer" },
                t.span({ className: "txt" }, "Total: ", () => state.processes.length),
                app.components.credits(),
            ),
        ),
    );
}

function processesTable() {
    const columns = [
        ["Name", "ri-terminal-box-line"],
        ["Status", "ri-pulse-line"],
        ["PID", "ri-hashtag"],
        ["Uptime", "ri-time-line"],
        ["Restarts", "ri-restart-line"],
        ["CPU", "ri-cpu-line"],
        ["Memory", "ri-database-2-line"],
        ["Ready", "ri-checkbox-circle-line"],
        ["Route", "ri-route-line"],
    ];

    return t.div(
        { className: "page-table-wrapper pm-table-wrapper" },
        t.table(
            { className: "pm-processes-table" },
            t.thead(
                null,
                t.tr(
                    null,
                    ...columns.map(([label, icon]) =>
                        t.th(
                            { className: `pm-col-${label.toLowerCase()}` },
                            t.div(
                                { className: "inline-flex gap-5" },
                                t.i({ className: icon, ariaHidden: true }),
                                t.span(null, label),
                            ),
                        )
                    ),
                    t.th({ className: "col-meta pm-col-actions" }),
                ),
            ),
            () => {
                if (!state.processes.length) {
                    return t.tbody(null, t.tr(
                        null,
                        t.td({ colSpan: 99 }, () => {
                            if (state.isLoading && !state.loadError) {
                                return t.span({ className: "skeleton-loader" });
                            }
                            return t.div(
                                { className: "sticky-content txt-center txt-hint" },
                                t.div({ className: "txt-bold" }, "No processes."),
                                t.div(
                                    { className: "txt-sm m-t-5" },
                                    "Processes come from pb_processes.json beside pb_data or from Go code.",
                                ),
                            );
                        }),
                    ));
                }
                // a body per process: its row, then its instances' rows
                return state.processes.map((process) =>
                    t.tbody({ className: "pm-process-group" }, processRow(process), () => instanceRows(process))
                );
            },
        ),
    );
}

function processRow(process) {
    const open = () => openProcessPanel(process.name);
    const openLogs = () => openProcessPanel(process.name, { logs: true });

    return t.tr(
        {
            rid: process.name,
            tabIndex: 0,
            role: "button",
            "html-data-process": process.name,
            className: "handle pm-process-row",
            onclick: open,
            onkeypress: (e) => {
                if (e.key == "Enter" || e.key == " ") {
                    e.preventDefault();
                    open();
                }
            },
        },
        t.td(
            { className: "pm-col-name" },
            t.div(
                { className: "inline-flex gap-5" },
                t.span({ className: "txt-bold pm-name" }, process.name),
                () => process.instances?.length > 1
                    ? t.span({ className: "label sm pm-instances", title: "Instances" }, `×${process.instances.length}`)
                    : null,
                () => process.disabled ? t.span({ className: "label sm" }, "disabled") : null,
                () => process.watch ? t.span({ className: "label sm", title: "Restarts on file change" }, "watch") : null,
            ),
            t.div({ className: "txt-hint txt-sm" }, () => process.runtime || ""),
        ),
        t.td(
            { className: "pm-col-status" },
            statusBadge(process),
            t.div({ className: "txt-hint txt-sm pm-status-hint" }, () => {
                if (process.reloading) {
                    return "reloading…";
                }
                if (process.instances?.length > 1) {
                    const ready = process.instances.filter((i) => i.ready).length;
                    return `${ready} of ${process.instances.length} ready`;
                }
                if (process.state == "waiting-restart" && process.next_restart) {
                    const due = Math.max(0, Date.parse(process.next_restart) - state.now);
                    return `restart in ${formatDuration(due + 999)}`;
                }
                if (process.state == "waiting" && process.waiting_for) {
                    return `waiting for ${process.waiting_for}`;
                }
                if (process.schedule && !["starting", "online", "stopping"].includes(process.state)) {
                    const next = process.schedule.next_run ? Date.parse(process.schedule.next_run) - state.now : null;
                    return `cron ${process.schedule.cron}` + (next != null ? `, next in ${formatDuration(Math.max(0, next) + 999)}` : "");
                }
                if (["errored", "stopped", "waiting-restart"].includes(process.state) && process.last_exit) {
                    return describeExit(process.last_exit);
                }
                return "";
            }),
        ),
        t.td({ className: "pm-col-pid txt-code" }, () => process.pid ? String(process.pid) : hint("–")),
        t.td({ className: "pm-col-uptime" }, () => process.pid ? formatDuration(uptime(process)) : hint("–")),
        t.td(
            { className: "pm-col-restarts" },
            () => String(process.restarts ?? 0),
            () => process.unstable_restarts
                ? t.span(
                    { className: "txt-hint txt-sm", title: "Consecutive runs shorter than min_uptime" },
                    ` (${process.unstable_restarts} unstable)`,
                )
                : null,
        ),
        t.td({ className: "pm-col-cpu" }, () => process.pid ? formatCPU(process.cpu) : hint("–")),
        t.td(
            { className: "pm-col-memory" },
            () => process.pid ? formatMemory(process.memory) : hint("–"),
            () => process.pid && process.tree_size > 1
                ? t.div({ className: "txt-hint txt-sm" }, `${process.tree_size} processes`)
                : null,
        ),
        t.td({ className: "pm-col-ready" }, readinessLabel(process)),
        t.td({ className: "pm-col-route" }, () => {
            if (!process.route) {
                return hint("–");
            }
            return [
                t.span({ className: "txt-code" }, process.route),
                process.auth ? t.div({ className: "txt-hint txt-sm" }, `auth: ${formatAuth(process.auth)}`) : null,
            ];
        }),
        t.td(
            { className: "col-meta pm-col-actions" },
            t.div(
                { className: "inline-flex gap-5" },
                actionButton(process, "start", "btn sm circle transparent success"),
                actionButton(process, "stop", "btn sm circle transparent danger"),
                actionButton(process, "restart", "btn sm circle transparent secondary"),
                () => process.route ? actionButton(process, "reload", "btn sm circle transparent secondary") : null,
                t.button(
                    {
                        type: "button",
                        "html-data-action": "logs",
                        className: "btn sm transparent secondary pm-logs-button",
                        ariaLabel: app.attrs.tooltip("Output of " + process.name),
                        onclick: (e) => {
                            e.stopPropagation();
                            openLogs();
                        },
                        onkeypress: (e) => e.stopPropagation(),
                    },
                    t.i({ className: "ri-file-list-3-line", ariaHidden: true }),
                    t.span({ className: "txt" }, "Logs"),
                ),
            ),
        ),
    );
}

// instanceRows are the rows of the instances of a process of several,
// under its own row: each with its pid, state, numbers and actions
// ("api:1").
function instanceRows(process) {
    if (!(process.instances?.length > 1)) {
        return null;
    }
    return process.instances.map((_, index) => instanceRow(process, index));
}

function instanceRow(process, index) {
    const target = `${process.name}:${index}`;
    // a view of the instance that reads the list entry, which is replaced
    // as events and polls arrive
    const view = {
        get name() {
            return process.name;
        },
        get route() {
            return process.route;
        },
        get _received() {
            return process._received;
        },
    };
    for (const field of ["state", "pid", "ready", "error", "uptime_ms", "restarts", "unstable_restarts", "cpu", "memory", "next", "last_exit"]) {
        Object.defineProperty(view, field, { get: () => process.instances?.[index]?.[field] });
    }
    Object.defineProperty(view, "reloading", { get: () => !!process.instances?.[index]?.next });

    return t.tr(
        {
            rid: target,
            "html-data-instance": target,
            className: "pm-instance-row",
        },
        t.td({ className: "pm-col-name" }, t.span({ className: "txt-code pm-instance-name" }, target)),
        t.td(
            { className: "pm-col-status" },
            statusBadge(view),
            t.div({ className: "txt-hint txt-sm pm-status-hint" }, () => {
                if (view.next) {
                    return `reloading: new copy ${view.next.pid}`;
                }
                return ["errored", "stopped", "waiting-restart"].includes(view.state) && view.last_exit
                    ? describeExit(view.last_exit)
                    : "";
            }),
        ),
        t.td({ className: "pm-col-pid txt-code" }, () => view.pid ? String(view.pid) : hint("–")),
        t.td({ className: "pm-col-uptime" }, () => view.pid ? formatDuration(uptime(view)) : hint("–")),
        t.td({ className: "pm-col-restarts" }, () => String(view.restarts ?? 0)),
        t.td({ className: "pm-col-cpu" }, () => view.pid ? formatCPU(view.cpu) : hint("–")),
        t.td({ className: "pm-col-memory" }, () => view.pid ? formatMemory(view.memory) : hint("–")),
        t.td({ className: "pm-col-ready" }, readinessLabel(view)),
        t.td({ className: "pm-col-route" }),
        t.td(
            { className: "col-meta pm-col-actions" },
            t.div(
                { className: "inline-flex gap-5" },
                ...actionsOf(process).map((action) =>
                    actionButton(view, action, "btn sm circle transparent secondary", target)
                ),
            ),
        ),
    );
}

// -------------------------------------------------------------------
// the process panel

// openProcessPanel opens the panel of a process; with logs, at its output.
function openProcessPanel(name, { logs = false } = {}) {
    app.modals.close(null, true);

    const panel = processPanel(name);
    document.body.appendChild(panel);
    app.modals.open(panel);
    app.utils.replaceHashQueryParams({ [PROCESS_QUERY_KEY]: name });
    if (logs) {
        panel.querySelector(".pm-logs-section")?.scrollIntoView({ block: "start" });
    }
}

function processPanel(name) {
    const data = store({
        process: null, // the detail: Summary + command, cwd, env, last_crash, logs
        stats: null, // its output counters
        isLoading: true,
    });
    let renderedKey = "";

    // the list's entry, which the events stream keeps current
    const listed = () => findProcess(name);

    // Live fields come from the list entry when there is one.
    const live = (field) => {
        const entry = listed();
        return entry ? entry[field] : data.process?.[field];
    };

    let timer;
    let watcher;
    let viewer;

    async function load() {
        try {
            const detail = await api(processPath(name), { requestKey: "processman.detail." + name });
            data.stats = detail.logs || null;
            // Replace (and so re-render) the detail only when more than the
            // ever-changing numbers changed: the panel keeps its scroll and
            // selection while the process just runs.
            const key = JSON.stringify(detail, (k, v) => VOLATILE_FIELDS.includes(k) ? undefined : v);
            if (key != renderedKey) {
                renderedKey = key;
                data.process = detail;
            }
            data.isLoading = false;
        } catch (err) {
            if (err?.isAbort) {
                return;
            }
            data.isLoading = false;
            app.checkApiError(err);
            if (err?.status == 404) {
                app.modals.close(panel);
            }
        }
    }

    const view = {
        get state() {
            return live("state");
        },
        get pid() {
            return live("pid");
        },
        get name() {
            return name;
        },
        get error() {
            return live("error");
        },
        get route() {
            return live("route");
        },
        get reloading() {
            return live("reloading");
        },
    };

    const panel = t.div(
        {
            pbEvent: "processPanel",
            className: "modal lg pm-process-modal",
            "html-data-process": name,
            onbeforeopen: () => {
                load();
                timer = setInterval(load, DETAIL_POLL_MS);
                // reload at once when the process changes state or run
                watcher = watch(
                    () => [live("state"), live("pid"), live("restarts")].join(" "),
                    (now, before) => {
                        if (before !== undefined && now != before) {
                            load();
                        }
                    },
                );
            },
            onafterclose: () => {
                clearInterval(timer);
                watcher?.unwatch();
                viewer?.stop();
                app.utils.replaceHashQueryParams({ [PROCESS_QUERY_KEY]: null });
                panel.remove();
            },
        },
        t.header(
            { className: "modal-header" },
            t.h5({ className: "pm-panel-title" }, name),
            statusBadge(view),
            t.div(
                { className: "inline-flex gap-5 m-l-auto pm-panel-actions" },
                ...Object.keys(ACTIONS).map((action) => {
                    const spec = ACTIONS[action];
                    if (action == "reload" && !live("route")) {
                        return null;
                    }
                    return t.button(
                        {
                            type: "button",
                            "html-data-action": action,
                            className: () =>
                                `btn sm secondary ${state.pending[name] == action ? "loading" : ""}`,
                            disabled: () => !!state.pending[name] || !data.process || !actionAllowed(view, action),
                            onclick: () => runAction(name, action),
                        },
                        t.i({ className: spec.icon, ariaHidden: true }),
                        t.span({ className: "txt" }, spec.label),
                    );
                }),
            ),
        ),
        t.div(
            { className: "modal-content pm-panel-content" },
            () => {
                if (data.isLoading && !data.process) {
                    return t.div({ className: "block txt-center" }, t.span({ className: "loader" }));
                }
                if (!data.process) {
                    return t.div({ className: "txt-hint" }, "Process not found.");
                }
                const error = live("error");
                return [
                    error ? errorAlert(error, live("state")) : null,
                    warningsAlert(data),
                    reloadFailure(data),
                    crashRecord(data),
                ];
            },
            t.section(
                { className: "pm-section pm-logs-section" },
                t.div({ className: "section-heading pm-section-heading" }, "Output"),
                (viewer = logViewer(name)).el,
            ),
            () => {
                if (!data.process) {
                    return null;
                }
                return [
                    t.section(
                        { className: "pm-section pm-details" },
                        t.div({ className: "section-heading pm-section-heading" }, "Details"),
                        detailsTable(data, live),
                    ),
                    environmentTable(data),
                ];
            },
        ),
        t.footer(
            { className: "modal-footer" },
            t.button(
                {
                    type: "button",
                    className: "btn transparent m-r-auto",
                    onclick: () => app.modals.close(panel),
                },
                t.span({ className: "txt" }, "Close"),
            ),
        ),
    );

    return panel;
}

function errorAlert(message, processState) {
    return t.div(
        { className: `alert ${processState == "errored" ? "danger" : "warning"} pm-error` },
        t.i({ className: "ri-error-warning-line", ariaHidden: true }),
        " ",
        t.span(null, message),
    );
}

function detailRow(label, value, className = "") {
    return t.tr(
        { className },
        t.th({ className: "min-width p-r-0" }, label),
        t.td(null, value),
    );
}

function detailsTable(data, live) {
    const p = data.process;
    const argv = (p.command || []).map(shellQuote).join(" ");

    return t.table(
        { className: "pm-details-table" },
        t.tbody(
            null,
            detailRow("pid", () => live("pid") ? String(live("pid")) : hint("not running"), "pm-detail-pid"),
            () => live("instances")?.length > 1
                ? detailRow("instances", () =>
                    live("instances").map((i) =>
                        t.div(
                            { className: "pm-detail-instance", "html-data-instance": `${p.name}:${i.instance}` },
                            t.span({ className: "txt-code" }, `${p.name}:${i.instance}`),
                            ` ${i.state}`,
                            i.pid ? ` · pid ${i.pid}` : "",
                            i.ready ? " · ready" : "",
                            i.next ? ` · reloading (new copy ${i.next.pid})` : "",
                            i.memory ? ` · ${formatMemory(i.memory)}` : "",
                        )
                    ), "pm-detail-instances")
                : null,
            detailRow("uptime", () => {
                const entry = findProcess(p.name);
                return entry?.pid ? formatDuration(uptime(entry)) : hint("–");
            }),
            detailRow("restarts", () => {
                let text = String(live("restarts") ?? 0);
                if (live("unstable_restarts")) {
                    text += ` (${live("unstable_restarts")} unstable)`;
                }
                if (live("next_restart")) {
                    text += `, next at ${formatLocalTime(live("next_restart"))}`;
                }
                return text;
            }),
            detailRow("cpu / memory", () => {
                if (!live("pid")) {
                    return hint("–");
                }
                const parts = [formatCPU(live("cpu")), formatMemory(live("memory"))].filter(Boolean);
                const tree = live("tree_size");
                if (tree > 1) {
                    parts.push(`${tree} processes`);
                }
                return parts.join(" · ") || hint("–");
            }),
            detailRow("ready", readinessLabel({
                get state() {
                    return live("state");
                },
                get ready() {
                    return live("ready");
                },
            })),
            detailRow(
                "command",
                argv
                    ? t.div(
                        { className: "pm-command" },
                        t.code({ className: "block pm-command-line" }, argv),
                        app.components.copyButton(argv),
                    )
                    : hint("–"),
                "pm-detail-command",
            ),
            detailRow("cwd", p.cwd ? t.span({ className: "txt-code" }, p.cwd) : hint("–")),
            p.runtime || p.venv
                ? detailRow(
                    "runtime",
                    [p.runtime || "", p.venv ? t.span({ className: "txt-hint" }, ` venv ${p.venv}`) : null],
                )
                : null,
            p.route
                ? detailRow("route", [
                    t.span({ className: "txt-code" }, p.route),
                    p.auth ? t.span({ className: "txt-hint" }, ` auth: ${formatAuth(p.auth)}`) : null,
                    p.listen ? t.span({ className: "txt-hint" }, ` listen: ${p.listen}`) : null,
                ])
                : null,
            p.depends_on?.length
                ? detailRow(
                    "depends on",
                    p.depends_on.map((dep) =>
                        t.span({ className: "label sm m-r-5" }, `${dep.name}: ${dep.condition.replaceAll("_", " ")}`)
                    ),
                )
                : null,
            p.waiting_for ? detailRow("waiting for", p.waiting_for) : null,
            p.schedule ? detailRow("schedule", scheduleText(p.schedule)) : null,
            detailRow("watch", p.watch ? "restarts on file change" : hint("off")),
            p.policy ? detailRow("policy", policyText(p.policy)) : null,
            p.health ? detailRow("health check", healthText(p.health)) : null,
            p.log_file ? detailRow("log file", t.span({ className: "txt-code" }, p.log_file)) : null,
            detailRow("output", () => {
                if (!data.stats) {
                    return hint("–");
                }
                // the line count, and the counters of lost lines when any were lost
                return Object.entries(data.stats)
                    .filter(([key, value]) => key == "lines" || value)
                    .map(([key, value]) =>
                        t.span(
                            { className: `label sm m-r-5 ${key == "lines" ? "" : "warning"}` },
                            `${key.replaceAll("_", " ")}: ${value}`,
                        )
                    );
            }),
        ),
    );
}

function policyText(policy) {
    const parts = [`restart: ${policy.restart || "always"}`];
    if (policy.instances > 1) {
        parts.push(`${policy.instances} instances`);
    }
    if (policy.max_restarts) {
        parts.push(`max ${policy.max_restarts} unstable restarts`);
    }
    if (policy.min_uptime) {
        parts.push(`min uptime ${policy.min_uptime}`);
    }
    if (policy.kill_signal || policy.kill_timeout) {
        parts.push(`stop: ${[policy.kill_signal, policy.kill_timeout].filter(Boolean).join(", then SIGKILL after ")}`);
    }
    if (policy.ready_timeout) {
        parts.push(`reload: ready within ${policy.ready_timeout}, drain up to ${policy.drain_timeout}`);
    }
    if (policy.max_memory_restart) {
        parts.push(`memory limit ${policy.max_memory_restart}`);
    }
    return parts.join(" · ");
}

function healthText(health) {
    const parts = [];
    if (health.http) {
        parts.push(`GET ${health.http}`);
    }
    if (health.line) {
        parts.push(`output line ${JSON.stringify(health.line)}`);
    }
    if (health.interval) {
        parts.push(`every ${health.interval}`);
    }
    if (health.failures) {
        parts.push(`${health.failures} failures restart it`);
    }
    return parts.join(" · ") || hint("–");
}

function warningsAlert(data) {
    const warnings = data.process.warnings || [];
    if (!warnings.length) {
        return null;
    }
    return t.div(
        { className: "alert warning pm-warnings" },
        t.i({ className: "ri-information-line", ariaHidden: true }),
        t.span(null, warnings.join("\n")),
    );
}

// reloadFailure shows the last reload that was given up, with the new
// copy's output.
function reloadFailure(data) {
    const failure = data.process.last_reload_failure;
    if (!failure) {
        return null;
    }
    const lines = failure.last_lines || [];
    return t.section(
        { className: "pm-section pm-reload-failure" },
        t.div({ className: "section-heading pm-section-heading" }, "Last reload given up"),
        t.div(
            { className: "alert warning" },
            t.strong(null, failure.error),
            t.span(null, failure.time ? ` at ${formatLocalTime(failure.time)}` : ""),
        ),
        lines.length ? t.div({ className: "pm-log-viewer pm-crash-lines" }, renderLogLines(lines)) : null,
    );
}

function crashRecord(data) {
    const crash = data.process.last_crash;
    if (!crash) {
        return null;
    }
    const lines = crash.last_lines || [];

    return t.section(
        { className: "pm-section pm-crash" },
        t.div({ className: "section-heading pm-section-heading" }, "Last crash"),
        t.div(
            { className: "alert danger pm-crash-summary" },
            t.strong({ className: "pm-crash-exit" }, describeExit(crash)),
            t.span(
                null,
                crash.time ? ` at ${formatLocalTime(crash.time)}` : "",
                crash.pid ? `, pid ${crash.pid}` : "",
                crash.uptime_ms != null ? `, after ${formatDuration(crash.uptime_ms)} of uptime` : "",
            ),
        ),
        lines.length
            ? t.div({ className: "pm-log-viewer pm-crash-lines" }, renderLogLines(lines))
            : t.div({ className: "txt-hint txt-sm m-t-5" }, "No output before the exit."),
        crash.hint
            ? t.div(
                { className: "alert info m-t-sm pm-crash-hint" },
                t.i({ className: "ri-lightbulb-line", ariaHidden: true }),
                t.span(null, crash.hint),
            )
            : null,
    );
}

function environmentTable(data) {
    const env = data.process.env || [];
    const inherited = data.process.inherited_env || 0;
    if (!env.length && !inherited) {
        return null;
    }
    return t.section(
        { className: "pm-section pm-env" },
        t.div(
            { className: "section-heading pm-section-heading" },
            t.span(null, "Environment"),
            inherited
                ? t.span({ className: "txt-hint txt-sm txt-normal" }, `and ${inherited} variables inherited from PocketBase`)
                : null,
        ),
        t.table(
            { className: "pm-env-table" },
            t.tbody(
                null,
                env.map((v) =>
                    t.tr(
                        { "html-data-env": v.name },
                        t.th({ className: "min-width txt-code p-r-0" }, v.name),
                        t.td(
                            { className: "pm-env-value" },
                            v.redacted
                                ? t.span({ className: "label sm warning", title: "Redacted by the server" }, v.value || "redacted")
                                : t.span({ className: "txt-code" }, v.value),
                        ),
                        t.td(
                            { className: "min-width" },
                            t.span({ className: "label sm", title: "Where the value comes from" }, v.source || ""),
                        ),
                    )
                ),
            ),
        ),
    );
}

// -------------------------------------------------------------------
// log lines

function formatLineTime(value) {
    const local = formatLocalTime(value);
    return local ? local.substring(11) : ""; // HH:MM:SS.mmm
}

function logLineElement(line) {
    const stderr = line.stream == "stderr";
    return t.div(
        {
            className: `pm-log-line ${stderr ? "pm-stderr" : "pm-stdout"}`,
            title: `${formatLocalTime(line.time)} · ${line.stream} · pid ${line.pid}`,
        },
        t.span({ className: "pm-log-time" }, formatLineTime(line.time)),
        t.span({ className: "pm-log-stream" }, stderr ? "err" : "out"),
        t.span({ className: "pm-log-text" }, line.text),
    );
}

function runSeparator(pid) {
    return t.div({ className: "pm-log-run" }, `pid ${pid}`);
}

// Static lines (the crash record), with a mark where the pid changes.
function renderLogLines(lines) {
    const out = [];
    let pid = lines[0]?.pid;
    for (const line of lines) {
        if (line.pid != pid) {
            out.push(runSeparator(line.pid));
        }
        pid = line.pid;
        out.push(logLineElement(line));
    }
    return out;
}

/**
 * The followed output of one process: the last lines, then each new one.
 * Scrolls with the output unless the user has scrolled up; then a button
 * brings them back. Lines are appended directly, not re-rendered, so a
 * chatty process stays cheap to watch.
 */
function logViewer(name) {
    const data = store({
        connected: false,
        stuck: true, // following the bottom
        unseen: 0, // lines that arrived while scrolled up
        count: 0,
    });

    let lastPid;
    let follow;

    const lines = t.div({
        className: "pm-log-viewer pm-log-follow",
        tabIndex: 0,
        onscroll: (e) => {
            const el = e.target;
            const atBottom = el.scrollTop + el.clientHeight >= el.scrollHeight - 8;
            if (atBottom != data.stuck) {
                data.stuck = atBottom;
            }
            if (atBottom && data.unseen) {
                data.unseen = 0;
            }
        },
    });

    function scrollToBottom() {
        lines.scrollTop = lines.scrollHeight;
        data.stuck = true;
        data.unseen = 0;
    }

    function append(line) {
        if (line.pid != lastPid) {
            lines.appendChild(runSeparator(line.pid));
        }
        lastPid = line.pid;
        lines.appendChild(logLineElement(line));
        let count = data.count + 1;
        while (count > LOG_MAX_LINES) {
            if (lines.firstElementChild.classList.contains("pm-log-line")) {
                count--;
            }
            lines.firstElementChild.remove();
        }
        data.count = count;
        if (data.stuck) {
            lines.scrollTop = lines.scrollHeight;
        } else {
            data.unseen++;
        }
    }

    function start() {
        follow = followEventStream(processPath(name, `/logs?lines=${LOG_BACKLOG_LINES}&follow=true`), {
            // each connection replays the backlog: start from a clean slate
            onopen: () => {
                lines.replaceChildren();
                lastPid = undefined;
                data.count = 0;
            },
            onstatus: (connected) => (data.connected = connected),
            onevent: (event, raw) => {
                if (event != "line") {
                    return;
                }
                try {
                    append(JSON.parse(raw));
                } catch (err) {
                    console.warn("processman: bad log line", raw, err);
                }
            },
        });
    }

    const el = t.div(
        {
            className: "pm-log-box",
            onmount: () => {
                if (!follow) {
                    start();
                }
            },
        },
        t.div(
            { className: "pm-log-toolbar txt-hint txt-sm" },
            t.span(
                { className: "inline-flex gap-5" },
                t.i({
                    ariaHidden: true,
                    className: () => `ri-circle-fill pm-live-dot ${data.connected ? "on" : ""}`,
                }),
                () => data.connected ? "Following" : "Connecting…",
            ),
            t.span({ className: "pm-log-legend" }, t.span({ className: "pm-legend-stdout" }, "out: stdout"), " ", t.span({ className: "pm-legend-stderr" }, "err: stderr")),
            t.span({ className: "m-l-auto" }, () => `${data.count} lines`),
        ),
        t.div(
            { className: "pm-log-frame" },
            lines,
            t.button(
                {
                    type: "button",
                    className: "btn sm pill pm-log-jump",
                    hidden: () => data.stuck,
                    onclick: scrollToBottom,
                },
                t.i({ className: "ri-arrow-down-line", ariaHidden: true }),
                t.span({ className: "txt" }, () => data.unseen ? `${data.unseen} new lines` : "Follow"),
            ),
        ),
    );

    return {
        el,
        stop() {
            follow?.stop();
            follow = null;
        },
    };
}
