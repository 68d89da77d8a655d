package logs

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// The ring buffer is bounded in bytes as well as lines: the oldest lines
// go first, the newest are kept.
func TestRingBoundedInBytes(t *testing.T) {
	o := newOutput(t, Options{RingLines: 1000, RingBytes: 10 * 100})
	var in bytes.Buffer
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&in, "%03d%s\n", i, strings.Repeat("x", 97)) // 100 bytes of text
	}
	pipeIn(t, o, Stdout, 1, in.Bytes())
	tail := o.Tail(0)
	if len(tail) != 10 || !strings.HasPrefix(tail[0].Text, "090") || !strings.HasPrefix(tail[9].Text, "099") {
		t.Fatalf("kept %d lines, from %q: want the last 10", len(tail), tail[0].Text[:3])
	}
	// one line larger than the budget is still kept, alone
	pipeIn(t, o, Stdout, 1, []byte(strings.Repeat("y", 5000)+"\n"))
	if tail = o.Tail(0); len(tail) != 1 || len(tail[0].Text) != 5000 {
		t.Fatalf("a long line: %d lines", len(tail))
	}
	if st := o.Stats(); st.Lines != 101 {
		t.Errorf("lines counted %d", st.Lines)
	}
}

// The logger gets lines cut to LoggerMaxLineBytes, with a marker, and no
// more bytes per second than LoggerBytesRate lets through.
func TestLoggerBoundedInBytes(t *testing.T) {
	h := &recorder{}
	o := newOutput(t, Options{Process: "p", Logger: slog.New(h), LoggerRate: 1e6, LoggerBurst: 1e6,
		LoggerBytesRate: 0.001, LoggerBytesBurst: 10 << 10, LoggerMaxLineBytes: 1 << 10})
	var in bytes.Buffer
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&in, "%03d%s\n", i, strings.Repeat("z", 3000))
	}
	pipeIn(t, o, Stdout, 1, in.Bytes())
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	recs := h.byLevel(slog.LevelInfo)
	// 10 KiB of burst over lines cut to 1 KiB and a marker: 9 lines
	if len(recs) < 8 || len(recs) > 10 {
		t.Fatalf("%d lines logged, want about 9", len(recs))
	}
	stored := 0
	for _, r := range recs {
		stored += len(r.Message)
		if !strings.HasSuffix(r.Message, "… [cut: 1979 more bytes]") || len(r.Message) > 1<<10+cutMarkerBytes {
			t.Fatalf("a long line reached the logger as %d bytes, ending %q", len(r.Message), r.Message[len(r.Message)-30:])
		}
	}
	if stored > 10<<10 {
		t.Errorf("%d bytes logged over a 10 KiB budget", stored)
	}
	if st := o.Stats(); st.LoggerSkipped != uint64(100-len(recs)) {
		t.Errorf("skipped %d, want %d", st.LoggerSkipped, 100-len(recs))
	}
	// the ring buffer has each line whole
	if tail := o.Tail(1); len(tail[0].Text) != 3003 {
		t.Errorf("the ring has %d bytes of the last line", len(tail[0].Text))
	}
}
