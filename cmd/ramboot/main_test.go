package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ramboot/ramboot/loader"
)

func testImage(t *testing.T) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "etc/hostname", Typeflag: tar.TypeReg, Mode: 0o644, Size: 6})
	tw.Write([]byte("ramby\n"))
	tw.Close()
	return buf.Bytes()
}

func TestFetch(t *testing.T) {
	img := testImage(t)
	sum := sha256.Sum256(img)
	hexSum := hex.EncodeToString(sum[:])
	mux := http.NewServeMux()
	mux.HandleFunc("/rootfs.tar", func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(img))
	})
	mux.HandleFunc("/down.tar", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "restarting", http.StatusServiceUnavailable)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, tt := range []struct {
		name    string
		args    []string // DIR is appended when it is not in them
		wantErr string
	}{
		{name: "ok", args: []string{"--sha256", hexSum, srv.URL + "/rootfs.tar"}},
		{name: "flags after", args: []string{srv.URL + "/rootfs.tar", "DIR", "--sha256", hexSum}},
		{name: "mirror", args: []string{"--mirror", srv.URL + "/rootfs.tar", srv.URL + "/gone.tar"}},
		{name: "404", args: []string{srv.URL + "/gone.tar"}, wantErr: "fetch: " + srv.URL + "/gone.tar: HTTP 404 Not Found"},
		{name: "bad sum", args: []string{"--sha256", strings.Repeat("0", 64), srv.URL + "/rootfs.tar"}, wantErr: "expected sha256 " + strings.Repeat("0", 64) + ", got " + hexSum},
		{name: "retry budget", args: []string{"--retry", "300ms", srv.URL + "/down.tar"}, wantErr: "gave up retrying after "},
		{name: "no retry budget", args: []string{"--retry", "0", "--sha256", hexSum, srv.URL + "/down.tar"}, wantErr: "gave up retrying after "},
		{name: "bad retry", args: []string{"--retry", "-1s", srv.URL + "/rootfs.tar"}, wantErr: "--retry -1s"},
		{name: "usage", args: []string{srv.URL + "/rootfs.tar", "DIR", "extra"}, wantErr: "want URL DIR"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "root")
			args := []string{"fetch", "--attempts", "1"}
			hasDir := false
			for _, a := range tt.args {
				if a == "DIR" {
					a, hasDir = dir, true
				}
				args = append(args, a)
			}
			if !hasDir {
				args = append(args, dir)
			}
			var out, errb bytes.Buffer
			err := run(context.Background(), args, &out, &errb)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error is not one line: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, errb.String())
			}
			if b, err := os.ReadFile(filepath.Join(dir, "etc/hostname")); err != nil || string(b) != "ramby\n" {
				t.Errorf("extracted %q, %v", b, err)
			}
			if !strings.Contains(errb.String(), "2 entries") {
				t.Errorf("summary missing: %s", errb.String())
			}
		})
	}
}

func TestProgressLine(t *testing.T) {
	p := loader.Progress{Stage: loader.StageFetching, Read: 50 << 20, Total: 100 << 20, Rate: 10 << 20}
	got := progressLine("rootfs.tar.zst", p, 10)
	want := "rootfs.tar.zst [=====>    ]  50% 50.0 MiB/100.0 MiB 10.0 MiB/s ETA 0:05 fetching"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	p.Total = -1
	if got := progressLine("x", p, 10); got != "x 50.0 MiB 10.0 MiB/s fetching" {
		t.Errorf("unknown total: %q", got)
	}
}
