package loader

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stage is where a load is.
type Stage int

// The stages of a load, in order.
const (
	StageConnecting Stage = iota // before the first byte
	StageFetching                // downloading, decompressing and extracting, all at once
	StageVerifying               // draining the stream and comparing the checksum
	StageDone
)

func (s Stage) String() string {
	return [...]string{"connecting", "fetching", "verifying", "done"}[s]
}

// Progress is a snapshot handed to Options.Progress.
type Progress struct {
	Stage     Stage
	URL       string
	Read      int64   // compressed bytes received
	Total     int64   // size of the image, -1 when unknown
	Extracted int64   // uncompressed (tar) bytes extracted
	Rate      float64 // bytes per second received, smoothed
	Elapsed   time.Duration

	// Retries, while attempts fail (a refused connection, a 503, a cut or stalled one), in
	// any stage. All three are zero again once bytes arrive.
	Retry   int       // failed attempts since the download last made progress; 0: none
	LastErr string    // why the last of them failed; the failed URL leads when URL moved on to a mirror
	NextTry time.Time // when the next attempt starts; zero while one is running
}

// ETA estimates the time left from the rate, or -1.
func (p Progress) ETA() time.Duration {
	if p.Total < 0 || p.Rate <= 0 || p.Read > p.Total {
		return -1
	}
	return time.Duration(float64(p.Total-p.Read) / p.Rate * float64(time.Second))
}

// meter turns byte counts from several goroutines into throttled Progress callbacks: at most
// every progressEvery, and at least every heartbeat while the load runs, so that the rate
// shown falls during a stall, a slow link's bytes show as they arrive, and a countdown to the
// next retry moves. Besides, its stream reports every failed attempt and the start of the next
// one at once.
//
// One meter serves a whole Load or Download: the checksum file's stream, then the object's,
// and the object's again after a restart (begin), so that retries show from the first request.
type meter struct {
	fn        func(Progress)
	start     time.Time
	read, ext atomic.Int64
	total     atomic.Int64
	lastNano  atomic.Int64 // m.last as UnixNano, for tick's lock-free early return
	mu        sync.Mutex
	src       source // the stream, for its URL, size and retries; nil: url and total as set
	url       string
	stage     Stage
	last      time.Time
	lastRead  int64
	rate      float64
	beat      *time.Timer
	closed    bool
	failed    atomic.Pointer[error] // a panic of fn in the heartbeat's goroutine
}

// source is what a meter reads the URL, the size and the retries from (a *Stream).
type source interface {
	URL() string
	Size() int64
	retrying() retryStatus
}

const (
	progressEvery = 100 * time.Millisecond
	heartbeat     = time.Second
)

// newMeter returns a meter for fn (nil: none) that reports nothing until begin.
func newMeter(fn func(Progress)) *meter {
	m := &meter{fn: fn, start: time.Now()}
	m.total.Store(-1)
	return m
}

// begin points the meter at s, which has delivered nothing yet: the counts start from zero in
// the connecting stage, s reports its failed attempts as they happen, and the heartbeat runs.
// Call it before s is read, and only once the stream it follows is no longer read.
func (m *meter) begin(s *Stream) {
	if m.fn == nil {
		return
	}
	s.notify = func() { m.tick(true) }
	m.follow(s)
}

// follow points the meter at src (a stream, or a registry load's blobs), from the connecting
// stage on, and starts the heartbeat.
func (m *meter) follow(src source) {
	if m.fn == nil {
		return
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.src, m.stage = src, StageConnecting
	m.read.Store(0)
	m.ext.Store(0)
	m.last, m.lastRead, m.rate = time.Time{}, 0, 0
	m.lastNano.Store(0)
	if m.beat == nil {
		m.beat = time.AfterFunc(heartbeat, m.pulse)
	}
	m.mu.Unlock()
	m.tick(true)
}

// pulse is the heartbeat. A panic in fn here, on a goroutine of the timer's, is kept for the
// load to fail with (failure): in PID 1 it must not crash the process.
func (m *meter) pulse() {
	if err := catch(func() { m.tick(false) }); err != nil {
		m.mu.Lock()
		m.closed = true
		m.mu.Unlock()
		m.failed.Store(&err)
		return
	}
	m.mu.Lock()
	if !m.closed {
		m.beat.Reset(heartbeat)
	}
	m.mu.Unlock()
}

// close ends the callbacks: once it returns, the meter calls fn no more.
func (m *meter) close() {
	m.mu.Lock()
	m.closed = true
	if m.beat != nil {
		m.beat.Stop()
	}
	m.mu.Unlock()
}

// failure is the panic of a Progress call made by the heartbeat, if there was one.
func (m *meter) failure() error {
	if p := m.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// arrived counts n bytes received; the first ones switch the stage from connecting to
// fetching.
func (m *meter) arrived(n int) {
	m.read.Add(int64(n))
	m.fetching()
}

// fetching switches the stage from connecting to fetching, and reports it; in any other stage
// it only ticks.
func (m *meter) fetching() {
	if m.fn == nil {
		return
	}
	m.mu.Lock()
	first := m.stage == StageConnecting
	if first {
		m.stage = StageFetching
	}
	m.mu.Unlock()
	m.tick(first)
}

// extracted counts n bytes of the tar stream.
func (m *meter) extracted(n int) {
	m.ext.Add(int64(n))
	m.tick(false)
}

// tick reports progress if enough time has passed since the last report (or force is set).
func (m *meter) tick(force bool) {
	if m.fn == nil {
		return
	}
	if !force && time.Now().UnixNano()-m.lastNano.Load() < int64(progressEvery) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	now := time.Now()
	dt := now.Sub(m.last)
	if !force && dt < progressEvery {
		return
	}
	read := m.read.Load()
	if !m.last.IsZero() && dt > 0 {
		inst := float64(read-m.lastRead) / dt.Seconds()
		if m.rate == 0 {
			m.rate = inst
		} else {
			// Smooth over about a second.
			a := min(1, dt.Seconds())
			m.rate = a*inst + (1-a)*m.rate
		}
	}
	m.last, m.lastRead = now, read
	m.lastNano.Store(now.UnixNano())
	var rs retryStatus
	if m.src != nil {
		m.url = m.src.URL()
		m.total.Store(m.src.Size())
		rs = m.src.retrying()
	}
	m.fn(Progress{
		Stage: m.stage, URL: m.url, Read: read, Total: m.total.Load(),
		Extracted: m.ext.Load(), Rate: m.rate, Elapsed: now.Sub(m.start),
		Retry: rs.n, LastErr: rs.cause, NextTry: rs.next,
	})
}

func (m *meter) setStage(s Stage, url string) {
	m.mu.Lock()
	m.stage, m.url = s, url
	m.mu.Unlock()
	m.tick(true)
}
