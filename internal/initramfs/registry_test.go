package initramfs

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRegistryAuth(t *testing.T) {
	dir := t.TempDir()
	init := filepath.Join(dir, "init")
	os.WriteFile(init, []byte("INIT"), 0o755)
	good := filepath.Join(dir, "config.json")
	cfg := `{"auths":{"registry.lab:5000":{"auth":"ZmxlZXQ6czNjcmV0"}}}`
	os.WriteFile(good, []byte(cfg), 0o600)
	var buf bytes.Buffer
	if _, err := Write(&buf, Spec{Init: init, RegistryAuth: good}); err != nil {
		t.Fatal(err)
	}
	r, ok := records(t, buf.Bytes())["etc/ramboot/registry-auth.json"]
	if !ok || content(t, r) != cfg || r.Mode&0o777 != 0o600 {
		t.Errorf("registry-auth.json: %+v", r)
	}
	for body, want := range map[string]string{
		`{"credsStore":"desktop"}`: `no "auths"`,
		`not json`:                 "not a docker config.json",
	} {
		bad := filepath.Join(dir, "bad.json")
		os.WriteFile(bad, []byte(body), 0o600)
		if _, err := Write(&buf, Spec{Init: init, RegistryAuth: bad}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", body, err, want)
		}
	}
}
