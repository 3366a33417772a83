package boot

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/ramboot/ramboot/internal/hooks"
	"github.com/ramboot/ramboot/internal/trust"
	"github.com/ramboot/ramboot/loader"
)

// signAs signs data as the file name with key, in minisign's prehashed form.
func signAs(key minisign.PrivateKey, name string, data []byte) []byte {
	r := minisign.NewReader(bytes.NewReader(data))
	io.Copy(io.Discard, r)
	return r.SignWithComments(key, "timestamp:1\tfile:"+name+"\thashed", "test")
}

// trustServer serves files from a map and logs the paths asked for.
type trustServer struct {
	*httptest.Server
	mu    sync.Mutex
	files map[string][]byte
	asked []string
}

func newTrustServer(t *testing.T) *trustServer {
	s := &trustServer{files: map[string][]byte{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.asked = append(s.asked, r.URL.Path)
		b, ok := s.files[r.URL.Path]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, "", timeZero, bytes.NewReader(b))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *trustServer) put(path string, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[path] = b
}

func (s *trustServer) fetched(path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.asked {
		if p == path {
			return true
		}
	}
	return false
}

// bootableImage is a tar with an executable /sbin/init, ending in the usual zero blocks.
func bootableImage() []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "sbin/", Typeflag: tar.TypeDir, Mode: 0o755})
	body := []byte("#!/bin/sh\n")
	tw.WriteHeader(&tar.Header{Name: "sbin/init", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(body))})
	tw.Write(body)
	tw.Close()
	return buf.Bytes()
}

func keys(t *testing.T) (minisign.PublicKey, minisign.PrivateKey) {
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func TestMenuSignatures(t *testing.T) {
	pub, priv := keys(t)
	_, other := keys(t)
	srv := newTrustServer(t)
	menu := []byte("title: signed\nentries:\n  - {name: off, action: poweroff}\n")
	tampered := bytes.Replace(menu, []byte("signed"), []byte("signet"), 1)
	srv.put("/good.yaml", menu)
	srv.put("/good.yaml.minisig", signAs(priv, "good.yaml", menu))
	srv.put("/nosig.yaml", menu)
	srv.put("/wrongkey.yaml", menu)
	srv.put("/wrongkey.yaml.minisig", signAs(other, "wrongkey.yaml", menu))
	srv.put("/tampered.yaml", tampered)
	srv.put("/tampered.yaml.minisig", signAs(priv, "tampered.yaml", menu))
	// A valid signature of another file, served as this one's.
	srv.put("/replayed.yaml", menu)
	srv.put("/replayed.yaml.minisig", signAs(priv, "good.yaml", menu))
	var logs []string
	b := &Booter{Policy: &trust.Policy{Keys: []minisign.PublicKey{pub}}, Logf: func(f string, a ...any) {
		logs = append(logs, strings.TrimSpace(strings.ReplaceAll(sprintf(f, a...), "\t", " ")))
	}}
	for _, tt := range []struct{ name, want string }{
		{"good.yaml", ""},
		{"nosig.yaml", "no signature at " + srv.URL + "/nosig.yaml.minisig"},
		{"wrongkey.yaml", "which is not a trust anchor"},
		{"tampered.yaml", "bad signature by key"},
		{"replayed.yaml", "the signature is for file good.yaml, not replayed.yaml"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := b.LoadMenu(context.Background(), srv.URL+"/"+tt.name)
			if tt.want == "" {
				if err != nil || !m.Trusted || !m.Entries[0].Pinned {
					t.Fatalf("signed menu: %v (trusted %v)", err, m != nil && m.Trusted)
				}
				if !strings.Contains(strings.Join(logs, "\n"), "trusted comment: timestamp:1 file:good.yaml hashed") {
					t.Errorf("the trusted comment is not in the log:\n%s", strings.Join(logs, "\n"))
				}
				return
			}
			if err == nil || !errors.Is(err, trust.ErrUntrusted) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), tt.name) {
				t.Errorf("error %q: want one line naming the file", err)
			}
		})
	}
	// Without anchors, nothing is asked for and the menu is not trusted.
	srv.asked = nil
	m, err := (&Booter{Logf: t.Logf}).LoadMenu(context.Background(), srv.URL+"/nosig.yaml")
	if err != nil || m.Trusted || srv.fetched("/nosig.yaml.minisig") {
		t.Fatalf("no anchors: %v, trusted %v, asked %v", err, m != nil && m.Trusted, srv.asked)
	}
}

func TestImageSignatures(t *testing.T) {
	pub, priv := keys(t)
	srv := newTrustServer(t)
	img := bootableImage()
	sum := sha256.Sum256(img)
	// The last block is end-of-archive zeros: a flipped byte there changes nothing extracted,
	// only the signature can tell.
	tampered := bytes.Clone(img)
	tampered[len(tampered)-1] ^= 1
	srv.put("/signed.tar", img)
	srv.put("/signed.tar.minisig", signAs(priv, "signed.tar", img))
	srv.put("/tampered.tar", tampered)
	srv.put("/tampered.tar.minisig", signAs(priv, "tampered.tar", img))
	srv.put("/replayed.tar", img)
	srv.put("/replayed.tar.minisig", signAs(priv, "signed.tar", img))
	srv.put("/unsigned.tar", img)
	srv.put("/legacy.tar", img)
	srv.put("/legacy.tar.minisig", minisign.SignWithComments(priv, img, "timestamp:1\tfile:legacy.tar", "legacy"))
	for _, tt := range []struct {
		name   string
		pinned bool
		sha    string
		want   string
		noGet  bool // the image itself must not be fetched
	}{
		{name: "signed.tar"},
		{name: "unsigned.tar", pinned: true, sha: hex.EncodeToString(sum[:])},
		{name: "tampered.tar", want: "bad signature by key"},
		{name: "replayed.tar", want: "the signature is for file signed.tar, not replayed.tar", noGet: true},
		{name: "unsigned.tar", want: "no signature at " + srv.URL + "/unsigned.tar.minisig (and no signed menu pins it)", noGet: true},
		{name: "unsigned.tar", pinned: true, want: "(and the signed menu gives no sha256 for it)", noGet: true},
		{name: "legacy.tar", want: "legacy (not prehashed) signature", noGet: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv.asked = nil
			root := filepath.Join(t.TempDir(), "root")
			b := &Booter{Root: root, Hooks: hooks.Runner{Dir: filepath.Join(root, "..", "hooks")}, Logf: t.Logf,
				Policy: &trust.Policy{Keys: []minisign.PublicKey{pub}}}
			p := Plan{Name: "x", Pinned: tt.pinned, Ramroot: &RamrootPlan{Image: Image{URLs: []string{srv.URL + "/" + tt.name}, SHA256: tt.sha}}}
			exec, err := b.Prepare(context.Background(), p, nil)
			names, _ := os.ReadDir(root)
			if tt.want == "" {
				if err != nil || exec == nil || len(names) == 0 {
					t.Fatalf("err %v, root holds %d entries", err, len(names))
				}
				return
			}
			if err == nil || !errors.Is(err, trust.ErrUntrusted) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if len(names) != 0 {
				t.Errorf("the root holds %d entries after a refused image", len(names))
			}
			if tt.noGet && srv.fetched("/"+tt.name) {
				t.Errorf("%s was fetched though it was refused first", tt.name)
			}
			if strings.Contains(tt.want, "bad signature") && !errors.Is(err, loader.ErrVerify) {
				t.Errorf("error %v does not wrap loader.ErrVerify", err)
			}
		})
	}
}

// TestKexecFilesSigned: a kernel with a bad signature is not kept (nothing to kexec).
func TestKexecFilesSigned(t *testing.T) {
	pub, priv := keys(t)
	srv := newTrustServer(t)
	kernel := bytes.Repeat([]byte("k"), 5000)
	srv.put("/vmlinuz", append(bytes.Clone(kernel[:4999]), 'x'))
	srv.put("/vmlinuz.minisig", signAs(priv, "vmlinuz", kernel))
	b := &Booter{Logf: t.Logf, Policy: &trust.Policy{Keys: []minisign.PublicKey{pub}}}
	_, err := b.Prepare(context.Background(), Plan{Name: "k", Kexec: &KexecPlan{Kernel: Image{URLs: []string{srv.URL + "/vmlinuz"}}}}, nil)
	if err == nil || !strings.Contains(err.Error(), "fetching kernel") || !strings.Contains(err.Error(), "bad signature") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat("/tmp/kexec/kernel"); err == nil {
		t.Error("the kernel that failed its signature was kept")
	}
}

func TestRegistryDigestCoverage(t *testing.T) {
	pub, _ := keys(t)
	b := &Booter{Logf: t.Logf, Policy: &trust.Policy{Keys: []minisign.PublicKey{pub}}}
	digest := "docker://registry.lab:5000/rescue@sha256:" + strings.Repeat("ab", 32)
	plan := func(u string, pinned bool) Plan {
		return Plan{Name: "oci", Pinned: pinned, Ramroot: &RamrootPlan{Image: Image{URLs: []string{u}}}}
	}
	if _, err := b.checkPlan(context.Background(), plan(digest, true)); err != nil {
		t.Errorf("a digest-pinned reference in a signed menu: %v", err)
	}
	for _, p := range []Plan{plan(digest, false), plan("docker://registry.lab:5000/rescue:latest", true)} {
		if _, err := b.checkPlan(context.Background(), p); err == nil || !strings.Contains(err.Error(), "pinned with @sha256: in a signed menu") {
			t.Errorf("%s (pinned %v): err %v", p.Ramroot.Image.URLs[0], p.Pinned, err)
		}
	}
}

var timeZero = time.Time{}

func sprintf(f string, a ...any) string { return fmt.Sprintf(f, a...) }
