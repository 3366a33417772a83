package loader

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a Fetcher's clock that sleeps in no time: a budget of minutes is spent in
// microseconds, and the test reads back every delay.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.sleeps = append(c.sleeps, d)
	c.mu.Unlock()
	return ctx.Err()
}

func (c *fakeClock) slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// TestBackoffJitter: the delay before a retry is drawn uniformly between zero and a ceiling
// that doubles up to MaxBackoff, so that clients cut at the same moment spread out (they all
// came back within the same millisecond with fixed delays).
func TestBackoffJitter(t *testing.T) {
	f := &Fetcher{}
	wantCaps := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 16 * time.Second}
	for i, want := range wantCaps {
		if got := f.backoffCap(i + 1); got != want {
			t.Errorf("ceiling before retry %d: got %v, want %v", i+1, got, want)
		}
	}
	const draws = 2000
	for n := 1; n <= 6; n++ {
		ceiling := f.backoffCap(n)
		seen := map[time.Duration]bool{}
		var sum time.Duration
		lo, hi := ceiling, time.Duration(0)
		for range draws {
			d := f.backoff(n)
			if d < 0 || d > ceiling {
				t.Fatalf("retry %d: delay %v outside [0, %v]", n, d, ceiling)
			}
			seen[d] = true
			sum += d
			lo, hi = min(lo, d), max(hi, d)
		}
		mean := float64(sum) / draws / float64(ceiling)
		// Uniform: the mean is within a few standard errors (0.29/sqrt(2000) = 0.0065) of
		// 0.5, and the draws reach both ends of the range.
		if mean < 0.45 || mean > 0.55 || lo > ceiling/20 || hi < ceiling*19/20 || len(seen) < draws*99/100 {
			t.Errorf("retry %d: %d draws in [0, %v]: mean %.3f of the ceiling, min %v, max %v, %d distinct; want uniform",
				n, draws, ceiling, mean, lo, hi, len(seen))
		}
		// 50 clients cut together: how many retry within the same 100 ms?
		if n == 1 {
			buckets := map[time.Duration]int{}
			worst := 0
			for range 50 {
				b := f.backoff(n) / (100 * time.Millisecond)
				buckets[b]++
				worst = max(worst, buckets[b])
			}
			if worst > 20 {
				t.Errorf("50 clients: %d retry within the same 100 ms", worst)
			}
		}
	}
	g := &Fetcher{Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
	if got := g.backoffCap(10); got != 5*time.Millisecond {
		t.Errorf("ceiling with MaxBackoff 5ms: %v", got)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tt := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true},
		{"5", 5 * time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"121", MaxRetryAfter, true},
		{"86400", MaxRetryAfter, true},
		{"99999999999999999999999", MaxRetryAfter, true},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second, true},
		{now.Add(time.Hour).Format(http.TimeFormat), MaxRetryAfter, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"Wednesday, 02-Jan-30 03:04:15 GMT", 10 * time.Second, true}, // RFC 850
		{"Wed Jan  2 03:04:25 2030", 20 * time.Second, true},          // asctime
		{"", 0, false},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"5s", 0, false},
		{"soon", 0, false},
	} {
		got, ok := parseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "120", "Wed, 02 Jan 2030 03:04:35 GMT", "-1", "99999999999999999999"} {
		f.Add(s)
	}
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseRetryAfter(s, now)
		if d < 0 || d > MaxRetryAfter || (!ok && d != 0) {
			t.Fatalf("parseRetryAfter(%q) = %v, %v", s, d, ok)
		}
	})
}

// outageServer cuts the first response at cut, then answers 503 (with Retry-After when set)
// until the fake clock passes the end of the outage, then serves the object.
type outageServer struct {
	*faultServer
	clock      *fakeClock
	until      time.Time
	retryAfter string
}

func (s *outageServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	first := s.requests == 0
	s.mu.Unlock()
	if !first && s.clock.Now().Before(s.until) {
		s.mu.Lock()
		s.requests++
		s.ranges = append(s.ranges, r.Header.Get("Range"))
		s.mu.Unlock()
		if s.retryAfter != "" {
			w.Header().Set("Retry-After", s.retryAfter)
		}
		http.Error(w, "restarting", http.StatusServiceUnavailable)
		return
	}
	s.faultServer.ServeHTTP(w, r)
}

// TestOutageAfterCut: a connection cut, then a server outage. The retries span the default
// budget (5 minutes without progress), not 3.5 seconds, and resume where the cut left off.
// The clock is fake: the defaults are tested, in no time.
func TestOutageAfterCut(t *testing.T) {
	es := randomTree(30, 1<<20)
	img := zstdOf(t, tarOf(t, es))
	cut := int64(len(img) / 3)
	for _, tt := range []struct {
		name       string
		outage     time.Duration
		retryAfter string
		fails      bool
	}{
		{name: "5s", outage: 5 * time.Second},
		{name: "1m", outage: time.Minute},
		{name: "4m", outage: 4 * time.Minute},
		{name: "30s with Retry-After", outage: 30 * time.Second, retryAfter: "10"},
		{name: "10m", outage: 10 * time.Minute, fails: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			srv := &outageServer{faultServer: &faultServer{content: img, cuts: []int64{cut}}, clock: clock,
				until: clock.Now().Add(tt.outage), retryAfter: tt.retryAfter}
			hs := serve(t, map[string]http.Handler{"/img": srv})
			var log strings.Builder
			f := &Fetcher{IdleTimeout: 10 * time.Second, clock: clock, Logf: func(format string, a ...any) {
				log.WriteString(strings.TrimSpace(strings.ReplaceAll(format, "%", "")) + "\n")
			}}
			dir := t.TempDir()
			_, err := Load(context.Background(), dir, []string{hs.URL + "/img"}, Options{Fetcher: f, NoSidecar: true})
			sleeps := clock.slept()
			var total time.Duration
			for _, d := range sleeps {
				total += d
			}
			t.Logf("%d retries, %v of (fake) waiting", len(sleeps), total)
			if tt.fails {
				if !errors.Is(err, ErrRetriesExhausted) || !strings.Contains(err.Error(), "503") {
					t.Fatalf("error %v, want ErrRetriesExhausted after 503s", err)
				}
				var he *HTTPError
				if !errors.As(err, &he) || he.Code != 503 {
					t.Errorf("error %v does not wrap the last HTTPError", err)
				}
				// Each delay is at most 16s: giving up after 5 minutes takes 18 retries at least.
				if total > DefaultRetryFor || len(sleeps) < 18 {
					t.Errorf("gave up after %d retries and %v, want about %v", len(sleeps), total, DefaultRetryFor)
				}
				assertEmpty(t, dir)
				return
			}
			if err != nil {
				t.Fatalf("%v (after %d retries, %v)", err, len(sleeps), total)
			}
			checkTree(t, dir, es)
			srv.mu.Lock()
			last := srv.ranges[len(srv.ranges)-1]
			srv.mu.Unlock()
			if want := "bytes=" + strconv.FormatInt(cut, 10) + "-"; last != want {
				t.Errorf("the request after the outage asked for %q, want %q (a resume)", last, want)
			}
			if tt.retryAfter != "" {
				for _, d := range sleeps[1:] {
					if d < 10*time.Second || d > 10*time.Second+f.baseBackoff() {
						t.Errorf("waited %v after Retry-After: 10, want 10s plus up to %v", d, f.baseBackoff())
					}
				}
			}
		})
	}
}

// TestRetryBudget: without progress a stream gives up after RetryFor, however many attempts
// that is; with a negative RetryFor after one round of Attempts per URL; and mirrors are tried
// round and round while the budget lasts.
func TestRetryBudget(t *testing.T) {
	img := zstdOf(t, tarOf(t, randomTree(31, 256<<10)))
	t.Run("budget in time", func(t *testing.T) {
		clock := newFakeClock()
		down := &faultServer{fail: 1 << 30}
		hs := serve(t, map[string]http.Handler{"/img": down})
		f := &Fetcher{RetryFor: time.Hour, MaxBackoff: 30 * time.Second, clock: clock}
		_, err := Load(context.Background(), t.TempDir(), []string{hs.URL + "/img"}, Options{Fetcher: f, NoSidecar: true})
		if !errors.Is(err, ErrRetriesExhausted) || !strings.Contains(err.Error(), "gave up retrying after ") {
			t.Fatalf("error %v, want ErrRetriesExhausted", err)
		}
		var total time.Duration
		for _, d := range clock.slept() {
			total += d
		}
		// At most 30s per delay: an hour is at least 120 attempts.
		if total > time.Hour || down.requests < 120 {
			t.Errorf("%d requests over %v, want an hour's worth", down.requests, total)
		}
	})
	t.Run("no budget", func(t *testing.T) {
		down := &faultServer{fail: 1 << 30}
		hs := serve(t, map[string]http.Handler{"/img": down})
		f := &Fetcher{RetryFor: -1, Attempts: 3, clock: newFakeClock()}
		_, err := Load(context.Background(), t.TempDir(), []string{hs.URL + "/img"}, Options{Fetcher: f, NoSidecar: true})
		if !errors.Is(err, ErrRetriesExhausted) || down.requests != 3 {
			t.Fatalf("error %v after %d requests, want ErrRetriesExhausted after 3", err, down.requests)
		}
	})
	t.Run("mirrors round and round", func(t *testing.T) {
		clock := newFakeClock()
		// The mirror recovers after 7 requests: the first URL is refused throughout.
		mirror := &faultServer{content: img, fail: 7}
		hs := serve(t, map[string]http.Handler{"/img": mirror})
		f := &Fetcher{Attempts: 2, clock: clock}
		dir := t.TempDir()
		res, err := Load(context.Background(), dir, []string{"http://127.0.0.1:1/img", hs.URL + "/img"}, Options{Fetcher: f, NoSidecar: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.URL != hs.URL+"/img" || mirror.requests != 8 {
			t.Errorf("served by %s after %d requests to the mirror, want 8", res.URL, mirror.requests)
		}
	})
	t.Run("permanent errors are not retried", func(t *testing.T) {
		clock := newFakeClock()
		gone := &faultServer{}
		hs := serve(t, map[string]http.Handler{"/other": gone})
		f := &Fetcher{clock: clock}
		_, err := Load(context.Background(), t.TempDir(), []string{hs.URL + "/img", hs.URL + "/img2"}, Options{Fetcher: f, NoSidecar: true})
		var he *HTTPError
		if !errors.As(err, &he) || he.Code != 404 || errors.Is(err, ErrRetriesExhausted) || len(clock.slept()) != 0 {
			t.Fatalf("error %v after %d delays, want a 404 at once", err, len(clock.slept()))
		}
		if !strings.Contains(err.Error(), "all 2 URLs failed, last "+hs.URL+"/img2: HTTP 404 Not Found (before: "+hs.URL+"/img: HTTP 404") {
			t.Errorf("error %q does not name both URLs", err)
		}
	})
}
