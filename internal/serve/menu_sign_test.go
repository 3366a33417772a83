package serve

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aead.dev/minisign"

	"github.com/ramboot/ramboot/internal/boot"
	"github.com/ramboot/ramboot/internal/netup"
	"github.com/ramboot/ramboot/internal/report"
	"github.com/ramboot/ramboot/internal/trust"
)

// signFile signs data in minisign's prehashed form with a trusted comment naming name.
func signFile(key minisign.PrivateKey, name string, data []byte) []byte {
	r := minisign.NewReader(bytes.NewReader(data))
	io.Copy(io.Discard, r)
	return r.SignWithComments(key, "timestamp:1\tfile:"+name+"\thashed", "test")
}

func newKey(t *testing.T) (minisign.PublicKey, minisign.PrivateKey) {
	t.Helper()
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// get fetches a path with the Host and headers given, returning the status and body.
func get(t *testing.T, url, host string, hdr map[string]string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// loadAsInit loads the served menu the way /init does, with pub as its only trust anchor.
func loadAsInit(t *testing.T, url string, pub minisign.PublicKey) error {
	t.Helper()
	b := &boot.Booter{Logf: t.Logf, Policy: &trust.Policy{Keys: []minisign.PublicKey{pub}}}
	m, err := b.LoadMenu(context.Background(), url)
	if err == nil && !m.Trusted {
		t.Fatalf("%s verified but is not trusted", url)
	}
	return err
}

// TestSignedMenuVerbatim: a menu with MENU.minisig beside it is served byte for byte, with that
// signature, and /init trusts it; nothing in it is rewritten.
func TestSignedMenuVerbatim(t *testing.T) {
	pub, priv := newKey(t)
	file := filepath.Join(t.TempDir(), "menu.yaml")
	menu := []byte("title: signed\nentries:\n  - {name: r, ramroot: rescue.tar.zst}\n") // relative: /init resolves it
	sig := signFile(priv, "menu.yaml", menu)
	write(t, file, menu)
	write(t, file+".minisig", sig)
	srv, _ := newServer(t, testDir(t), Options{Menu: file})
	if code, body := get(t, srv.URL+"/menu.yaml", "10.0.2.2:8080", nil); code != 200 || !bytes.Equal(body, menu) {
		t.Fatalf("menu: %d, changed:\n%s", code, body)
	}
	if code, body := get(t, srv.URL+"/menu.yaml.minisig", "", nil); code != 200 || !bytes.Equal(body, sig) {
		t.Fatalf("signature: %d\n%s", code, body)
	}
	if err := loadAsInit(t, srv.URL+"/menu.yaml", pub); err != nil {
		t.Fatalf("/init refused the signed menu: %v", err)
	}
}

// TestSignedMenuKey: with a key, every rendition (the client's address, relative URLs made
// absolute, a machine's rollback) is signed, and /init trusting that key takes each; a
// rendition equal to the file keeps the operator's own signature.
func TestSignedMenuKey(t *testing.T) {
	pub, priv := newKey(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "lab.yaml")
	write(t, file, []byte(rollbackYAML))
	srv, _ := newServer(t, testDir(t), Options{Menu: file, Reports: t.TempDir(), RollbackAfter: 1, SignKey: &priv})
	for _, host := range []string{"10.0.2.2:8080", "127.0.0.1:9"} {
		_, body := get(t, srv.URL+"/menu.yaml", host, nil)
		_, sig := get(t, srv.URL+"/menu.yaml.minisig", host, nil)
		if _, err := (&trust.Policy{Keys: []minisign.PublicKey{pub}}).Verify("menu.yaml", body, sig); err != nil {
			t.Errorf("Host %s: the rendition does not verify: %v\n%s", host, err, sig)
		}
		if !strings.Contains(string(body), "http://"+host+"/new.tar.zst") {
			t.Errorf("Host %s: not rewritten:\n%s", host, body)
		}
	}
	if err := loadAsInit(t, srv.URL+"/menu.yaml", pub); err != nil {
		t.Fatalf("/init refused the signed rendition: %v", err)
	}
	// Rolled back for one machine: its menu is its own, and signed.
	postJSON(t, srv.URL+EventsPath, bootEvents(macA, "b1", "old", report.SwitchRoot))
	postJSON(t, srv.URL+MachinesPath+"/"+macA+"/healthy", nil)
	postJSON(t, srv.URL+EventsPath, bootEvents(macA, "b2", "new", report.Failure))
	postJSON(t, srv.URL+EventsPath, bootEvents(macA, "b3", "", report.Started)) // b2 counts as failed
	mac, _ := net.ParseMAC(macA)
	b := &boot.Booter{Logf: t.Logf, Policy: &trust.Policy{Keys: []minisign.PublicKey{pub}},
		Lease: &netup.Lease{MAC: mac}}
	m, err := b.LoadMenu(context.Background(), srv.URL+"/menu.yaml")
	if err != nil || !m.Trusted || m.Default != "old" || !strings.Contains(m.Title, "rolled back to old") {
		t.Fatalf("rolled-back menu: %v (trusted %v, default %q, title %q)", err, m != nil && m.Trusted, m.Default, m.Title)
	}
	// Another key is not this server's.
	other, _ := newKey(t)
	if err := loadAsInit(t, srv.URL+"/menu.yaml", other); !errors.Is(err, trust.ErrUntrusted) {
		t.Errorf("a menu signed by another key: %v", err)
	}

	// The file served as it is, with a signature of its own: that signature, byte for byte.
	verbatim := []byte("title: as is\nentries:\n  - {name: off, action: poweroff}\n")
	vfile := filepath.Join(dir, "menu.yaml")
	own := signFile(priv, "menu.yaml", verbatim)
	write(t, vfile, verbatim)
	write(t, vfile+".minisig", own)
	srv2, _ := newServer(t, testDir(t), Options{Menu: vfile, SignKey: &priv})
	if _, sig := get(t, srv2.URL+"/menu.yaml.minisig", "", nil); !bytes.Equal(sig, own) {
		t.Errorf("an unchanged menu's own signature was not served:\n%s", sig)
	}
}

// TestSignedMenuRefused: what cannot work is an error at start, naming the fix; an unsigned
// menu without a key has no signature to serve.
func TestSignedMenuRefused(t *testing.T) {
	_, priv := newKey(t)
	dir := t.TempDir()
	placeholder := filepath.Join(dir, "menu.yaml")
	write(t, placeholder, []byte(rollbackYAML)) // http://SERVER/ URLs
	write(t, placeholder+".minisig", signFile(priv, "menu.yaml", []byte(rollbackYAML)))
	other := filepath.Join(dir, "lab.yaml")
	plain := []byte("entries:\n  - {name: off, action: poweroff}\n")
	write(t, other, plain)
	write(t, other+".minisig", signFile(priv, "lab.yaml", plain))
	clean := filepath.Join(t.TempDir(), "menu.yaml")
	write(t, clean, plain)
	write(t, clean+".minisig", signFile(priv, "menu.yaml", plain))
	for _, tt := range []struct {
		opts Options
		want string
	}{
		{Options{Menu: placeholder}, "URLs must be rewritten for each client: give a key to sign what is served (--sign-key)"},
		{Options{Menu: other}, `the signature is for file "lab.yaml" but the menu is served as menu.yaml`},
		{Options{Menu: clean, Reports: t.TempDir(), RollbackAfter: 2}, "rollback would change it for each machine"},
	} {
		if _, err := New(testDir(t), tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.opts, err, tt.want)
		}
	}
	// The same with a key: it signs what is served.
	for _, f := range []string{placeholder, other} {
		h, err := New(testDir(t), Options{Menu: f, SignKey: &priv})
		if err != nil {
			t.Errorf("%s with a key: %v", f, err)
			continue
		}
		h.Close()
	}
	unsigned := filepath.Join(t.TempDir(), "menu.yaml")
	write(t, unsigned, plain)
	srv, _ := newServer(t, testDir(t), Options{Menu: unsigned})
	if code, _ := get(t, srv.URL+"/menu.yaml.minisig", "", nil); code != http.StatusNotFound {
		t.Errorf("an unsigned menu's signature: status %d, want 404", code)
	}
	if _, err := os.Stat(unsigned + ".minisig"); err == nil {
		t.Error("a signature file appeared")
	}
}
