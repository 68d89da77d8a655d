//go:build windows

package supervisor

import (
	"errors"
	"log/slog"
	"os/exec"
	"sync"
)

// Spawner starts children. Windows has no process groups, parent-death
// signal or /bin/sh watchdog: a stop ends the child's tree with taskkill,
// but children may outlive a PocketBase that is killed hard.
type Spawner struct {
	mu     sync.Mutex
	closed bool
}

// NewSpawner returns a Spawner.
func NewSpawner() *Spawner { return &Spawner{} }

// Start starts cmd.
func (s *Spawner) Start(cmd *exec.Cmd) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("processman: spawner is closed")
	}
	return cmd.Start()
}

// SetLogger is a no-op on Windows, which has no watchdog.
func (s *Spawner) SetLogger(*slog.Logger) {}

// WatchdogRestarts is 0: there is no watchdog on Windows.
func (s *Spawner) WatchdogRestarts() int { return 0 }

// Release is a no-op on Windows.
func (s *Spawner) Release(pgid int) {}

// WatchdogPid is 0: there is no watchdog on Windows.
func (s *Spawner) WatchdogPid() int { return 0 }

// Close stops accepting starts.
func (s *Spawner) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// WatchdogName is the watchdog's name on Unix.
const WatchdogName = "processman-watchdog"
