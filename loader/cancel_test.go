package loader

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCancelAfterDownload: cancelling once the whole image has arrived ends the load during
// extraction (it used to go on to the end: 7.5 s on a large image), with an error wrapping
// context.Canceled, and leaves the directory empty.
func TestCancelAfterDownload(t *testing.T) {
	// Thousands of small files: the image is small (downloaded at once), extracting it is not.
	var es []entry
	for i := range 20000 {
		es = append(es, entry{hdr: tar.Header{Name: fmt.Sprintf("f%05d", i), Typeflag: tar.TypeReg, Mode: 0o644, ModTime: epoch},
			data: bytes.Repeat([]byte{byte(i)}, 100)})
	}
	plain := tarOf(t, es)
	img := zstdOf(t, plain)
	srv := serve(t, map[string]http.Handler{"/img": &faultServer{content: img}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var cancelled bool
	var after []Progress // reports after the cancel
	progress := func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		if cancelled {
			after = append(after, p)
			return
		}
		if p.Read == int64(len(img)) && p.Extracted > 0 {
			cancelled = true
			cancel()
		}
	}
	dir := t.TempDir()
	_, err := Load(ctx, dir, []string{srv.URL + "/img"}, Options{Fetcher: testFetcher(), NoSidecar: true, Progress: progress})
	t.Logf("error: %v", err)
	mu.Lock()
	defer mu.Unlock()
	if !cancelled {
		t.Skip("extraction ended before a progress report: nothing to cancel")
	}
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "while extracting") {
		t.Fatalf("error %v, want context.Canceled while extracting", err)
	}
	for _, p := range after {
		if p.Stage >= StageVerifying || p.Extracted == int64(len(plain)) {
			t.Errorf("after the cancel, the load went on: %+v", p)
		}
	}
	assertEmpty(t, dir)
}

// TestCancelSidecar: cancelling while the checksum file is being fetched ends the load.
func TestCancelSidecar(t *testing.T) {
	img := zstdOf(t, tarOf(t, randomTree(41, 64<<10)))
	asked := make(chan struct{}, 1)
	hang := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-time.After(hangGuard):
		}
	})
	srv := serve(t, map[string]http.Handler{"/img": &faultServer{content: img}, "/img.sha256": hang})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-asked; cancel() }()
	dir := t.TempDir()
	_, err := Load(ctx, dir, []string{srv.URL + "/img"}, Options{Fetcher: testFetcher()})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "checksum file "+srv.URL+"/img.sha256") {
		t.Fatalf("error %v, want context.Canceled naming the checksum file", err)
	}
	assertEmpty(t, dir)
}

// TestProgressSlowLink: on a slow link, progress shows the bytes as they arrive and the stage
// turns to fetching at the first byte (it said "connecting, 0 B" until half a megabyte had
// arrived).
func TestProgressSlowLink(t *testing.T) {
	img := zstdOf(t, tarOf(t, randomTree(42, 1<<20)))
	if len(img) < 600<<10 {
		t.Fatalf("image of %d bytes, want more than half the readahead's buffer", len(img))
	}
	slow := &trickleServer{content: img, chunk: 8 << 10, every: 5 * time.Millisecond}
	srv := serve(t, map[string]http.Handler{"/img": slow})
	var mu sync.Mutex
	var seen []Progress
	progress := func(p Progress) {
		mu.Lock()
		seen = append(seen, p)
		mu.Unlock()
	}
	f := testFetcher()
	if _, err := Load(context.Background(), t.TempDir(), []string{srv.URL + "/img"}, Options{Fetcher: f, NoSidecar: true, Progress: progress}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	early := 0
	for i, p := range seen {
		if p.Stage == StageConnecting && p.Read > 0 {
			t.Errorf("report %d: %d bytes read, still connecting", i, p.Read)
		}
		if p.Stage == StageFetching && p.Read > 0 && p.Read < 256<<10 {
			early++
			if p.Total != int64(len(img)) {
				t.Errorf("report %d: total %d, want %d", i, p.Total, len(img))
			}
		}
	}
	if early == 0 {
		t.Errorf("no report while the first 256 KiB arrived: %+v", seen[:min(len(seen), 5)])
	}
}
