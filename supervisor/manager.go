package supervisor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/processman/processman/config"
)

// Manager runs a set of supervised processes and shuts them all down
// together. A process of several instances is one Process per instance,
// under one name.
type Manager struct {
	spawner *Spawner
	ctx     context.Context
	cancel  context.CancelFunc

	mu      sync.RWMutex
	procs   map[string][]*Process // the instances of each name, by index
	names   []string              // in the order added
	cancels map[*Process]context.CancelFunc
	events  broadcaster
}

// NewManager returns a Manager with its own Spawner.
func NewManager() *Manager {
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{spawner: NewSpawner(), ctx: ctx, cancel: cancel, procs: map[string][]*Process{}, cancels: map[*Process]context.CancelFunc{}}
}

// Spawner is the spawner that processes of this manager must use.
func (m *Manager) Spawner() *Spawner { return m.spawner }

// Add registers an instance of a process and starts its loop (which
// starts the child unless the process is disabled or invalid). The
// instances of a name are added in order: 0, 1, ...
func (m *Manager) Add(p *Process) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx.Err() != nil {
		return ErrClosed
	}
	name := p.name
	instances := m.procs[name]
	if p.opts.Instance != len(instances) {
		if p.opts.Instance < len(instances) {
			return fmt.Errorf("processman: a process named %q already exists", p.Ref())
		}
		return fmt.Errorf("processman: instance %d of %q added before instance %d", p.opts.Instance, name, len(instances))
	}
	own := p.opts.OnEvent
	p.opts.OnEvent = func(ev Event) {
		if own != nil {
			own(ev)
		}
		m.events.publish(ev)
	}
	if len(instances) == 0 {
		m.names = append(m.names, name)
	}
	m.procs[name] = append(instances, p)
	ctx, cancel := context.WithCancel(context.Background())
	m.cancels[p] = cancel
	go p.Run(ctx)
	return nil
}

// Remove stops every instance of the process name (each with its own
// kill_timeout) and forgets it, so that the name can be added again.
// It waits for the instances to stop, or for ctx.
func (m *Manager) Remove(ctx context.Context, name string) error {
	m.mu.Lock()
	instances := m.procs[name]
	if len(instances) == 0 {
		m.mu.Unlock()
		return fmt.Errorf("%w: no process named %q", ErrNotFound, name)
	}
	delete(m.procs, name)
	m.names = slices.DeleteFunc(m.names, func(n string) bool { return n == name })
	for _, p := range instances {
		m.cancels[p]()
		delete(m.cancels, p)
	}
	m.mu.Unlock()
	for _, p := range instances {
		select {
		case <-p.Done():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Get returns the process name (its first instance), or nil; Instances
// returns them all.
func (m *Manager) Get(name string) *Process {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if instances := m.procs[name]; len(instances) > 0 {
		return instances[0]
	}
	return nil
}

// Instances returns the instances of the process name, by index; none
// for an unknown name.
func (m *Manager) Instances(name string) []*Process {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return append([]*Process(nil), m.procs[name]...)
}

// Names returns the names of the processes in the order they were added.
func (m *Manager) Names() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return append([]string(nil), m.names...)
}

// List returns every instance of every process: by name in the order
// they were added, then by index.
func (m *Manager) List() []*Process {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var all []*Process
	for _, name := range m.names {
		all = append(all, m.procs[name]...)
	}
	return all
}

// ErrNotFound is wrapped by the error of Find for a name or instance
// that does not exist.
var ErrNotFound = errors.New("no such process")

// Find returns the instances that ref names: "api" is every instance of
// the process api, "api:1" its instance 1 alone. Names cannot contain
// ":", so the two never mix up.
func (m *Manager) Find(ref string) ([]*Process, error) {
	name, index, hasIndex := strings.Cut(ref, ":")
	instances := m.Instances(name)
	if len(instances) == 0 {
		return nil, fmt.Errorf("%w: no process named %q; `pocketbase pm list` shows them", ErrNotFound, name)
	}
	if !hasIndex {
		return instances, nil
	}
	i, err := strconv.Atoi(index)
	if err != nil || i < 0 || strconv.Itoa(i) != index {
		return nil, fmt.Errorf("%w: %q: after the name and \":\" comes an instance's index, as in %q", ErrNotFound, ref, name+":0")
	}
	if i >= len(instances) {
		return nil, fmt.Errorf("%w: %q has %s; there is no instance %d", ErrNotFound, name, instancesText(len(instances)), i)
	}
	return instances[i : i+1], nil
}

// instancesText says how many instances there are: "1 instance (0)",
// "3 instances (0-2)".
func instancesText(n int) string {
	if n == 1 {
		return "1 instance (0)"
	}
	return fmt.Sprintf("%d instances (0-%d)", n, n-1)
}

// Start starts the instances ref names (see Find) that are not running,
// all at once.
func (m *Manager) Start(ctx context.Context, ref string) error {
	return m.each(ctx, ref, (*Process).Start)
}

// Stop stops the instances ref names, all at once.
func (m *Manager) Stop(ctx context.Context, ref string) error {
	return m.each(ctx, ref, (*Process).Stop)
}

// Restart restarts the instances ref names, all at once.
func (m *Manager) Restart(ctx context.Context, ref string) error {
	return m.each(ctx, ref, (*Process).Restart)
}

// Reload reloads the instances ref names one at a time (see
// Process.Reload), so that the others serve meanwhile; it stops at the
// first that fails and returns its error.
func (m *Manager) Reload(ctx context.Context, ref string) error {
	procs, err := m.Find(ref)
	if err != nil {
		return err
	}
	for _, p := range procs {
		if err := p.Reload(ctx); err != nil {
			return err
		}
	}
	return nil
}

// each runs do on the instances ref names at once and joins their errors.
func (m *Manager) each(ctx context.Context, ref string, do func(*Process, context.Context) error) error {
	procs, err := m.Find(ref)
	if err != nil {
		return err
	}
	if len(procs) == 1 {
		return do(procs[0], ctx)
	}
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = do(p, ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Shutdown stops every process, each with its own kill_timeout, and
// waits for them, or for ctx. A process stops once every process that
// depends on it (Options.DependsOn) has stopped; processes that do not
// depend on each other stop in parallel.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.cancel()
	all := make([]*Process, 0, len(m.cancels))
	for _, name := range m.names {
		all = append(all, m.procs[name]...)
	}
	cancels := maps.Clone(m.cancels)
	m.mu.Unlock()

	dependents := map[string][]*Process{} // name -> the instances that depend on it
	for _, p := range all {
		for _, dep := range p.opts.DependsOn {
			dependents[dep] = append(dependents[dep], p)
		}
	}
	for _, p := range all {
		go func() {
			for _, d := range dependents[p.name] {
				select {
				case <-d.Done():
				case <-ctx.Done():
				}
			}
			cancels[p]()
		}()
	}
	for _, p := range all {
		select {
		case <-p.Done():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return m.spawner.Close()
}

// ReloadWith reloads the instances of the process name one at a time, as
// Reload does, with cfg for the new copies (see Process.ReloadWith).
func (m *Manager) ReloadWith(ctx context.Context, name string, cfg config.Process) error {
	procs, err := m.Find(name)
	if err != nil {
		return err
	}
	for _, p := range procs {
		if err := p.ReloadWith(ctx, cfg); err != nil {
			return err
		}
	}
	return nil
}
