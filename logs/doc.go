// Package logs captures the stdout and stderr of supervised child processes.
//
// An [Output] belongs to one managed process and lives across all of its
// runs: every restart attaches the new child's pipes to the same Output with
// [Output.Attach]. Each line read from a pipe goes to three places:
//
//  1. an in-memory ring buffer of the last [Options.RingLines] lines, read
//     with [Output.Tail] and followed live with [Output.Subscribe];
//  2. optionally a log file, rotated by size through lumberjack;
//  3. optionally a *slog.Logger (PocketBase's app.Logger(), which stores
//     records in PocketBase's log database), rate limited.
//
// # Never block the child
//
// A child writing into a full pipe blocks in write(2). A supervisor that stops
// reading because its disk is slow or its database is busy would freeze the
// process it is meant to keep alive, so the pipe reader never waits for
// anything but the pipe itself and a short mutex around the ring buffer.
//
// The file and logger are written by one sink goroutine per Output. The
// reader hands it lines without ever waiting for it: under a short mutex it
// appends them to a pending list, whose size is bounded by
// [Options.Queue] (8 MiB of lines by default). When the sink falls that far
// behind, further lines are dropped from the sink (counted in
// [Stats].SinkDropped) instead of being buffered without bound. The ring
// buffer is different: adding a line to it is a constant-time copy under a
// mutex, it cannot fall behind, and so it always receives every line. When
// the file or the logger lost lines, the ring buffer still has the most
// recent ones, which are usually the ones someone looks at.
//
// The logger sink is additionally rate limited (golang.org/x/time/rate), since
// a chatty child must not fill PocketBase's log database. Lines over the limit
// are counted in [Stats].LoggerSkipped and, at most once every 10 seconds and
// at Close, a single warning record reports how many were skipped.
//
// # Batching
//
// Throughput matters: a child may print millions of lines. Work is therefore
// done per read, not per line, and per burst, not per read:
//
//   - The complete lines of one read(2) of up to 64 KiB are converted into one
//     string and split into lines that share it. The string holds nothing but
//     those lines, so the ring keeps alive little more than the text it shows.
//   - The lines of a read are added to the ring under one lock and appended
//     to the sink's pending list under another. The sink is woken only when
//     that list was empty, and takes all of it at once.
//   - After a read of less than 16 KiB the reader waits 5 ms before the
//     next one, so that a child writing line by line is read in batches.
//     The child does not wait meanwhile: it keeps writing into the pipe,
//     whose buffer the supervisor enlarges to 1 MiB on Linux. (The
//     supervisor also gives the reader a blocking pipe, outside Go's
//     network poller, which would otherwise wake up for every write.)
//   - After taking lines the sink waits one millisecond for more before it
//     writes the file. A child writing line by line (Python with
//     PYTHONUNBUFFERED=1 does) thus costs one wake-up of the sink and one
//     write(2) per millisecond rather than per line, and lines still reach
//     the disk within about a millisecond. A burst also costs at most one
//     write(2) per 64 KiB.
//   - The time stamp of the file has millisecond resolution and is formatted
//     once per millisecond and stream.
//
// Writes to the file always end at a line boundary, so rotation never splits
// a line in two. Because lumberjack names backups by the millisecond, the
// sink never rotates twice within the same millisecond, which would overwrite
// a backup.
//
// # Hostile output
//
// Lines longer than [Options.MaxLineBytes] are cut into several lines (at a
// UTF-8 character boundary where possible), so memory per pipe is bounded.
// Invalid UTF-8 is replaced with U+FFFD. A trailing "\r" before the "\n" is
// removed. A final line without a newline is still emitted when the pipe
// reaches EOF.
package logs
