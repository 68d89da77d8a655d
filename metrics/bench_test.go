package metrics

import (
	"os/exec"
	"testing"
)

func BenchmarkSample50(b *testing.B) {
	var pids []int
	for i := 0; i < 50; i++ {
		cmd := exec.Command("sleep", "600")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		pids = append(pids, cmd.Process.Pid)
	}
	s := NewSampler()
	s.MaxAge = 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Sample(pids...)
	}
}
