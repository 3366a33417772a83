package loader

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

func TestDownload(t *testing.T) {
	data := bytes.Repeat([]byte("kernel"), 300000)
	srv := serve(t, map[string]http.Handler{
		"/vmlinuz":    &faultServer{content: data, cuts: []int64{700000}},
		"/bad":        &faultServer{content: data},
		"/bad.sha256": &faultServer{content: []byte(sha([]byte("x")) + "  bad\n")},
	})
	dst := filepath.Join(t.TempDir(), "vmlinuz")
	res, err := Download(context.Background(), dst, []string{srv.URL + "/vmlinuz"}, Options{Fetcher: testFetcher(), SHA256: sha(data)})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) || !res.Verified {
		t.Fatalf("downloaded %d bytes, verified %v", len(got), res.Verified)
	}
	_, err = Download(context.Background(), dst, []string{srv.URL + "/bad"}, Options{Fetcher: testFetcher()})
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("error %v, want ErrChecksum from the .sha256 file", err)
	}
	if _, err := os.Stat(dst); err == nil {
		t.Error("unverified file left behind")
	}
}
