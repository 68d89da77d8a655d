package processman_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/processman/processman"
	"github.com/processman/processman/internal/testutil"
)

func TestProcessEventHooks(t *testing.T) {
	s := startServer(t, processman.Config{}, map[string]string{
		"pb_processes.json": `{"processes": [
			{"name": "crashy", "script": "sh", "args": ["-c", "echo boom; exit 3"], "disabled": true, "max_restarts": 1, "restart_delay": "10ms"},
			{"name": "other", "script": "sleep", "args": ["60"], "disabled": true}
		]}`,
	})
	var mu sync.Mutex
	var seen []string
	var crashCode int
	processman.OnProcessEvent(s.app, "crashy").BindFunc(func(e *processman.ProcessEvent) error {
		mu.Lock()
		seen = append(seen, e.Type)
		if e.Type == processman.EventCrashed {
			crashCode = e.Exit.Code
		}
		mu.Unlock()
		return e.Next()
	})
	var all []string
	processman.OnProcessEvent(s.app).BindFunc(func(e *processman.ProcessEvent) error {
		mu.Lock()
		all = append(all, e.Name+":"+e.Type)
		mu.Unlock()
		return e.Next()
	})

	_ = s.process("crashy").Start(context.Background())
	_ = s.process("other").Start(context.Background())
	want := "started,ready,crashed,started,ready,crashed,errored"
	testutil.WaitFor(t, "the crash loop's events", 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= 7
	})
	mu.Lock()
	if got := strings.Join(seen, ","); got != want || crashCode != 3 {
		t.Errorf("events of crashy: %s (code %d), want %s (code 3)", got, crashCode, want)
	}
	mu.Unlock()

	s.stop() // handlers see the last events before PocketBase goes
	if !slicesContain(all, "other:started", "other:exited", "other:stopped") {
		t.Errorf("untagged handler saw %v, want other's start and its stop at shutdown", all)
	}
}

func slicesContain(have []string, want ...string) bool {
	set := map[string]bool{}
	for _, h := range have {
		set[h] = true
	}
	for _, w := range want {
		if !set[w] {
			return false
		}
	}
	return true
}

func TestOnProcessEventNeedsRegister(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(error).Error(), "Register first") {
			t.Errorf("recovered %v, want a panic asking for Register", r)
		}
	}()
	processman.OnProcessEvent(testutil.NewApp(t, t.TempDir()))
}
