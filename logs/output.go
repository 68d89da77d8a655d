package logs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/time/rate"
	"gopkg.in/natefinch/lumberjack.v2"
)

// Stream names.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// Defaults applied to zero (or negative) fields of [Options].
const (
	DefaultMaxSizeMB    = 10
	DefaultMaxFiles     = 5
	DefaultLoggerRate   = 100
	DefaultLoggerBurst  = 1000
	DefaultRingLines    = 1000
	DefaultRingBytes    = 2 << 20
	DefaultMaxLineBytes = 64 << 10
	// DefaultLoggerBytesRate and DefaultLoggerBytesBurst bound what the
	// logger sink stores in bytes (of text), besides lines: long lines
	// within the line rate must not grow PocketBase's log database fast.
	DefaultLoggerBytesRate  = 64 << 10
	DefaultLoggerBytesBurst = 256 << 10
	// DefaultLoggerMaxLineBytes is the longest text the logger gets; a
	// longer line is cut there, with a marker (the file has it whole).
	DefaultLoggerMaxLineBytes = 4 << 10
	DefaultQueue              = 1024
	// DefaultSubscribeBuffer is the channel size Subscribe uses for buffer <= 0.
	DefaultSubscribeBuffer = 256
)

// QueueUnit is the size in bytes of one unit of [Options].Queue. Lines
// waiting for the sink count their text plus 64 bytes each.
const QueueUnit = 8 << 10

const (
	readBufSize = 64 << 10 // bytes per read(2) from a pipe
	// readPause is how long the reader waits after a small read before
	// reading again, so that a child writing line by line is read in
	// batches instead of waking the reader for every line. The child does
	// not wait meanwhile: it keeps writing into the pipe's buffer, which
	// the supervisor enlarges to 1 MiB (on Linux), many times what a
	// child can write in that time.
	readPause = 5 * time.Millisecond
	// smallRead is the size under which a read counts as small.
	smallRead   = 16 << 10
	fileBufSize = 64 << 10 // bytes the sink gathers before a write(2)
	// chunkLines is the capacity of the chunks that carry lines to the sink.
	chunkLines = 256
	// maxScratchLines is the largest per-reader line buffer kept between reads.
	maxScratchLines = 4096
	// lineCost is what a line costs in the sink's backlog besides its text.
	lineCost = int(unsafe.Sizeof(Line{}))
	// gatherDelay is how long the sink lets lines gather after taking some,
	// so that a child writing line by line costs one write(2) to the file
	// and one wake-up of the sink per gatherDelay, not one per line.
	gatherDelay = time.Millisecond
	// warnInterval is the shortest time between two rate-limit warnings.
	warnInterval = 10 * time.Second
	// fileTimeFormat is the time stamp at the start of each log file line.
	fileTimeFormat = "2006-01-02T15:04:05.000Z07:00"
)

// Line is one line of a child's output.
type Line struct {
	Time   time.Time `json:"time"`   // when the read that completed the line returned
	Stream string    `json:"stream"` // Stdout or Stderr
	Text   string    `json:"text"`   // valid UTF-8 (invalid bytes replaced with U+FFFD), no trailing newline
	Pid    int       `json:"pid"`
	// Instance is the index of the instance that wrote the line (0 for a
	// process of one instance).
	Instance int `json:"instance"`
}

// Options configure an Output. Zero values get the defaults shown.
type Options struct {
	Process string // process name, put in logger attributes ("process")
	// Instances is how many instances of the process write into the
	// Output; with more than one, each line of the file says which
	// ("<time> stdout:1 <text>") and logger records get an "instance".
	Instances   int
	File        string       // log file path; "" means no file. Parent dirs are created (0o755), file 0o644.
	MaxSizeMB   int          // rotation size, default 10
	MaxFiles    int          // rotated files kept besides the current one, default 5
	Logger      *slog.Logger // nil means no logger sink
	LoggerRate  float64      // lines per second admitted into Logger, default 100
	LoggerBurst int          // default 1000
	// LoggerBytesRate and LoggerBytesBurst bound the text admitted into
	// Logger in bytes per second, defaults 64 KiB and 256 KiB.
	LoggerBytesRate  float64
	LoggerBytesBurst int
	// LoggerMaxLineBytes cuts longer lines for Logger, with a marker;
	// default 4 KiB.
	LoggerMaxLineBytes int
	RingLines          int // ring buffer capacity in lines, default 1000
	// RingBytes bounds the text the ring buffer keeps, default 2 MiB: the
	// oldest lines go first when it is reached.
	RingBytes    int
	MaxLineBytes int // longer lines are cut into several lines of at most this many bytes, default 64 KiB
	Queue        int // sink backlog before dropping, in units of 8 KiB of lines (text + 64 bytes each), default 1024 = 8 MiB
}

func (o *Options) setDefaults() {
	orDefault(&o.MaxSizeMB, DefaultMaxSizeMB)
	orDefault(&o.MaxFiles, DefaultMaxFiles)
	orDefault(&o.LoggerRate, DefaultLoggerRate)
	orDefault(&o.LoggerBurst, DefaultLoggerBurst)
	orDefault(&o.RingLines, DefaultRingLines)
	orDefault(&o.RingBytes, DefaultRingBytes)
	orDefault(&o.LoggerBytesRate, DefaultLoggerBytesRate)
	orDefault(&o.LoggerBytesBurst, DefaultLoggerBytesBurst)
	orDefault(&o.LoggerMaxLineBytes, DefaultLoggerMaxLineBytes)
	orDefault(&o.MaxLineBytes, DefaultMaxLineBytes)
	orDefault(&o.Queue, DefaultQueue)
}

// orDefault sets *v to d when it is zero or negative.
func orDefault[T int | float64](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Stats counts.
type Stats struct {
	Lines             uint64 `json:"lines"`              // lines read in total
	LoggerSkipped     uint64 `json:"logger_skipped"`     // lines not sent to Logger because of the rate limit
	SinkDropped       uint64 `json:"sink_dropped"`       // lines neither written to file nor logger because the sink's backlog was full
	SubscriberDropped uint64 `json:"subscriber_dropped"` // lines a slow subscriber did not receive
	FileErrors        uint64 `json:"file_errors"`        // failed writes to the log file
}

// chunk carries up to chunkLines lines to the sink. A chunk with flush set
// ends with a Flush call: its channels are closed once its lines are written.
type chunk struct {
	lines []Line
	flush []chan struct{}
}

var chunkPool = sync.Pool{New: func() any { return &chunk{lines: make([]Line, 0, chunkLines)} }}

func getChunk() *chunk { return chunkPool.Get().(*chunk) }

func putChunk(c *chunk) {
	clear(c.lines) // drop references to the texts
	c.lines = c.lines[:0]
	c.flush = nil
	chunkPool.Put(c)
}

// Output collects the output of one managed process across all its runs
// (restarts reuse the same Output). All methods are safe for concurrent use.
//
// Readers hand lines to the sink goroutine through a pending list of chunks:
// a read copies its lines into it under a mutex and wakes the sink only if
// the list was empty; the sink takes the whole list at once, handles it, and
// waits a millisecond for more before writing the file. The pending lines
// are bounded by Options.Queue×QueueUnit bytes, counting each line's text
// plus 64 bytes; lines that do not fit are dropped from the sink and counted
// in Stats.SinkDropped. Order is kept throughout.
type Output struct {
	opts   Options
	closed atomic.Bool // set by Close; readers then only drain

	ringMu     sync.Mutex
	ring       []Line // circular, len == RingLines
	head       int    // where the next line goes
	count      int    // lines kept, <= len(ring)
	ringBytes  int    // text bytes of the lines kept, <= RingBytes but for one line
	subs       map[*subscriber]struct{}
	ringClosed bool

	// qMu guards pending, its cost, sinkClosed and the close of wake.
	qMu         sync.Mutex
	sinkClosed  bool
	pending     []*chunk      // lines the sink has not taken yet, in order
	pendingCost int           // bytes pending counts against maxPending
	maxPending  int           // Queue × QueueUnit
	wake        chan struct{} // capacity 1; nil when there is neither file nor logger
	sinkDone    chan struct{} // closed when the sink goroutine ends
	sink        *sink

	lines       atomic.Uint64
	sinkDropped atomic.Uint64
	subDropped  atomic.Uint64

	closeOnce sync.Once
	closeErr  error
}

type subscriber struct{ ch chan Line }

// NewOutput returns an Output configured by opts. If opts.File is set, its
// directory and the file itself are created right away, and an error naming
// the file is returned when that fails. The Output must be closed with Close.
func NewOutput(opts Options) (*Output, error) {
	opts.setDefaults()
	o := &Output{
		opts: opts,
		ring: make([]Line, opts.RingLines),
		subs: make(map[*subscriber]struct{}),
	}
	if opts.File == "" && opts.Logger == nil {
		return o, nil
	}
	s := &sink{
		o:        o,
		logger:   opts.Logger,
		procAttr: slog.String("process", opts.Process),
		many:     opts.Instances > 1,
		hasFile:  opts.File != "",
		maxWrite: opts.MaxSizeMB << 20,
	}
	if opts.File != "" {
		size, err := createFile(opts.File)
		if err != nil {
			return nil, err
		}
		s.fileSize = int(size)
		s.file = &lumberjack.Logger{
			Filename:   opts.File,
			MaxSize:    opts.MaxSizeMB,
			MaxBackups: opts.MaxFiles,
		}
		s.buf = make([]byte, 0, fileBufSize)
	}
	if opts.Logger != nil {
		s.limiter = rate.NewLimiter(rate.Limit(opts.LoggerRate), opts.LoggerBurst)
		s.bytesLimiter = rate.NewLimiter(rate.Limit(opts.LoggerBytesRate), opts.LoggerBytesBurst)
	}
	o.sink = s
	o.wake = make(chan struct{}, 1)
	o.maxPending = opts.Queue * QueueUnit
	o.sinkDone = make(chan struct{})
	go s.run()
	return o, nil
}

// createFile makes sure the log file and its directory exist and can be
// written, so that a bad path is reported by NewOutput rather than lost in
// the sink goroutine, and returns the file's size. lumberjack keeps the mode
// of an existing file when it rotates.
func createFile(name string) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return 0, fmt.Errorf("logs: create directory for log file %q: %w", name, err)
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("logs: open log file %q: %w", name, err)
	}
	fi, err := f.Stat()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("logs: open log file %q: %w", name, err)
	}
	return fi.Size(), nil
}

// Attach starts a goroutine that reads r until EOF or an error, splitting
// lines, and closes r at the end. stream should be Stdout or Stderr; pid is
// the child's process id and instance the index of its instance, both
// recorded in every Line.
//
// The returned channel is closed once everything read from r has been handed
// to the ring buffer (and handed on to the sink) and r has been closed. A final
// line without trailing newline is still emitted at EOF.
//
// The reader never waits for the sink: r is always drained as fast as it
// delivers data. After Close, Attach only drains and closes r.
func (o *Output) Attach(stream string, pid, instance int, r io.ReadCloser) <-chan struct{} {
	done := make(chan struct{})
	go o.read(stream, pid, instance, r, done)
	return done
}

func (o *Output) read(stream string, pid, instance int, r io.ReadCloser, done chan<- struct{}) {
	defer close(done)
	defer r.Close()

	buf := make([]byte, readBufSize)
	sp := splitter{max: o.opts.MaxLineBytes}
	var (
		lines []Line // the lines of one read, reused
		now   time.Time
	)
	emit := func(text string) {
		lines = append(lines, Line{Time: now, Stream: stream, Text: validText(text), Pid: pid, Instance: instance})
	}
	publish := func() {
		o.publish(lines)
		clear(lines)
		lines = lines[:0]
		if cap(lines) > maxScratchLines { // after a read of many tiny lines
			lines = nil
		}
	}
	for {
		n, err := r.Read(buf)
		if n > 0 && !o.closed.Load() {
			now = time.Now()
			sp.feed(buf[:n], emit)
			publish()
		}
		if err != nil {
			break
		}
		if n < smallRead {
			time.Sleep(readPause)
		}
	}
	if !o.closed.Load() {
		now = time.Now()
		sp.finish(emit)
		publish()
	}
}

// publish adds lines to the ring, passes them to subscribers and hands them
// to the sink without waiting.
func (o *Output) publish(lines []Line) {
	if len(lines) == 0 || !o.addToRing(lines) || o.wake == nil {
		return
	}
	o.enqueue(lines, nil)
}

// enqueue copies lines, as far as the budget allows, and then the Flush
// channel flush if not nil, to the end of the pending list and wakes the
// sink if the list was empty. It never waits for the sink. It reports false
// once the Output is closed.
func (o *Output) enqueue(lines []Line, flush chan struct{}) bool {
	o.qMu.Lock()
	defer o.qMu.Unlock()
	if o.sinkClosed {
		return false
	}
	if len(o.pending) == 0 {
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
	for i := range lines {
		cost := len(lines[i].Text) + lineCost
		if o.pendingCost+cost > o.maxPending && o.pendingCost > 0 { // one line always fits
			o.sinkDropped.Add(uint64(len(lines) - i))
			break
		}
		o.pendingCost += cost
		last := o.lastChunk()
		last.lines = append(last.lines, lines[i])
	}
	if flush != nil {
		last := o.lastChunk()
		last.flush = append(last.flush, flush)
	}
	return true
}

// lastChunk returns the chunk to append a line to, adding one to the pending
// list when the last one is full or ends with a Flush call.
func (o *Output) lastChunk() *chunk {
	if n := len(o.pending); n > 0 {
		if c := o.pending[n-1]; len(c.lines) < cap(c.lines) && len(c.flush) == 0 {
			return c
		}
	}
	c := getChunk()
	o.pending = append(o.pending, c)
	return c
}

// takePending swaps the pending list with spare, an empty list, and returns
// it. Only the sink calls it; the two lists are reused in turn.
func (o *Output) takePending(spare []*chunk) []*chunk {
	o.qMu.Lock()
	defer o.qMu.Unlock()
	list := o.pending
	o.pending, o.pendingCost = spare[:0], 0
	return list
}

// addToRing stores lines in the ring and sends them to subscribers. It
// reports false if the Output is closed.
func (o *Output) addToRing(lines []Line) bool {
	o.ringMu.Lock()
	defer o.ringMu.Unlock()
	if o.ringClosed {
		return false
	}
	o.lines.Add(uint64(len(lines)))
	size := len(o.ring)
	keep := lines
	if len(keep) > size {
		keep = keep[len(keep)-size:]
	}
	for _, l := range keep {
		if o.count == size { // full in lines: the oldest goes
			o.dropOldest()
		}
		o.ring[o.head] = l
		o.head = (o.head + 1) % size
		o.count++
		o.ringBytes += len(l.Text)
		for o.ringBytes > o.opts.RingBytes && o.count > 1 { // over the byte budget
			o.dropOldest()
		}
	}

	for s := range o.subs {
		for _, l := range lines {
			select {
			case s.ch <- l:
			default:
				o.subDropped.Add(1)
			}
		}
	}
	return true
}

// dropOldest removes the oldest line of the ring. o.ringMu must be held.
func (o *Output) dropOldest() {
	size := len(o.ring)
	oldest := (o.head - o.count + size) % size
	o.ringBytes -= len(o.ring[oldest].Text)
	o.ring[oldest] = Line{} // let its text go
	o.count--
}

// Tail returns up to n most recent lines, oldest first (n<=0 means all kept
// lines). The slice is a copy owned by the caller.
func (o *Output) Tail(n int) []Line {
	o.ringMu.Lock()
	defer o.ringMu.Unlock()
	return o.tailLocked(n)
}

func (o *Output) tailLocked(n int) []Line {
	k := o.count
	if n > 0 && n < k {
		k = n
	}
	out := make([]Line, k)
	size := len(o.ring)
	start := (o.head - k + size) % size
	c := copy(out, o.ring[start:min(start+k, size)])
	copy(out[c:], o.ring[:k-c])
	return out
}

// Subscribe returns a channel that receives every new Line after the call,
// and a cancel func that ends the subscription and closes the channel.
// Sending never blocks the reader: a subscriber whose channel (of buffer
// lines; DefaultSubscribeBuffer if buffer <= 0) is full loses lines, counted
// in Stats.SubscriberDropped. Close closes every subscribed channel; after
// Close, Subscribe returns a closed channel. cancel may be called many times.
func (o *Output) Subscribe(buffer int) (<-chan Line, func()) {
	_, ch, cancel := o.TailAndSubscribe(0, buffer)
	return ch, cancel
}

// TailAndSubscribe is Tail(n) and Subscribe(buffer) at one instant: every
// line is either in the returned tail or sent on the channel, never both
// and never neither (unless the subscriber falls behind). n == 0 returns
// no tail.
func (o *Output) TailAndSubscribe(n, buffer int) ([]Line, <-chan Line, func()) {
	if buffer <= 0 {
		buffer = DefaultSubscribeBuffer
	}
	s := &subscriber{ch: make(chan Line, buffer)}
	o.ringMu.Lock()
	defer o.ringMu.Unlock()
	var tail []Line
	if n > 0 {
		tail = o.tailLocked(n)
	}
	if o.ringClosed {
		close(s.ch)
		return tail, s.ch, func() {}
	}
	o.subs[s] = struct{}{}
	cancel := func() {
		o.ringMu.Lock()
		defer o.ringMu.Unlock()
		if _, ok := o.subs[s]; ok {
			delete(o.subs, s)
			close(s.ch)
		}
	}
	return tail, s.ch, cancel
}

// Stats returns the counters of the Output.
func (o *Output) Stats() Stats {
	st := Stats{
		Lines:             o.lines.Load(),
		SinkDropped:       o.sinkDropped.Load(),
		SubscriberDropped: o.subDropped.Load(),
	}
	if o.sink != nil {
		st.LoggerSkipped = o.sink.skipped.Load()
		st.FileErrors = o.sink.fileErrors.Load()
	}
	return st
}

// Flush waits until every line read before the call has been written to
// the file (and logger), or until ctx is done. Lines still being read by an
// Attach goroutine are not waited for; wait for its channel first.
func (o *Output) Flush(ctx context.Context) error {
	if o.wake == nil {
		return nil
	}
	done := make(chan struct{})
	if !o.enqueue(nil, done) {
		done = o.sinkDone // Close writes everything
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close flushes and closes the file, emits a last rate-limit warning if
// lines were skipped since the previous one, and closes subscriber channels.
// It waits for the sink, so it blocks as long as a Logger handler blocks.
// Attach goroutines still running, and later Attach calls, only drain their
// readers. Tail and Stats keep working. Close is idempotent and returns the
// first file error every time.
func (o *Output) Close() error {
	o.closeOnce.Do(func() {
		o.closed.Store(true)

		o.ringMu.Lock()
		o.ringClosed = true
		for s := range o.subs {
			close(s.ch)
		}
		clear(o.subs)
		o.ringMu.Unlock()

		if o.wake == nil {
			return
		}
		o.qMu.Lock()
		o.sinkClosed = true
		close(o.wake)
		o.qMu.Unlock()
		<-o.sinkDone
		o.closeErr = o.sink.err
	})
	return o.closeErr
}
