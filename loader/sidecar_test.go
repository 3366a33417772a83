package loader

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

func TestSidecarURL(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"http://h/img.tar.zst", "http://h/img.tar.zst.sha256"},
		{"http://h/img.tar.zst?token=abc", "http://h/img.tar.zst.sha256?token=abc"},
		{"https://h:8443/a/b.tar.xz?X-Amz-Signature=1%2F2&e=3", "https://h:8443/a/b.tar.xz.sha256?X-Amz-Signature=1%2F2&e=3"},
		{"http://h/a%20b.tar", "http://h/a%20b.tar.sha256"},
		{"http://h/a%2Fb.tar", "http://h/a%2Fb.tar.sha256"},
		{"http://h/img#frag", "http://h/img.sha256#frag"},
		{"/srv/img.tar", "/srv/img.tar.sha256"},
		{"file:///srv/img.tar", "file:///srv/img.tar.sha256"},
	} {
		if got := sidecarURL(tt.in); got != tt.want {
			t.Errorf("sidecarURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for in, want := range map[string]string{"http://h/d/img.tar.zst?token=abc": "img.tar.zst", "/srv/img.tar": "img.tar", "file:///srv/i.tar": "i.tar"} {
		if got := baseName(in); got != want {
			t.Errorf("baseName(%q) = %q, want %q", in, got, want)
		}
	}
}

// signedServer serves an image and its checksum file only to requests with token=abc, as
// object storage with signed URLs does (403 otherwise), and ignores the query otherwise, as
// nginx does.
type signedServer struct {
	img, sum []byte
	side     int // status of the checksum file when not 200 (0: serve it)
	mu       sync.Mutex
	paths    []string
}

func (s *signedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.paths = append(s.paths, r.URL.RequestURI())
	s.mu.Unlock()
	if r.URL.Query().Get("token") != "abc" {
		http.Error(w, "bad signature", http.StatusForbidden)
		return
	}
	switch r.URL.Path {
	case "/img":
		(&faultServer{content: s.img}).ServeHTTP(w, r)
	case "/img.sha256":
		if s.side != 0 {
			http.Error(w, http.StatusText(s.side), s.side)
			return
		}
		(&faultServer{content: s.sum}).ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

// TestSidecar: the checksum file of URL?query is URL.sha256?query; only a 404 or 410 means
// there is none (logged once, as such), any other refusal fails the load naming the checksum
// file's URL and the status, never an unverified boot.
func TestSidecar(t *testing.T) {
	es := randomTree(40, 256<<10)
	img := zstdOf(t, tarOf(t, es))
	sum := []byte(sha(img) + "  img\n")
	for _, tt := range []struct {
		name     string
		side     int
		verified bool
		wantErr  error
		errText  string
		logText  string
	}{
		{name: "signed URL", verified: true, logText: "verifying against /img.sha256?token=abc"},
		{name: "404", side: 404, logText: "no checksum file at /img.sha256?token=abc (404)"},
		{name: "410", side: 410, logText: "no checksum file at /img.sha256?token=abc (410)"},
		{name: "403", side: 403, wantErr: ErrChecksumFile, errText: "cannot read the checksum file /img.sha256?token=abc: HTTP 403 Forbidden"},
		{name: "401", side: 401, wantErr: ErrChecksumFile, errText: "/img.sha256?token=abc: HTTP 401 Unauthorized"},
		{name: "500 for good", side: 500, wantErr: ErrRetriesExhausted, errText: "/img.sha256?token=abc: gave up retrying after"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := &signedServer{img: img, sum: sum, side: tt.side}
			hs := serve(t, map[string]http.Handler{"/": srv})
			var logs []string
			var mu sync.Mutex
			logf := func(format string, a ...any) {
				mu.Lock()
				logs = append(logs, strings.ReplaceAll(fmt.Sprintf(format, a...), hs.URL, ""))
				mu.Unlock()
			}
			f := testFetcher()
			f.Logf = logf
			dir := t.TempDir()
			res, err := Load(context.Background(), dir, []string{hs.URL + "/img?token=abc"}, Options{Fetcher: f, Logf: logf})
			t.Logf("error: %v; log: %q", err, logs)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !errors.Is(err, ErrChecksumFile) || !strings.Contains(strings.ReplaceAll(err.Error(), hs.URL, ""), tt.errText) {
					t.Fatalf("error %v, want %v and ErrChecksumFile, containing %q", err, tt.wantErr, tt.errText)
				}
				assertEmpty(t, dir)
				for _, p := range srv.paths {
					if p == "/img?token=abc" {
						t.Errorf("the image was fetched although its checksum file could not be read")
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Verified != tt.verified {
				t.Errorf("verified %v, want %v", res.Verified, tt.verified)
			}
			checkTree(t, dir, es)
			n := 0
			for _, l := range logs {
				if strings.Contains(l, "sha256") {
					n++
					if l != tt.logText {
						t.Errorf("log line %q, want %q", l, tt.logText)
					}
				}
			}
			if n != 1 {
				t.Errorf("%d log lines about the checksum file, want 1: %q", n, logs)
			}
		})
	}

	t.Run("first server down, mirror has it", func(t *testing.T) {
		srv := &signedServer{img: img, sum: sum}
		hs := serve(t, map[string]http.Handler{"/": srv})
		f := testFetcher()
		f.RetryFor = -1
		res, err := Load(context.Background(), t.TempDir(), []string{"http://127.0.0.1:1/img?token=abc", hs.URL + "/img?token=abc"}, Options{Fetcher: f})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Verified {
			t.Error("not verified against the mirror's checksum file")
		}
	})
}
