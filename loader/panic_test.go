package loader

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// isPanicErr reports whether err is a contained panic that tells what and where.
func isPanicErr(err error, value string) bool {
	return errors.Is(err, ErrPanic) && strings.Contains(err.Error(), value) && strings.Contains(err.Error(), "goroutine ")
}

// panicReader returns the first n bytes of r, then panics.
type panicReader struct {
	r io.Reader
	n int
}

func (p *panicReader) Read(b []byte) (int, error) {
	if p.n <= 0 {
		panic("reader bug")
	}
	k, err := p.r.Read(b[:min(len(b), p.n)])
	p.n -= k
	return k, err
}

func (p *panicReader) Close() error { return nil }

func TestReadaheadPanic(t *testing.T) {
	data := bytes.Repeat([]byte("ramboot "), 64<<10)
	for _, tt := range []struct {
		name string
		r    io.ReadCloser
	}{
		{"readahead", newReadahead(&panicReader{r: bytes.NewReader(data), n: 100 << 10}, nil, nil, 2, 64<<10)},
		{"decompressor", goReader(&panicReader{r: bytes.NewReader(data), n: 100 << 10}, 2, 64<<10)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, err := io.Copy(io.Discard, tt.r)
			tt.r.Close()
			if !isPanicErr(err, "reader bug") {
				t.Errorf("error %v, want ErrPanic with the value and the stack", err)
			}
			if n != 100<<10 {
				t.Errorf("read %d bytes before the panic, want %d", n, 100<<10)
			}
		})
	}
}

// inReadahead reports whether the caller runs on a readahead goroutine.
func inReadahead() bool {
	pc := make([]uintptr, 64)
	frames := runtime.CallersFrames(pc[:runtime.Callers(2, pc)])
	for {
		f, more := frames.Next()
		if strings.HasSuffix(f.Function, "(*readahead).fill") {
			return true
		}
		if !more {
			return false
		}
	}
}

// TestProgressPanic: a panicking Progress callback fails the load and leaves nothing behind,
// whether it runs on Load's goroutine or (while fetching) on the readahead's.
func TestProgressPanic(t *testing.T) {
	es := randomTree(22, 2<<20)
	img := zstdOf(t, tarOf(t, es))
	// At 4 MiB/s the image takes long enough for progress calls while fetching, which for
	// Load come from the readahead goroutine.
	srv := serve(t, map[string]http.Handler{"/img": &trickleServer{content: img, chunk: 40 << 10, every: 10 * time.Millisecond}})
	for _, tt := range []struct {
		name string
		when func(p Progress, fetching int) bool
	}{
		{"before any byte", func(p Progress, _ int) bool { return p.Read == 0 }},
		// The third call made by the readahead goroutine itself: the meter's ticks also come
		// from the extractor's goroutine while the stage is still fetching.
		{"while fetching", func(p Progress, fetching int) bool { return fetching == 3 }},
		{"at the end", func(p Progress, _ int) bool { return p.Stage == StageDone }},
	} {
		// For Load, only calls made by the readahead goroutine count as fetching.
		progress := func(load bool) func(Progress) {
			fetching := 0
			return func(p Progress) {
				counts := p.Stage == StageFetching && (!load || inReadahead())
				if counts {
					fetching++
				}
				if tt.when(p, fetching) && (counts || tt.name != "while fetching") {
					panic("progress bug")
				}
			}
		}
		t.Run("load "+tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := Load(context.Background(), dir, []string{srv.URL + "/img"}, Options{Fetcher: testFetcher(), NoSidecar: true, Progress: progress(true)})
			if !isPanicErr(err, "progress bug") {
				t.Fatalf("error %v, want ErrPanic with the value and the stack", err)
			}
			// Load's goroutine reports StageFetching once; the other calls come from the
			// readahead.
			if tt.name == "while fetching" && !strings.Contains(err.Error(), "(*readahead).fill") {
				t.Errorf("panic not in the readahead goroutine: %v", err)
			}
			assertEmpty(t, dir)
		})
		t.Run("download "+tt.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "img")
			_, err := Download(context.Background(), dst, []string{srv.URL + "/img"}, Options{Fetcher: testFetcher(), NoSidecar: true, Progress: progress(false)})
			if !isPanicErr(err, "progress bug") {
				t.Fatalf("error %v, want ErrPanic with the value and the stack", err)
			}
			if _, err := os.Stat(dst); !os.IsNotExist(err) {
				t.Errorf("%s left behind: %v", dst, err)
			}
		})
	}
}
