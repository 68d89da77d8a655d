package control

import (
	"os"
	"path/filepath"
	"testing"
)

func TestServerInfoFile(t *testing.T) {
	dataDir := t.TempDir()
	if _, err := ReadServerInfo(dataDir); !os.IsNotExist(err) {
		t.Fatalf("before any write: %v, want not-exist", err)
	}
	path, err := WriteServerInfo(dataDir, ServerInfo{URL: "http://127.0.0.1:8090", Pid: 42})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dataDir, "processman", "server.json"); path != want || ServerInfoFile(dataDir) != want {
		t.Errorf("written to %s, ServerInfoFile %s, want %s", path, ServerInfoFile(dataDir), want)
	}
	// a second write replaces the first whole, through a temporary file
	if _, err := WriteServerInfo(dataDir, ServerInfo{URL: "http://[::1]:9000", Pid: 7}); err != nil {
		t.Fatal(err)
	}
	info, err := ReadServerInfo(dataDir)
	if err != nil || info != (ServerInfo{URL: "http://[::1]:9000", Pid: 7}) {
		t.Errorf("read %+v, %v", info, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("files beside the server info: %v", entries)
	}
}
