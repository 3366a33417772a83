package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ramboot/ramboot/internal/report"
)

// ReportsFile is the name of the events file when Options.Reports is a directory.
const ReportsFile = "reports.jsonl"

// Limits of the fleet's memory: events kept per machine (the file keeps all), bytes of one POST.
const (
	maxMachineEvents = 2000
	maxEventsBody    = 1 << 20
)

// The states a machine is in, for the dashboard's filters.
const (
	StateBooting     = "booting"     // /init runs: network, menu
	StateDownloading = "downloading" // fetching an image or kernel
	StateBooted      = "booted"      // switch_root or kexec done
	StateHealthy     = "healthy"     // the booted system confirmed
	StateFailed      = "failed"      // the last attempt failed
)

// Span is one bar of a machine's timeline: a stage of its current boot, from Start to End
// (zero while it lasts). Times are the machine's clock: their differences are right.
type Span struct {
	Stage string    `json:"stage"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end,omitzero"`
}

// Rollback is a machine's menu default moved back to the last entry that was healthy on it.
type Rollback struct {
	From     string `json:"from"`     // the menu's default, which failed
	To       string `json:"to"`       // the last entry healthy on this machine
	Failures int    `json:"failures"` // boots of From that failed in a row
}

// Machine is what the fleet knows of one machine (by MAC): its current boot and history.
type Machine struct {
	MAC      string `json:"mac"`
	IP       string `json:"ip,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	Serial   string `json:"serial,omitempty"`
	UUID     string `json:"uuid,omitempty"`
	BootID   string `json:"boot_id"`
	Boots    int    `json:"boots"` // boots seen
	Entry    string `json:"entry,omitempty"`
	// Stage is the last event's type; State its summary (the State* constants).
	Stage      string    `json:"stage"`
	State      string    `json:"state"`
	StageSince time.Time `json:"stage_since"` // server time
	Updated    time.Time `json:"updated"`     // server time of the last event
	URL        string    `json:"url,omitempty"`
	Bytes      int64     `json:"bytes,omitempty"`
	Total      int64     `json:"total,omitempty"`
	Rate       float64   `json:"rate,omitempty"`
	LastError  string    `json:"last_error,omitempty"`
	Dropped    int       `json:"dropped,omitempty"`
	Timeline   []Span    `json:"timeline"`
	// HealthyEntry is the last entry that reached healthy on this machine.
	HealthyEntry string `json:"healthy_entry,omitempty"`
	// Failures counts, per entry, its boots that failed in a row since it was last healthy.
	Failures map[string]int `json:"failures,omitempty"`
	Rollback *Rollback      `json:"rollback,omitempty"`

	healthy bool            // the current boot reached healthy
	counted map[string]bool // boot ids whose failure is counted
	events  []record
}

// record is one line of the events file: the event as the machine sent it, and when the
// server received it.
type record struct {
	Received time.Time `json:"received"`
	report.Event
}

// Fleet collects boot events: it keeps each machine's state in memory and every event in an
// append-only JSON-lines file, replayed when it opens, so that a restart loses nothing. The
// file is fsynced on a schedule (see SyncInterval), not at every event.
type Fleet struct {
	mu            sync.Mutex
	machines      map[string]*Machine
	file          *os.File
	path          string
	rollbackAfter int
	subs          map[chan []byte]struct{}
	closed        bool // streams end, new ones end at once; Add refuses
	dirty         bool // events written since the last fsync
	now           func() time.Time
	logf          func(string, ...any)

	sched      syncSchedule
	stopSync   chan struct{} // closed by Close: the sync loop ends
	syncDone   chan struct{} // closed by the sync loop as it ends
	syncFailed bool          // the last fsync failed (logged once until one works); the sync loop's, then Close's
}

// ErrBadEvent is wrapped by the errors of Add for events refused.
var ErrBadEvent = errors.New("bad event")

// ErrEventTooLarge is wrapped by the errors of Add for an event whose line in the events file
// would be longer than maxStoredLine even with its fields cut to maxEventField.
var ErrEventTooLarge = errors.New("too large to store")

// Add takes events as a machine sent them: stored, applied, streamed. An event without a MAC,
// type or boot id, or of another schema, is refused, as is one too large to store (none of
// the batch is taken). A string field longer than maxEventField is stored cut (see cutField).
func (f *Fleet) Add(events []report.Event) error {
	for i, e := range events {
		switch {
		case e.Schema != report.Schema:
			return fmt.Errorf("%w %d: schema %d, want %d", ErrBadEvent, i, e.Schema, report.Schema)
		case e.Type == "":
			return fmt.Errorf("%w %d: no type", ErrBadEvent, i)
		case e.BootID == "":
			return fmt.Errorf("%w %d: no boot_id", ErrBadEvent, i)
		case normalMAC(e.MAC) == "":
			return fmt.Errorf("%w %d: mac %q is not a MAC address", ErrBadEvent, i, e.MAC)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return fmt.Errorf("reports: %w", os.ErrClosed)
	}
	now := f.now().UTC()
	var buf bytes.Buffer
	recs := make([]record, 0, len(events))
	for i, e := range events {
		e.MAC = normalMAC(e.MAC)
		capFields(&e)
		rec := record{Received: now, Event: e}
		line, err := storedLine(rec)
		if err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
		buf.Write(line)
		recs = append(recs, rec)
	}
	// One write per batch, appended: a crash cuts at most the last line, which replay skips.
	// Applied once stored: the state never holds what a restart would not replay.
	if _, err := f.file.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("reports: %w", err)
	}
	f.dirty = true
	changed := map[string]*Machine{}
	for _, rec := range recs {
		changed[rec.MAC] = f.apply(rec)
	}
	for _, m := range changed {
		f.publish(m)
	}
	return nil
}

// MarkHealthy records that the booted system on mac confirmed its health (the current boot).
// False when no boot of mac was reported.
func (f *Fleet) MarkHealthy(mac string) (bool, error) {
	mac = normalMAC(mac)
	f.mu.Lock()
	m, ok := f.machines[mac]
	var e report.Event
	if ok {
		e = report.Event{Schema: report.Schema, Type: report.Healthy, Time: f.now().UTC(), BootID: m.BootID, MAC: mac, Entry: m.Entry}
	}
	f.mu.Unlock()
	if !ok {
		return false, nil
	}
	return true, f.Add([]report.Event{e})
}

// normalMAC returns a MAC address in lowercase colon form, "" when s is none.
func normalMAC(s string) string {
	hw, err := net.ParseMAC(strings.TrimSpace(s))
	if err != nil || len(hw) != 6 {
		return ""
	}
	return hw.String()
}

// apply updates the machine of rec. f.mu is held.
func (f *Fleet) apply(rec record) *Machine {
	e := rec.Event
	m := f.machines[e.MAC]
	if m == nil {
		m = &Machine{MAC: e.MAC, Failures: map[string]int{}, counted: map[string]bool{}}
		f.machines[e.MAC] = m
	}
	if e.BootID != m.BootID && e.Type != report.Healthy {
		f.newBoot(m, e.BootID)
	}
	m.events = append(m.events, rec)
	if len(m.events) > maxMachineEvents {
		m.events = append(m.events[:0:0], m.events[len(m.events)-maxMachineEvents:]...)
	}
	setIf(&m.IP, e.IP)
	setIf(&m.Hostname, e.Hostname)
	setIf(&m.Serial, e.Serial)
	setIf(&m.UUID, e.UUID)
	setIf(&m.Entry, e.Entry)
	if e.Dropped > m.Dropped {
		m.Dropped = e.Dropped
	}
	m.Updated = rec.Received
	prevState := m.State
	switch e.Type {
	case report.FetchStart:
		m.URL, m.Bytes, m.Total, m.Rate = e.URL, 0, 0, 0
	case report.FetchProgress, report.FetchDone:
		m.URL, m.Bytes, m.Total, m.Rate = e.URL, e.Bytes, e.Total, e.Rate
		if e.Type == report.FetchProgress && e.Error != "" {
			m.LastError = e.Error
		}
	case report.Failure:
		m.LastError = fmt.Sprintf("%s: %s (attempt %d)", e.Step, e.Error, e.Attempt)
	case report.Healthy:
		if e.BootID == m.BootID {
			m.healthy = true
			m.HealthyEntry = m.Entry
			if m.Entry != "" {
				delete(m.Failures, m.Entry)
			}
		}
	}
	if e.Type != report.FetchProgress || m.Stage == "" {
		if e.Type != m.Stage {
			m.StageSince = rec.Received
		}
		m.Stage = e.Type
	}
	m.State = stateOf(m.Stage)
	if m.State != prevState {
		m.StageSince = rec.Received
	}
	f.timeline(m, e)
	return m
}

func setIf(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

// newBoot starts a new boot of m; the one before, unless it reached healthy, counts as a
// failure of its entry. f.mu is held.
func (f *Fleet) newBoot(m *Machine, bootID string) {
	f.supersede(m, bootID)
	m.BootID, m.Boots = bootID, m.Boots+1
	m.Entry, m.URL, m.Bytes, m.Total, m.Rate, m.LastError, m.Dropped = "", "", 0, 0, 0, "", 0
	m.Timeline, m.healthy = nil, false
}

// supersede counts m's current boot as failed when a boot other than bootID follows it
// without having reached healthy: an image that never confirms its health is as bad as one
// that failed in /init. Each boot counts once. f.mu is held.
func (f *Fleet) supersede(m *Machine, bootID string) {
	if m.BootID == "" || m.BootID == bootID || m.healthy || m.Entry == "" || m.counted[m.BootID] {
		return
	}
	m.counted[m.BootID] = true
	m.Failures[m.Entry]++
}

// stateOf summarises a stage.
func stateOf(stage string) string {
	switch stage {
	case report.FetchStart, report.FetchProgress, report.FetchDone:
		return StateDownloading
	case report.SwitchRoot, report.Kexec:
		return StateBooted
	case report.Healthy:
		return StateHealthy
	case report.Failure:
		return StateFailed
	}
	return StateBooting
}

// timeline adds e to m's current boot's bars: a new bar at each stage change (the fetch
// events are one "fetch" bar). f.mu is held.
func (f *Fleet) timeline(m *Machine, e report.Event) {
	stage := e.Type
	switch stage {
	case report.FetchStart, report.FetchProgress, report.FetchDone:
		stage = "fetch"
	}
	t := e.Time
	if n := len(m.Timeline); n > 0 {
		last := &m.Timeline[n-1]
		if last.Stage == stage {
			return
		}
		if t.Before(last.Start) {
			t = last.Start // the healthy POST has the server's clock
		}
		last.End = t
	}
	m.Timeline = append(m.Timeline, Span{Stage: stage, Start: t})
}

// Machines returns every machine, by MAC.
func (f *Fleet) Machines() []Machine {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Machine, 0, len(f.machines))
	for _, m := range f.machines {
		out = append(out, m.snapshot())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MAC < out[j].MAC })
	return out
}

// Events returns the events kept of mac (false when unknown), oldest first, each with the
// time the server received it.
func (f *Fleet) Events(mac string) ([]record, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.machines[normalMAC(mac)]
	if !ok {
		return nil, false
	}
	return append([]record(nil), m.events...), true
}

// snapshot copies m for readers outside the lock.
func (m *Machine) snapshot() Machine {
	c := *m
	c.Timeline = append([]Span(nil), m.Timeline...)
	c.Failures = make(map[string]int, len(m.Failures))
	for k, v := range m.Failures {
		c.Failures[k] = v
	}
	if m.Rollback != nil {
		r := *m.Rollback
		c.Rollback = &r
	}
	c.events, c.counted = nil, nil
	return c
}

// subscribe returns a channel of JSON-encoded machines as they change, and its cancel.
func (f *Fleet) subscribe() (chan []byte, func()) {
	c := make(chan []byte, 256)
	f.mu.Lock()
	if f.closed {
		close(c)
	} else {
		f.subs[c] = struct{}{}
	}
	f.mu.Unlock()
	return c, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.subs[c]; ok {
			delete(f.subs, c)
			close(c)
		}
	}
}

// publish sends m to every live stream; a stream too slow to keep up misses updates (the
// next one of the machine carries its whole state). f.mu is held.
func (f *Fleet) publish(m *Machine) {
	if len(f.subs) == 0 {
		return // nobody watches: no copy, no JSON
	}
	b, err := json.Marshal(m.snapshot())
	if err != nil {
		return
	}
	for c := range f.subs {
		select {
		case c <- b:
		default:
		}
	}
}
