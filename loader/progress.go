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
}

// ETA estimates the time left from the rate, or -1.
func (p Progress) ETA() time.Duration {
	if p.Total < 0 || p.Rate <= 0 || p.Read > p.Total {
		return -1
	}
	return time.Duration(float64(p.Total-p.Read) / p.Rate * float64(time.Second))
}

// meter turns byte counts from two goroutines into throttled Progress callbacks.
type meter struct {
	fn        func(Progress)
	start     time.Time
	read, ext atomic.Int64
	total     atomic.Int64
	mu        sync.Mutex
	url       string
	stage     Stage
	last      time.Time
	lastRead  int64
	rate      float64
}

const progressEvery = 100 * time.Millisecond

func newMeter(fn func(Progress)) *meter {
	m := &meter{fn: fn, start: time.Now()}
	m.total.Store(-1)
	return m
}

// tick reports progress if enough time has passed since the last report (or force is set).
func (m *meter) tick(force bool) {
	if m.fn == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
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
	m.fn(Progress{
		Stage: m.stage, URL: m.url, Read: read, Total: m.total.Load(),
		Extracted: m.ext.Load(), Rate: m.rate, Elapsed: now.Sub(m.start),
	})
}

func (m *meter) setStage(s Stage, url string) {
	m.mu.Lock()
	m.stage, m.url = s, url
	m.mu.Unlock()
	m.tick(true)
}
