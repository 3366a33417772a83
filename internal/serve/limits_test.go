package serve

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ramboot/ramboot/bootmenu"
)

// mkfifo makes a FIFO, or skips the test where there are none. Its cleanup opens the FIFO
// for reading and writing, which never blocks on Linux and lets any open(2) blocked on it
// return, so that a server stuck there (the bug tested for) can still shut down.
func mkfifo(t *testing.T, name string) {
	t.Helper()
	if err := syscall.Mkfifo(name, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	t.Cleanup(func() {
		if f, err := os.OpenFile(name, os.O_RDWR, 0); err == nil {
			f.Close()
		}
	})
}

// TestSpecialFilesRefused: GET of a FIFO in the tree blocked in open(2) until a writer came,
// pinning a thread per request. FIFOs are refused without being opened, directly or through
// a symlink; symlinks to regular files inside the tree are still served.
func TestSpecialFilesRefused(t *testing.T) {
	dir := testDir(t)
	if err := os.Symlink("fifo", filepath.Join(dir, "to-fifo")); err != nil {
		t.Fatal(err)
	}
	srv, _ := newServer(t, dir, Options{})
	mkfifo(t, filepath.Join(dir, "fifo")) // after newServer: its cleanup runs first
	client := &http.Client{Timeout: 5 * time.Second}
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/fifo", http.StatusForbidden},
		{"/to-fifo", http.StatusForbidden},
		{"/inside", http.StatusOK},
		{"/data.bin", http.StatusOK},
	} {
		for _, method := range []string{"GET", "HEAD"} {
			req, _ := http.NewRequest(method, srv.URL+tc.path, nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("%s %s: %v", method, tc.path, err)
				continue
			}
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Errorf("%s %s: status %d, want %d", method, tc.path, resp.StatusCode, tc.code)
			}
		}
	}
	// The index leaves the FIFO out, as before.
	_, body := do(t, "GET", srv.URL+"/", "Accept", "text/plain")
	if strings.Contains(body, "fifo") {
		t.Errorf("index lists the FIFO:\n%s", body)
	}
}

// TestRangeForms checks the forms of Range that net/http's ServeContent gets wrong against
// RFC 9110: "bytes=-0" was answered 206 with "Content-Range: bytes 100-99/100".
func TestRangeForms(t *testing.T) {
	dir := testDir(t)
	write(t, filepath.Join(dir, "empty"), nil)
	srv, _ := newServer(t, dir, Options{})
	const (
		full  = http.StatusOK
		part  = http.StatusPartialContent
		unsat = http.StatusRequestedRangeNotSatisfiable
	)
	for _, tc := range []struct {
		file, rng    string
		code         int
		body, cRange string
	}{
		{"data.bin", "bytes=-0", unsat, "", "bytes */100"},
		{"data.bin", "bytes=-000", unsat, "", "bytes */100"},
		{"data.bin", "bytes=-0,100-", unsat, "", "bytes */100"},
		{"data.bin", "bytes=5-2", unsat, "", "bytes */100"},
		{"data.bin", "bytes=100-", unsat, "", "bytes */100"},
		{"data.bin", "bytes=100-100", unsat, "", "bytes */100"},
		{"data.bin", "bytes=99999999999999999999-", unsat, "", "bytes */100"},
		{"data.bin", "bytes=", unsat, "", "bytes */100"},
		{"data.bin", "bytes=,", unsat, "", "bytes */100"},
		{"data.bin", "bytes=-", unsat, "", "bytes */100"},
		{"data.bin", "bytes=a-b", unsat, "", "bytes */100"},
		{"data.bin", "bytes=1", unsat, "", "bytes */100"},
		{"data.bin", "bytes", unsat, "", "bytes */100"},
		// An empty file has no range to send: 200 and nothing (not "bytes 0--1/0").
		{"empty", "bytes=-0", full, "", ""},
		{"empty", "bytes=0-", full, "", ""},
		{"empty", "bytes=-5", full, "", ""},
		{"data.bin", "bytes=99-", part, bytesRange(99, 100), "bytes 99-99/100"},
		{"data.bin", "bytes=-1", part, bytesRange(99, 100), "bytes 99-99/100"},
		{"data.bin", "bytes=-200", part, bytesRange(0, 100), "bytes 0-99/100"},
		{"data.bin", "bytes=0-0,-0", part, bytesRange(0, 1), "bytes 0-0/100"},
		{"data.bin", "bytes=-0, 98-", part, bytesRange(98, 100), "bytes 98-99/100"},
		{"data.bin", "bytes=0-0,100-", part, bytesRange(0, 1), "bytes 0-0/100"},
		{"data.bin", "bytes=0-99999999999999999999", part, bytesRange(0, 100), "bytes 0-99/100"},
		{"data.bin", "bytes=-99999999999999999999", part, bytesRange(0, 100), "bytes 0-99/100"},
		{"data.bin", "Bytes=1-2", part, bytesRange(1, 3), "bytes 1-2/100"},
		// A unit other than bytes is ignored (RFC 9110 14.2), not refused.
		{"data.bin", "items=0-5", full, bytesRange(0, 100), ""},
		{"data.bin", "items=-0", full, bytesRange(0, 100), ""},
	} {
		resp, body := do(t, "GET", srv.URL+"/"+tc.file, "Range", tc.rng)
		if resp.StatusCode != tc.code {
			t.Errorf("%s Range %q: status %d, want %d", tc.file, tc.rng, resp.StatusCode, tc.code)
			continue
		}
		if got := resp.Header.Get("Content-Range"); got != tc.cRange {
			t.Errorf("%s Range %q: Content-Range %q, want %q", tc.file, tc.rng, got, tc.cRange)
		}
		if tc.code != unsat && body != tc.body {
			t.Errorf("%s Range %q: body %q, want %q", tc.file, tc.rng, body, tc.body)
		}
	}

	// Several ranges: multipart/byteranges, each part with its Content-Range.
	resp, body := do(t, "GET", srv.URL+"/data.bin", "Range", "bytes=0-1,-0,10-11")
	if resp.StatusCode != part || !strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/byteranges") {
		t.Fatalf("two ranges: status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{"Content-Range: bytes 0-1/100", "Content-Range: bytes 10-11/100"} {
		if !strings.Contains(body, want) {
			t.Errorf("two ranges: body lacks %q:\n%q", want, body)
		}
	}
	if strings.Contains(body, "100-99") {
		t.Errorf("two ranges: an empty part:\n%q", body)
	}

	// The preconditions still come first: a stale If-Range gets the whole file, a matching
	// If-None-Match 304, whatever the Range.
	resp, _ = do(t, "GET", srv.URL+"/data.bin")
	etag := resp.Header.Get("ETag")
	if resp, body := do(t, "GET", srv.URL+"/data.bin", "Range", "bytes=-0", "If-Range", `"stale"`); resp.StatusCode != full || body != bytesRange(0, 100) {
		t.Errorf("bytes=-0 with a stale If-Range: status %d, %d bytes; want 200 and the file", resp.StatusCode, len(body))
	}
	if resp, _ := do(t, "GET", srv.URL+"/data.bin", "Range", "bytes=5-2", "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("bytes=5-2 with a matching If-None-Match: status %d, want 304", resp.StatusCode)
	}
}

func TestFixRange(t *testing.T) {
	for in, want := range map[string]string{
		"bytes=0-9":         "bytes=0-9",
		"bytes=0-9, 20-":    "bytes=0-9,20-",
		"bytes=-0":          unsatisfiable,
		"bytes=9-0":         unsatisfiable,
		"bytes=0-9,x":       unsatisfiable,
		"bytes=0--1":        unsatisfiable,
		"bytes=+1-2":        unsatisfiable,
		"bytes=-+1":         unsatisfiable,
		"BYTES=007-":        "bytes=7-",
		"pages=1-2":         "",
		"":                  "",
		"bytes=,,0-1,,":     "bytes=0-1",
		"bytes=0-1,bytes=2": unsatisfiable,
	} {
		if got := fixRange(in); got != want {
			t.Errorf("fixRange(%q) = %q, want %q", in, got, want)
		}
	}
}

// bigFile makes a sparse file of size bytes in dir: more than the socket buffers of a client
// that reads nothing can take, without writing it.
func bigFile(t *testing.T, dir string, size int64) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "big.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

// serveWith serves h with h.Server on a LimitListener of n connections.
func serveWith(t *testing.T, h *Handler, n int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := h.Server(nil)
	go srv.Serve(LimitListener(ln, n))
	t.Cleanup(func() {
		srv.Close()
		h.Close()
	})
	return ln.Addr().String()
}

// dialSmall connects with a small receive buffer, so that the server's writes block soon
// when the client reads nothing.
func dialSmall(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitClosed waits up to d for the server to close c: reads (discarding) until EOF or a
// reset, and returns how many bytes came and whether it was closed.
func waitClosed(c net.Conn, d time.Duration) (int64, bool) {
	c.SetReadDeadline(time.Now().Add(d))
	n, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return n, false
	}
	return n, true
}

// TestStalledClientDropped: a client that asks for a large file and reads nothing held its
// connection (and the file) open for as long as it liked. The per-write deadline drops it
// after Timeouts.Stall; the log line says how much it got.
func TestStalledClientDropped(t *testing.T) {
	const size = 256 << 20
	dir := t.TempDir()
	bigFile(t, dir, size)
	rec := &logRec{}
	h, err := New(dir, Options{Logf: rec.logf, Timeouts: Timeouts{Stall: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveWith(t, h, 8)
	c := dialSmall(t, addr)
	fmt.Fprintf(c, "GET /big.img HTTP/1.1\r\nHost: test\r\n\r\n")
	var line string
	for deadline := time.Now().Add(10 * time.Second); line == ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the response to a client that reads nothing is still running after 10s")
		}
		for _, l := range rec.all() {
			if strings.Contains(l, "GET /big.img 200") {
				line = l
			}
		}
	}
	if strings.Contains(line, fmt.Sprintf(" 200 %d ", size)) {
		t.Errorf("log line %q: the whole file was sent", line)
	}
	if n, closed := waitClosed(c, 10*time.Second); !closed || n >= size {
		t.Errorf("client got %d bytes, connection closed: %v; want fewer than %d and closed", n, closed, size)
	}
}

// TestTricklingPostDropped: a client that sends a boot report's headers and then its body a
// byte now and then held its connection for as long as it liked (only the header had a
// timeout). The body must arrive within Timeouts.Stall; a whole one in time is accepted.
func TestTricklingPostDropped(t *testing.T) {
	const stall = 300 * time.Millisecond
	h, err := New(t.TempDir(), Options{Reports: t.TempDir(), Timeouts: Timeouts{Stall: stall}})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveWith(t, h, 8)
	c := dialSmall(t, addr)
	body := `{"schema":1,"type":"started","boot_id":"b1","seq":1,"mac":"52:54:00:12:34:56"}`
	fmt.Fprintf(c, "POST /api/v1/events HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < len(body)-1; i++ {
			if _, err := c.Write([]byte{body[i]}); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond) // the whole body would take ~3.5 s
		}
	}()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("a POST whose body trickles in is still open after 10s (got %q)", got)
	}
	// The whole body takes 3.5 s to trickle in; cut at the stall deadline, it is never
	// accepted (204).
	if strings.Contains(string(got), " 204 ") {
		t.Errorf("after %v the server accepted the trickled body: %q; want the connection cut about %v in", time.Since(start), got, stall)
	}
	c.Close()
	<-done
	resp, err := http.Post("http://"+addr+"/api/v1/events", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("a whole body in time: %s", resp.Status)
	}
}

// TestSlowClientNotDropped: the stall deadline is per write, not per response: a client that
// keeps reading gets the whole file even when that takes several times Timeouts.Stall.
func TestSlowClientNotDropped(t *testing.T) {
	const size = 32 << 20
	dir := t.TempDir()
	bigFile(t, dir, size)
	const stall = 200 * time.Millisecond
	h, err := New(dir, Options{Timeouts: Timeouts{Stall: stall}})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveWith(t, h, 8)
	resp, err := http.Get("http://" + addr + "/big.img")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start := time.Now()
	var n int64
	for {
		// About 40 MiB/s: more than a second in all, past the socket buffers.
		time.Sleep(25 * time.Millisecond)
		m, err := io.CopyN(io.Discard, resp.Body, 1<<20)
		n += m
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes in %s: %v", n, time.Since(start), err)
		}
	}
	if n != size {
		t.Errorf("got %d bytes, want %d", n, size)
	}
	if d := time.Since(start); d < 2*stall {
		t.Logf("the download took %s only, less than twice Stall", d)
	}
}

// TestIdleConnClosed: keep-alive connections without a request, and connections that never
// send one, are closed after Timeouts.Idle and Timeouts.Header.
func TestIdleConnClosed(t *testing.T) {
	dir := testDir(t)
	h, err := New(dir, Options{Timeouts: Timeouts{Header: 300 * time.Millisecond, Idle: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveWith(t, h, 8)

	idle := dialSmall(t, addr)
	fmt.Fprintf(idle, "GET /data.bin HTTP/1.1\r\nHost: test\r\n\r\n")
	br := bufio.NewReader(idle)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); len(b) != 100 {
		t.Fatalf("got %d bytes, want 100", len(b))
	}
	resp.Body.Close()
	start := time.Now()
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err == nil || os.IsTimeout(err) {
		t.Errorf("idle keep-alive connection: %v after %s, want closed", err, time.Since(start))
	}

	silent := dialSmall(t, addr)
	if _, closed := waitClosed(silent, 10*time.Second); !closed {
		t.Error("a connection that sends no request is still open after 10s")
	}
}

// TestLimitListener: at most n connections are open; the next is served once one closes.
func TestLimitListener(t *testing.T) {
	h, err := New(testDir(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveWith(t, h, 2)
	get := func(c net.Conn) error {
		fmt.Fprintf(c, "GET /sub/a.txt HTTP/1.1\r\nHost: test\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	a, b, c := dialSmall(t, addr), dialSmall(t, addr), dialSmall(t, addr)
	if err := get(a); err != nil {
		t.Fatalf("first connection: %v", err)
	}
	if err := get(b); err != nil {
		t.Fatalf("second connection: %v", err)
	}
	if err := get(c); !os.IsTimeout(err) {
		t.Fatalf("third connection with two open: %v, want no answer", err)
	}
	a.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("third connection once the first closed: %v", err)
	}
	resp.Body.Close()
}

// TestLimitListenerClose: Close ends an Accept waiting for a slot.
func TestLimitListenerClose(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := LimitListener(inner, 1)
	go net.Dial("tcp", inner.Addr().String())
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	ln.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Accept after Close: no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept still waiting after Close")
	}
}

// TestMenuSpecialFiles: the menu file and its includes are regular files of at most
// bootmenu.MaxMenuSize; a FIFO blocked New in open(2).
func TestMenuSpecialFiles(t *testing.T) {
	dir := testDir(t)
	mkfifo(t, filepath.Join(dir, "fifo.cfg"))
	write(t, filepath.Join(dir, "big.cfg"), []byte(strings.Repeat("#\n", bootmenu.MaxMenuSize)))
	menus := t.TempDir()
	fifo := filepath.Join(menus, "fifo.yaml")
	mkfifo(t, fifo)
	withInclude := func(name, inc string) string {
		p := filepath.Join(menus, name)
		write(t, p, []byte("label a\n kernel vmlinuz\ninclude "+inc+"\n"))
		return p
	}
	for _, tc := range []struct {
		menu, want string
	}{
		{fifo, fifo + ": not a regular file"},
		{"/dev/zero", "/dev/zero: not a regular file"},
		{withInclude("inc-fifo.cfg", "fifo.cfg"), "include: fifo.cfg: fifo.cfg: " + errNotServable.Error()},
		{withInclude("inc-big.cfg", "big.cfg"), "include: big.cfg: big.cfg: " + bootmenu.ErrTooLarge.Error()},
		{withInclude("inc-dir.cfg", "sub"), "include: sub: sub: a directory, not a menu file"},
	} {
		done := make(chan error, 1)
		go func() {
			h, err := New(dir, Options{Menu: tc.menu})
			if err == nil {
				h.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("menu %s: error %v, want %q", tc.menu, err, tc.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("menu %s: New still running after 10s", tc.menu)
		}
	}
}
