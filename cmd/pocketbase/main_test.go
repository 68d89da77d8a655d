package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The ready binary built against the oldest PocketBase supported
// (compat/pocketbase-v0.35.mod, which has no dashboard UI extensions)
// starts, for --help and for serve, with one warning instead of a panic,
// and runs its processes.
func TestReadyBinaryOnPocketBaseWithoutUIExtensions(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary against PocketBase v0.35")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "pocketbase")
	build := exec.Command("go", "build", "-modfile=compat/pocketbase-v0.35.mod", "-o", bin, "./cmd/pocketbase")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build against v0.35: %v\n%s", err, out)
	}

	help := exec.Command(bin, "--help")
	out, err := help.CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v\n%s", err, out)
	}
	const warning = "no dashboard UI extensions"
	if !bytes.Contains(out, []byte(warning)) || bytes.Count(out, []byte(warning)) != 1 || !bytes.Contains(out, []byte("serve")) {
		t.Errorf("--help wants its usage and one warning:\n%s", out)
	}

	if err := os.WriteFile(filepath.Join(dir, "pb_processes.json"),
		[]byte(`[{"name": "sleeper", "script": "sleep", "args": ["60"], "interpreter": "none"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var log lockedBuffer
	serve := exec.CommandContext(ctx, bin, "serve", "--dir", filepath.Join(dir, "pb_data"), "--http", addr)
	serve.Stdout, serve.Stderr = &log, &log
	serve.Cancel = func() error { return serve.Process.Signal(os.Interrupt) }
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = serve.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://%s/api/health", addr))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(log.String(), "sleeper started") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve on v0.35 did not come up with its process:\n%s", log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Contains(log.String(), "panic") {
		t.Errorf("serve logged a panic:\n%s", log.String())
	}
}

// lockedBuffer is a bytes.Buffer that the command's output goroutine
// writes while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
