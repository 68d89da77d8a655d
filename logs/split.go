package logs

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// splitter cuts a byte stream into lines. It keeps the bytes of an
// unfinished line between reads, never more than max+1 of them plus one read.
type splitter struct {
	max     int    // longest line in bytes; longer ones are cut
	partial []byte // start of a line whose '\n' has not been read yet
}

// feed splits p, one read's worth of data, calling emit for every line it
// completes. The complete lines of p are converted to one string and emitted
// as substrings of it, so a read costs one allocation however many lines it
// holds; the unfinished line at the end is kept apart, so the shared string
// holds nothing but lines.
func (s *splitter) feed(p []byte, emit func(string)) {
	last := bytes.LastIndexByte(p, '\n')
	if last < 0 {
		s.hold(p, emit)
		return
	}
	chunk := string(p[:last+1])
	for len(chunk) > 0 {
		i := strings.IndexByte(chunk, '\n') // always found: chunk ends in '\n'
		seg := chunk[:i]
		chunk = chunk[i+1:]
		if len(s.partial) == 0 {
			s.emitCut(trimCR(seg), emit)
			continue
		}
		s.partial = append(s.partial, seg...)
		line := string(trimCR(s.partial))
		s.partial = s.partial[:0]
		s.emitCut(line, emit)
	}
	s.hold(p[last+1:], emit)
}

// finish emits the unfinished line, if any, at end of input.
func (s *splitter) finish(emit func(string)) {
	if len(s.partial) == 0 {
		return
	}
	line := string(trimCR(s.partial))
	s.partial = s.partial[:0]
	if line != "" {
		s.emitCut(line, emit)
	}
}

// hold appends data without a newline to the unfinished line and emits
// pieces of it as soon as it is longer than max. One byte more than max is
// kept when it is '\r', since a following '\n' would strip it.
func (s *splitter) hold(data []byte, emit func(string)) {
	s.partial = append(s.partial, data...)
	p := s.partial
	off := 0
	for rest := len(p) - off; rest > s.max && !(rest == s.max+1 && p[len(p)-1] == '\r'); rest = len(p) - off {
		c := cutPoint(p[off:], s.max)
		emit(string(p[off : off+c]))
		off += c
	}
	if off > 0 {
		s.partial = p[:copy(p, p[off:])]
	}
}

// emitCut emits a complete line, cut into pieces of at most max bytes.
func (s *splitter) emitCut(line string, emit func(string)) {
	for len(line) > s.max {
		c := cutPoint(line, s.max)
		emit(line[:c])
		line = line[c:]
	}
	emit(line)
}

// cutPoint returns where to cut b so that the first piece has at most max
// bytes, preferring not to cut a UTF-8 sequence in two.
func cutPoint[T string | []byte](b T, max int) int {
	if len(b) <= max {
		return len(b)
	}
	for c := max; c > 0 && c > max-utf8.UTFMax; c-- {
		if utf8.RuneStart(b[c]) {
			return c
		}
	}
	return max
}

func trimCR[T string | []byte](b T) T {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}

// validText returns s with invalid UTF-8 replaced by U+FFFD.
func validText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
