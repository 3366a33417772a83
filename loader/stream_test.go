package loader

import (
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// hangGuard bounds a wait that must end; it is no timing assertion, only a way for a hang to
// fail the test rather than the whole run.
const hangGuard = 30 * time.Second

// TestStreamClose: Close may come from another goroutine at any time, also while Read waits
// for the network, together with the getters; the Read returns, and later ones fail.
func TestStreamClose(t *testing.T) {
	img := zstdOf(t, tarOf(t, randomTree(23, 256<<10)))
	slow := &trickleServer{content: img, chunk: 10, every: 50 * time.Millisecond}
	srv := serve(t, map[string]http.Handler{"/img": slow})
	local := filepath.Join(t.TempDir(), "img")
	if err := writeFile(local, img); err != nil {
		t.Fatal(err)
	}
	for name, u := range map[string]string{"http": srv.URL + "/img", "local": local} {
		t.Run(name, func(t *testing.T) {
			s, err := testFetcher().Open(context.Background(), u)
			if err != nil {
				t.Fatal(err)
			}
			first := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				buf := make([]byte, 4096)
				var err error
				for n := 0; err == nil; n++ {
					_, err = s.Read(buf)
					if n == 0 {
						close(first)
					}
				}
				done <- err
			}()
			<-first
			go func() { s.URL(); s.Size(); s.Offset() }()
			var b [4]byte
			s.ReadAt(b[:], 0)
			s.Close()
			s.Close()
			select {
			case err := <-done:
				if err == io.EOF {
					break // the local file may be read to its end first
				}
				if !errors.Is(err, errClosed) {
					t.Errorf("Read after Close: %v, want errClosed", err)
				}
			case <-time.After(hangGuard):
				t.Fatal("Read still blocked after Close")
			}
			if _, err := s.Read(b[:]); err == nil {
				t.Error("Read after Close succeeded")
			}
		})
	}
}

// TestLoadSmallLocalXZ: a local xz image small enough to be read to its end before the space
// check reads its index (once a panic: the check used the file the stream had closed).
func TestLoadSmallLocalXZ(t *testing.T) {
	es := randomTree(24, 200<<10)
	img := xzOf(t, tarOf(t, es))
	if len(img) >= 1<<20 {
		t.Fatalf("image of %d bytes, want less than the readahead's buffer", len(img))
	}
	p := filepath.Join(t.TempDir(), "s.tar.xz")
	if err := writeFile(p, img); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	res, err := Load(context.Background(), dir, []string{p}, Options{NoSidecar: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Format != FormatXZ || res.Size != int64(len(img)) {
		t.Errorf("result %+v", res)
	}
	checkTree(t, dir, es)
}
