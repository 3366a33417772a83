package hooks

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
	if err := (Runner{Dir: dir, Env: env, Logf: logf}).Run(context.Background(), "pre-fetch"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "1\n2 pre-fetch /newroot\n" {
		t.Errorf("hooks ran as %q", b)
	}
	if err := (Runner{Dir: dir, Env: env, Logf: logf}).Run(context.Background(), "post-extract"); err != nil {
		t.Errorf("a stage without hooks: %v", err)
	}
	hook("30-fails", "echo checking the BMC; echo 'BMC unreachable' >&2; exit 3", 0o755)
	err := (Runner{Dir: dir, Env: env, Logf: logf}).Run(context.Background(), "pre-fetch")
	if err == nil || !strings.Contains(err.Error(), "hook pre-fetch/30-fails failed: exit status 3: BMC unreachable") {
		t.Errorf("failing hook: %v", err)
	}
	if !strings.Contains(strings.Join(log, "\n"), "30-fails: checking the BMC") {
		t.Errorf("hook output not logged: %q", log)
	}
}

// TestRunOwnSession: a hook leads a session of its own, so the console's ^C never reaches /init.
func TestRunOwnSession(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "pre-network"), 0o755)
	// Fields 1 (pid) and 6 (session) of /proc/self/stat; the comm field has no spaces here.
	os.WriteFile(filepath.Join(dir, "pre-network", "10-sid"), []byte("#!/bin/sh\nread -r pid comm state ppid pgrp sid rest < /proc/self/stat\necho \"pid=$pid sid=$sid\"\n"), 0o755)
	var log []string
	logf := func(f string, a ...any) { log = append(log, fmt.Sprintf(f, a...)) }
	if err := (Runner{Dir: dir, Env: []string{"PATH=/bin:/usr/bin"}, Logf: logf}).Run(context.Background(), "pre-network"); err != nil {
		t.Fatal(err)
	}
	var pid, sid int
	for _, l := range log {
		if i := strings.Index(l, "pid="); i >= 0 {
			fmt.Sscanf(l[i:], "pid=%d sid=%d", &pid, &sid)
		}
	}
	if pid == 0 || pid != sid {
		t.Errorf("hook pid %d in session %d, want a session of its own (log %q)", pid, sid, log)
	}
	if sid == os.Getpid() {
		t.Error("hook in the test's session")
	}
}
