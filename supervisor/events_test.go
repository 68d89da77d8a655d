package supervisor

import (
	"context"
	"testing"
	"time"

	"github.com/processman/processman/config"
)

func TestManagerSubscribe(t *testing.T) {
	h := newHarness(t)
	events, cancel := h.manager.Subscribe(0)
	p := h.add(config.Process{Name: "sub", Script: "sleep", Args: []string{"30"}})
	waitState(t, p, Online, 10*time.Second)
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	var seen []State
	var stopExit *Exit
	timeout := time.After(10 * time.Second)
	for len(seen) == 0 || seen[len(seen)-1] != Stopped {
		select {
		case ev := <-events:
			if ev.Status.Name != "sub" {
				t.Fatalf("event of %q, want sub", ev.Status.Name)
			}
			if len(seen) > 0 && ev.Previous != seen[len(seen)-1] {
				t.Errorf("event %s: previous %s, want %s", ev.Status.State, ev.Previous, seen[len(seen)-1])
			}
			seen = append(seen, ev.Status.State)
			if ev.Exit != nil {
				stopExit = ev.Exit
			}
		case <-timeout:
			t.Fatalf("no stopped event; saw %v", seen)
		}
	}
	want := []State{Starting, Online, Stopping, Stopped}
	if len(seen) != len(want) {
		t.Fatalf("states %v, want %v", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("states %v, want %v", seen, want)
		}
	}
	if stopExit == nil || !stopExit.Requested {
		t.Errorf("the stopped event carries exit %+v, want a requested exit", stopExit)
	}

	cancel()
	cancel() // twice is harmless
	if _, open := <-events; open {
		t.Error("channel still open after cancel")
	}
}

func TestSlowSubscriberMissesEventsWithoutBlocking(t *testing.T) {
	h := newHarness(t)
	_, cancel := h.manager.Subscribe(1) // never read
	defer cancel()
	p := h.add(config.Process{Name: "slow", Script: "sleep", Args: []string{"30"}})
	waitState(t, p, Online, 10*time.Second)
	done := make(chan error, 1)
	go func() { done <- p.Restart(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("a subscriber that never reads blocked a restart")
	}
	if h.manager.DroppedEvents() == 0 {
		t.Error("no dropped events counted for a full subscriber")
	}
}
