package processman_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/processman/processman"
	"github.com/processman/processman/internal/testutil"
	"github.com/processman/processman/supervisor"
)

// A scheduled process runs on PocketBase's scheduler, is listed with its
// jobs, and a run still going when the next is due is skipped, not
// doubled.
func TestCronRunsOnPocketBasesScheduler(t *testing.T) {
	s := startServer(t, processman.Config{Quiet: true}, map[string]string{
		"pb_processes.json": `[{"name": "job", "script": "sh", "interpreter": "none", "cron": "* * * * *",
			"args": ["-c", "echo \"begin $$\" >> runs.log; sleep 2.5; echo \"end $$\" >> runs.log"]}]`,
	})
	p := processman.Manager(s.app).Get("job")
	if st := p.Status(); st.State != supervisor.Stopped || st.Schedule == nil || st.Schedule.NextRun.IsZero() {
		t.Fatalf("before its first due time: %s, schedule %+v", st.State, st.Schedule)
	}
	listed := false
	for _, job := range s.app.Cron().Jobs() {
		listed = listed || (job.Id() == "processman:job" && job.Expression() == "* * * * *")
	}
	if !listed {
		t.Errorf("processman:job is not among PocketBase's cron jobs")
	}

	// Every second instead of every minute: "* * * * *" is due at each tick.
	s.app.Cron().SetInterval(time.Second)
	s.app.Cron().Start() // SetInterval restarts only a ticker that has ticked
	testutil.WaitFor(t, "2 runs and 2 skips", 20*time.Second, func() bool {
		sc := p.Status().Schedule
		return sc.Runs >= 2 && sc.Skipped >= 2 && p.Status().State != supervisor.Online
	})
	s.app.Cron().Stop()
	testutil.WaitFor(t, "the last run done", 10*time.Second, func() bool { return p.Status().State == supervisor.Completed })

	st := p.Status()
	data, _ := os.ReadFile(filepath.Join(s.dir, "runs.log"))
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2*st.Schedule.Runs {
		t.Errorf("runs.log has %d lines for %d runs:\n%s", len(lines), st.Schedule.Runs, data)
	}
	for i, line := range lines { // begin, end, begin, end: never two at once
		want := "begin"
		if i%2 == 1 {
			want = "end"
		}
		if !strings.HasPrefix(line, want) {
			t.Errorf("runs.log line %d %q, want %s: runs overlapped:\n%s", i, line, want, data)
			break
		}
	}
	if st.Schedule.LastRun.IsZero() || st.Schedule.LastSkipped.IsZero() || st.LastExit == nil || st.LastExit.Code != 0 {
		t.Errorf("status after runs: %+v, last exit %+v", st.Schedule, st.LastExit)
	}
}
