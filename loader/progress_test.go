package loader

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// lateServer serves h on a port that refuses connections until up: a boot server that is
// still starting.
type lateServer struct {
	addr string
	h    http.Handler
	mu   sync.Mutex
	srv  *httptest.Server
}

func newLateServer(t *testing.T, h http.Handler) *lateServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &lateServer{addr: l.Addr().String(), h: h}
	l.Close()
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.srv != nil {
			s.srv.Close()
		}
	})
	return s
}

func (s *lateServer) URL() string { return "http://" + s.addr }

// up starts serving on the port, once.
func (s *lateServer) up() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return nil
	}
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("reopening %s: %w", s.addr, err)
	}
	s.srv = httptest.NewUnstartedServer(s.h)
	s.srv.Listener.Close()
	s.srv.Listener = l
	s.srv.Start()
	return nil
}

// TestProgressWhileRetrying: while the server refuses connections or answers 503, the
// snapshots (connecting, nothing read) say which attempt failed, why, and that a next one is
// planned, and then that it runs; once bytes arrive they say nothing of retries. The menu
// showed "connecting" and nothing else for minutes.
func TestProgressWhileRetrying(t *testing.T) {
	img := zstdOf(t, tarOf(t, randomTree(15, 256<<10)))
	for _, tt := range []struct {
		name     string
		download bool // Download with a checksum file, else Load without one
		fails    int  // 503s before the object is served; 0: connections refused until up
		mirror   bool // a second URL, the first refusing for good
		want     int  // the failed attempts the snapshots count up to
		wantErr  string
	}{
		{name: "refused", want: 3, wantErr: "connection refused"},
		{name: "503", fails: 3, want: 3, wantErr: "HTTP 503"},
		{name: "download refused at the checksum file", download: true, want: 2, wantErr: "connection refused"},
		{name: "mirror", mirror: true, want: 2, wantErr: "connection refused"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs := &faultServer{content: img, fail: tt.fails}
			mux := http.NewServeMux()
			mux.Handle("/img", fs)
			mux.HandleFunc("/img.sha256", func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, "%s  img\n", sha(img))
			})
			srv := newLateServer(t, mux)
			urls := []string{srv.URL() + "/img"}
			failing := urls[0] // the URL the failed attempts are on
			if tt.download {
				failing += ".sha256"
			}
			if tt.fails > 0 || tt.mirror {
				if err := srv.up(); err != nil {
					t.Fatal(err)
				}
			}
			if tt.mirror {
				dead := newLateServer(t, mux) // never up
				failing = dead.URL() + "/img"
				urls = []string{failing, srv.URL() + "/img"}
			}
			var (
				got   []Progress
				upErr error
			)
			progress := func(p Progress) {
				got = append(got, p)
				if p.Retry == tt.want && upErr == nil {
					upErr = srv.up()
				}
			}
			f := &Fetcher{clock: newFakeClock(), Attempts: tt.want}
			opts := Options{Fetcher: f, NoSidecar: !tt.download, Progress: progress}
			var err error
			if tt.download {
				var res *Result
				res, err = Download(context.Background(), filepath.Join(t.TempDir(), "img"), urls, opts)
				if err == nil && !res.Verified {
					t.Errorf("not verified against the checksum file")
				}
			} else {
				_, err = Load(context.Background(), t.TempDir(), urls, opts)
			}
			if upErr != nil {
				t.Skip(upErr) // another process took the port
			}
			if err != nil {
				t.Fatal(err)
			}

			first := len(got) // the first snapshot with bytes read
			for i, p := range got {
				if p.Read > 0 {
					first = i
					break
				}
			}
			failed := map[int]bool{} // the failures reported, by attempt
			running := false         // an attempt reported running after a failure
			for _, p := range got[:first] {
				if p.Stage != StageConnecting {
					t.Errorf("before the first byte: stage %v in %+v", p.Stage, p)
				}
				switch {
				case p.Retry == 0 && (p.LastErr != "" || !p.NextTry.IsZero()):
					t.Errorf("no failure, but a cause or a next try: %+v", p)
				case p.Retry > 0 && !p.NextTry.IsZero():
					failed[p.Retry] = true
					if !strings.Contains(p.LastErr, tt.wantErr) {
						t.Errorf("attempt %d failed with %q, want %q in it", p.Retry, p.LastErr, tt.wantErr)
					}
					if strings.Contains(p.LastErr, `Get "`) {
						t.Errorf("the cause repeats the request: %q", p.LastErr)
					}
					if p.URL == failing && strings.HasPrefix(p.LastErr, "http") {
						t.Errorf("the cause names the URL shown: %+v", p)
					}
					if p.URL != failing && !strings.HasPrefix(p.LastErr, failing+": ") {
						t.Errorf("showing %s, the cause does not name the URL that failed (%s): %q", p.URL, failing, p.LastErr)
					}
				case p.Retry > 0:
					running = true
				}
			}
			for n := 1; n <= tt.want; n++ {
				if !failed[n] {
					t.Errorf("no snapshot for failed attempt %d before the first byte, of %d: %+v", n, first, got[:first])
				}
			}
			if !running {
				t.Errorf("no snapshot of an attempt running after a failure: %+v", got[:first])
			}
			if first == len(got) {
				t.Fatalf("no snapshot with bytes read")
			}
			for _, p := range got[first:] {
				if p.Retry != 0 || p.LastErr != "" || !p.NextTry.IsZero() {
					t.Errorf("bytes arrived, still retrying: %+v", p)
				}
			}
		})
	}
}
