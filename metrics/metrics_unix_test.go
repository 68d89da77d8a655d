//go:build unix

package metrics

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// startTree runs sh, which starts a busy child and an idle grandchild
// that leaves the process group, and returns sh's pid.
func startTree(t *testing.T) int {
	t.Helper()
	// The busy loop uses a core; the sleeper is in its own session, so
	// only its parent id ties it to the tree.
	cmd := exec.Command("sh", "-c", `
		sh -c 'while :; do :; done' &
		setsid sleep 60 &
		wait`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = exec.Command("pkill", "-KILL", "-f", "^sleep 60$").Run()
		_ = cmd.Wait()
	})
	return cmd.Process.Pid
}

func TestTreeUsage(t *testing.T) {
	root := startTree(t)
	s := NewSampler()
	s.MaxAge = 0

	var first Usage
	deadline := time.Now().Add(5 * time.Second)
	for {
		first = s.Sample(root)[root]
		if first.Processes == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if first.Processes != 3 {
		t.Fatalf("tree of sh: %d processes, want 3 (sh, busy loop, setsid sleeper)", first.Processes)
	}
	if first.Memory < 3*100<<10 {
		t.Errorf("tree memory %d bytes: less than 100 KiB per process", first.Memory)
	}

	time.Sleep(500 * time.Millisecond)
	second := s.Sample(root)[root]
	// The busy loop keeps about one core busy; on a loaded machine it
	// may get less, but never nothing.
	if second.CPU < 20 || second.CPU > 250 {
		t.Errorf("CPU over 0.5 s of a busy loop: %.1f%%, want about 100%%", second.CPU)
	}
}

func TestIdleTreeUsesNoCPU(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	s := NewSampler()
	s.MaxAge = 0
	s.Sample(cmd.Process.Pid)
	time.Sleep(300 * time.Millisecond)
	u := s.Sample(cmd.Process.Pid)[cmd.Process.Pid]
	if u.Processes != 1 || u.CPU > 1 {
		t.Errorf("idle sleep: %+v, want 1 process near 0%% CPU", u)
	}
}

func TestMissingAndCached(t *testing.T) {
	s := NewSampler()
	got := s.Sample(0, 1<<30)
	if len(got) != 0 {
		t.Errorf("pid 0 and a pid that does not exist: %v, want no entries", got)
	}

	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	first := s.Sample(pid)[pid]
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	// Within MaxAge the same numbers come back without reading /proc.
	if again := s.Sample(pid)[pid]; again != first {
		t.Errorf("within MaxAge: %+v, want the cached %+v", again, first)
	}
	s.MaxAge = 0
	if _, ok := s.Sample(pid)[pid]; ok {
		t.Errorf("pid %d was killed and reaped, yet it still has usage", pid)
	}
}
