package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/ramboot/ramboot/internal/trust"
	"github.com/ramboot/ramboot/internal/vmtest"
)

// TestSignInterop: ramboot keygen and sign make what minisign -V accepts (and refuses once the
// file changed), and what /init's policy accepts.
func TestSignInterop(t *testing.T) {
	vmtest.Tool(t, "minisign")
	dir := t.TempDir()
	pub, key, file := filepath.Join(dir, "lab.pub"), filepath.Join(dir, "lab.key"), filepath.Join(dir, "rescue.tar.zst")
	if _, stderr, err := runArgs("keygen", "--no-password", "-p", pub, "-s", key); err != nil {
		t.Fatalf("keygen: %v: %s", err, stderr)
	}
	if _, _, err := runArgs("keygen", "--no-password", "-p", pub, "-s", key); err == nil {
		t.Error("keygen overwrote existing keys without --force")
	}
	os.WriteFile(file, []byte(strings.Repeat("image ", 100000)), 0o644)
	if _, stderr, err := runArgs("sign", "-s", key, "--comment", "build 42", file); err != nil {
		t.Fatalf("sign: %v: %s", err, stderr)
	}
	out, err := exec.Command("minisign", "-V", "-p", pub, "-m", file).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "file:rescue.tar.zst") || !strings.Contains(string(out), "build 42") {
		t.Fatalf("minisign -V: %v\n%s", err, out)
	}
	data, _ := os.ReadFile(file)
	sig, _ := os.ReadFile(file + ".minisig")
	k, err := trust.ReadPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&trust.Policy{Keys: []minisign.PublicKey{k}}).Verify("rescue.tar.zst", data, sig); err != nil {
		t.Errorf("ramboot's policy: %v", err)
	}
	os.WriteFile(file, append(data, '!'), 0o644)
	if out, err := exec.Command("minisign", "-V", "-p", pub, "-m", file).CombinedOutput(); err == nil {
		t.Errorf("minisign -V accepted a changed file:\n%s", out)
	}
}

func TestPasswdAndInitramfsTrust(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("hunter2\n"), 0o600)
	out, stderr, err := runArgs("passwd", "--cost", "4", "--password-file", pw)
	if err != nil {
		t.Fatalf("passwd: %v: %s", err, stderr)
	}
	h := strings.TrimSpace(out)
	l := &trust.Lock{Sleep: func(d time.Duration) {}}
	if err := l.Add(h); err != nil || l.Check("hunter2") != nil {
		t.Fatalf("hash %q: %v", h, err)
	}
	bad := filepath.Join(dir, "bad.pub")
	os.WriteFile(bad, []byte("not a key\n"), 0o644)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--trust", bad}, "trust anchor: " + bad},
		{[]string{"--password-hash", "hunter2"}, "password hash: not a bcrypt"},
	} {
		args := append([]string{"initramfs", "--init", pw, "-o", filepath.Join(dir, "x.cpio")}, tt.args...)
		if _, _, err := runArgs(args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.args, err, tt.want)
		}
	}
}

// TestPasswdCost: a cost past trust.MaxCost is a usage error at once (--cost 31 hashed for
// days), and SIGINT (the context ending) stops the hashing.
func TestPasswdCost(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("hunter2\n"), 0o600)
	for _, cost := range []string{"3", "17", "31"} {
		start := time.Now()
		out, _, err := runArgs("passwd", "--cost", cost, "--password-file", pw)
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "--cost "+cost+": want 4 to 16") {
			t.Errorf("--cost %s: got %q, %v (exit %d), want a usage error", cost, out, err, exitCode(err))
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("--cost %s: refused after %v", cost, d)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	var out, errb bytes.Buffer
	err := run(ctx, []string{"passwd", "--cost", "16", "--password-file", pw}, &out, &errb)
	if !errors.Is(err, context.Canceled) || out.Len() > 0 {
		t.Errorf("interrupted: got %q, %v, want context.Canceled", out.String(), err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("interrupted after 100ms, returned after %v", d)
	}
}
