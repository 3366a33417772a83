package loader

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// TestLoadIPv6Literal: an image at http://[::1]:PORT/ loads, with its sidecar checksum fetched
// from the same literal host and a download cut in the middle resumed with a Range request —
// the URL handling IPv6-only networks (DHCPv6's boot file URL, ramroot=http://[fd00::1]/…)
// depend on.
func TestLoadIPv6Literal(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no IPv6 loopback (CI is set): %v", err)
		}
		t.Skipf("no IPv6 loopback: %v", err)
	}
	es := randomTree(7, 1<<20)
	img := zstdOf(t, tarOf(t, es))
	sum := sha256.Sum256(img)
	fs := &faultServer{content: img, cuts: []int64{int64(len(img) / 2)}}
	mux := http.NewServeMux()
	mux.Handle("/x.tar.zst", fs)
	mux.HandleFunc("/x.tar.zst.sha256", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(hex.EncodeToString(sum[:]) + "  x.tar.zst\n"))
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	u := srv.URL + "/x.tar.zst"
	if !strings.HasPrefix(u, "http://[::1]:") {
		t.Fatalf("server URL %s", u)
	}
	dir := t.TempDir()
	if _, err := Load(context.Background(), dir, []string{u}, Options{Fetcher: testFetcher()}); err != nil {
		t.Fatal(err)
	}
	checkTree(t, dir, es)
	if fs.requests != 2 || fs.ranges[1] == "" {
		t.Errorf("%d requests, ranges %q: want the cut download resumed", fs.requests, fs.ranges)
	}
	if got := sidecarURL(u); got != srv.URL+"/x.tar.zst.sha256" {
		t.Errorf("sidecar URL %s", got)
	}
}
