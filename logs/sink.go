package logs

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"gopkg.in/natefinch/lumberjack.v2"
)

// SkippedMessage is the message of the warning record that reports lines kept
// out of the Logger by the rate limit.
const SkippedMessage = "processman: log lines skipped by rate limit"

// sink writes lines to the log file and the logger. Only its goroutine
// touches its fields, except the atomic counters.
type sink struct {
	o        *Output
	work     []*chunk // the chunks taken from o.pending
	procAttr slog.Attr
	many     bool // several instances: lines say which

	// file
	hasFile   bool
	file      *lumberjack.Logger
	buf       []byte // formatted lines not yet written, always whole lines
	maxWrite  int    // largest single write lumberjack accepts, its MaxSize
	fileSize  int    // size of the current file as lumberjack counts it
	opened    bool   // whether lumberjack has opened the file yet
	lastRot   time.Time
	prefix    []byte // "<time> <stream>[:<instance>] " of lastMilli, lastStrm and lastInst
	lastMilli int64  // Unix milliseconds of prefix
	lastStrm  string
	lastInst  int
	err       error // first file error

	// logger
	logger       *slog.Logger
	limiter      *rate.Limiter // lines
	bytesLimiter *rate.Limiter // bytes of (cut) text
	pending      uint64        // skipped since the last warning
	total        uint64        // skipped in total
	lastWarn     time.Time     // zero until the first warning
	timer        *time.Timer

	skipped    atomic.Uint64
	fileErrors atomic.Uint64
}

func (s *sink) run() {
	defer close(s.o.sinkDone)
	for {
		select {
		case _, ok := <-s.o.wake:
			if !ok {
				s.finish()
				return
			}
			s.drain(true)
		case <-s.warnTimer():
			s.warn()
		}
	}
}

// drain handles pending lines until there are none, then writes the file.
// With gather set it waits gatherDelay after each take for more lines.
func (s *sink) drain(gather bool) {
	for {
		s.work = s.o.takePending(s.work)
		if len(s.work) == 0 {
			break
		}
		for i, c := range s.work {
			s.handle(c)
			s.work[i] = nil
		}
		if gather {
			time.Sleep(gatherDelay)
		}
	}
	s.flushFile()
}

// finish writes what is left once the Output is closed; no line can be
// added any more.
func (s *sink) finish() {
	s.drain(false)
	if s.pending > 0 {
		s.warn()
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	if s.file != nil {
		if err := s.file.Close(); err != nil && s.err == nil {
			s.err = fmt.Errorf("logs: close log file %q: %w", s.o.opts.File, err)
		}
	}
}

// handle writes the lines of c and then releases the Flush calls in it.
func (s *sink) handle(c *chunk) {
	if len(c.lines) > 0 {
		s.write(c.lines)
	}
	if len(c.flush) > 0 {
		s.flushFile()
		for _, f := range c.flush {
			close(f)
		}
	}
	putChunk(c)
}

func (s *sink) write(lines []Line) {
	if s.hasFile {
		for i := range lines {
			l := &lines[i]
			// The time stamp has millisecond resolution: lines of the same
			// millisecond and stream share their prefix.
			if ms := l.Time.UnixMilli(); ms != s.lastMilli || l.Stream != s.lastStrm || l.Instance != s.lastInst {
				s.lastMilli, s.lastStrm, s.lastInst = ms, l.Stream, l.Instance
				s.prefix = l.Time.UTC().AppendFormat(s.prefix[:0], fileTimeFormat)
				s.prefix = append(s.prefix, ' ')
				s.prefix = append(s.prefix, l.Stream...)
				if s.many {
					s.prefix = append(s.prefix, ':')
					s.prefix = strconv.AppendInt(s.prefix, int64(l.Instance), 10)
				}
				s.prefix = append(s.prefix, ' ')
			}
			s.buf = append(s.buf, s.prefix...)
			s.buf = append(s.buf, l.Text...)
			s.buf = append(s.buf, '\n')
			if len(s.buf) >= fileBufSize {
				s.flushFile()
			}
		}
	}
	if s.logger != nil {
		s.log(lines)
	}
}

// log sends as many lines as the rate limiters admit to the logger and
// counts the rest: lines per second, and bytes of text per second, each
// line cut to LoggerMaxLineBytes first. Tokens do not refill between lines
// logged at the same instant, so admitting the first k lines at once is
// the same as asking the limiters line by line, at a fraction of the cost.
func (s *sink) log(lines []Line) {
	now := time.Now()
	k := min(int(s.limiter.TokensAt(now)), len(lines))
	maxText := s.o.opts.LoggerMaxLineBytes
	budget, bytes := int(s.bytesLimiter.TokensAt(now)), 0
	for i := range lines[:max(k, 0)] {
		n := min(len(lines[i].Text), maxText+cutMarkerBytes)
		if bytes+n > budget {
			k = i
			break
		}
		bytes += n
	}
	if k < 0 || (k > 0 && (!s.limiter.AllowN(now, k) || !s.bytesLimiter.AllowN(now, bytes))) {
		k = 0
	}
	ctx := context.Background()
	for i := range lines[:k] {
		l := &lines[i]
		if s.many {
			s.logger.LogAttrs(ctx, slog.LevelInfo, cutText(l.Text, maxText),
				s.procAttr, slog.Int("instance", l.Instance), slog.String("stream", l.Stream), slog.Int("pid", l.Pid))
			continue
		}
		s.logger.LogAttrs(ctx, slog.LevelInfo, cutText(l.Text, maxText),
			s.procAttr, slog.String("stream", l.Stream), slog.Int("pid", l.Pid))
	}
	if skipped := uint64(len(lines) - k); skipped > 0 {
		s.pending += skipped
		s.total += skipped
		s.skipped.Add(skipped)
	}
	if s.pending > 0 && (s.lastWarn.IsZero() || now.Sub(s.lastWarn) >= warnInterval) {
		s.warn()
	}
}

// cutMarkerBytes is the room the marker of a cut line takes.
const cutMarkerBytes = 40

// cutText cuts text to at most max bytes (at a UTF-8 boundary) and says
// how much was left out: " … [cut: 61440 more bytes]".
func cutText(text string, max int) string {
	if len(text) <= max {
		return text
	}
	c := cutPoint(text, max)
	return fmt.Sprintf("%s … [cut: %d more bytes]", text[:c], len(text)-c)
}

// warnTimer returns a channel that fires when a pending warning is due, or
// nil if there is none.
func (s *sink) warnTimer() <-chan time.Time {
	if s.pending == 0 {
		return nil
	}
	d := time.Until(s.lastWarn.Add(warnInterval))
	if s.timer == nil {
		s.timer = time.NewTimer(d)
	} else {
		s.timer.Reset(d)
	}
	return s.timer.C
}

func (s *sink) warn() {
	if s.pending == 0 {
		return
	}
	note := "every line still goes to the process's in-memory ring buffer"
	if s.hasFile {
		note = "every line still goes to the process's in-memory ring buffer and log file"
	}
	s.logger.LogAttrs(context.Background(), slog.LevelWarn, SkippedMessage,
		s.procAttr,
		slog.Uint64("skipped", s.pending),
		slog.Uint64("total_skipped", s.total),
		slog.String("note", note))
	s.pending = 0
	s.lastWarn = time.Now()
}

// flushFile writes the gathered lines to the file. A write is never larger
// than lumberjack's maximum file size, which it would refuse.
func (s *sink) flushFile() {
	if len(s.buf) == 0 {
		return
	}
	p := s.buf
	for len(p) > 0 {
		n := min(len(p), s.maxWrite)
		if err := s.writeFile(p[:n]); err != nil {
			s.fileError(err)
			break
		}
		p = p[n:]
	}
	if cap(s.buf) > 4*fileBufSize { // grown by a very long line
		s.buf = make([]byte, 0, fileBufSize)
	} else {
		s.buf = s.buf[:0]
	}
}

// minRotateGap keeps rotations apart: lumberjack names a backup after the
// current time in milliseconds, so a second rotation within the same
// millisecond would rename the new file over the previous backup.
const minRotateGap = 2 * time.Millisecond

// writeFile writes p to lumberjack, following its rotation rule so that it
// can wait before a write that rotates too soon after the previous rotation.
// Only a sink writing faster than MaxSizeMB per millisecond ever waits.
func (s *sink) writeFile(p []byte) error {
	rotates := s.fileSize+len(p) > s.maxWrite
	if !s.opened { // lumberjack's rule when it opens an existing file
		rotates = s.fileSize+len(p) >= s.maxWrite
	}
	if rotates {
		if d := minRotateGap - time.Since(s.lastRot); d > 0 {
			time.Sleep(d)
		}
	}
	n, err := s.file.Write(p)
	if rotates && (err == nil || n > 0) {
		s.lastRot = time.Now()
		s.fileSize = 0
	}
	s.opened = s.opened || err == nil
	s.fileSize += n
	return err
}

func (s *sink) fileError(err error) {
	s.fileErrors.Add(1)
	if s.err != nil {
		return
	}
	s.err = fmt.Errorf("logs: write log file %q: %w", s.o.opts.File, err)
	if s.logger != nil {
		s.logger.LogAttrs(context.Background(), slog.LevelError, "processman: cannot write log file",
			s.procAttr, slog.String("error", s.err.Error()))
	}
}
