//go:build unix

package config_test

import (
	"strings"
	"syscall"
	"testing"

	"github.com/processman/processman/config"
)

func TestParseSignal(t *testing.T) {
	tests := []struct {
		name string
		want syscall.Signal
	}{
		{"SIGTERM", syscall.SIGTERM},
		{"TERM", syscall.SIGTERM},
		{"sigterm", syscall.SIGTERM},
		{"term", syscall.SIGTERM},
		{"", syscall.SIGTERM}, // the default
		{"SigInt", syscall.SIGINT},
		{"INT", syscall.SIGINT},
		{"SIGQUIT", syscall.SIGQUIT},
		{"hup", syscall.SIGHUP},
		{"SIGUSR1", syscall.SIGUSR1},
		{"usr2", syscall.SIGUSR2},
		{"SIGKILL", syscall.SIGKILL},
	}
	for _, tc := range tests {
		t.Run("valid "+tc.name, func(t *testing.T) {
			got, err := config.ParseSignal(tc.name)
			if err != nil || got != tc.want {
				t.Errorf("ParseSignal(%q) = %v, %v; want %v", tc.name, got, err, tc.want)
			}
			got, err = config.Process{KillSignal: tc.name}.Signal()
			if err != nil || got != tc.want {
				t.Errorf("Process.Signal() with %q = %v, %v; want %v", tc.name, got, err, tc.want)
			}
		})
	}
	for _, name := range []string{"SIGSTOP", "FOO", "SIG", "15", "SIGTERM ", "SIGSIGTERM"} {
		t.Run("invalid "+name, func(t *testing.T) {
			sig, err := config.ParseSignal(name)
			if err == nil {
				t.Fatalf("ParseSignal(%q) = %v, want an error", name, sig)
			}
			if !strings.Contains(err.Error(), strconvQuote(name)) || !strings.Contains(err.Error(), "SIGTERM") {
				t.Errorf("error %q should quote the name and list the valid signals", err)
			}
		})
	}
}
