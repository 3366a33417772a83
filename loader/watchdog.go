package loader

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// rateSamples is how many samples of the byte count a rate window holds: the rate is checked
// every window/rateSamples.
const rateSamples = 10

// watchdog ends one attempt (one HTTP request) that stalls: silent for Fetcher.IdleTimeout, or
// slower than Fetcher.MinRate over Fetcher.MinRateWindow. It runs on timers of its own; the
// reading goroutine reports the bytes it receives with got. A new attempt gets a new watchdog,
// so a timer that fires late can only cancel the attempt it was made for.
type watchdog struct {
	cancel context.CancelFunc // ends the attempt

	mu      sync.Mutex
	idle    time.Duration
	idleT   *time.Timer
	last    time.Time // when the last byte arrived (or the attempt started)
	minRate float64   // bytes per second; 0: no rate check
	window  time.Duration
	rateT   *time.Timer
	samples []rateSample // the byte count over the last window, oldest first
	n       int64        // bytes received in the attempt
	err     error        // why the watchdog ended the attempt, nil while it has not
	slow    bool         // err is for slowness, not silence
	stopped bool
}

type rateSample struct {
	t time.Time
	n int64
}

func startWatchdog(f *Fetcher, cancel context.CancelFunc) *watchdog {
	now := time.Now()
	w := &watchdog{cancel: cancel, idle: f.idle(), last: now}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.idleT = time.AfterFunc(w.idle, w.checkIdle)
	if rate, window, ok := f.minRate(); ok {
		w.minRate, w.window = rate, window
		w.samples = []rateSample{{now, 0}}
		w.rateT = time.AfterFunc(window/rateSamples, w.checkRate)
	}
	return w
}

// got records n bytes received.
func (w *watchdog) got(n int) {
	w.mu.Lock()
	w.n += int64(n)
	w.last = time.Now()
	w.mu.Unlock()
}

// checkIdle runs when the idle timeout may have passed since the last byte.
func (w *watchdog) checkIdle() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped || w.err != nil {
		return
	}
	// Bytes may have come since the timer was set: it is not reset for every read.
	if left := w.idle - time.Since(w.last); left > 0 {
		w.idleT.Reset(left)
		return
	}
	w.err = fmt.Errorf("%w: no data for %s", ErrStalled, formatDuration(w.idle))
	w.cancel()
}

// checkRate samples the byte count, and ends the attempt once a whole window has passed with
// too few bytes.
func (w *watchdog) checkRate() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped || w.err != nil {
		return
	}
	now := time.Now()
	w.samples = append(w.samples, rateSample{now, w.n})
	// Keep one sample at least a window old: the rate is measured from it.
	for len(w.samples) > 2 && now.Sub(w.samples[1].t) >= w.window {
		w.samples = w.samples[1:]
	}
	if first := w.samples[0]; now.Sub(first.t) >= w.window {
		rate := float64(w.n-first.n) / now.Sub(first.t).Seconds()
		if rate < w.minRate {
			w.err = fmt.Errorf("%w: %s over the last %s (minimum %s)", ErrStalled,
				formatRate(rate), formatDuration(w.window), formatRate(w.minRate))
			w.slow = true
			w.cancel()
			return
		}
	}
	w.rateT.Reset(w.window / rateSamples)
}

// stop ends the watchdog; it reports why it ended the attempt, if it did, and whether for
// slowness. It does not cancel the attempt.
func (w *watchdog) stop() (stall error, slow bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.idleT.Stop()
	if w.rateT != nil {
		w.rateT.Stop()
	}
	return w.err, w.slow
}

// watchedReader reports what it reads to a watchdog.
type watchedReader struct {
	r io.Reader
	w *watchdog
}

func (r *watchedReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 && r.w != nil {
		r.w.got(n)
	}
	return n, err
}

// formatRate formats bytes per second as "12 B/s" or "1.0 KiB/s".
func formatRate(r float64) string {
	return HumanBytes(int64(r)) + "/s"
}

// formatDuration formats whole seconds as "60s" rather than "1m0s", anything else as
// time.Duration does.
func formatDuration(d time.Duration) string {
	if d >= time.Second && d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}
