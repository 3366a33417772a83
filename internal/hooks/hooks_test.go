package hooks

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/reaper"
)

// TestMain runs the tests as /init runs hooks: the orphans of the hooks are this process's (a
// child subreaper) and reaper.Reap reaps them all along, which must leave every hook's exit
// status to Run.
func TestMain(m *testing.M) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "prctl(PR_SET_CHILD_SUBREAPER):", err)
		os.Exit(1)
	}
	go reaper.Reap(context.Background())
	os.Exit(m.Run())
}

func TestRunHooks(t *testing.T) {
	dir := t.TempDir()
	stage := filepath.Join(dir, "pre-fetch")
	os.MkdirAll(stage, 0o755)
	out := filepath.Join(dir, "order")
	hook := func(name, body string, mode os.FileMode) {
		os.WriteFile(filepath.Join(stage, name), []byte("#!/bin/sh\n"+body+"\n"), mode)
	}
	hook("20-second", fmt.Sprintf(`echo "2 $RAMBOOT_STAGE $RAMBOOT_ROOT" >> %s`, out), 0o755)
	// Orphans that exit at once: reaped meanwhile, they must not take the hooks' statuses.
	hook("10-first", fmt.Sprintf(`(exit 4) >/dev/null 2>&1 & echo 1 >> %s`, out), 0o755)
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
	hook("30-fails", "(exit 0) >/dev/null 2>&1 & echo checking the BMC; echo 'BMC unreachable' >&2; exit 3", 0o755)
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

// runWithin runs the hooks of stage and fails the test when Run takes longer than limit.
func runWithin(t *testing.T, ctx context.Context, r Runner, stage string, limit time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- r.Run(ctx, stage) }()
	select {
	case err := <-done:
		t.Logf("Run took %v", time.Since(start).Round(time.Millisecond))
		return err
	case <-time.After(limit):
		t.Fatalf("Run did not return within %v", limit)
		return nil
	}
}

// alive reports whether pid runs (is neither gone nor a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// killPidFile kills the process whose pid is in file, at the end of the test.
func killPidFile(t *testing.T, file string) {
	t.Cleanup(func() {
		if b, err := os.ReadFile(file); err == nil {
			if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
}

// TestRunBackgroundSleeper: a hook that leaves a process running that holds its stdout (the
// issue's `(trap "" HUP; exec sleep 300) &`) is done when it exits; the sleeper lives on, and
// the hook's output is all there.
func TestRunBackgroundSleeper(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "pre-fetch"), 0o755)
	pidFile := filepath.Join(dir, "sleeper.pid")
	killPidFile(t, pidFile)
	os.WriteFile(filepath.Join(dir, "pre-fetch", "10-daemon"), []byte(fmt.Sprintf(
		"#!/bin/sh\necho starting the daemon\n(trap \"\" HUP; exec sleep 300) &\necho $! > %s\necho daemon started\n", pidFile)), 0o755)
	var log []string
	logf := func(f string, a ...any) { log = append(log, fmt.Sprintf(f, a...)) }
	r := Runner{Dir: dir, Env: []string{"PATH=/bin:/usr/bin"}, Logf: logf}
	if err := runWithin(t, context.Background(), r, "pre-fetch", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(log, "\n"); !strings.Contains(got, "10-daemon: starting the daemon\n  10-daemon: daemon started") {
		t.Errorf("hook output: %q", got)
	}
	b, _ := os.ReadFile(pidFile)
	if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); !alive(pid) {
		t.Errorf("the sleeper %q the hook left running is gone", b)
	}
}

// TestRunOutputCap: of a hook's output only the last OutputCap bytes are kept, from a line's
// start, after a line that says how much was dropped; the error still names the last line.
func TestRunOutputCap(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "pre-fetch"), 0o755)
	// 20000 lines of 50 bytes: 1 MB, far above the cap.
	os.WriteFile(filepath.Join(dir, "pre-fetch", "10-chatty"), []byte(
		"#!/bin/sh\ni=0\nwhile [ $i -lt 20000 ]; do printf '%049d\\n' $i; i=$((i+1)); done\necho the last word\nexit 1\n"), 0o755)
	var log []string
	logf := func(f string, a ...any) { log = append(log, fmt.Sprintf(f, a...)) }
	r := Runner{Dir: dir, Env: []string{"PATH=/bin:/usr/bin"}, Logf: logf}
	err := runWithin(t, context.Background(), r, "pre-fetch", time.Minute)
	if err == nil || !strings.HasSuffix(err.Error(), ": the last word") {
		t.Errorf("error: %v", err)
	}
	kept := 0
	for _, l := range log[1:] {
		kept += len(l) - len("  10-chatty: ") + 1
	}
	if kept > OutputCap+100 {
		t.Errorf("%d bytes of output kept, want at most about %d", kept, OutputCap)
	}
	last := len("the last word\n")
	want := fmt.Sprintf("  10-chatty: [%d bytes of earlier output dropped]", 20000*50-(OutputCap-last)/50*50)
	if len(log) < 2 || log[1] != want {
		t.Errorf("first output line %q, want %q", log[1], want)
	}
	if last := log[len(log)-1]; last != "  10-chatty: the last word" {
		t.Errorf("last output line %q", last)
	}
}

// TestRunCancelKillsGroup: cancelling a hook kills its process group, the processes it started
// with it (here ones that do not hold its output), and Run returns at once.
func TestRunCancelKillsGroup(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "pre-fetch"), 0o755)
	pidFile := filepath.Join(dir, "sleeper.pid")
	killPidFile(t, pidFile)
	os.WriteFile(filepath.Join(dir, "pre-fetch", "10-stuck"), []byte(fmt.Sprintf(
		"#!/bin/sh\nexec >/dev/null 2>&1\nsleep 300 &\necho $! > %s.tmp; mv %[1]s.tmp %[1]s\nsleep 300\n", pidFile)), 0o755)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for i := 0; i < 500; i++ {
			if _, err := os.Stat(pidFile); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	r := Runner{Dir: dir, Env: []string{"PATH=/bin:/usr/bin"}}
	if err := runWithin(t, ctx, r, "pre-fetch", 10*time.Second); err == nil {
		t.Error("a cancelled hook succeeded")
	}
	b, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	for i := 0; i < 100 && alive(pid); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if pid == 0 || alive(pid) {
		t.Errorf("the hook's background sleeper %q survived the cancel", b)
	}
}

// TestRunOwnGroup: a hook's process group is its own.
func TestRunOwnGroup(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "pre-network"), 0o755)
	os.WriteFile(filepath.Join(dir, "pre-network", "10-pgrp"), []byte("#!/bin/sh\nread -r pid comm state ppid pgrp rest < /proc/self/stat\necho \"pid=$pid pgrp=$pgrp\"\n"), 0o755)
	var log []string
	logf := func(f string, a ...any) { log = append(log, fmt.Sprintf(f, a...)) }
	if err := (Runner{Dir: dir, Env: []string{"PATH=/bin:/usr/bin"}, Logf: logf}).Run(context.Background(), "pre-network"); err != nil {
		t.Fatal(err)
	}
	var pid, pgrp int
	for _, l := range log {
		if i := strings.Index(l, "pid="); i >= 0 {
			fmt.Sscanf(l[i:], "pid=%d pgrp=%d", &pid, &pgrp)
		}
	}
	if pid == 0 || pid != pgrp {
		t.Errorf("hook pid %d in process group %d, want its own (log %q)", pid, pgrp, log)
	}
}
