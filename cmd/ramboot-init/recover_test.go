package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/boot"
	"github.com/ramboot/ramboot/internal/cmdline"
	"github.com/ramboot/ramboot/internal/hooks"
	"github.com/ramboot/ramboot/kexec"
)

func TestDecide(t *testing.T) {
	plain := errors.New("fetching: connection refused")
	gone := fmt.Errorf("switch_root: exec /sbin/init: no such file (%w)", boot.ErrNoReturn)
	// What kexec.Load returns when the locked-down kernel refuses a signature, or cannot load
	// an image without kexec_load, wrapped as an attempt's error may be (a deadline's cause).
	untrusted := fmt.Errorf("%w (ramboot.deadline=10m passed)", &kexec.RefusedError{Kernel: "http://10.0.2.2/vmlinuz", Lockdown: "integrity", SecureBoot: true, Err: unix.ENOKEY})
	lockedDown := fmt.Errorf("kexec_file_load: not a kernel image: %w; %w (lockdown=integrity)", unix.ENOEXEC, kexec.ErrLockedDown)
	for _, tt := range []struct {
		name     string
		err      error
		onerror  cmdline.OnError
		attempt  int
		hasShell bool
		want     next
		wait     time.Duration
	}{
		{"retry first", plain, cmdline.OnErrorRetry, 1, true, nextRetry, 5 * time.Second},
		{"retry third", plain, cmdline.OnErrorRetry, 3, true, nextRetry, 45 * time.Second},
		{"retries used up", plain, cmdline.OnErrorRetry, 4, true, nextReboot, 0},
		{"menu", plain, cmdline.OnErrorMenu, 1, true, nextMenu, 0},
		{"shell", plain, cmdline.OnErrorShell, 1, true, nextShell, 0},
		{"shell without one", plain, cmdline.OnErrorShell, 1, false, nextReboot, 0},
		{"reboot", plain, cmdline.OnErrorReboot, 1, true, nextReboot, 0},
		{"poweroff", plain, cmdline.OnErrorPoweroff, 1, true, nextPoweroff, 0},
		// Past the point of no return nothing is retried, and no menu or shell is offered.
		{"no return, retry", gone, cmdline.OnErrorRetry, 1, true, nextReboot, 0},
		{"no return, menu", gone, cmdline.OnErrorMenu, 1, true, nextReboot, 0},
		{"no return, shell", gone, cmdline.OnErrorShell, 1, true, nextReboot, 0},
		{"no return, poweroff", gone, cmdline.OnErrorPoweroff, 1, true, nextPoweroff, 0},
		// A refusal is final: never retried; by default the menu follows at once.
		{"refused, retry", untrusted, cmdline.OnErrorRetry, 1, true, nextMenu, 0},
		{"refused, retry, no shell", untrusted, cmdline.OnErrorRetry, 1, false, nextMenu, 0},
		{"kexec_load locked down, retry", lockedDown, cmdline.OnErrorRetry, 1, true, nextMenu, 0},
		{"refused, menu", untrusted, cmdline.OnErrorMenu, 1, true, nextMenu, 0},
		{"refused, shell", untrusted, cmdline.OnErrorShell, 1, true, nextShell, 0},
		{"refused, reboot", untrusted, cmdline.OnErrorReboot, 1, true, nextReboot, 0},
		{"refused, poweroff", lockedDown, cmdline.OnErrorPoweroff, 1, true, nextPoweroff, 0},
	} {
		got, wait := decide(tt.err, tt.onerror, tt.attempt, tt.hasShell)
		if got != tt.want || wait != tt.wait {
			t.Errorf("%s: %v after %v, want %v after %v", tt.name, got, wait, tt.want, tt.wait)
		}
	}
}

// TestSwitchRootPastNoReturn boots a real image with a fake switch_root that fails after it
// would have deleted the initramfs: the error must say so, and the policy must reboot rather
// than retry inside what is left.
func TestSwitchRootPastNoReturn(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "rootfs.tar")
	if err := os.WriteFile(img, tinyRootfs(t), 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "newroot")
	var called string
	b := &boot.Booter{
		Root:  root,
		Hooks: hooks.Runner{Dir: filepath.Join(dir, "no-hooks")},
		Logf:  t.Logf,
		SwitchRoot: func(newRoot, init string, args, env []string) error {
			called = newRoot + " " + init
			return fmt.Errorf("switch_root: exec %s: exec format error (%w)", init, boot.ErrNoReturn)
		},
	}
	exec, err := b.Prepare(context.Background(), boot.Plan{Name: "ramroot", Ramroot: &boot.RamrootPlan{
		Image: boot.Image{URLs: []string{img}}, Init: "/sbin/init"}}, nil)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	if called != "" {
		t.Fatal("switch_root ran before Exec")
	}
	err = exec()
	if want := root + " /sbin/init"; called != want {
		t.Errorf("switch_root called with %q, want %q", called, want)
	}
	if !boot.IsNoReturn(err) {
		t.Fatalf("exec: %v does not wrap ErrNoReturn", err)
	}
	for _, onerror := range []cmdline.OnError{cmdline.OnErrorRetry, cmdline.OnErrorMenu, cmdline.OnErrorShell} {
		if n, _ := decide(err, onerror, 1, true); n != nextReboot {
			t.Errorf("onerror=%q: %v, want a reboot", onerror, n)
		}
	}
}

// tinyRootfs is a tar with an executable /sbin/init.
func tinyRootfs(t *testing.T) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "sbin/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "sbin/init", Typeflag: tar.TypeReg, Mode: 0o755, Size: 10},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte("#!/bin/sh\n"))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func (n next) String() string {
	return [...]string{"retry", "menu", "shell", "reboot", "poweroff"}[n]
}

// TestDeadline: an unattended attempt that outlives ramboot.deadline= fails into the recovery
// path with an error that names the URL and the deadline.
func TestDeadline(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, ".tar.zst") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", "1000000")
		for {
			// A byte now and then: never idle long enough to count as a stall.
			if _, err := w.Write([]byte{0x28}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}))
	defer srv.Close()
	d := 1500 * time.Millisecond
	ctx, cancel := context.WithTimeoutCause(context.Background(), d, fmt.Errorf("ramboot.deadline=%v passed", d))
	defer cancel()
	b := &boot.Booter{Root: t.TempDir(), Hooks: hooks.Runner{Dir: t.TempDir()}, Logf: t.Logf}
	url := srv.URL + "/slow.tar.zst"
	_, err := b.Prepare(ctx, boot.Plan{Name: "ramroot", Ramroot: &boot.RamrootPlan{Image: boot.Image{URLs: []string{url}}}}, nil)
	err = withCause(ctx, err)
	t.Logf("error: %v", err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline", err)
	}
	for _, want := range []string{url, "ramboot.deadline=1.5s passed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if n, _ := decide(err, cmdline.OnErrorRetry, 1, true); n != nextRetry {
		t.Errorf("after a deadline: %v, want a retry", n)
	}
}

// TestRefusalNotRetried: an unattended boot whose kernel the locked-down kernel refuses is
// decided once, with no attempt after it: the policy goes to the menu rather than fetching and
// loading the same refused kernel again (before, it retried maxAttempts times and rebooted).
func TestRefusalNotRetried(t *testing.T) {
	err := &kexec.RefusedError{Kernel: "http://10.0.2.2/vmlinuz", Lockdown: "integrity", SecureBoot: true, Err: unix.EKEYREJECTED}
	attempts := 0
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		attempts++
		if n, _ := decide(err, cmdline.OnErrorRetry, attempt, true); n != nextRetry {
			if n != nextMenu {
				t.Errorf("after a refusal: %v, want the menu", n)
			}
			break
		}
	}
	if attempts != 1 {
		t.Errorf("%d attempts at a refused kernel, want 1", attempts)
	}
}
