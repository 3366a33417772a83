package report

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sink is a report server: it records every event POSTed, in arrival order.
type sink struct {
	mu     sync.Mutex
	events []Event
	posts  int
	stall  atomic.Bool // each POST waits until the client gives up, and is not recorded
	status int         // when set, answered instead of 204
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.stall.Load() {
		// The body read first: the server notices the client hanging up only then.
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		return
	}
	var batch []Event
	if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.events = append(s.events, batch...)
	s.posts++
	s.mu.Unlock()
	if s.status != 0 {
		w.WriteHeader(s.status)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *sink) got() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

func TestEventsArriveInOrderWithIdentity(t *testing.T) {
	s := &sink{}
	srv := httptest.NewServer(s)
	defer srv.Close()
	r := New(Options{})
	r.Identify(Identity{Serial: "SN1", UUID: "u-1"})
	r.Send(Event{Type: Started, Kernel: "6.1.0", Cmdline: "ramboot.report=x"})
	// Recorded before the network: sent at Start, with the MAC known by then.
	r.Identify(Identity{MAC: "52:54:00:12:34:56", IP: "10.0.2.15"})
	if err := r.Start(srv.URL); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{NetworkUp, MenuShown, EntryChosen, FetchStart, FetchProgress, FetchDone, Extracted} {
		r.Send(Event{Type: typ})
	}
	if err := r.Final(Event{Type: SwitchRoot}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	got := s.got()
	want := []string{Started, NetworkUp, MenuShown, EntryChosen, FetchStart, FetchProgress, FetchDone, Extracted, SwitchRoot}
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d: %+v", len(got), len(want), got)
	}
	for i, e := range got {
		if e.Type != want[i] || e.Seq != i+1 || e.Schema != Schema || e.BootID != r.BootID() || len(e.BootID) != 16 {
			t.Errorf("event %d: got type %q seq %d schema %d boot %q, want %q %d %d %q", i, e.Type, e.Seq, e.Schema, e.BootID, want[i], i+1, Schema, r.BootID())
		}
		if e.MAC != "52:54:00:12:34:56" || e.Serial != "SN1" || e.UUID != "u-1" {
			t.Errorf("event %d (%s): identity %q %q %q", i, e.Type, e.MAC, e.Serial, e.UUID)
		}
		if e.Dropped != 0 {
			t.Errorf("event %d: dropped %d", i, e.Dropped)
		}
	}
	if r.Stage() != SwitchRoot {
		t.Errorf("stage %q, want %q", r.Stage(), SwitchRoot)
	}
}

func TestBootIDsDiffer(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewBootID()
		if len(id) != 16 || seen[id] {
			t.Fatalf("boot id %q: short or repeated", id)
		}
		seen[id] = true
	}
}

// A stalled server: Send never blocks, the queue stays bounded, what does not fit is counted,
// each POST ends at the timeout, and the count reaches the server with the next events.
func TestStalledServerNeverBlocks(t *testing.T) {
	s := &sink{}
	s.stall.Store(true)
	srv := httptest.NewServer(s)
	defer srv.Close()
	const queue, timeout = 4, 300 * time.Millisecond
	r := New(Options{Queue: queue, Timeout: timeout})
	if err := r.Start(srv.URL); err != nil {
		t.Fatal(err)
	}
	const n = 1000
	start := time.Now()
	for i := range n {
		r.Send(Event{Type: FetchProgress, Bytes: int64(i)})
	}
	if d := time.Since(start); d > timeout {
		// Not a speed assertion: 1000 Sends that waited for even one POST would take this long.
		t.Errorf("1000 Sends took %v: Send waited for the stalled server", d)
	}
	// At most the queue plus one batch in flight can be waiting; all the rest were dropped.
	if d := r.Dropped(); d < n-queue-maxBatch {
		t.Errorf("dropped %d of %d with a queue of %d", d, n, queue)
	}
	// Flush is bounded even though the server never answers.
	if r.Flush(50 * time.Millisecond) {
		t.Error("Flush reported the queue drained while the server stalls")
	}
	// Everything queued times out and is dropped too: all n lost.
	if !r.Flush(10 * timeout) {
		t.Fatal("the queue did not drain through timeouts")
	}
	if d := r.Dropped(); d != n {
		t.Errorf("dropped %d, want all %d", d, n)
	}
	// The server recovers: the next event says how many were lost.
	s.stall.Store(false)
	r.Send(Event{Type: FetchDone})
	if !r.Flush(5 * time.Second) {
		t.Fatal("not sent")
	}
	got := s.got()
	if len(got) != 1 || got[0].Type != FetchDone || got[0].Dropped != n || got[0].Seq != n+1 {
		t.Fatalf("after recovery got %+v, want one fetch_done with dropped=%d seq=%d", got, n, n+1)
	}
}

func TestServerErrorsCountAsDropped(t *testing.T) {
	s := &sink{status: http.StatusInternalServerError}
	srv := httptest.NewServer(s)
	defer srv.Close()
	var logged []string
	var mu sync.Mutex
	r := New(Options{Logf: func(f string, a ...any) { mu.Lock(); logged = append(logged, f); mu.Unlock() }})
	r.Start(srv.URL)
	r.Send(Event{Type: Started})
	r.Flush(5 * time.Second)
	r.Send(Event{Type: NetworkUp})
	r.Flush(5 * time.Second)
	if r.Dropped() != 2 {
		t.Errorf("dropped %d, want 2", r.Dropped())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(logged) != 1 {
		t.Errorf("logged %d lines, want the first failure only: %q", len(logged), logged)
	}
}

// Unreachable: nothing listens. Sends return at once, and nothing is left pending for long.
func TestUnreachableServer(t *testing.T) {
	l := httptest.NewServer(http.NotFoundHandler())
	u := l.URL
	l.Close()
	r := New(Options{Timeout: 200 * time.Millisecond})
	r.Start(u)
	for range 10 {
		r.Send(Event{Type: FetchProgress})
	}
	if !r.Flush(5 * time.Second) {
		t.Fatal("not drained")
	}
	if r.Dropped() != 10 {
		t.Errorf("dropped %d, want 10", r.Dropped())
	}
}

func TestStartRefusesBadURLAndKeepsFirst(t *testing.T) {
	r := New(Options{})
	for _, u := range []string{"", "ftp://x/", "http://", "x y"} {
		if err := r.Start(u); err == nil {
			t.Errorf("Start(%q) accepted", u)
		}
	}
	if r.URL() != "" {
		t.Fatalf("URL %q after bad Starts", r.URL())
	}
	r.Start("http://127.0.0.1:1/a")
	r.Start("http://127.0.0.1:1/b")
	if r.URL() != "http://127.0.0.1:1/a" {
		t.Errorf("URL %q, want the first", r.URL())
	}
}

func TestFinalWritesBootJSON(t *testing.T) {
	file := filepath.Join(t.TempDir(), "run/ramboot/boot.json")
	r := New(Options{File: file})
	r.Identify(Identity{MAC: "52:54:00:00:00:01"})
	r.Send(Event{Type: Started})
	for range MaxKept + 10 {
		r.Send(Event{Type: FetchProgress})
	}
	// Never started: no URL, nothing to wait for, the file is still written.
	if err := r.Final(Event{Type: SwitchRoot}, time.Second); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var d Document
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.Schema != Schema || d.BootID != r.BootID() || d.MAC != "52:54:00:00:00:01" || d.ReportURL != "" {
		t.Errorf("document header %+v", d)
	}
	last := d.Events[len(d.Events)-1]
	if len(d.Events) != MaxKept+1 || d.Omitted != 11 || d.Events[0].Type != Started || d.Events[0].MAC == "" || last.Type != SwitchRoot {
		t.Errorf("kept %d events (omitted %d), first %+v", len(d.Events), d.Omitted, d.Events[0])
	}
}

func TestNilReporter(t *testing.T) {
	var r *Reporter
	r.Send(Event{Type: Started})
	r.Identify(Identity{MAC: "x"})
	if r.Start("http://x/") != nil || r.Final(Event{}, time.Second) != nil || !r.Flush(0) || r.BootID() != "" {
		t.Error("a nil Reporter did something")
	}
}

func TestReadDMI(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "product_serial"), []byte("To Be Filled By O.E.M.\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "product_uuid"), []byte("4c4c4544-0042-3510-8052-b4c04f4e4d32\n"), 0o644)
	s, u := ReadDMI(dir)
	if s != "" || u != "4c4c4544-0042-3510-8052-b4c04f4e4d32" {
		t.Errorf("ReadDMI = %q, %q", s, u)
	}
}

// panicky is a RoundTripper that panics: the sender survives it, counting the batch lost.
type panicky struct{}

func (panicky) RoundTrip(*http.Request) (*http.Response, error) { panic("transport bug") }

func TestSenderSurvivesPanic(t *testing.T) {
	var logged []string
	var mu sync.Mutex
	r := New(Options{Client: &http.Client{Transport: panicky{}}, Logf: func(f string, a ...any) {
		mu.Lock()
		logged = append(logged, fmt.Sprintf(f, a...))
		mu.Unlock()
	}})
	r.Start("http://127.0.0.1:1/")
	r.Send(Event{Type: Started})
	if !r.Flush(5*time.Second) || r.Dropped() != 1 {
		t.Fatalf("dropped %d", r.Dropped())
	}
	r.Send(Event{Type: NetworkUp})
	if !r.Flush(5*time.Second) || r.Dropped() != 2 {
		t.Fatalf("the sender did not go on: dropped %d", r.Dropped())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(logged) != 1 || !strings.Contains(logged[0], "internal error: transport bug") {
		t.Errorf("logged %q", logged)
	}
}
