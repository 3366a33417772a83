package loader

import (
	"bytes"
	"context"
	"crypto/sha512"
	"errors"
	"hash"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// digestVerifier accepts exactly the bytes whose SHA-512 is want, and counts its resets.
type digestVerifier struct {
	h      hash.Hash
	want   []byte
	resets int
}

func newDigestVerifier(b []byte) *digestVerifier {
	s := sha512.Sum512(b)
	return &digestVerifier{h: sha512.New(), want: s[:]}
}

func (v *digestVerifier) Write(p []byte) (int, error) { return v.h.Write(p) }
func (v *digestVerifier) Reset()                      { v.h.Reset(); v.resets++ }
func (v *digestVerifier) Verify() error {
	if !bytes.Equal(v.h.Sum(nil), v.want) {
		return errors.New("digest differs")
	}
	return nil
}

// TestVerifiers: a verifier sees every byte once across resumed ranges, starts over with a
// download that restarts, and its refusal leaves the target empty, for Load and Download.
func TestVerifiers(t *testing.T) {
	img := append(tarOf(t, randomTree(7, 3<<20)), make([]byte, 8192)...)
	other := append(tarOf(t, randomTree(8, 2<<20)), make([]byte, 8192)...)
	flipped := bytes.Clone(img)
	flipped[len(flipped)-1] ^= 1 // in the archive's trailing zeros: the extraction cannot tell
	// A server per run: a faultServer's faults follow its request count.
	server := func() *httptest.Server {
		return serve(t, map[string]http.Handler{
			"/resumed.tar": &faultServer{content: img, cuts: []int64{int64(len(img)) / 3, int64(len(img)) * 2 / 3}},
			"/changed.tar": &faultServer{content: other, next: img, cuts: []int64{int64(len(other)) / 2}},
			"/flipped.tar": &faultServer{content: flipped},
		})
	}
	for _, tt := range []struct {
		path   string
		want   string
		resets int
	}{
		{"/resumed.tar", "", 1},
		{"/changed.tar", "", 2},
		{"/flipped.tar", "digest differs", 1},
	} {
		for _, dl := range []bool{false, true} {
			srv, v := server(), newDigestVerifier(img)
			dir := filepath.Join(t.TempDir(), "root")
			opts := Options{NoSidecar: true, NoOwners: true, Fetcher: testFetcher(), Verifiers: []Verifier{v}}
			var err error
			if dl {
				_, err = Download(context.Background(), filepath.Join(t.TempDir(), "f"), []string{srv.URL + tt.path}, opts)
			} else {
				_, err = Load(context.Background(), dir, []string{srv.URL + tt.path}, opts)
			}
			name := tt.path
			if dl {
				name += " (Download)"
			}
			if tt.want == "" {
				if err != nil {
					t.Errorf("%s: %v", name, err)
				}
			} else if err == nil || !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: error %v, want ErrVerify %q", name, err, tt.want)
			}
			if v.resets != tt.resets {
				t.Errorf("%s: %d resets, want %d", name, v.resets, tt.resets)
			}
			if !dl && tt.want != "" {
				assertEmpty(t, dir)
			}
		}
	}
}
