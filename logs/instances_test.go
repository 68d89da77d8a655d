package logs

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// With several instances, each line says which wrote it: in the ring, in
// the file ("stdout:1") and in the logger's records.
func TestLinesCarryTheirInstance(t *testing.T) {
	file := filepath.Join(t.TempDir(), "w.log")
	rec := &recorder{}
	o := newOutput(t, Options{Process: "w", Instances: 2, File: file, Logger: slog.New(rec)})
	for instance, text := range []string{"from zero\n", "from one\n"} {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		done := o.Attach(Stdout, 100+instance, instance, pr)
		pw.WriteString(text)
		pw.Close()
		waitFor(t, done, "reader")
	}
	flush(t, o)
	lines := o.Tail(0)
	if len(lines) != 2 || lines[0].Instance != 0 || lines[1].Instance != 1 || lines[1].Pid != 101 {
		t.Fatalf("ring %+v", lines)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(got) != 2 || !strings.Contains(got[0], " stdout:0 from zero") || !strings.Contains(got[1], " stdout:1 from one") {
		t.Errorf("file:\n%s", data)
	}
	records := rec.byLevel(slog.LevelInfo)
	if len(records) != 2 || attrs(records[1])["instance"].Int64() != 1 {
		t.Errorf("logger records %v", records)
	}

	// one instance: the file keeps its plain form
	single := filepath.Join(t.TempDir(), "s.log")
	o1 := newOutput(t, Options{Process: "s", File: single})
	pipeIn(t, o1, Stdout, 7, []byte("plain\n"))
	flush(t, o1)
	if data, _ := os.ReadFile(single); !strings.Contains(string(data), " stdout plain") {
		t.Errorf("single-instance file: %s", data)
	}
}
