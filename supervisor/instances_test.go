package supervisor

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/processman/processman/config"
)

// Actions name a process ("w", every instance) or one instance ("w:1");
// anything else is a clear not-found.
func TestFindNamesAProcessOrOneInstance(t *testing.T) {
	h := newHarness(t)
	procs := h.addInstances(config.Process{Name: "w", Script: "sleep", Args: []string{"300"}, Instances: 3})
	h.add(config.Process{Name: "one", Script: "sleep", Args: []string{"300"}})

	if got, err := h.manager.Find("w"); err != nil || len(got) != 3 || got[2] != procs[2] {
		t.Errorf("w: %v %v", got, err)
	}
	if got, err := h.manager.Find("w:1"); err != nil || len(got) != 1 || got[0] != procs[1] || got[0].Ref() != "w:1" {
		t.Errorf("w:1: %v %v", got, err)
	}
	if got, err := h.manager.Find("one:0"); err != nil || len(got) != 1 || got[0].Ref() != "one" {
		t.Errorf("one:0: %v %v", got, err)
	}
	for ref, want := range map[string]string{
		"nope":  `no process named "nope"`,
		"w:3":   `"w" has 3 instances (0-2); there is no instance 3`,
		"one:1": `"one" has 1 instance (0); there is no instance 1`,
		"w:x":   `after the name and ":" comes an instance's index, as in "w:0"`,
		"w:01":  `as in "w:0"`,
		"w:-1":  `as in "w:0"`,
		"w:":    `as in "w:0"`,
	} {
		_, err := h.manager.Find(ref)
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", ref, err, want)
		}
	}
	if names := h.manager.Names(); len(names) != 2 || names[0] != "w" || names[1] != "one" {
		t.Errorf("names %v", names)
	}
	if all := h.manager.List(); len(all) != 4 || all[3].Ref() != "one" {
		t.Errorf("list %d", len(all))
	}
}

// Every instance runs its own child, with its index; an action on the
// process reaches each, an action on one instance only that one.
func TestInstancesRunAndActApart(t *testing.T) {
	h := newHarness(t)
	procs := h.addInstances(config.Process{Name: "w", Script: "sh", Args: []string{"-c", "echo instance $PB_INSTANCE; exec sleep 300"}, Instances: 3})
	pids := map[int]bool{}
	for _, p := range procs {
		st := waitState(t, p, Online, 5*time.Second)
		pids[st.Pid] = true
		if st.Instance != p.Instance() {
			t.Errorf("status instance %d, want %d", st.Instance, p.Instance())
		}
	}
	if len(pids) != 3 {
		t.Fatalf("%d children for 3 instances", len(pids))
	}
	out := procs[0].Output()
	deadline := time.Now().Add(5 * time.Second)
	for len(out.Tail(0)) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, l := range out.Tail(0) {
		if l.Text != "instance "+string(rune('0'+l.Instance)) {
			t.Errorf("line %q carries instance %d", l.Text, l.Instance)
		}
	}

	ctx := context.Background()
	before1, before2 := procs[1].Status().Pid, procs[2].Status().Pid
	if err := h.manager.Restart(ctx, "w:1"); err != nil {
		t.Fatal(err)
	}
	if procs[1].Status().Pid == before1 || procs[2].Status().Pid != before2 {
		t.Error("restarting w:1 must restart instance 1 alone")
	}
	if err := h.manager.Stop(ctx, "w"); err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if st := p.Status(); st.State != Stopped {
			t.Errorf("%s: %s after stopping w", p.Ref(), st.State)
		}
	}
	if err := h.manager.Start(ctx, "w:2"); err != nil {
		t.Fatal(err)
	}
	if procs[2].Status().State != Online || procs[0].Status().State != Stopped {
		t.Error("starting w:2 must start instance 2 alone")
	}
}

// A process without Drain (unrouted) reloads as a restart, and the
// reason asked for is in the exit it caused.
func TestReloadOfAnUnroutedProcessIsARestartWithItsReason(t *testing.T) {
	h := newHarness(t)
	p := h.add(config.Process{Name: "w", Script: "sleep", Args: []string{"300"}})
	first := waitState(t, p, Online, 5*time.Second).Pid
	if err := p.Reload(WithReason(context.Background(), "memory 400MB over max_memory_restart 300MB")); err != nil {
		t.Fatal(err)
	}
	st := p.Status()
	if st.Pid == first || st.State != Online || st.Restarts != 1 || st.Reloads != 0 {
		t.Errorf("after the reload %+v", st)
	}
	if e := st.LastExit; e == nil || e.Pid != first || !e.Requested || e.Reason != "memory 400MB over max_memory_restart 300MB" {
		t.Errorf("exit %+v", e)
	}
	// a stopped process is started by a reload
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := p.Reload(context.Background()); err != nil || p.Status().State != Online {
		t.Errorf("reload of a stopped process: %v, %s", err, p.Status().State)
	}
}

// Instances are added in order, each once.
func TestManagerRefusesInstancesOutOfOrder(t *testing.T) {
	h := newHarness(t)
	h.add(config.Process{Name: "w", Script: "sleep", Args: []string{"300"}, Instances: 2})
	dup := New(config.Process{Name: "w", Script: "sleep", Instances: 2}, Options{Instance: 0})
	if err := h.manager.Add(dup); err == nil || !strings.Contains(err.Error(), `"w:0" already exists`) {
		t.Errorf("duplicate: %v", err)
	}
	gap := New(config.Process{Name: "w", Script: "sleep", Instances: 4}, Options{Instance: 3})
	if err := h.manager.Add(gap); err == nil || !strings.Contains(err.Error(), "before instance 2") {
		t.Errorf("gap: %v", err)
	}
}
