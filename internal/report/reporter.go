package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ramboot/ramboot/internal/atomicfile"
	"github.com/ramboot/ramboot/internal/cmdline"
)

// Defaults of Options.
const (
	DefaultQueue   = 64              // events waiting to be sent at most
	DefaultTimeout = 3 * time.Second // one POST at most
	MaxKept        = 500             // progress events stop being kept for boot.json beyond this
	maxBatch       = 32              // events in one POST at most
)

// Identity is what names the machine in every event. Empty fields are unknown.
type Identity struct {
	MAC, IP, Hostname, Serial, UUID string
}

// Options tune a Reporter.
type Options struct {
	// Client does the POSTs (Timeout bounds each through its context). Nil: a plain client.
	// /init passes one that trusts the initramfs's CA bundle.
	Client *http.Client
	// Timeout bounds each POST (default DefaultTimeout).
	Timeout time.Duration
	// Queue is how many events may wait to be sent (default DefaultQueue).
	Queue int
	// File is where Final writes the whole report ("" for nowhere): /run/ramboot/boot.json in
	// /init, whose /run switch_root moves into the new root.
	File string
	// Logf receives the reporter's own troubles (the first failed POST, a URL refused). Nil
	// discards.
	Logf func(format string, args ...any)
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Reporter records a boot's events and, once started with a URL, POSTs them. All its methods
// are safe for concurrent use and none blocks but Flush and Final, whose wait is bounded; the
// methods of a nil *Reporter do nothing.
type Reporter struct {
	opts   Options
	bootID string
	q      chan Event

	mu      sync.Mutex
	id      Identity
	url     string // "" until Start
	seq     int
	kept    []Event // for boot.json
	omitted int     // events not kept (beyond MaxKept)
	pending int     // queued or being sent
	dropped int     // lost: queue full or POST failed
	stage   string  // the last stage reached, for a failure's step
	failed  bool    // a POST failure was logged already
}

// New returns a Reporter that records events; it sends nothing until Start.
func New(opts Options) *Reporter {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Queue <= 0 {
		opts.Queue = DefaultQueue
	}
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	return &Reporter{opts: opts, bootID: NewBootID(), q: make(chan Event, opts.Queue)}
}

// NewBootID returns 16 random hex digits. They come from the Go runtime's generator, seeded
// from the kernel's AT_RANDOM at exec, which never blocks: getrandom(2) would wait for the
// kernel's random pool, minutes early in boot on machines without RDRAND or an RNG device
// (issue 8), and a boot id only has to differ from other boots', not be secret.
func NewBootID() string {
	return fmt.Sprintf("%016x", rand.Uint64())
}

// BootID is this boot's id.
func (r *Reporter) BootID() string {
	if r == nil {
		return ""
	}
	return r.bootID
}

// Identify merges the non-empty fields of id into the machine's identity, which events sent
// from now on carry (those recorded before Start get it when they are sent).
func (r *Reporter) Identify(id Identity) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	merge(&r.id.MAC, id.MAC)
	merge(&r.id.IP, id.IP)
	merge(&r.id.Hostname, id.Hostname)
	merge(&r.id.Serial, id.Serial)
	merge(&r.id.UUID, id.UUID)
}

// Identity returns the machine's identity as known now.
func (r *Reporter) Identity() Identity {
	if r == nil {
		return Identity{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.id
}

// merge sets *dst to v unless v is empty; fill sets an empty *dst to v.
func merge(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

func fill(dst *string, v string) {
	if *dst == "" {
		*dst = v
	}
}

// CheckURL accepts the http and https URLs a report may go to.
func CheckURL(s string) error {
	if !cmdline.IsHTTPURL(s) {
		return fmt.Errorf("%q: want an http:// or https:// URL", s)
	}
	return nil
}

// Start begins sending to url: first the events recorded so far (as many as the queue holds;
// the rest count as dropped), then each one as it comes. The first URL stays: a later Start
// (a menu's report: after ramboot.report=) does nothing. A bad URL is refused.
func (r *Reporter) Start(u string) error {
	if r == nil {
		return nil
	}
	if err := CheckURL(u); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.url != "" {
		return nil
	}
	r.url = u
	for _, e := range r.kept {
		r.enqueue(e)
	}
	go r.run()
	return nil
}

// URL is where events go, "" before Start.
func (r *Reporter) URL() string {
	if r == nil {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.url
}

// Send records e, stamped with the schema, time, boot id, sequence number and identity, and
// queues it when started. It never blocks: when the queue is full e is dropped and counted.
func (r *Reporter) Send(e Event) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	e.Schema, e.BootID, e.Seq = Schema, r.bootID, r.seq
	if e.Time.IsZero() {
		e.Time = r.opts.Now().UTC()
	}
	r.stamp(&e)
	if e.Type != Failure && e.Type != FetchProgress {
		r.stage = e.Type
	}
	// Progress fills the report up to MaxKept; stage events always have room (up to twice
	// that, for a machine that retries without end).
	if len(r.kept) < MaxKept || (e.Type != FetchProgress && len(r.kept) < 2*MaxKept) {
		r.kept = append(r.kept, e)
	} else {
		r.omitted++
	}
	if r.url != "" {
		r.enqueue(e)
	}
}

// stamp fills e's empty identity fields. r.mu is held.
func (r *Reporter) stamp(e *Event) {
	fill(&e.MAC, r.id.MAC)
	fill(&e.IP, r.id.IP)
	fill(&e.Hostname, r.id.Hostname)
	fill(&e.Serial, r.id.Serial)
	fill(&e.UUID, r.id.UUID)
}

// enqueue queues e without blocking, or counts it dropped. r.mu is held.
func (r *Reporter) enqueue(e Event) {
	select {
	case r.q <- e:
		r.pending++
	default:
		r.dropped++
	}
}

// Stage is the type of the last stage event (not progress, not failure), "" before any: the
// step a failure happened in.
func (r *Reporter) Stage() string {
	if r == nil {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stage
}

// Dropped is how many events were lost so far.
func (r *Reporter) Dropped() int {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}

// run sends the queue's events, in batches of what is waiting, until the process ends (/init
// never ends; it execs or reboots).
func (r *Reporter) run() {
	for e := range r.q {
		batch := []Event{e}
	more:
		for len(batch) < maxBatch {
			select {
			case e := <-r.q:
				batch = append(batch, e)
			default:
				break more
			}
		}
		r.mu.Lock()
		for i := range batch {
			r.stamp(&batch[i]) // events recorded before the MAC was known
			batch[i].Dropped = r.dropped
		}
		u := r.url
		r.mu.Unlock()
		err := r.safePost(u, batch)
		r.mu.Lock()
		r.pending -= len(batch)
		if err != nil {
			r.dropped += len(batch)
			if !r.failed {
				r.failed = true
				r.opts.Logf("report: %v (events are dropped and counted while this lasts)", err)
			}
		}
		r.mu.Unlock()
	}
}

// safePost is post with a panic made its error: this goroutine runs in PID 1, where a panic
// is a kernel panic.
func (r *Reporter) safePost(u string, batch []Event) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("internal error: %v", v)
		}
	}()
	return r.post(u, batch)
}

// post sends a batch as a JSON array; any answer but 2xx is a failure.
func (r *Reporter) post(u string, batch []Event) error {
	body, err := json.Marshal(batch)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ramboot")
	resp, err := r.opts.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s", u, resp.Status)
	}
	return nil
}

// Flush waits until every queued event was sent (or dropped), at most d; false when time ran
// out first.
func (r *Reporter) Flush(d time.Duration) bool {
	if r == nil {
		return true
	}
	deadline := time.Now().Add(d)
	for {
		r.mu.Lock()
		n := r.pending
		r.mu.Unlock()
		if n == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Document is the whole report, as written to boot.json.
type Document struct {
	Schema   int    `json:"schema"`
	BootID   string `json:"boot_id"`
	MAC      string `json:"mac,omitempty"`
	IP       string `json:"ip,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	Serial   string `json:"serial,omitempty"`
	UUID     string `json:"uuid,omitempty"`
	// ReportURL is where the events were sent, "" when nowhere.
	ReportURL string `json:"report_url,omitempty"`
	// Dropped counts events not delivered to ReportURL; Omitted events left out of Events.
	Dropped int     `json:"dropped"`
	Omitted int     `json:"omitted"`
	Events  []Event `json:"events"`
}

// Document returns the report so far.
func (r *Reporter) Document() Document {
	if r == nil {
		return Document{Schema: Schema}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	d := Document{Schema: Schema, BootID: r.bootID, MAC: r.id.MAC, IP: r.id.IP, Hostname: r.id.Hostname,
		Serial: r.id.Serial, UUID: r.id.UUID, ReportURL: r.url, Dropped: r.dropped, Omitted: r.omitted,
		Events: append([]Event(nil), r.kept...)}
	for i := range d.Events {
		r.stamp(&d.Events[i])
	}
	return d
}

// Final records the last event before the irreversible step (switch_root, kexec), waits at
// most wait for the queue to drain, and writes the whole report to Options.File. Its error is
// the file's; the boot goes on regardless.
func (r *Reporter) Final(e Event, wait time.Duration) error {
	if r == nil {
		return nil
	}
	r.Send(e)
	if !r.Flush(wait) {
		r.opts.Logf("report: %d events still unsent after %v; booting on", r.pendingNow(), wait)
	}
	if r.opts.File == "" {
		return nil
	}
	return r.WriteFile(r.opts.File)
}

func (r *Reporter) pendingNow() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pending
}

// WriteFile writes the report as indented JSON to file (its directory created), atomically.
func (r *Reporter) WriteFile(file string) error {
	b, err := json.MarshalIndent(r.Document(), "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(file, append(b, '\n'), 0o644)
}

// ReadDMI reads the machine's serial number and UUID from sysfs's DMI directory
// (/sys/class/dmi/id); placeholders firmware writes for "none" read as "".
func ReadDMI(dir string) (serial, uuid string) {
	return dmi(filepath.Join(dir, "product_serial")), dmi(filepath.Join(dir, "product_uuid"))
}

func dmi(file string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	v := strings.TrimSpace(string(b))
	switch strings.ToLower(v) {
	case "", "not specified", "to be filled by o.e.m.", "default string", "none", "0", "system serial number":
		return ""
	}
	return v
}
