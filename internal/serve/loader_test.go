package serve

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ramboot/ramboot/loader"
)

// cutter cuts the first full (Range-less) response for path after n body bytes, as a broken
// connection would.
type cutter struct {
	h    http.Handler
	path string
	n    int
	done atomic.Bool
}

func (c *cutter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == c.path && r.Header.Get("Range") == "" && c.done.CompareAndSwap(false, true) {
		w = &cutWriter{ResponseWriter: w, left: c.n}
	}
	c.h.ServeHTTP(w, r)
}

type cutWriter struct {
	http.ResponseWriter
	left int
}

func (w *cutWriter) Write(p []byte) (int, error) {
	if len(p) <= w.left {
		w.left -= len(p)
		return w.ResponseWriter.Write(p)
	}
	n, _ := w.ResponseWriter.Write(p[:w.left])
	w.left = 0
	// Close the connection in the middle of the body: the client sees a short read, the
	// handler a failed write, as when a cable is pulled.
	rc := http.NewResponseController(w.ResponseWriter)
	rc.Flush()
	if conn, _, err := rc.Hijack(); err == nil {
		conn.Close()
	}
	return n, errors.New("connection cut")
}

// TestLoaderResumes proves Range works with ramboot's own client: loader.Load fetches an
// image whose first response is cut, resumes it with Range and If-Range, and verifies it
// against the sidecar.
func TestLoaderResumes(t *testing.T) {
	dir := t.TempDir()
	// An image of badly compressible files, about 1 MiB.
	r := rand.New(rand.NewPCG(1, 2))
	files := map[string][]byte{}
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	tw.WriteHeader(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755})
	for i := range 4 {
		data := make([]byte, 256<<10)
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		name := filepath.Join("etc", "f"+string(rune('a'+i)))
		files[name] = data
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))})
		tw.Write(data)
	}
	tw.Close()
	var img bytes.Buffer
	zw := gzip.NewWriter(&img)
	zw.Write(tarBuf.Bytes())
	zw.Close()
	sum := sha256.Sum256(img.Bytes())
	write(t, filepath.Join(dir, "rescue.tar.gz"), img.Bytes())
	write(t, filepath.Join(dir, "rescue.tar.gz.sha256"), []byte(hex.EncodeToString(sum[:])+"  rescue.tar.gz\n"))

	rec := &logRec{}
	h, err := New(dir, Options{Logf: rec.logf})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	const cutAt = 300 << 10
	srv := httptest.NewServer(&cutter{h: h, path: "/rescue.tar.gz", n: cutAt})
	defer srv.Close()

	var fetchLog logRec
	out := filepath.Join(t.TempDir(), "root")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := loader.Load(ctx, out, []string{srv.URL + "/rescue.tar.gz"}, loader.Options{
		Fetcher:        &loader.Fetcher{Backoff: 10 * time.Millisecond, Logf: fetchLog.logf},
		Logf:           fetchLog.logf,
		NoOwners:       true,
		SkipSpaceCheck: true,
	})
	if err != nil {
		t.Fatalf("loader.Load: %v\nloader log:\n%s\nserver log:\n%s", err, strings.Join(fetchLog.all(), "\n"), strings.Join(rec.all(), "\n"))
	}
	if !res.Verified || res.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("result: verified %v, sha256 %s; want verified against the sidecar", res.Verified, res.SHA256)
	}
	for name, data := range files {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: extracted wrongly (%v)", name, err)
		}
	}

	// The server saw the cut request and a resume at the byte where it was cut.
	logs := strings.Join(rec.all(), "\n")
	cut := regexp.MustCompile(`(?m) GET /rescue\.tar\.gz 200 (\d+) `)
	resume := regexp.MustCompile(`(?m) GET /rescue\.tar\.gz 206 \d+ \S+ range=bytes=(\d+)-$`)
	mc, mr := cut.FindStringSubmatch(logs), resume.FindStringSubmatch(logs)
	if mc == nil || mr == nil || mc[1] != mr[1] {
		t.Errorf("server log shows no cut response resumed where it was cut:\n%s", logs)
	}
	if !strings.Contains(strings.Join(fetchLog.all(), "\n"), "resumed at byte") {
		t.Errorf("loader log shows no resume:\n%s", strings.Join(fetchLog.all(), "\n"))
	}
}
