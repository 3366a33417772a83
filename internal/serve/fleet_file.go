package serve

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"time"
	"unicode/utf8"

	"github.com/ramboot/ramboot/internal/report"
)

// What one event may store, and what replay reads.
const (
	// maxEventField is the most bytes of one string field of an event that are stored: a
	// longer value is cut at a character boundary and ends in a note of the bytes cut (cutField).
	maxEventField = 4 << 10
	// maxStoredLine is the longest line Add writes to the events file. An event whose line is
	// longer even with its fields cut is refused (ErrEventTooLarge): in JSON a control
	// character takes 6 bytes, so 4 KiB fields can still make a line of hundreds of KiB.
	maxStoredLine = 64 << 10
	// maxReplayLine is the longest line replay reads (as long as it ever read: lines that
	// earlier versions wrote still replay). A longer one is skipped, as one that does not parse.
	maxReplayLine = 1 << 20
)

// SyncInterval is the fsync schedule of the events file. Each event is written to the file as
// it arrives (a crash of the server loses nothing the kernel has), and the file is fsynced once
// per SyncInterval while events arrive, and once more by Close: a power cut or a crash of the
// host loses at most the events of the last SyncInterval.
const SyncInterval = time.Second

// syncSchedule drives the fsyncs: a tick, its stop, and the call itself. Tests drive all three.
type syncSchedule struct {
	tick  <-chan time.Time
	stop  func()
	fsync func(*os.File) error
}

// OpenFleet opens (or creates) the events file at path, a file or a directory (then
// path/reports.jsonl), and replays it. A line that cannot be read (the last one, cut by a
// crash; one of garbage; one longer than maxReplayLine) is skipped, and the skipped lines are
// counted in one log line. rollbackAfter > 0 turns rollback on (see Fleet.Default). The file
// is fsynced every SyncInterval while events arrive, and by Close.
func OpenFleet(path string, rollbackAfter int, logf func(string, ...any)) (*Fleet, error) {
	t := time.NewTicker(SyncInterval)
	f, err := openFleet(path, rollbackAfter, logf, syncSchedule{tick: t.C, stop: t.Stop, fsync: (*os.File).Sync})
	if err != nil {
		t.Stop()
		return nil, err
	}
	return f, nil
}

func openFleet(path string, rollbackAfter int, logf func(string, ...any), sched syncSchedule) (*Fleet, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, ReportsFile)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	fl := &Fleet{machines: map[string]*Machine{}, file: f, path: path, rollbackAfter: rollbackAfter,
		subs: map[chan []byte]struct{}{}, now: time.Now, logf: logf,
		sched: sched, stopSync: make(chan struct{}), syncDone: make(chan struct{})}
	if err := fl.replay(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("reports: reading %s: %w", path, err)
	}
	// A line cut by a crash is ended, so that the next event starts a line of its own.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			f.Write([]byte("\n"))
			fl.dirty = true
		}
	}
	go fl.syncLoop()
	return fl, nil
}

// Path is the events file.
func (f *Fleet) Path() string { return f.path }

// Close ends the live streams, refuses further events, fsyncs the events file and closes it.
// It returns the error of the fsync or the close: events may then be lost at a power cut.
func (f *Fleet) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	for c := range f.subs {
		close(c)
		delete(f.subs, c)
	}
	f.mu.Unlock()
	// The loop ends before the last fsync and the close: it must not fsync a closed file, and
	// Add writes nothing more (closed), so this fsync covers every event taken.
	close(f.stopSync)
	<-f.syncDone
	f.sched.stop()
	err := f.sync()
	if cerr := f.file.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("reports: %w", cerr)
	}
	return err
}

// syncLoop fsyncs the events file at every tick when events were written since the last
// fsync, until Close.
func (f *Fleet) syncLoop() {
	defer close(f.syncDone)
	for {
		select {
		case <-f.stopSync:
			return
		case <-f.sched.tick:
			f.sync()
		}
	}
}

// sync fsyncs the events file if events were written since the last fsync. f.mu is not held
// while the disk works: Add goes on appending meanwhile, and marks the file dirty again. A
// failure is logged once (until an fsync works again) and the next tick retries. Only the
// sync loop calls it, and Close once the loop has ended.
func (f *Fleet) sync() error {
	f.mu.Lock()
	dirty := f.dirty
	f.dirty = false
	f.mu.Unlock()
	if !dirty {
		return nil
	}
	err := f.sched.fsync(f.file)
	if err != nil {
		f.mu.Lock()
		f.dirty = true
		f.mu.Unlock()
		if !f.syncFailed {
			f.logf("reports: fsync of %s: %v (events are written, but a power cut may lose them; retried every %v)", f.path, err, SyncInterval)
		}
		f.syncFailed = true
		return fmt.Errorf("reports: fsync: %w", err)
	}
	if f.syncFailed {
		f.logf("reports: fsync of %s works again", f.path)
		f.syncFailed = false
	}
	return nil
}

// replay applies the events of r, line by line. A line that cannot be read (not JSON, not an
// event, longer than maxReplayLine) is skipped: one bad line must cost neither the server its
// start nor the other machines their history. The skipped lines are counted, and logged once
// with the first one's number and why it was skipped. Only an error reading r is returned.
func (f *Fleet) replay(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		n, bad, firstBad int
		why              string
	)
	skip := func(lineNo int, reason string) {
		if bad == 0 {
			firstBad, why = lineNo, reason
		}
		bad++
	}
	for lineNo := 1; ; lineNo++ {
		line, tooLong, err := readLine(br, maxReplayLine)
		if err != nil && err != io.EOF {
			return err
		}
		line = bytes.TrimSpace(line)
		switch {
		case tooLong:
			skip(lineNo, fmt.Sprintf("longer than %d bytes", maxReplayLine))
		case len(line) == 0:
		default:
			var rec record
			if err := json.Unmarshal(line, &rec); err != nil {
				skip(lineNo, err.Error())
			} else if rec.MAC == "" {
				skip(lineNo, "no mac")
			} else {
				f.apply(rec)
				n++
			}
		}
		if err == io.EOF {
			break
		}
	}
	if bad > 0 {
		lines := "lines"
		if bad == 1 {
			lines = "line"
		}
		f.logf("reports: %s: skipped %d %s that cannot be read, the first at line %d (%s)", f.path, bad, lines, firstBad, why)
	}
	if n > 0 {
		f.logf("reports: replayed %d events of %d machines from %s", n, len(f.machines), f.path)
	}
	return nil
}

// readLine reads a line of br, without its newline. A line longer than max bytes is read to
// its end but not kept: tooLong, and no line. err is io.EOF at the end of br, with the last
// line when it has no newline.
func readLine(br *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		chunk = bytes.TrimSuffix(chunk, []byte("\n"))
		if !tooLong {
			if len(line)+len(chunk) > max {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if err != bufio.ErrBufferFull {
			return line, tooLong, err
		}
	}
}

// capFields cuts every string field of e longer than maxEventField (cutField). By reflection,
// so that a field added to report.Event is capped too.
func capFields(e *report.Event) {
	v := reflect.ValueOf(e).Elem()
	for i := range v.NumField() {
		if fv := v.Field(i); fv.Kind() == reflect.String && fv.Len() > maxEventField {
			fv.SetString(cutField(fv.String()))
		}
	}
}

// cutField keeps at most maxEventField bytes of s, ending at a character boundary, and notes
// how many bytes were cut: "<<<<… (1048376 bytes cut)".
func cutField(s string) string {
	if len(s) <= maxEventField {
		return s
	}
	k := maxEventField
	for k > 0 && !utf8.RuneStart(s[k]) {
		k--
	}
	return fmt.Sprintf("%s… (%d bytes cut)", s[:k], len(s)-k)
}

// storedLine is rec as a line of the events file, newline included. Without HTML escaping: a
// '<' takes one byte, not the six of \u003c. ErrEventTooLarge when it is longer than
// maxStoredLine.
func storedLine(rec record) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rec); err != nil {
		return nil, err
	}
	if b.Len() > maxStoredLine {
		return nil, fmt.Errorf("%w: %d bytes in the reports file, more than %d (with each field cut to %d)", ErrEventTooLarge, b.Len(), maxStoredLine, maxEventField)
	}
	return b.Bytes(), nil
}
