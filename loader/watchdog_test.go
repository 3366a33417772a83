package loader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// trickleServer serves content chunk bytes at a time, one chunk every interval, honouring
// Range: a server (or a link) too slow to boot from, but never silent for long.
type trickleServer struct {
	content  []byte
	chunk    int
	every    time.Duration
	mu       sync.Mutex
	requests int
	ranges   []string
}

func (s *trickleServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	s.mu.Unlock()
	start := rangeStart(r.Header.Get("Range"))
	total := int64(len(s.content))
	w.Header().Set("Content-Length", strconv.FormatInt(total-start, 10))
	if start > 0 {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, total-1, total))
		w.WriteHeader(http.StatusPartialContent)
	}
	for off := start; off < total; off += int64(s.chunk) {
		w.Write(s.content[off:min(total, off+int64(s.chunk))])
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			return
		case <-time.After(s.every):
		}
	}
}

func (s *trickleServer) counts() (int, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, append([]string(nil), s.ranges...)
}

// slowFetcher checks for 100 KiB/s over 200 ms: a trickle of 10 bytes every 20 ms (500 B/s) is
// far below it, a local transfer far above it, whatever the load of the machine.
func slowFetcher() *Fetcher {
	return &Fetcher{Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, IdleTimeout: 10 * time.Second, RetryFor: 50 * time.Millisecond,
		Attempts: 2, MinRate: 100 << 10, MinRateWindow: 200 * time.Millisecond}
}

func TestMinRate(t *testing.T) {
	es := randomTree(20, 256<<10)
	img := zstdOf(t, tarOf(t, es))

	t.Run("trickle fails", func(t *testing.T) {
		slow := &trickleServer{content: img, chunk: 10, every: 20 * time.Millisecond}
		srv := serve(t, map[string]http.Handler{"/img.tar.zst": slow})
		u := srv.URL + "/img.tar.zst"
		dir := t.TempDir()
		_, err := Load(context.Background(), dir, []string{u}, Options{Fetcher: slowFetcher(), NoSidecar: true})
		t.Logf("error: %v", err)
		if !errors.Is(err, ErrStalled) {
			t.Fatalf("error %v, want ErrStalled", err)
		}
		want := u + ": transfer stalled: "
		if msg := err.Error(); !strings.HasPrefix(msg, want) || !strings.Contains(msg, " B/s over the last 200ms (minimum 100.0 KiB/s)") {
			t.Errorf("error %q, want %q... B/s over the last 200ms (minimum 100.0 KiB/s)", msg, want)
		}
		// A slow attempt is no progress: after Attempts of them the URL has failed, and the
		// second one resumed where the first stopped.
		n, ranges := slow.counts()
		if n != 2 || ranges[1] == "" {
			t.Errorf("%d requests %q, want 2, the second resuming", n, ranges)
		}
		assertEmpty(t, dir)
	})

	t.Run("next mirror", func(t *testing.T) {
		slow := &trickleServer{content: img, chunk: 10, every: 20 * time.Millisecond}
		good := &faultServer{content: img}
		srv := serve(t, map[string]http.Handler{"/slow": slow, "/good": good})
		dir := t.TempDir()
		res, err := Load(context.Background(), dir, []string{srv.URL + "/slow", srv.URL + "/good"}, Options{Fetcher: slowFetcher(), NoSidecar: true})
		if err != nil {
			t.Fatal(err)
		}
		checkTree(t, dir, es)
		if res.URL != srv.URL+"/good" {
			t.Errorf("finished on %s, want the mirror", res.URL)
		}
		if good.ranges[0] == "" {
			t.Errorf("mirror asked for %q, want a resume", good.ranges[0])
		}
	})

	t.Run("fast enough", func(t *testing.T) {
		// About 4 MiB/s: 40 KiB every 10 ms, for more than a window.
		es := randomTree(25, 2<<20)
		img := zstdOf(t, tarOf(t, es))
		fast := &trickleServer{content: img, chunk: 40 << 10, every: 10 * time.Millisecond}
		srv := serve(t, map[string]http.Handler{"/img": fast})
		dir := t.TempDir()
		f := slowFetcher()
		f.MinRate, f.Attempts = 1<<10, 4 // a stall on a loaded machine is resumed, not fatal
		if _, err := Load(context.Background(), dir, []string{srv.URL + "/img"}, Options{Fetcher: f, NoSidecar: true}); err != nil {
			t.Fatal(err)
		}
		checkTree(t, dir, es)
	})
}

func TestMinRateDefaults(t *testing.T) {
	for _, tt := range []struct {
		f      Fetcher
		rate   float64
		window time.Duration
		ok     bool
	}{
		{Fetcher{}, DefaultMinRate, DefaultMinRateWindow, true},
		{Fetcher{MinRate: 10}, 10, DefaultMinRateWindow, true},
		{Fetcher{MinRateWindow: time.Second}, DefaultMinRate, time.Second, true},
		{Fetcher{MinRate: -1}, 0, 0, false},
		{Fetcher{MinRateWindow: -1}, 0, 0, false},
	} {
		rate, window, ok := tt.f.minRate()
		if rate != tt.rate || window != tt.window || ok != tt.ok {
			t.Errorf("%+v: got %v %v %v, want %v %v %v", tt.f, rate, window, ok, tt.rate, tt.window, tt.ok)
		}
	}
}

// TestContextEnds: the caller's deadline or cancellation ends a download; the error wraps the
// context's error and says how much had arrived, from where.
func TestContextEnds(t *testing.T) {
	img := zstdOf(t, tarOf(t, randomTree(21, 256<<10)))
	slow := &trickleServer{content: img, chunk: 100, every: 10 * time.Millisecond}
	srv := serve(t, map[string]http.Handler{"/img.tar.zst": slow})
	u := srv.URL + "/img.tar.zst"
	// The rate check is off: the context, not the watchdog, ends these downloads.
	f := &Fetcher{MinRate: -1, Attempts: 2}
	cause := errors.New("ramboot.deadline=300ms passed")
	for _, tt := range []struct {
		name string
		want error
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"deadline", context.DeadlineExceeded, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 300*time.Millisecond)
		}},
		{"deadline with cause", cause, func() (context.Context, context.CancelFunc) {
			return context.WithTimeoutCause(context.Background(), 300*time.Millisecond, cause)
		}},
		{"cancelled", context.Canceled, func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(300*time.Millisecond, cancel)
			return ctx, cancel
		}},
	} {
		check := func(t *testing.T, err error) {
			t.Helper()
			t.Logf("error: %v", err)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if tt.want == cause && (!errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), cause.Error())) {
				t.Errorf("error %v, want a deadline naming its cause", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, u+": ") || !strings.Contains(msg, " of "+HumanBytes(int64(len(img)))) || !strings.Contains(msg, "/s on average") {
				t.Errorf("error %q does not name the URL, the bytes and the rate", msg)
			}
		}
		t.Run("load "+tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			dir := t.TempDir()
			_, err := Load(ctx, dir, []string{u}, Options{Fetcher: f, NoSidecar: true})
			check(t, err)
			assertEmpty(t, dir)
		})
		t.Run("download "+tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			dst := filepath.Join(t.TempDir(), "kernel")
			_, err := Download(ctx, dst, []string{u}, Options{Fetcher: f, NoSidecar: true})
			check(t, err)
			if _, err := os.Stat(dst); !os.IsNotExist(err) {
				t.Errorf("%s left behind: %v", dst, err)
			}
		})
	}
}

// attemptLog records which server each request went to, in order.
type attemptLog struct {
	mu  sync.Mutex
	got []string
}

func (l *attemptLog) wrap(name string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.got = append(l.got, name)
		l.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (l *attemptLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.got, " ")
}

// TestMirrorHandover: with mirrors, a stall or a server error hands over to the next mirror at
// once, round and round (a server trickling a byte now and then, Range ignored, was given
// Attempts full stall periods before its mirror was asked); without mirrors a URL keeps its
// Attempts. The order of the requests is the proof, not the time taken.
func TestMirrorHandover(t *testing.T) {
	img := zstdOf(t, tarOf(t, randomTree(22, 64<<10)))
	// A trickle that ignores Range: one byte every 20 ms from the first, whatever is asked.
	trickle := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(img)))
		for _, b := range img {
			w.Write([]byte{b})
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	for _, tt := range []struct {
		name    string
		servers func(l *attemptLog) map[string]http.Handler
		urls    []string
		want    string // the servers asked, in order
	}{
		{"trickling primary", func(l *attemptLog) map[string]http.Handler {
			return map[string]http.Handler{"/p": l.wrap("p", trickle), "/m": l.wrap("m", &faultServer{content: img})}
		}, []string{"/p", "/m"}, "p m"},
		// The mirror is cut at byte 1000 (retried: that is no stall), then fails (503): back on
		// the trickle, which sends the first 1000 bytes again (Range ignored), stalling while
		// they are skipped, and that hands over too.
		{"back on the trickle", func(l *attemptLog) map[string]http.Handler {
			var n atomic.Int32
			cut := &faultServer{content: img, cuts: []int64{1000}}
			m := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1) == 2 {
					http.Error(w, "try later", http.StatusServiceUnavailable)
					return
				}
				cut.ServeHTTP(w, r)
			})
			return map[string]http.Handler{"/p": l.wrap("p", trickle), "/m": l.wrap("m", m)}
		}, []string{"/p", "/m"}, "p m m p m"},
		{"failing primary", func(l *attemptLog) map[string]http.Handler {
			return map[string]http.Handler{"/p": l.wrap("p", &faultServer{fail: 100}), "/m": l.wrap("m", &faultServer{content: img})}
		}, []string{"/p", "/m"}, "p m"},
		{"round and round", func(l *attemptLog) map[string]http.Handler {
			return map[string]http.Handler{"/p": l.wrap("p", &faultServer{content: img, fail: 2}),
				"/m1": l.wrap("m1", &faultServer{fail: 100}), "/m2": l.wrap("m2", &faultServer{fail: 100})}
		}, []string{"/p", "/m1", "/m2"}, "p m1 m2 p m1 m2 p"},
		{"no mirror", func(l *attemptLog) map[string]http.Handler {
			return map[string]http.Handler{"/p": l.wrap("p", &faultServer{content: img, fail: 3})}
		}, []string{"/p"}, "p p p p"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var l attemptLog
			srv := serve(t, tt.servers(&l))
			var urls []string
			for _, u := range tt.urls {
				urls = append(urls, srv.URL+u)
			}
			f := &Fetcher{Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, IdleTimeout: 10 * time.Second, RetryFor: 10 * time.Second,
				Attempts: 4, MinRate: 100 << 10, MinRateWindow: 200 * time.Millisecond, Logf: t.Logf}
			s, err := f.Open(context.Background(), urls...)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			got, err := io.ReadAll(s)
			if err != nil || !bytes.Equal(got, img) {
				t.Fatalf("read %d of %d bytes: %v", len(got), len(img), err)
			}
			if l.String() != tt.want {
				t.Errorf("requests to %q, want %q", l.String(), tt.want)
			}
		})
	}
}
