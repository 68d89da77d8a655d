package bounded

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, []byte("A=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if data, err := ReadFile(small, 4); err != nil || string(data) != "A=1\n" {
		t.Errorf("a file of exactly the limit: %q, %v", data, err)
	}
	if _, err := ReadFile(small, 3); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "larger than 3 bytes") {
		t.Errorf("over the limit: %v", err)
	}
	for name, path := range map[string]string{"a directory": dir, "a device": "/dev/zero"} {
		if _, err := ReadFile(path, 1<<20); err == nil || !strings.Contains(err.Error(), "is not a regular file ("+name+")") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := ReadFile(filepath.Join(dir, "missing"), 10); !os.IsNotExist(err) {
		t.Errorf("missing: %v", err)
	}
}
