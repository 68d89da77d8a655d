package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fatih/color"
	"github.com/processman/processman/control"
	"github.com/processman/processman/supervisor"
)

// stateColor colours a state the way PM2 does: green online, yellow on
// the way, red errored, faint stopped. fatih/color turns colour off when
// the output is not a terminal or NO_COLOR is set.
func stateColor(state string) *color.Color {
	switch state {
	case "online":
		return color.New(color.FgGreen)
	case "errored":
		return color.New(color.FgRed, color.Bold)
	case "completed":
		return color.New(color.FgGreen, color.Faint)
	case "stopped":
		return color.New(color.Faint)
	default:
		return color.New(color.FgYellow)
	}
}

// printTable writes the processes as a table, one row per instance of a
// process of several ("api:0", "api:1"), as PM2 lists cluster instances.
func printTable(w io.Writer, procs []control.Summary) {
	if len(procs) == 0 {
		fmt.Fprintln(w, "no processes")
		return
	}
	rows := [][]string{{"NAME", "STATUS", "PID", "UPTIME", "RESTARTS", "CPU", "MEMORY", "READY", "ROUTE"}}
	for _, p := range procs {
		route := p.Route
		if route == "" {
			route = "-"
		}
		instances := p.Instances
		if len(instances) == 0 { // an older server
			instances = []control.Instance{{State: p.State, Pid: p.Pid, UptimeMs: p.UptimeMs, Restarts: p.Restarts, CPU: p.CPU, Memory: p.Memory, Ready: p.Ready}}
		}
		for _, in := range instances {
			name := p.Name
			if len(instances) > 1 {
				name = fmt.Sprintf("%s:%d", p.Name, in.Instance)
			}
			pid, uptime, cpu, mem, ready := "-", "-", "-", "-", "-"
			if in.Pid != 0 {
				pid = fmt.Sprint(in.Pid)
				uptime = shortDuration(time.Duration(in.UptimeMs) * time.Millisecond)
				cpu = fmt.Sprintf("%.1f%%", in.CPU)
				mem = humanBytes(in.Memory)
				ready = yesNo(in.Ready)
			}
			state := in.State
			if in.Next != nil {
				state = "reloading"
			}
			rows = append(rows, []string{name, state, pid, uptime, fmt.Sprint(in.Restarts), cpu, mem, ready, route})
		}
	}
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, cell := range r {
			widths[i] = max(widths[i], len(cell))
		}
	}
	for n, r := range rows {
		var b strings.Builder
		for i, cell := range r {
			padded := cell
			if i < len(r)-1 {
				padded = pad(cell, widths[i]+2)
			}
			switch {
			case n == 0:
				padded = color.New(color.Bold).Sprint(padded)
			case i == 1: // colour after padding, so that codes take no width
				padded = stateColor(cell).Sprint(padded)
			}
			b.WriteString(padded)
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	for _, p := range procs {
		if p.Error != "" && (p.State == "errored" || p.State == "mixed") {
			fmt.Fprintf(w, "%s %s: %s\n", color.RedString("errored"), p.Name, p.Error)
		}
	}
}

// dependsOnText lists dependencies as "db (ready), setup (completed_successfully)".
func dependsOnText(deps []control.Dependency) string {
	parts := make([]string, len(deps))
	for i, dep := range deps {
		parts[i] = fmt.Sprintf("%s (%s)", dep.Name, dep.Condition)
	}
	return strings.Join(parts, ", ")
}

// scheduleText describes a cron schedule and its runs.
func scheduleText(sc supervisor.Schedule) string {
	text := fmt.Sprintf("cron %q, %d runs", sc.Cron, sc.Runs)
	if sc.Skipped > 0 {
		text += fmt.Sprintf(", %d skipped (the last run was still going)", sc.Skipped)
	}
	if !sc.LastRun.IsZero() {
		text += ", last " + sc.LastRun.Local().Format(time.DateTime)
	}
	if !sc.NextRun.IsZero() {
		text += ", next " + sc.NextRun.Local().Format(time.DateTime)
	}
	return text
}

// printApply writes what an apply did, a line per process.
func printApply(w io.Writer, r control.ApplyResult) {
	fmt.Fprintf(w, "applied %s\n", r.File)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range r.Changes {
		action := c.Action
		switch c.Action {
		case control.ApplyAdded, control.ApplyReloaded, control.ApplyReplaced:
			action = color.GreenString(action)
		case control.ApplyRemoved:
			action = color.YellowString(action)
		case control.ApplyFailed:
			action = color.RedString(action)
		case control.ApplyUnchanged:
			action = color.New(color.Faint).Sprint(action)
		}
		detail := c.Detail
		if c.Error != "" {
			detail = strings.TrimSpace(detail + " " + c.Error)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Process, action, detail)
	}
	_ = tw.Flush()
}

// printDetail writes one process in detail.
func printDetail(w io.Writer, d control.Detail) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	row("name", d.Name)
	if len(d.Instances) > 1 {
		row("instances", instancesLine(d.Instances))
		row("shown", fmt.Sprintf("instance %d (`describe %s:N` for another)", d.Instance, d.Name))
		for _, in := range d.Instances {
			if in.Instance == d.Instance {
				d.State, d.Pid, d.Ready, d.UptimeMs, d.CPU, d.Memory, d.TreeSize = in.State, in.Pid, in.Ready, in.UptimeMs, in.CPU, in.Memory, in.TreeSize
				d.Restarts, d.UnstableRestarts, d.Error, d.LastExit = in.Restarts, in.UnstableRestarts, in.Error, in.LastExit
			}
		}
	}
	row("status", stateColor(d.State).Sprint(d.State))
	if d.Error != "" {
		row("error", d.Error)
	}
	row("waiting for", d.WaitingFor)
	row("depends on", dependsOnText(d.DependsOn))
	if sc := d.Schedule; sc != nil {
		row("schedule", scheduleText(*sc))
	}
	if d.Pid != 0 {
		row("pid", fmt.Sprint(d.Pid))
		row("uptime", shortDuration(time.Duration(d.UptimeMs)*time.Millisecond))
		row("ready", yesNo(d.Ready))
		row("cpu", fmt.Sprintf("%.1f%% (%d processes)", d.CPU, d.TreeSize))
		row("memory", humanBytes(d.Memory))
	}
	row("restarts", fmt.Sprintf("%d (%d unstable in a row)", d.Restarts, d.UnstableRestarts))
	if d.Reloads > 0 {
		row("reloads", fmt.Sprint(d.Reloads))
	}
	if d.NextRestart != nil {
		row("next restart", d.NextRestart.Local().Format(time.TimeOnly))
	}
	row("command", strings.Join(d.Command, " "))
	row("cwd", d.Cwd)
	row("runtime", d.Runtime)
	row("venv", d.Venv)
	row("log file", d.LogFile)
	row("restart policy", fmt.Sprintf("%s, max %d unstable restarts, min uptime %s", d.Policy.Restart, d.Policy.MaxRestarts, d.Policy.MinUptime))
	row("stop", fmt.Sprintf("%s, then SIGKILL after %s", d.Policy.KillSignal, d.Policy.KillTimeout))
	if d.Policy.ReadyTimeout != "" {
		row("reload", fmt.Sprintf("new copy ready within %s, old copy drains up to %s", d.Policy.ReadyTimeout, d.Policy.DrainTimeout))
	}
	row("memory limit", d.Policy.MaxMemoryRestart)
	if d.Route != "" {
		row("route", fmt.Sprintf("%s (auth %v, listen %s)", d.Route, d.Auth, d.Listen))
	}
	row("watch", yesNo(d.Watch))
	if d.LastExit != nil {
		row("last exit", exitText(*d.LastExit))
	}
	_ = tw.Flush()
	for _, warning := range d.Warnings {
		fmt.Fprintf(w, "%s %s\n", color.YellowString("warning:"), warning)
	}

	if len(d.Env) > 0 {
		fmt.Fprintf(w, "\nenvironment (%d more inherited from PocketBase):\n", d.Inherited)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, v := range d.Env {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.Name, v.Value, color.New(color.Faint).Sprint(v.Source))
		}
		_ = tw.Flush()
	}
	if f := d.LastReloadFailure; f != nil {
		fmt.Fprintf(w, "\n%s %s: %s\n", color.RedString("last reload given up:"), f.Time.Local().Format(time.DateTime), f.Error)
		for _, l := range f.LastLines {
			printLine(w, "", l)
		}
	}
	if c := d.LastCrash; c != nil {
		fmt.Fprintf(w, "\n%s %s\n", color.RedString("last crash:"), exitText(c.Exit))
		for _, l := range c.LastLines {
			printLine(w, "", l)
		}
		if c.Hint != "" {
			fmt.Fprintf(w, "%s %s\n", color.YellowString("hint:"), c.Hint)
		}
	}
}

func exitText(e control.Exit) string {
	how := fmt.Sprintf("code %d", e.Code)
	if e.Signal != "" {
		how = "signal " + e.Signal
	}
	switch {
	case e.Reason != "":
		how += ", stopped by processman: " + e.Reason
	case e.Requested:
		how += ", asked for"
	}
	return fmt.Sprintf("%s at %s after %s (pid %d)", how, e.Time.Local().Format(time.DateTime),
		shortDuration(time.Duration(e.UptimeMs)*time.Millisecond), e.Pid)
}

// instancesLine sums up instances: "3 (2 online, 1 errored)".
func instancesLine(instances []control.Instance) string {
	counts := map[string]int{}
	var order []string
	for _, in := range instances {
		if counts[in.State] == 0 {
			order = append(order, in.State)
		}
		counts[in.State]++
	}
	parts := make([]string, len(order))
	for i, state := range order {
		parts[i] = fmt.Sprintf("%d %s", counts[state], state)
	}
	return fmt.Sprintf("%d (%s)", len(instances), strings.Join(parts, ", "))
}

// printLine writes one output line: time, process (with its instance
// when name has several, "api:1"), stream and text; stderr lines in red.
func printLine(w io.Writer, name string, l control.Line) {
	prefix := l.Time.Local().Format("15:04:05.000")
	if name != "" {
		prefix += " " + name
	}
	sep := color.New(color.Faint).Sprint("|")
	text := l.Text
	if l.Stream == "stderr" {
		text = color.RedString("%s", text)
	}
	fmt.Fprintf(w, "%s %s %s\n", color.New(color.Faint).Sprint(prefix), sep, text)
}

// shortDuration writes 45s, 12m, 3h, 2d.
func shortDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func pad(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return s + strings.Repeat(" ", n-len(s))
}
