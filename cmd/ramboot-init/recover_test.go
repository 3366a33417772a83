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

	"github.com/ramboot/ramboot/internal/boot"
	"github.com/ramboot/ramboot/internal/cmdline"
	"github.com/ramboot/ramboot/internal/hooks"
)

func TestDecide(t *testing.T) {
	plain := errors.New("fetching: connection refused")
	gone := fmt.Errorf("switch_root: exec /sbin/init: no such file (%w)", boot.ErrNoReturn)
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
