package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ramboot/ramboot/internal/report"
)

const macB = "52:54:00:00:00:0b"

// TestFleetHugeEvent: an event of about 1 MiB of '<' (6 MiB once escaped as JSON used to
// escape it) is stored cut to maxEventField, and the server starts again on the same reports
// file with every machine's reports.
func TestFleetHugeEvent(t *testing.T) {
	reports := t.TempDir()
	start := func() (*httptest.Server, *Handler) {
		t.Helper()
		h, err := New(testDir(t), Options{Reports: reports, Logf: t.Logf})
		if err != nil {
			t.Fatalf("starting on the reports file: %v", err)
		}
		return httptest.NewServer(h), h
	}
	srv, h := start()
	postJSON(t, srv.URL+EventsPath, bootEvents(macB, "c1", "rescue", report.NetworkUp))
	huge := `{"schema":1,"type":"failure","boot_id":"h1","seq":1,"mac":"` + macA +
		`","step":"fetch_start","error":"` + strings.Repeat("<", maxEventsBody-200) + `"}`
	resp, err := http.Post(srv.URL+EventsPath, "application/json", strings.NewReader(huge))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("POST of the huge event: %s, want 204 (stored cut)", resp.Status)
	}
	postJSON(t, srv.URL+EventsPath, bootEvents(macB, "c1", "rescue", report.SwitchRoot)[2:])
	srv.Close()
	h.Close()

	b, err := os.ReadFile(filepath.Join(reports, ReportsFile))
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range bytes.Split(b, []byte("\n")) {
		if len(l) > maxStoredLine {
			t.Errorf("line %d of the reports file: %d bytes, more than %d", i+1, len(l), maxStoredLine)
		}
	}

	srv2, h2 := start()
	defer func() { srv2.Close(); h2.Close() }()
	ms := h2.Fleet().Machines()
	if len(ms) != 2 {
		t.Fatalf("after the restart: %d machines, want 2: %+v", len(ms), ms)
	}
	if a := ms[0]; a.MAC != macA || a.State != StateFailed || !strings.HasPrefix(a.LastError, "fetch_start: <<<<") || len(a.LastError) > maxEventField+100 {
		t.Errorf("machine A after the restart: state %s, last error of %d bytes %.40q", a.State, len(a.LastError), a.LastError)
	}
	if m := ms[1]; m.MAC != macB || m.Stage != report.SwitchRoot {
		t.Errorf("machine B after the restart: %s at %s, want %s at %s", m.MAC, m.Stage, macB, report.SwitchRoot)
	}
}

// TestFleetReplaySkips: a line in the middle of the reports file that does not parse, or is
// too long to read, is skipped and counted (one log line naming the first), and the lines
// after it are replayed.
func TestFleetReplaySkips(t *testing.T) {
	line := func(e report.Event) string {
		b, err := json.Marshal(record{Received: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Event: e})
		if err != nil {
			t.Fatal(err)
		}
		return string(b) + "\n"
	}
	a := bootEvents(macA, "b1", "rescue", report.NetworkUp)
	file := filepath.Join(t.TempDir(), "reports.jsonl")
	content := line(a[0]) +
		`{"received":"2026-01-01T00:00:00Z","schema":1,"type":` + "\n" + // cut
		strings.Repeat("x", 4<<20) + "\n" + // longer than any line replay reads
		line(bootEvents(macB, "c1", "rescue", report.Started)[0]) +
		line(a[1])
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	var log logRec
	f, err := OpenFleet(file, 0, log.logf)
	if err != nil {
		t.Fatalf("opening a reports file with unreadable lines: %v", err)
	}
	defer f.Close()
	ms := f.Machines()
	if len(ms) != 2 || ms[0].Stage != report.NetworkUp || ms[1].MAC != macB {
		t.Errorf("replayed machines %+v, want A at network and B", ms)
	}
	skipped := regexp.MustCompile(`skipped 2 lines .*the first at line 2\b`)
	n := 0
	for _, l := range log.all() {
		if strings.Contains(l, "skipped") {
			n++
			if !skipped.MatchString(l) {
				t.Errorf("log %q, want it to count 2 lines skipped and name line 2", l)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d log lines about skipped lines, want 1: %q", n, log.all())
	}
}

// TestFleetEventCap: a string field longer than maxEventField is stored cut at a character
// boundary, with a note of what was cut; an event whose stored line would still be longer
// than maxStoredLine is refused (413 over HTTP) and nothing of its batch is stored.
func TestFleetEventCap(t *testing.T) {
	dir := t.TempDir()
	f, err := OpenFleet(dir, 0, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e := bootEvents(macA, "b1", "rescue", report.Started)[0]
	e.Cmdline = strings.Repeat("é", maxEventField) // 2 bytes each: cut inside a character
	e.Kernel = strings.Repeat("<", maxEventField)  // just fits
	if err := f.Add([]report.Event{e}); err != nil {
		t.Fatalf("adding an event with a long field: %v", err)
	}
	ev, _ := f.Events(macA)
	got := ev[0].Cmdline
	if !utf8.ValidString(got) || !strings.HasPrefix(got, strings.Repeat("é", maxEventField/2-8)) ||
		!strings.Contains(got, "bytes cut") || len(got) > maxEventField+100 {
		t.Errorf("long field stored as %d bytes, valid UTF-8 %v, ending %q", len(got), utf8.ValidString(got), got[max(0, len(got)-40):])
	}
	if ev[0].Kernel != e.Kernel {
		t.Errorf("a field of exactly %d bytes was changed", maxEventField)
	}
	file := filepath.Join(dir, ReportsFile)
	b, _ := os.ReadFile(file)
	if len(b) > 3*maxEventField+1000 {
		t.Errorf("stored line of %d bytes: '<' escaped?", len(b))
	}

	// Every string field full of control characters, which JSON stores as 6 bytes each.
	worst := bootEvents(macA, "b1", "rescue", report.Started)[0]
	v := reflect.ValueOf(&worst).Elem()
	for i := range v.NumField() {
		switch name := v.Type().Field(i).Name; {
		case v.Field(i).Kind() != reflect.String, name == "Type", name == "BootID", name == "MAC":
		default:
			v.Field(i).SetString(strings.Repeat("\x01", maxEventField))
		}
	}
	ok := bootEvents(macB, "c1", "rescue", report.Started)[0]
	if err := f.Add([]report.Event{ok, worst}); !errors.Is(err, ErrEventTooLarge) {
		t.Errorf("adding an event too large to store: %v, want ErrEventTooLarge", err)
	}
	if b2, _ := os.ReadFile(file); len(b2) != len(b) {
		t.Errorf("the refused batch was stored: file of %d bytes, was %d", len(b2), len(b))
	}
	if len(f.Machines()) != 1 {
		t.Errorf("the refused batch was applied: %d machines", len(f.Machines()))
	}

	srv, _ := newServer(t, testDir(t), Options{Reports: t.TempDir()})
	if r := postJSON(t, srv.URL+EventsPath, worst); r.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("POST of an event too large to store: %s, want 413", r.Status)
	}
}

// fsyncCounter is a syncSchedule driven by the test: a tick sent by hand, fsyncs counted.
type fsyncCounter struct {
	tick    chan time.Time
	n       atomic.Int32
	fail    atomic.Bool
	stopped atomic.Bool
}

func (c *fsyncCounter) schedule() syncSchedule {
	c.tick = make(chan time.Time)
	return syncSchedule{tick: c.tick, stop: func() { c.stopped.Store(true) }, fsync: func(f *os.File) error {
		fail := c.fail.Load() // before the count: a test that saw the count may change it
		c.n.Add(1)
		if fail {
			return errors.New("injected fsync failure")
		}
		return f.Sync()
	}}
}

// tickOnce sends a tick; the sync loop has taken it, its fsync may still be running.
func (c *fsyncCounter) tickOnce(t *testing.T) {
	t.Helper()
	select {
	case c.tick <- time.Now():
	case <-time.After(10 * time.Second):
		t.Fatal("the sync loop takes no tick")
	}
}

// ticks sends two ticks: once the second is taken, the first one's fsync (if any) is done.
// The count is then settled if the first left nothing to fsync (no fsync failed).
func (c *fsyncCounter) ticks(t *testing.T) {
	t.Helper()
	c.tickOnce(t)
	c.tickOnce(t)
}

// waitFor waits until n fsyncs were done.
func (c *fsyncCounter) waitFor(t *testing.T, n int32, when string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); c.n.Load() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d fsyncs, want %d", when, c.n.Load(), n)
		}
	}
}

// TestFleetSyncSchedule: the events file is fsynced at the first tick after events were
// written, not while nothing was written, again after a failed fsync, and by Close.
func TestFleetSyncSchedule(t *testing.T) {
	var c fsyncCounter
	var log logRec
	f, err := openFleet(t.TempDir(), 0, log.logf, c.schedule())
	if err != nil {
		t.Fatal(err)
	}
	want := func(n int32, when string) {
		t.Helper()
		if got := c.n.Load(); got != n {
			t.Errorf("%s: %d fsyncs, want %d", when, got, n)
		}
	}
	c.ticks(t)
	want(0, "nothing written")
	if err := f.Add(bootEvents(macA, "b1", "rescue", report.NetworkUp)); err != nil {
		t.Fatal(err)
	}
	want(0, "written, before a tick")
	c.ticks(t)
	want(1, "written, then ticks")
	c.ticks(t)
	want(1, "ticks with nothing new written")

	c.fail.Store(true)
	f.Add(bootEvents(macA, "b1", "rescue", report.NetworkUp))
	c.tickOnce(t)
	c.waitFor(t, 2, "written, an fsync failing")
	c.tickOnce(t)
	c.waitFor(t, 3, "the failed fsync, at the next tick")
	c.fail.Store(false)
	c.tickOnce(t)
	c.waitFor(t, 4, "once the fsync works again")
	c.ticks(t)
	want(4, "ticks after the retry worked")
	var failures, again int
	for _, l := range log.all() {
		if strings.Contains(l, "injected fsync failure") {
			failures++
		}
		if strings.Contains(l, "works again") {
			again++
		}
	}
	if failures != 1 || again != 1 {
		t.Errorf("%d log lines for a failing fsync and %d for its recovery, want 1 and 1: %q", failures, again, log.all())
	}

	f.Add(bootEvents(macB, "c1", "rescue", report.Started))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want(5, "written, then Close")
	if !c.stopped.Load() {
		t.Error("Close left the ticker running")
	}
	if err := f.Add(bootEvents(macB, "c1", "rescue", report.Started)); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Add after Close: %v, want os.ErrClosed", err)
	}
}

// TestFleetCloseSyncs: Close fsyncs what was written since the last tick, and only that.
func TestFleetCloseSyncs(t *testing.T) {
	for _, tt := range []struct {
		name  string
		write bool
		want  int32
	}{
		{"written", true, 1},
		{"nothing written", false, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var c fsyncCounter
			f, err := openFleet(t.TempDir(), 0, t.Logf, c.schedule())
			if err != nil {
				t.Fatal(err)
			}
			if tt.write {
				f.Add(bootEvents(macA, "b1", "rescue", report.Started))
			}
			f.Close()
			if got := c.n.Load(); got != tt.want {
				t.Errorf("%d fsyncs by Close, want %d", got, tt.want)
			}
		})
	}
}
