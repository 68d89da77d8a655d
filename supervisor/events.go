package supervisor

import (
	"sync"
	"sync/atomic"
)

// DefaultEventBuffer is the channel size Subscribe uses for buffer <= 0.
const DefaultEventBuffer = 256

// broadcaster fans the events of every process out to subscribers
// without ever blocking the processes: a subscriber whose channel is full
// misses the event, which is counted.
type broadcaster struct {
	mu      sync.RWMutex
	subs    map[*subscription]struct{}
	dropped atomic.Uint64
}

type subscription struct {
	ch     chan Event
	closed bool
}

func (b *broadcaster) publish(ev Event) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for sub := range b.subs {
		select {
		case sub.ch <- ev:
		default:
			b.dropped.Add(1)
		}
	}
}

func (b *broadcaster) subscribe(buffer int) (<-chan Event, func()) {
	if buffer <= 0 {
		buffer = DefaultEventBuffer
	}
	sub := &subscription{ch: make(chan Event, buffer)}
	b.mu.Lock()
	if b.subs == nil {
		b.subs = map[*subscription]struct{}{}
	}
	b.subs[sub] = struct{}{}
	b.mu.Unlock()
	var once sync.Once
	return sub.ch, func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs, sub)
			close(sub.ch)
			b.mu.Unlock()
		})
	}
}

// Subscribe returns a channel that receives the state changes of every
// process of the manager (added before or after the call), and a cancel
// func that ends the subscription and closes the channel. Sending never
// blocks a process: a subscriber whose channel (of buffer events;
// DefaultEventBuffer if buffer <= 0) is full misses events, counted by
// DroppedEvents.
func (m *Manager) Subscribe(buffer int) (<-chan Event, func()) {
	return m.events.subscribe(buffer)
}

// DroppedEvents counts the events that subscribers missed because their
// channel was full.
func (m *Manager) DroppedEvents() uint64 { return m.events.dropped.Load() }
