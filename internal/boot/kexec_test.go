package boot

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/kexec"
)

// TestKexecRefusedNamesURL: when the locked-down kernel refuses the kernel's signature, Prepare
// fails with kexec's refusal, which names the URL the kernel came from (a mirror's, when the
// first URL failed), and nothing is left to boot.
func TestKexecRefusedNamesURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/mirror/vmlinuz" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("MZ unsigned kernel"))
	}))
	defer srv.Close()
	defer func(f func(kexec.Image, string, func(string, ...any)) error) { loadKexec = f }(loadKexec)
	var loaded kexec.Image
	loadKexec = func(img kexec.Image, dir string, logf func(string, ...any)) error {
		loaded = img
		return &kexec.RefusedError{Kernel: img.Name, Lockdown: "integrity", SecureBoot: true, Err: unix.ENOKEY}
	}
	b := &Booter{Logf: t.Logf}
	url := srv.URL + "/mirror/vmlinuz"
	exec, err := b.Prepare(context.Background(), Plan{Name: "maint", Kexec: &KexecPlan{
		Kernel: Image{URLs: []string{srv.URL + "/gone/vmlinuz", url}}, Cmdline: "console=ttyS0"}}, nil)
	if exec != nil {
		t.Error("a refused kernel was prepared to boot")
	}
	if loaded.Name != url {
		t.Errorf("kexec.Load was told the kernel is %q, want %q", loaded.Name, url)
	}
	if !errors.Is(err, kexec.ErrUntrusted) {
		t.Fatalf("Prepare: %v, want kexec.ErrUntrusted", err)
	}
	want := "the kernel is locked down by Secure Boot and " + url + " is not signed by a key it trusts (kexec_file_load: ENOKEY: signed, but by no key the kernel trusts)"
	if err.Error() != want {
		t.Errorf("Prepare: %q\nwant %q", err, want)
	}
}
