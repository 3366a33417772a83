package loader

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// faultServer serves one object with http.ServeContent (Range, If-Range, ETag) and injects
// the faults a real network and real servers produce.
type faultServer struct {
	mu       sync.Mutex
	content  []byte
	next     []byte  // content after the first request (object replaced)
	cuts     []int64 // request i is cut off when it reaches object offset cuts[i]
	stallAt  int64   // the first request stalls at this offset (0: never)
	fail     int     // the first fail requests get 503
	failAll  bool    // every request after the cuts gets 503
	noRange  bool    // ignore Range (and If-Range)
	lie      int64   // announce this many more bytes than are sent
	requests int
	ranges   []string
}

func (s *faultServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	n := s.requests
	s.requests++
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	content := s.content
	if n > 0 && s.next != nil {
		content = s.next
	}
	var cut int64 = -1
	if n < len(s.cuts) {
		cut = s.cuts[n]
	}
	stall := n == 0 && s.stallAt > 0
	fail := n < s.fail || (s.failAll && n >= len(s.cuts))
	s.mu.Unlock()

	if fail {
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	if s.noRange {
		r.Header.Del("Range")
		r.Header.Del("If-Range")
	}
	if s.lie > 0 {
		// A broken server: claims a longer object than it has, in every response.
		start := rangeStart(r.Header.Get("Range"))
		total := int64(len(content)) + s.lie
		w.Header().Set("Content-Length", strconv.FormatInt(total-start, 10))
		if start > 0 {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, total-1, total))
			w.WriteHeader(http.StatusPartialContent)
		}
		if start < int64(len(content)) {
			w.Write(content[start:])
		}
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	w.Header().Set("ETag", `"`+sha(content)[:16]+`"`)
	start := rangeStart(r.Header.Get("Range"))
	cw := &cutWriter{ResponseWriter: w, at: start, cut: cut, stall: -1, ctx: r.Context()}
	if stall {
		cw.stall = s.stallAt
	}
	http.ServeContent(cw, r, "image", epoch, bytes.NewReader(content))
}

func rangeStart(h string) int64 {
	v, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return 0
	}
	a, _, _ := strings.Cut(v, "-")
	n, _ := strconv.ParseInt(a, 10, 64)
	return n
}

// cutWriter aborts the connection, or stalls it, when the body reaches an object offset.
type cutWriter struct {
	http.ResponseWriter
	at, cut, stall int64
	ctx            context.Context
}

func (c *cutWriter) Write(p []byte) (int, error) {
	for _, limit := range []int64{c.cut, c.stall} {
		if limit >= 0 && c.at+int64(len(p)) > limit {
			k := max(0, limit-c.at)
			c.ResponseWriter.Write(p[:k])
			c.ResponseWriter.(http.Flusher).Flush()
			if limit == c.stall {
				select {
				case <-c.ctx.Done():
				case <-time.After(20 * time.Second):
				}
			}
			panic(http.ErrAbortHandler)
		}
	}
	n, err := c.ResponseWriter.Write(p)
	c.at += int64(n)
	return n, err
}

// testFetcher retries within 50 ms (and at least 3 times per URL), with delays of a few
// milliseconds: failures that last are failures in well under a second.
func testFetcher() *Fetcher {
	return &Fetcher{Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, IdleTimeout: 2 * time.Second, Attempts: 3, RetryFor: 50 * time.Millisecond}
}

func serve(t *testing.T, handlers map[string]http.Handler) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	for p, h := range handlers {
		mux.Handle(p, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestLoadFaults(t *testing.T) {
	es := randomTree(1, 3<<20)
	img := zstdOf(t, tarOf(t, es))
	other := randomTree(2, 3<<20)
	otherImg := zstdOf(t, tarOf(t, other))
	third := len(img) / 3
	corrupt := bytes.Clone(img)
	corrupt[len(img)/2] ^= 0x55
	xzImg := xzOf(t, tarOf(t, es))
	xzCorrupt := bytes.Clone(xzImg)
	xzCorrupt[len(xzImg)/2] ^= 0x55

	tests := []struct {
		name    string
		srv     *faultServer
		want    []entry // the tree expected on success
		wantErr error   // else the error expected
		errText string  // and text the message must contain
		check   func(t *testing.T, s *faultServer)
	}{
		{name: "clean", srv: &faultServer{content: img}, want: es},
		{name: "cut three times", srv: &faultServer{content: img, cuts: []int64{int64(third), int64(third) + 1000, 2 * int64(third)}}, want: es,
			check: func(t *testing.T, s *faultServer) {
				if got, want := s.ranges[1], fmt.Sprintf("bytes=%d-", third); got != want {
					t.Errorf("first resume asked %q, want %q", got, want)
				}
				if s.requests != 4 {
					t.Errorf("%d requests, want 4", s.requests)
				}
			}},
		{name: "stall", srv: &faultServer{content: img, stallAt: int64(third)}, want: es,
			check: func(t *testing.T, s *faultServer) {
				if s.requests != 2 || s.ranges[1] == "" {
					t.Errorf("requests %d %q, want a resume after the stall", s.requests, s.ranges)
				}
			}},
		{name: "5xx then OK", srv: &faultServer{content: img, fail: 2}, want: es},
		{name: "5xx for good", srv: &faultServer{content: img, fail: 100}, wantErr: &HTTPError{}, errText: "503"},
		{name: "server ignores Range", srv: &faultServer{content: img, noRange: true, cuts: []int64{int64(third)}}, want: es,
			check: func(t *testing.T, s *faultServer) {
				if s.requests != 2 {
					t.Errorf("%d requests, want 2", s.requests)
				}
			}},
		{name: "object changed", srv: &faultServer{content: img, next: otherImg, cuts: []int64{int64(third)}}, want: other},
		{name: "wrong Content-Length", srv: &faultServer{content: img, lie: 1000}, wantErr: ErrTruncated},
		{name: "truncated object", srv: &faultServer{content: img[:len(img)/2]}, wantErr: ErrFormat},
		{name: "corrupt zstd", srv: &faultServer{content: corrupt}, wantErr: ErrFormat},
		{name: "corrupt xz", srv: &faultServer{content: xzCorrupt}, wantErr: ErrFormat},
		{name: "not an image", srv: &faultServer{content: []byte("<html>hello</html>")}, wantErr: ErrFormat, errText: "not xz, zstd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := serve(t, map[string]http.Handler{"/img": tt.srv})
			dir := t.TempDir()
			res, err := Load(context.Background(), dir, []string{srv.URL + "/img"}, Options{Fetcher: testFetcher(), NoSidecar: true})
			if tt.wantErr != nil {
				var he *HTTPError
				if errors.As(tt.wantErr, &he) {
					if !errors.As(err, &he) {
						t.Fatalf("error %v, want an HTTPError", err)
					}
				} else if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), srv.URL+"/img") || !strings.Contains(err.Error(), tt.errText) {
					t.Errorf("error %q does not name the URL and %q", err, tt.errText)
				}
				assertEmpty(t, dir)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Format != FormatZstd || res.Size != int64(len(tt.srv.content)) && tt.srv.next == nil {
				t.Errorf("result %+v", res)
			}
			checkTree(t, dir, tt.want)
			if tt.check != nil {
				tt.check(t, tt.srv)
			}
		})
	}
}

func TestLoadFormats(t *testing.T) {
	es := randomTree(3, 1<<20)
	plain := tarOf(t, es)
	for _, tt := range []struct {
		name   string
		data   []byte
		format Format
	}{
		{"tar", plain, FormatTar},
		{"gzip", gzipOf(t, plain), FormatGzip},
		{"zstd", zstdOf(t, plain), FormatZstd},
		{"xz multi-block", xzOf(t, plain), FormatXZ},
		{"xz single block", xzOf(t, plain, "-T1", "-0"), FormatXZ},
		{"xz crc32", xzOf(t, plain, "-T1", "--check=crc32"), FormatXZ},
		{"xz sha256 sum", xzOf(t, plain, "-T2", "--block-size=100KiB", "--check=sha256"), FormatXZ},
		{"zstd cli", runFilter(t, plain, "zstd", "-19", "-q", "-c"), FormatZstd},
		{"pixz", runFilter(t, plain, "pixz", "-1"), FormatXZ},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := serve(t, map[string]http.Handler{"/img": &faultServer{content: tt.data}})
			dir := t.TempDir()
			res, err := Load(context.Background(), dir, []string{srv.URL + "/img"}, Options{Fetcher: testFetcher(), SHA256: sha(tt.data)})
			if err != nil {
				t.Fatal(err)
			}
			if res.Format != tt.format || !res.Verified || res.Uncompressed < int64(len(plain)) {
				t.Errorf("result %+v", res)
			}
			checkTree(t, dir, es)
		})
	}
}

func TestLoadChecksum(t *testing.T) {
	es := randomTree(4, 256<<10)
	img := gzipOf(t, tarOf(t, es))
	good, bad := sha(img), sha([]byte("other"))
	for _, tt := range []struct {
		name    string
		opt     string // Options.SHA256
		sidecar string // served at URL.sha256 ("" = 404)
		want    error
		text    string
	}{
		{name: "option matches", opt: good},
		{name: "option differs", opt: bad, want: ErrChecksum, text: "expected sha256 " + bad + ", got " + good},
		{name: "sidecar matches", sidecar: good + "  img\n"},
		{name: "sidecar differs", sidecar: bad + "  img\n", want: ErrChecksum, text: bad},
		{name: "sidecar among others", sidecar: bad + "  other.tar\n" + good + "  img\n"},
		{name: "sidecar garbage", sidecar: "hello\n", text: "not a sha256 checksum"},
		{name: "option uppercase", opt: strings.ToUpper(good)},
		{name: "option malformed", opt: "abc", text: "want 64 hex digits"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]http.Handler{"/img": &faultServer{content: img}}
			if tt.sidecar != "" {
				h["/img.sha256"] = &faultServer{content: []byte(tt.sidecar)}
			}
			srv := serve(t, h)
			dir := t.TempDir()
			res, err := Load(context.Background(), dir, []string{srv.URL + "/img"}, Options{Fetcher: testFetcher(), SHA256: tt.opt})
			if tt.want == nil && tt.text == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !res.Verified || res.SHA256 != good {
					t.Errorf("result %+v, want verified %s", res, good)
				}
				checkTree(t, dir, es)
				return
			}
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("error %v, want %v containing %q", err, tt.want, tt.text)
			}
			assertEmpty(t, dir)
		})
	}
}

func TestLoadMirrors(t *testing.T) {
	es := randomTree(5, 2<<20)
	img := zstdOf(t, tarOf(t, es))
	half := int64(len(img) / 2)
	t.Run("first missing", func(t *testing.T) {
		good := &faultServer{content: img}
		srv := serve(t, map[string]http.Handler{"/good": good})
		res, err := Load(context.Background(), t.TempDir(), []string{srv.URL + "/missing", "http://127.0.0.1:1/refused", srv.URL + "/good"},
			Options{Fetcher: testFetcher(), NoSidecar: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.URL != srv.URL+"/good" {
			t.Errorf("served by %s", res.URL)
		}
	})
	t.Run("failover mid-stream", func(t *testing.T) {
		bad := &faultServer{content: img, cuts: []int64{half}, failAll: true}
		good := &faultServer{content: img}
		srv := serve(t, map[string]http.Handler{"/bad": bad, "/good": good})
		dir := t.TempDir()
		_, err := Load(context.Background(), dir, []string{srv.URL + "/bad", srv.URL + "/good"}, Options{Fetcher: testFetcher(), NoSidecar: true})
		if err != nil {
			t.Fatal(err)
		}
		checkTree(t, dir, es)
		if good.requests != 1 || good.ranges[0] != fmt.Sprintf("bytes=%d-", half) {
			t.Errorf("mirror got %d requests %q, want one resuming at %d", good.requests, good.ranges, half)
		}
	})
	t.Run("mirror of another size", func(t *testing.T) {
		bad := &faultServer{content: img, cuts: []int64{half}, failAll: true}
		other := &faultServer{content: zstdOf(t, tarOf(t, randomTree(6, 1<<20)))}
		srv := serve(t, map[string]http.Handler{"/bad": bad, "/other": other})
		dir := t.TempDir()
		_, err := Load(context.Background(), dir, []string{srv.URL + "/bad", srv.URL + "/other"}, Options{Fetcher: testFetcher(), NoSidecar: true})
		// The mirror's object differs: starting over from the first URL fails there again; what
		// matters is that nothing mixed is extracted.
		if err == nil {
			checkTree(t, dir, randomTree(6, 1<<20))
		} else {
			assertEmpty(t, dir)
		}
	})
	t.Run("all fail", func(t *testing.T) {
		srv := serve(t, map[string]http.Handler{"/a": &faultServer{fail: 100}, "/b": &faultServer{fail: 100}})
		dir := t.TempDir()
		_, err := Load(context.Background(), dir, []string{srv.URL + "/a", srv.URL + "/b"}, Options{Fetcher: testFetcher(), NoSidecar: true})
		if err == nil || !strings.Contains(err.Error(), "all 2 URLs failed") || !strings.Contains(err.Error(), srv.URL+"/b") || !strings.Contains(err.Error(), "503") {
			t.Fatalf("error %v", err)
		}
	})
}

func TestLoadLocalFile(t *testing.T) {
	es := randomTree(7, 512<<10)
	img := zstdOf(t, tarOf(t, es))
	p := t.TempDir() + "/img.tar.zst"
	if err := writeFile(p, img); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{p, "file://" + p} {
		dir := t.TempDir()
		res, err := Load(context.Background(), dir, []string{u}, Options{SHA256: sha(img)})
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if !res.Verified {
			t.Errorf("not verified")
		}
		checkTree(t, dir, es)
	}
	if _, err := Load(context.Background(), t.TempDir(), []string{"/nonexistent/img"}, Options{}); err == nil || !strings.Contains(err.Error(), "/nonexistent/img") {
		t.Errorf("missing file: %v", err)
	}
}

func TestLoadBadInput(t *testing.T) {
	for _, tt := range []struct {
		urls []string
		text string
	}{
		{[]string{"ftp://host/x"}, `scheme "ftp"`},
		{[]string{"http://"}, "no host"},
		{nil, "no image URL"},
		{[]string{""}, "empty URL"},
	} {
		_, err := Load(context.Background(), t.TempDir(), tt.urls, Options{})
		if err == nil || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("%q: error %v, want %q", tt.urls, err, tt.text)
		}
	}
	dir := t.TempDir()
	writeFile(dir+"/keep", []byte("mine"))
	_, err := Load(context.Background(), dir, []string{"/x"}, Options{})
	if !errors.Is(err, ErrNotEmpty) {
		t.Errorf("non-empty dir: %v", err)
	}
}

func TestLoadTLSAndRedirect(t *testing.T) {
	es := randomTree(15, 256<<10)
	img := zstdOf(t, tarOf(t, es))
	mux := http.NewServeMux()
	mux.Handle("/img", &faultServer{content: img})
	mux.Handle("/old", http.RedirectHandler("/img", http.StatusFound))
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	ca := t.TempDir() + "/ca.pem"
	writeFile(ca, pemOf(srv.Certificate().Raw))

	// Without the CA the server is not trusted, and the error says so.
	_, err := Load(context.Background(), t.TempDir(), []string{srv.URL + "/old"}, Options{Fetcher: &Fetcher{Attempts: 1}, NoSidecar: true})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted server: %v", err)
	}
	client, err := NewClient(ca, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := testFetcher()
	f.Client = client
	dir := t.TempDir()
	if _, err := Load(context.Background(), dir, []string{srv.URL + "/old"}, Options{Fetcher: f, NoSidecar: true}); err != nil {
		t.Fatal(err)
	}
	checkTree(t, dir, es)
	if _, err := NewClient(t.TempDir()+"/missing.pem", 0); err == nil {
		t.Error("missing CA file accepted")
	}
	bad := t.TempDir() + "/bad.pem"
	writeFile(bad, []byte("not pem"))
	if _, err := NewClient(bad, 0); err == nil || !strings.Contains(err.Error(), "no PEM certificates") {
		t.Errorf("bad CA file: %v", err)
	}
}

// TestSystemCAsAtFirstHandshake: a client without a CA file reads the system's CAs at its first
// TLS handshake, not when it is made (a plain-HTTP boot never waits for them). The test runs
// itself in a process of its own, where the system pool has not been read yet: SSL_CERT_FILE
// names a file that is written only after NewClient.
func TestSystemCAsAtFirstHandshake(t *testing.T) {
	if os.Getenv("RAMBOOT_TEST_LAZY_CAS") == "" {
		cas := t.TempDir() + "/cas.pem"
		cmd := exec.Command(os.Args[0], "-test.run=^TestSystemCAsAtFirstHandshake$", "-test.v")
		cmd.Env = append(os.Environ(), "RAMBOOT_TEST_LAZY_CAS=1", "SSL_CERT_FILE="+cas, "SSL_CERT_DIR="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return
	}
	client, err := NewClient("", 0)
	if err != nil {
		t.Fatal(err)
	}
	es := randomTree(16, 64<<10)
	srv := httptest.NewTLSServer(&faultServer{content: zstdOf(t, tarOf(t, es))})
	defer srv.Close()
	if err := writeFile(os.Getenv("SSL_CERT_FILE"), pemOf(srv.Certificate().Raw)); err != nil {
		t.Fatal(err)
	}
	f := testFetcher()
	f.Client = client
	dir := t.TempDir()
	if _, err := Load(context.Background(), dir, []string{srv.URL + "/img"}, Options{Fetcher: f, NoSidecar: true}); err != nil {
		t.Fatalf("the CA written after NewClient is not trusted: %v", err)
	}
	checkTree(t, dir, es)
}

func pemOf(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestAnnouncedTooMuch: a server that announces more bytes than it sends (a Content-Length
// larger than the body, a file truncated while served), and then refuses the resume with 416,
// is reported as such, naming the URL; not as an image that "changed 3 times".
func TestAnnouncedTooMuch(t *testing.T) {
	img := zstdOf(t, tarOf(t, randomTree(43, 256<<10)))
	half := img[:len(img)/2]
	var requests int
	var mu sync.Mutex
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		mu.Unlock()
		if r.Header.Get("Range") != "" {
			// The file as it is now: the range past its end is refused ("bytes */SIZE").
			http.ServeContent(w, r, "img", epoch, bytes.NewReader(half))
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(img)))
		w.Write(half)
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})
	srv := serve(t, map[string]http.Handler{"/img": h})
	dir := t.TempDir()
	_, err := Load(context.Background(), dir, []string{srv.URL + "/img"}, Options{Fetcher: testFetcher(), NoSidecar: true})
	want := fmt.Sprintf("%s/img: truncated download: the server sent %d of the %d bytes it announced, then refused the range (416 Requested Range Not Satisfiable)",
		srv.URL, len(half), len(img))
	if !errors.Is(err, ErrTruncated) || errors.Is(err, ErrChanged) || err.Error() != want {
		t.Fatalf("error %v\nwant %s", err, want)
	}
	if requests != 2 {
		t.Errorf("%d requests, want 2 (no restart)", requests)
	}
	assertEmpty(t, dir)
}
