//go:build unix

package supervisor

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// Spawner starts children so that none outlives PocketBase, even when
// PocketBase is killed with SIGKILL. Two mechanisms hold together:
//
//   - Each child is started from one OS thread that is locked for the
//     spawner's whole life, with a parent-death signal (Linux): the
//     kernel kills the child when that thread, and so PocketBase, dies.
//     A plain exec.Cmd would tie the signal to whichever thread the Go
//     scheduler happened to fork from, which may exit at any time.
//   - The parent-death signal reaches only the direct child. Every
//     child leads its own process group, and a watchdog (a small /bin/sh
//     loop, outside those groups) learns each group's id through a pipe.
//     When PocketBase dies, the pipe closes, and the watchdog sends
//     SIGTERM, then SIGKILL after a second, to every group still
//     registered: grandchildren such as `npm run start` → node, or a
//     uvicorn worker, go with their parent.
//
// A descendant that leaves the group on purpose (setsid, as daemons do)
// is outside both; managed programs should not daemonize.
//
// The watchdog is itself supervised: when it dies while PocketBase runs
// (someone killed it), a new one starts at once and learns every live
// group again, and both are logged.
type Spawner struct {
	requests chan spawnRequest

	mu       sync.Mutex
	groups   map[int]bool // live process groups, registered with the watchdog
	watchdog *watchdog
	closed   bool
	logger   *slog.Logger
	restarts int // watchdogs started after one died
}

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

// NewSpawner starts the spawner's thread. Close it after every child it
// started has been stopped.
func NewSpawner() *Spawner {
	s := &Spawner{requests: make(chan spawnRequest), groups: map[int]bool{}, logger: slog.Default()}
	go s.loop()
	return s
}

// SetLogger sets where the watchdog's loss and restart are logged
// (default slog.Default()).
func (s *Spawner) SetLogger(l *slog.Logger) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l != nil {
		s.logger = l
	}
}

// WatchdogRestarts counts the watchdogs started because one died.
func (s *Spawner) WatchdogRestarts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts
}

// loop runs on a locked OS thread for the spawner's life. The goroutine
// never unlocks it, so when the loop ends the thread exits with it.
func (s *Spawner) loop() {
	runtime.LockOSThread()
	for req := range s.requests {
		req.done <- req.cmd.Start()
	}
}

// Start starts cmd as the leader of a new process group and registers
// the group with the watchdog.
func (s *Spawner) Start(cmd *exec.Cmd) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("processman: spawner is closed")
	}
	if err := s.ensureWatchdog(); err != nil {
		s.mu.Unlock()
		return err
	}
	s.mu.Unlock()

	cmd.SysProcAttr = sysProcAttr()
	req := spawnRequest{cmd: cmd, done: make(chan error, 1)}
	s.requests <- req
	if err := <-req.done; err != nil {
		return err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	pgid := cmd.Process.Pid
	s.groups[pgid] = true
	if err := s.watchdog.send('+', pgid); err != nil {
		// The watchdog died and its exit was not handled yet: replace it
		// now; the new one learns every live group, this one included.
		s.replaceWatchdog(s.watchdog)
	}
	return nil
}

// Release tells the watchdog that the group pgid has no live process
// left, so that a reused id is never signalled.
func (s *Spawner) Release(pgid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.groups[pgid] {
		return
	}
	delete(s.groups, pgid)
	if s.watchdog != nil {
		_ = s.watchdog.send('-', pgid)
	}
}

// WatchdogPid returns the pid of the watchdog, 0 if none runs.
func (s *Spawner) WatchdogPid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watchdog == nil {
		return 0
	}
	return s.watchdog.cmd.Process.Pid
}

// Close ends the spawner thread and the watchdog, which stops any group
// still registered.
func (s *Spawner) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.requests)
	if s.watchdog != nil {
		s.watchdog.close()
		s.watchdog = nil
	}
	return nil
}

// ensureWatchdog starts the watchdog if none runs. s.mu must be held.
func (s *Spawner) ensureWatchdog() error {
	if s.watchdog != nil {
		return nil
	}
	w, err := startWatchdog(s.watchdogExited)
	if err != nil {
		return err
	}
	for pgid := range s.groups {
		if err := w.send('+', pgid); err != nil {
			w.close()
			return err
		}
	}
	s.watchdog = w
	return nil
}

// watchdogExited runs when a watchdog process has exited.
func (s *Spawner) watchdogExited(w *watchdog) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.watchdog != w {
		return // closed on purpose, or already replaced
	}
	s.replaceWatchdog(w)
}

// replaceWatchdog starts a new watchdog in place of w, which died, with
// every live group; s.mu must be held.
func (s *Spawner) replaceWatchdog(w *watchdog) {
	s.watchdog = nil
	w.close()
	s.logger.Warn("processman: the watchdog died; starting a new one",
		"pid", w.cmd.Process.Pid, "groups", len(s.groups))
	if err := s.ensureWatchdog(); err != nil {
		s.logger.Error("processman: cannot start a new watchdog: children would outlive a killed PocketBase",
			"error", err.Error())
		return
	}
	s.restarts++
	s.logger.Info("processman: a new watchdog runs", "pid", s.watchdog.cmd.Process.Pid, "groups", len(s.groups))
}

// watchdogScript keeps the registered group ids and, when its standard
// input closes (PocketBase exited, however), stops every group left.
// It uses only shell built-ins until then, so it costs one small idle
// process. $0 names it in `ps`.
const watchdogScript = `groups=" "
while read -r op id; do
  case "$op" in
    +) groups="$groups$id " ;;
    -) case "$groups" in *" $id "*) groups="${groups%%" $id "*} ${groups#*" $id "}" ;; esac ;;
  esac
done
[ -z "${groups# }" ] && exit 0
for g in $groups; do kill -TERM -"$g" 2>/dev/null; done
sleep 1
for g in $groups; do kill -KILL -"$g" 2>/dev/null; done
`

// WatchdogName is the watchdog's $0, visible in ps.
const WatchdogName = "processman-watchdog"

type watchdog struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// startWatchdog starts a watchdog; exited runs once it has exited.
func startWatchdog(exited func(*watchdog)) (*watchdog, error) {
	cmd := exec.Command("/bin/sh", "-c", watchdogScript, WatchdogName)
	// Its own group: a terminal's Ctrl-C must not reach it before
	// PocketBase has stopped the children.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("processman: start watchdog (/bin/sh): %w", err)
	}
	w := &watchdog{cmd: cmd, stdin: stdin}
	go func() {
		_ = cmd.Wait()
		exited(w)
	}()
	return w, nil
}

func (w *watchdog) send(op byte, pgid int) error {
	_, err := fmt.Fprintf(w.stdin, "%c %d\n", op, pgid)
	return err
}

func (w *watchdog) close() {
	_ = w.stdin.Close()
}
