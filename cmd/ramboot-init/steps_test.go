package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunHooks(t *testing.T) {
	dir := t.TempDir()
	stage := filepath.Join(dir, "pre-fetch")
	os.MkdirAll(stage, 0o755)
	out := filepath.Join(dir, "order")
	hook := func(name, body string, mode os.FileMode) {
		os.WriteFile(filepath.Join(stage, name), []byte("#!/bin/sh\n"+body+"\n"), mode)
	}
	hook("20-second", fmt.Sprintf(`echo "2 $RAMBOOT_STAGE $RAMBOOT_ROOT" >> %s`, out), 0o755)
	hook("10-first", fmt.Sprintf(`echo 1 >> %s`, out), 0o755)
	hook("15-not-executable", "exit 1", 0o644)
	var log []string
	logf := func(f string, a ...any) { log = append(log, fmt.Sprintf(f, a...)) }
	env := []string{"PATH=/bin:/usr/bin", "RAMBOOT_ROOT=/newroot"}
	if err := runHooks(context.Background(), dir, "pre-fetch", env, logf); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "1\n2 pre-fetch /newroot\n" {
		t.Errorf("hooks ran as %q", b)
	}
	if err := runHooks(context.Background(), dir, "post-extract", env, logf); err != nil {
		t.Errorf("a stage without hooks: %v", err)
	}
	hook("30-fails", "echo checking the BMC; echo 'BMC unreachable' >&2; exit 3", 0o755)
	err := runHooks(context.Background(), dir, "pre-fetch", env, logf)
	if err == nil || !strings.Contains(err.Error(), "hook pre-fetch/30-fails failed: exit status 3: BMC unreachable") {
		t.Errorf("failing hook: %v", err)
	}
	if !strings.Contains(strings.Join(log, "\n"), "30-fails: checking the BMC") {
		t.Errorf("hook output not logged: %q", log)
	}
}

func TestResolveIn(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "lib/systemd"), 0o755)
	os.MkdirAll(filepath.Join(root, "sbin"), 0o755)
	os.WriteFile(filepath.Join(root, "lib/systemd/systemd"), []byte("x"), 0o755)
	os.WriteFile(filepath.Join(root, "lib/data"), []byte("x"), 0o644)
	os.Symlink("/lib/systemd/systemd", filepath.Join(root, "sbin/init"))
	os.Symlink("../lib/systemd/systemd", filepath.Join(root, "sbin/rel"))
	os.Symlink("/etc/passwd", filepath.Join(root, "sbin/host"))
	os.Symlink("loop", filepath.Join(root, "sbin/loop"))
	for _, tt := range []struct{ p, want string }{
		{"/sbin/init", filepath.Join(root, "lib/systemd/systemd")},
		{"/sbin/rel", filepath.Join(root, "lib/systemd/systemd")},
		{"/sbin/host", "missing"},
		{"/sbin/loop", "too many symlinks"},
		{"/lib/data", "not an executable"},
		{"/nope", "missing"},
	} {
		got, err := resolveIn(root, tt.p)
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, tt.want) {
			t.Errorf("resolveIn(%s) = %q, want %q", tt.p, got, tt.want)
		}
	}
}
