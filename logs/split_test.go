package logs

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// splitAll feeds input to a fresh splitter in the given pieces and returns
// the lines it emits, sanitised as the reader does.
func splitAll(max int, pieces []string) []string {
	sp := splitter{max: max}
	var out []string
	emit := func(s string) { out = append(out, validText(s)) }
	for _, p := range pieces {
		sp.feed([]byte(p), emit)
	}
	sp.finish(emit)
	return out
}

// TestSplitterChunking checks that lines do not depend on how the input is
// cut into reads: the whole input at once, every cut into two reads, and one
// byte per read must all give the same lines.
func TestSplitterChunking(t *testing.T) {
	tests := []struct {
		name  string
		max   int
		input string
		want  []string
	}{
		{"empty", 10, "", nil},
		{"one line", 10, "abc\n", []string{"abc"}},
		{"final line without newline", 10, "abc\ndef", []string{"abc", "def"}},
		{"empty lines kept", 10, "\n\na\n", []string{"", "", "a"}},
		{"crlf", 10, "a\r\nb\r\n", []string{"a", "b"}},
		{"only one cr stripped", 10, "a\r\r\n", []string{"a\r"}},
		{"cr inside line kept", 10, "a\rb\n", []string{"a\rb"}},
		{"final cr stripped", 10, "a\r", []string{"a"}},
		{"exactly max", 4, "abcd\n", []string{"abcd"}},
		{"exactly max with crlf", 4, "abcd\r\n", []string{"abcd"}},
		{"max plus one", 4, "abcde\n", []string{"abcd", "e"}},
		{"twice max", 4, "abcdefgh\nx\n", []string{"abcd", "efgh", "x"}},
		{"long final line", 4, "abcdefghij", []string{"abcd", "efgh", "ij"}},
		{"cut before multibyte rune", 4, "abcé\n", []string{"abc", "é"}},
		{"cut keeps 3-byte rune whole", 5, "ab€€\n", []string{"ab€", "€"}},
		{"invalid utf8 replaced", 10, "a\xffb\n", []string{"a\uFFFDb"}},
		{"invalid run replaced once", 10, "a\xff\xfeb\n", []string{"a\uFFFDb"}},
		{"truncated rune at eof", 10, "a\xe2\x82", []string{"a\uFFFD"}},
		{"long run of continuation bytes", 4, "\x80\x80\x80\x80\x80\x80\n", []string{"\uFFFD", "\uFFFD"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunkings := map[string][]string{"whole": {tt.input}}
			for i := 1; i < len(tt.input); i++ {
				chunkings["cut at "+strconv.Itoa(i)] = []string{tt.input[:i], tt.input[i:]}
			}
			var bytewise []string
			for i := 0; i < len(tt.input); i++ {
				bytewise = append(bytewise, tt.input[i:i+1])
			}
			chunkings["bytewise"] = bytewise
			for name, pieces := range chunkings {
				got := splitAll(tt.max, pieces)
				if !slices.Equal(got, tt.want) {
					t.Errorf("%s: got %q, want %q", name, got, tt.want)
				}
			}
		})
	}
}

// TestSplitterBounds checks the promises about long lines on a large input:
// no piece exceeds max bytes, pieces join back to the input, and the
// splitter's own buffer stays bounded.
func TestSplitterBounds(t *testing.T) {
	tests := []struct {
		name string
		max  int
		line string
	}{
		{"ascii 1MB max 1000", 1000, strings.Repeat("0123456789", 100_000)},
		{"runes 300KB max 64KiB", 64 << 10, strings.Repeat("日本語€", 25_000)},
		{"max 1", 1, strings.Repeat("ab", 1000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp := splitter{max: tt.max}
			var pieces []string
			emit := func(s string) { pieces = append(pieces, s) }
			input := tt.line + "\n"
			for len(input) > 0 { // reads of 64 KiB, as the reader does
				n := min(len(input), readBufSize)
				sp.feed([]byte(input[:n]), emit)
				input = input[n:]
				if cap(sp.partial) > tt.max+1+2*readBufSize {
					t.Fatalf("partial buffer grew to %d bytes", cap(sp.partial))
				}
			}
			sp.finish(emit)
			for i, p := range pieces {
				if len(p) > tt.max {
					t.Fatalf("piece %d has %d bytes, max %d", i, len(p), tt.max)
				}
				if !utf8.ValidString(p) && tt.max >= utf8.UTFMax {
					t.Fatalf("piece %d cuts a rune: %q", i, p)
				}
			}
			if joined := strings.Join(pieces, ""); joined != tt.line {
				t.Fatalf("pieces join to %d bytes, want %d", len(joined), len(tt.line))
			}
		})
	}
}
