package loader

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// smallTmpfs mounts a 1 MiB tmpfs, like a too-small ramroot.size.
func smallTmpfs(t *testing.T) string {
	t.Helper()
	needRoot(t)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

func TestSpace(t *testing.T) {
	plain := tarOf(t, randomTree(12, 3<<20))
	for _, tt := range []struct {
		name  string
		data  []byte
		early bool // refused before extracting, from a size known up front
	}{
		{"tar", plain, true},
		{"zstd frame size", zstdOf(t, plain), true},
		{"xz index", xzOf(t, plain), true},
		{"gzip runs out", gzipOf(t, plain), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := smallTmpfs(t)
			srv := serve(t, map[string]http.Handler{"/img": &faultServer{content: tt.data}})
			var fetched int64
			_, err := Load(context.Background(), dir, []string{srv.URL + "/img"}, Options{
				Fetcher: testFetcher(), NoSidecar: true,
				Progress: func(p Progress) { fetched = p.Extracted },
			})
			if !errors.Is(err, ErrNoSpace) {
				t.Fatalf("error %v, want ErrNoSpace", err)
			}
			if tt.early != strings.Contains(err.Error(), " free") {
				t.Errorf("early=%v but error is %q", tt.early, err)
			}
			if tt.early && fetched > 0 {
				t.Errorf("extracted %d bytes before refusing", fetched)
			}
			assertEmpty(t, dir)
		})
	}
	t.Run("fits", func(t *testing.T) {
		dir := smallTmpfs(t)
		small := randomTree(13, 100<<10)
		p := filepath.Join(t.TempDir(), "small.tar")
		writeFile(p, tarOf(t, small))
		if _, err := Load(context.Background(), dir, []string{p}, Options{}); err != nil {
			t.Fatal(err)
		}
		checkTree(t, dir, small)
	})
}

func TestProgress(t *testing.T) {
	img := zstdOf(t, tarOf(t, randomTree(14, 2<<20)))
	srv := serve(t, map[string]http.Handler{"/img": &faultServer{content: img}})
	var got []Progress
	res, err := Load(context.Background(), t.TempDir(), []string{srv.URL + "/img"}, Options{
		Fetcher: testFetcher(), NoSidecar: true,
		Progress: func(p Progress) { got = append(got, p) },
	})
	if err != nil {
		t.Fatal(err)
	}
	var stages []Stage
	for i, p := range got {
		if len(stages) == 0 || stages[len(stages)-1] != p.Stage {
			stages = append(stages, p.Stage)
		}
		if i > 0 && (p.Read < got[i-1].Read || p.Extracted < got[i-1].Extracted) {
			t.Errorf("progress went back: %+v after %+v", p, got[i-1])
		}
	}
	if want := []Stage{StageConnecting, StageFetching, StageVerifying, StageDone}; !equalStages(stages, want) {
		t.Errorf("stages %v, want %v", stages, want)
	}
	last := got[len(got)-1]
	if last.Read != int64(len(img)) || last.Total != int64(len(img)) || last.Extracted != res.Uncompressed || last.URL != srv.URL+"/img" {
		t.Errorf("last progress %+v, result %+v", last, res)
	}
}

func equalStages(a, b []Stage) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
