package serve

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// logRec collects request log lines.
type logRec struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRec) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logRec) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// testDir makes a served directory: data.bin (100 bytes 0..99), sub/a.txt, a symlink inside
// the directory and two leaving it.
func testDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	data := make([]byte, 100)
	for i := range data {
		data[i] = byte(i)
	}
	write(t, filepath.Join(dir, "data.bin"), data)
	write(t, filepath.Join(dir, "sub", "a.txt"), []byte("hello\n"))
	write(t, filepath.Join(dir, "data.bin.sha256"), []byte("sum  data.bin\n"))
	for name, target := range map[string]string{
		"inside":   "data.bin",
		"etc":      "/etc",
		"passwd":   "/etc/passwd",
		"sub/up":   "../../",
		"dangling": "nothing",
	} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func write(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func newServer(t *testing.T, dir string, opts Options) (*httptest.Server, *logRec) {
	t.Helper()
	rec := &logRec{}
	opts.Logf = rec.logf
	h, err := New(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		h.Close()
	})
	return srv, rec
}

// do sends a request with extra headers and returns the response with its body read.
func do(t *testing.T, method, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func bytesRange(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		b.WriteByte(byte(i))
	}
	return b.String()
}

func TestRange(t *testing.T) {
	srv, _ := newServer(t, testDir(t), Options{})
	for _, tc := range []struct {
		rng          string
		code         int
		body, cRange string
	}{
		{"bytes=10-19", http.StatusPartialContent, bytesRange(10, 20), "bytes 10-19/100"},
		{"bytes=90-", http.StatusPartialContent, bytesRange(90, 100), "bytes 90-99/100"},
		{"bytes=-5", http.StatusPartialContent, bytesRange(95, 100), "bytes 95-99/100"},
		{"bytes=95-200", http.StatusPartialContent, bytesRange(95, 100), "bytes 95-99/100"},
		{"bytes=100-", http.StatusRequestedRangeNotSatisfiable, "", "bytes */100"},
		{"bytes=200-300", http.StatusRequestedRangeNotSatisfiable, "", "bytes */100"},
	} {
		resp, body := do(t, "GET", srv.URL+"/data.bin", "Range", tc.rng)
		if resp.StatusCode != tc.code {
			t.Errorf("Range %s: status %d, want %d", tc.rng, resp.StatusCode, tc.code)
			continue
		}
		if got := resp.Header.Get("Content-Range"); got != tc.cRange {
			t.Errorf("Range %s: Content-Range %q, want %q", tc.rng, got, tc.cRange)
		}
		if tc.code == http.StatusPartialContent && body != tc.body {
			t.Errorf("Range %s: body %q, want %q", tc.rng, body, tc.body)
		}
	}
}

func TestHead(t *testing.T) {
	srv, _ := newServer(t, testDir(t), Options{})
	resp, body := do(t, "HEAD", srv.URL+"/data.bin")
	if resp.StatusCode != http.StatusOK || body != "" {
		t.Fatalf("HEAD: status %d, body %q; want 200 and no body", resp.StatusCode, body)
	}
	for k, want := range map[string]string{"Content-Length": "100", "Accept-Ranges": "bytes"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("HEAD: %s %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"ETag", "Last-Modified"} {
		if resp.Header.Get(k) == "" {
			t.Errorf("HEAD: no %s", k)
		}
	}
	if et := resp.Header.Get("ETag"); strings.HasPrefix(et, "W/") || !strings.HasPrefix(et, `"`) {
		t.Errorf("ETag %s is not a strong ETag", et)
	}
	resp, _ = do(t, "POST", srv.URL+"/data.bin")
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d, want 405", resp.StatusCode)
	}
}

func TestConditional(t *testing.T) {
	srv, _ := newServer(t, testDir(t), Options{})
	url := srv.URL + "/data.bin"
	resp, _ := do(t, "GET", url)
	etag := resp.Header.Get("ETag")
	for _, tc := range []struct {
		name string
		hdr  []string
		code int
		body string
	}{
		{"If-None-Match current", []string{"If-None-Match", etag}, http.StatusNotModified, ""},
		{"If-None-Match other", []string{"If-None-Match", `"other"`}, http.StatusOK, bytesRange(0, 100)},
		{"If-Range current", []string{"Range", "bytes=50-", "If-Range", etag}, http.StatusPartialContent, bytesRange(50, 100)},
		{"If-Range stale", []string{"Range", "bytes=50-", "If-Range", `"stale"`}, http.StatusOK, bytesRange(0, 100)},
		{"If-Range old date", []string{"Range", "bytes=50-", "If-Range", "Mon, 02 Jan 2006 15:04:05 GMT"}, http.StatusOK, bytesRange(0, 100)},
	} {
		resp, body := do(t, "GET", url, tc.hdr...)
		if resp.StatusCode != tc.code || body != tc.body {
			t.Errorf("%s: status %d, %d bytes; want %d, %d bytes", tc.name, resp.StatusCode, len(body), tc.code, len(tc.body))
		}
	}
}

func TestETagChanges(t *testing.T) {
	dir := testDir(t)
	srv, _ := newServer(t, dir, Options{})
	name := filepath.Join(dir, "data.bin")
	etag := func() string {
		resp, _ := do(t, "HEAD", srv.URL+"/data.bin")
		return resp.Header.Get("ETag")
	}
	e0 := etag()
	if e := etag(); e != e0 {
		t.Fatalf("ETag not stable: %s, then %s", e0, e)
	}

	// Rewritten in place, same size, then the old mtime put back (touch -r): ctime tells.
	st, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // past a tick of the kernel's coarse clock
	write(t, name, []byte(strings.Repeat("x", 100)))
	if err := os.Chtimes(name, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	e1 := etag()
	if e1 == e0 {
		t.Errorf("ETag %s unchanged after a same-size rewrite with the mtime restored", e1)
	}

	// Replaced by rename, as builders write images: a new inode.
	tmp := filepath.Join(dir, ".data.tmp")
	write(t, tmp, []byte(strings.Repeat("y", 100)))
	if err := os.Chtimes(tmp, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
	if e2 := etag(); e2 == e1 || e2 == e0 {
		t.Errorf("ETag %s unchanged after the file was replaced", e2)
	}

	// A resume against the old ETag gets the whole new file.
	resp, body := do(t, "GET", srv.URL+"/data.bin", "Range", "bytes=50-", "If-Range", e0)
	if resp.StatusCode != http.StatusOK || body != strings.Repeat("y", 100) {
		t.Errorf("If-Range with the old ETag: status %d, body %q; want 200 and the new file", resp.StatusCode, body)
	}
}

// rawGet sends a request line as is (an HTTP client would clean or reject these paths) and
// returns the status and body.
func rawGet(t *testing.T, addr, target string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", target)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestTraversal(t *testing.T) {
	srv, _ := newServer(t, testDir(t), Options{})
	addr := srv.Listener.Addr().String()
	for _, target := range []string{
		"/../etc/passwd",
		"/../../../../etc/passwd",
		"/%2e%2e/etc/passwd",
		"/%2E%2E/%2e%2e/etc/passwd",
		"/..%2fetc%2fpasswd",
		"/sub/../../etc/passwd",
		"/sub/%2e%2e/%2e%2e/etc/passwd",
		"/passwd",        // symlink to /etc/passwd
		"/etc/passwd",    // through a symlink to /etc
		"/sub/up/passwd", // through a symlink to ../../
		"/dangling",
		"/nothing",
		"/data.bin/x",
		"/%00",
	} {
		code, body := rawGet(t, addr, target)
		if code != http.StatusNotFound && code != http.StatusForbidden {
			t.Errorf("GET %s: status %d, want 404 or 403", target, code)
		}
		if strings.Contains(body, "root:") {
			t.Errorf("GET %s: served /etc/passwd", target)
		}
	}
	// Symlinks that stay inside are followed.
	if code, body := rawGet(t, addr, "/inside"); code != http.StatusOK || body != bytesRange(0, 100) {
		t.Errorf("GET /inside: status %d, %d bytes; want 200 and data.bin", code, len(body))
	}
	if code, body := rawGet(t, addr, "/sub/./a.txt"); code != http.StatusOK || body != "hello\n" {
		t.Errorf("GET /sub/./a.txt: status %d, body %q", code, body)
	}
}

func TestIndex(t *testing.T) {
	srv, _ := newServer(t, testDir(t), Options{})
	resp, body := do(t, "GET", srv.URL+"/")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{`<a href="./data.bin">data.bin</a>`, `<a href="./sub/">sub/</a>`, `<a href="./inside">inside</a>`, ">100<", "data.bin.sha256"} {
		if !strings.Contains(body, want) {
			t.Errorf("HTML index lacks %q:\n%s", want, body)
		}
	}

	_, body = do(t, "GET", srv.URL+"/", "Accept", "text/plain")
	date := `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`
	want := regexp.MustCompile(`^data\.bin\t100\t` + date + `\n` +
		`data\.bin\.sha256\t14\t` + date + `\n` +
		`inside\t100\t` + date + `\n` +
		`sub/\t-\t` + date + `\n$`)
	if !want.MatchString(body) {
		t.Errorf("plain index (escaping and dangling symlinks left out):\n%s", body)
	}

	resp, body = do(t, "GET", srv.URL+"/sub/", "Accept", "text/html;q=0.5, text/plain")
	if !strings.HasPrefix(body, "a.txt\t6\t") {
		t.Errorf("GET /sub/ (plain preferred): %q", body)
	}
	if got := resp.Header.Get("Vary"); got != "Accept" {
		t.Errorf("Vary %q, want Accept", got)
	}

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(srv.URL + "/sub")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusMovedPermanently || loc != "/sub/" {
		t.Errorf("GET /sub: status %d, Location %q; want 301 to /sub/", resp.StatusCode, loc)
	}
}

func TestPrefersPlain(t *testing.T) {
	for _, tc := range []struct {
		accept string
		want   bool
	}{
		{"", false},
		{"*/*", false},
		{"text/plain", true},
		{"text/plain, */*;q=0.1", true},
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", false},
		{"text/html;q=0.5, text/plain", true},
		{"text/plain;q=0.5, text/html", false},
		{"text/plain, text/html", false},
		{"text/plain;q=0", false},
		{"TEXT/PLAIN ; Q=0.9, text/*;q=0.5", true},
	} {
		if got := prefersPlain([]string{tc.accept}); got != tc.want {
			t.Errorf("prefersPlain(%q) = %v, want %v", tc.accept, got, tc.want)
		}
	}
}

func TestSidecar(t *testing.T) {
	srv, _ := newServer(t, testDir(t), Options{})
	if resp, body := do(t, "GET", srv.URL+"/data.bin.sha256"); resp.StatusCode != http.StatusOK || body != "sum  data.bin\n" {
		t.Errorf("existing sidecar: status %d, body %q", resp.StatusCode, body)
	}
	if resp, _ := do(t, "GET", srv.URL+"/sub/a.txt.sha256"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("missing sidecar: status %d, want 404 (never generated)", resp.StatusCode)
	}
}

func TestLogLine(t *testing.T) {
	rec := &logRec{}
	h, err := New(testDir(t), Options{Logf: rec.logf})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	clock := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	h.now = func() time.Time {
		clock = clock.Add(1500 * time.Microsecond)
		return clock
	}
	for _, tc := range []struct {
		method, target, rng string
	}{
		{"GET", "/data.bin", "bytes=0-9"},
		{"HEAD", "/data.bin", ""},
		{"GET", "/missing%20file?x=1", ""},
		{"GET", "/data.bin", "bytes=100-"},
	} {
		r := httptest.NewRequest(tc.method, tc.target, nil)
		r.RemoteAddr = "192.0.2.1:1234"
		if tc.rng != "" {
			r.Header.Set("Range", tc.rng)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	got := rec.all()
	want := []string{
		"192.0.2.1:1234 GET /data.bin 206 10 1.5ms range=bytes=0-9",
		"192.0.2.1:1234 HEAD /data.bin 200 0 1.5ms",
		"192.0.2.1:1234 GET /missing%20file?x=1 404 10 1.5ms",
		"192.0.2.1:1234 GET /data.bin 416 33 1.5ms range=bytes=100-",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
