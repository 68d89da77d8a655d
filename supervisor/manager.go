package supervisor

import (
	"context"
	"fmt"
	"sync"
)

// Manager runs a set of supervised processes and shuts them all down
// together.
type Manager struct {
	spawner *Spawner
	ctx     context.Context
	cancel  context.CancelFunc

	mu     sync.RWMutex
	procs  map[string]*Process
	order  []*Process
	events broadcaster
}

// NewManager returns a Manager with its own Spawner.
func NewManager() *Manager {
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{spawner: NewSpawner(), ctx: ctx, cancel: cancel, procs: map[string]*Process{}}
}

// Spawner is the spawner that processes of this manager must use.
func (m *Manager) Spawner() *Spawner { return m.spawner }

// Add registers a process and starts its loop (which starts the child
// unless the process is disabled or invalid).
func (m *Manager) Add(p *Process) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx.Err() != nil {
		return ErrClosed
	}
	if _, dup := m.procs[p.cfg.Name]; dup {
		return fmt.Errorf("processman: a process named %q already exists", p.cfg.Name)
	}
	own := p.opts.OnEvent
	p.opts.OnEvent = func(ev Event) {
		if own != nil {
			own(ev)
		}
		m.events.publish(ev)
	}
	m.procs[p.cfg.Name] = p
	m.order = append(m.order, p)
	go p.Run(m.ctx)
	return nil
}

// Get returns the named process, or nil.
func (m *Manager) Get(name string) *Process {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.procs[name]
}

// List returns the processes in the order they were added.
func (m *Manager) List() []*Process {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return append([]*Process(nil), m.order...)
}

// Shutdown stops every process (in parallel, each with its own
// kill_timeout) and waits for them, or for ctx.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.cancel()
	procs := append([]*Process(nil), m.order...)
	m.mu.Unlock()
	for _, p := range procs {
		select {
		case <-p.Done():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return m.spawner.Close()
}
