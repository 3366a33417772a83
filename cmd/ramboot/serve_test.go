package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for the server's goroutines and the test's.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestServe(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "vmlinuz"), []byte("kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	menu := filepath.Join(t.TempDir(), "lab.yaml")
	if err := os.WriteFile(menu, []byte("entries:\n  - {name: a, kexec: {kernel: http://SERVER/vmlinuz}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", dir, "--menu", menu}, &stdout, &stderr)
	}()

	serving := regexp.MustCompile(`serving .* at (http://127\.0\.0\.1:\d+/)\n`)
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == ""; time.Sleep(10 * time.Millisecond) {
		if m := serving.FindStringSubmatch(stdout.String()); m != nil {
			base = m[1]
		}
		select {
		case err := <-done:
			t.Fatalf("serve returned early: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no URL printed:\n%s", stdout.String())
		}
	}
	if want := "menu " + menu + " at " + base + "menu.yaml\n"; !strings.Contains(stdout.String(), want) {
		t.Errorf("stdout %q lacks %q", stdout.String(), want)
	}

	for path, want := range map[string]string{
		"vmlinuz":   "kernel",
		"menu.yaml": "entries:\n  - {name: a, kexec: {kernel: " + base + "vmlinuz}}\n",
	} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != want {
			t.Errorf("GET %s: status %d, body %q; want 200, %q", path, resp.StatusCode, body, want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop after cancel")
	}
	logLine := regexp.MustCompile(`(?m) 127\.0\.0\.1:\d+ GET /vmlinuz 200 6 \S+$`)
	if !logLine.MatchString(stderr.String()) {
		t.Errorf("stderr has no request log line for /vmlinuz:\n%s", stderr.String())
	}
}

func TestServeErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("entries:\n  - {name: a, ramroot: {}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve"}, "want DIR"},
		{[]string{"serve", "/nonexistent-dir"}, "no such file"},
		{[]string{"serve", "--menu", bad, t.TempDir()}, bad + ":2"},
		{[]string{"serve", "--addr", "127.0.0.1:99999", t.TempDir()}, "invalid port"},
		{[]string{"serve", "--max-conns", "0", t.TempDir()}, "--max-conns 0"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tc.args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run %q: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}
