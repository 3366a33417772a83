package trust

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"aead.dev/minisign"

	"github.com/ramboot/ramboot/internal/vmtest"
)

func newKey(t *testing.T) (minisign.PublicKey, minisign.PrivateKey) {
	t.Helper()
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func prehashed(priv minisign.PrivateKey, comment string, data []byte) []byte {
	r := minisign.NewReader(bytes.NewReader(data))
	io.Copy(io.Discard, r)
	return r.SignWithComments(priv, comment, "test")
}

// stream feeds data to a Stream in uneven writes, as the loader's reads arrive.
func stream(v *Stream, data []byte) error {
	for len(data) > 0 {
		n := min(len(data), 1000+len(data)%777)
		v.Write(data[:n])
		data = data[n:]
	}
	return v.Verify()
}

func TestVerifyAndStream(t *testing.T) {
	pub, priv := newKey(t)
	otherPub, otherPriv := newKey(t)
	p := &Policy{Keys: []minisign.PublicKey{pub}}
	data := bytes.Repeat([]byte("ramboot image "), 10000)
	good := prehashed(priv, "timestamp:1\tfile:rescue.tar.zst\thashed", data)
	flipped := bytes.Clone(data)
	flipped[len(flipped)-1] ^= 0x20 // a byte of the last block

	if s, err := p.Verify("rescue.tar.zst", data, good); err != nil || !strings.Contains(s.TrustedComment, "file:rescue.tar.zst") {
		t.Fatalf("good: %v", err)
	}
	v, err := p.NewStream([]string{"http://boot/rescue.tar.zst"}, good)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream(v, data); err != nil {
		t.Errorf("good stream: %v", err)
	}
	// A restarted download: Reset, then the whole file again.
	v.Reset()
	if err := stream(v, data); err != nil {
		t.Errorf("stream after Reset: %v", err)
	}
	v.Reset()
	if err := stream(v, flipped); err == nil || !errors.Is(err, ErrUntrusted) {
		t.Errorf("flipped byte in the last block: %v", err)
	}
	v.Reset()
	if err := stream(v, data[:len(data)-1]); err == nil {
		t.Error("a truncated stream verified")
	}
	for _, tt := range []struct {
		name string
		p    *Policy
		sig  []byte
		data []byte
		want string
	}{
		{"tampered", p, good, flipped, "bad signature"},
		{"wrong key", p, prehashed(otherPriv, "file:rescue.tar.zst", data), data, "not a trust anchor"},
		{"replayed", p, prehashed(priv, "timestamp:1\tfile:old.tar.zst\thashed", data), data, "for file old.tar.zst, not rescue.tar.zst"},
		{"no file named", p, prehashed(priv, "timestamp:1", data), data, "names no file"},
		{"garbage", p, []byte("untrusted comment: x\nnot base64!\n"), data, "unreadable signature"},
		{"comment changed", p, bytes.Replace(good, []byte("timestamp:1"), []byte("timestamp:2"), 1), data, "bad signature"},
		{"other anchor set", &Policy{Keys: []minisign.PublicKey{otherPub}}, good, data, "not a trust anchor"},
	} {
		if _, err := tt.p.Verify("rescue.tar.zst", tt.data, tt.sig); err == nil || !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Verify: %v, want %q", tt.name, err, tt.want)
		}
	}
	// Mirrors may name the file differently; the comment must name one of them.
	if _, err := p.NewStream([]string{"http://a/x.tar", "http://b/rescue.tar.zst"}, good); err != nil {
		t.Errorf("mirror's name: %v", err)
	}
}

func TestLoadPolicyFailsClosed(t *testing.T) {
	dir := t.TempDir()
	if p := LoadPolicy(dir); p.Enabled() {
		t.Fatal("no anchors, yet enabled")
	}
	pub, _ := newKey(t)
	text, _ := pub.MarshalText()
	os.WriteFile(filepath.Join(dir, "a.pub"), text, 0o644)
	os.WriteFile(filepath.Join(dir, "b.pub"), []byte("junk"), 0o644)
	p := LoadPolicy(dir)
	if !p.Enabled() || len(p.Keys) != 1 || len(p.Broken) != 1 {
		t.Fatalf("keys %d broken %d", len(p.Keys), len(p.Broken))
	}
	os.Remove(filepath.Join(dir, "a.pub"))
	if p := LoadPolicy(dir); !p.Enabled() {
		t.Error("only a broken anchor: verification is off")
	}
}

func TestSigURLAndFileName(t *testing.T) {
	for _, tt := range []struct{ u, sig, name string }{
		{"http://boot/img/rescue.tar.zst", "http://boot/img/rescue.tar.zst.minisig", "rescue.tar.zst"},
		{"http://boot/menu.yaml?mac=1", "http://boot/menu.yaml.minisig?mac=1", "menu.yaml"},
		{"/rootfs/a.tar", "/rootfs/a.tar.minisig", "a.tar"},
	} {
		if got := SigURL(tt.u); got != tt.sig {
			t.Errorf("SigURL(%s) = %s, want %s", tt.u, got, tt.sig)
		}
		if got := FileName(tt.u); got != tt.name {
			t.Errorf("FileName(%s) = %s, want %s", tt.u, got, tt.name)
		}
	}
	if !Pinned("docker://r:5000/x@sha256:"+strings.Repeat("0f", 32), "") || Pinned("docker://r/x:latest", "") || Pinned("http://x/y", "") {
		t.Error("Pinned")
	}
}

// TestMinisignInterop: the minisign tool (Debian's) signs, ramboot verifies, streamed too.
func TestMinisignInterop(t *testing.T) {
	vmtest.Tool(t, "minisign")
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("minisign", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("minisign %v: %v\n%s", args, err, out)
		}
	}
	run("-G", "-W", "-p", "k.pub", "-s", "k.key")
	data := bytes.Repeat([]byte{1, 2, 3, 4, 5}, 300000)
	os.WriteFile(filepath.Join(dir, "rescue.tar.zst"), data, 0o644)
	run("-S", "-s", "k.key", "-m", "rescue.tar.zst", "-t", "timestamp:1 file:rescue.tar.zst lab")
	os.WriteFile(filepath.Join(dir, "menu.yaml"), []byte("entries: []\n"), 0o644)
	run("-S", "-s", "k.key", "-m", "menu.yaml") // minisign's default comment names the file
	pub, err := ReadPublicKey(filepath.Join(dir, "k.pub"))
	if err != nil {
		t.Fatal(err)
	}
	p := &Policy{Keys: []minisign.PublicKey{pub}}
	sig, _ := os.ReadFile(filepath.Join(dir, "rescue.tar.zst.minisig"))
	v, err := p.NewStream([]string{"http://boot/rescue.tar.zst"}, sig)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream(v, data); err != nil {
		t.Errorf("minisign's signature, streamed: %v", err)
	}
	menuSig, _ := os.ReadFile(filepath.Join(dir, "menu.yaml.minisig"))
	if _, err := p.Verify("menu.yaml", []byte("entries: []\n"), menuSig); err != nil {
		t.Errorf("minisign's menu signature: %v", err)
	}
	if _, err := p.Verify("menu.yaml", []byte("entries: [x]\n"), menuSig); err == nil {
		t.Error("a changed menu verified")
	}
}
