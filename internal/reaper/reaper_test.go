package reaper

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMain makes the test binary a child subreaper: the orphans of its children are its own,
// as they are PID 1's in the initramfs.
func TestMain(m *testing.M) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "prctl(PR_SET_CHILD_SUBREAPER):", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// zombies returns the pids of this process's children that are zombies.
func zombies(t *testing.T) []int {
	t.Helper()
	return children(t, "Z")
}

// children returns the pids of this process's children in one of the states (R, S, Z, ...).
func children(t *testing.T, states string) []int {
	t.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var z []int
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, not ")".
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 && strings.Contains(states, f[0]) && f[1] == strconv.Itoa(os.Getpid()) {
			pid, _ := strconv.Atoi(strings.Fields(string(b))[0])
			z = append(z, pid)
		}
	}
	return z
}

// TestReapOrphansKeepStatus runs children that each leave an orphan behind and exit with a
// status of their own, many at once, while Reap runs: every child's status reaches its Wait,
// and no orphan is left a zombie.
func TestReapOrphansKeepStatus(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Reap(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 40 {
		wg.Go(func() {
			code := i % 4
			// The orphan outlives its parent a little, then exits: reparented to this
			// process, it is a zombie until reaped.
			cmd := exec.Command("/bin/sh", "-c", fmt.Sprintf("(sleep 0.2; exit 9) & exit %d", code))
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // as /init starts its children
			err := Run(cmd)
			var ee *exec.ExitError
			switch {
			case code == 0 && err != nil:
				errs <- fmt.Errorf("child %d: %v, want success", i, err)
			case code != 0 && !errors.As(err, &ee):
				errs <- fmt.Errorf("child %d: %v, want exit status %d", i, err, code)
			case code != 0 && ee.ExitCode() != code:
				errs <- fmt.Errorf("child %d: exit status %d, want %d", i, ee.ExitCode(), code)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The orphans exit after 0.2 s: wait until no child is left, or only zombies.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if len(children(t, "RSDTtZXIPW")) == 0 {
			break
		}
		if z := zombies(t); time.Now().After(deadline) {
			t.Fatalf("%d orphans left zombies: %v", len(z), z)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReapLeavesStarted: a child started by Start that has exited is not reaped by ReapOnce;
// its Wait gets its status.
func TestReapLeavesStarted(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "exit 5")
	if err := Start(cmd); err != nil {
		t.Fatal(err)
	}
	// Wait until it is a zombie, reaping (not) all the while.
	for i := 0; i < 200 && len(zombies(t)) == 0; i++ {
		ReapOnce()
		time.Sleep(10 * time.Millisecond)
	}
	if n := ReapOnce(); n != 0 {
		t.Errorf("ReapOnce reaped %d, want 0", n)
	}
	var ee *exec.ExitError
	if err := Wait(cmd); !errors.As(err, &ee) || ee.ExitCode() != 5 {
		t.Errorf("Wait: %v, want exit status 5", err)
	}
}

// TestReapLeavesLibraryChild: a child started without Start in this process's session (as a
// library starts one) that has exited is not reaped; its Wait gets its status.
func TestReapLeavesLibraryChild(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "exit 6")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200 && len(zombies(t)) == 0; i++ {
		ReapOnce()
		time.Sleep(10 * time.Millisecond)
	}
	if n := ReapOnce(); n != 0 {
		t.Errorf("ReapOnce reaped %d, want 0", n)
	}
	var ee *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 6 {
		t.Errorf("Wait: %v, want exit status 6", err)
	}
}
