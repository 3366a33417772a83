// Package hooks runs the operator's hook programs of /init: the executables in
// /etc/ramboot/hooks/<stage>/, in name order, each in a session of its own so that a ^C on the
// console stops the hook and never reaches PID 1.
//
// A hook's session is also its process group. /init waits for the hook process, not for what
// it leaves running: once the hook has exited, its output is read for a moment more (Grace)
// and the hook is done, even while a process it started in the background still holds its
// stdout. When the boot is cancelled (^C in the menu, ramboot.deadline=), the whole process
// group is killed with SIGKILL; a process that left the group (setsid, a daemon's double fork)
// is not. Of each hook's output the last OutputCap bytes are kept and logged.
//
// What a hook leaves running lives on, reparented to /init, which reaps it when it exits
// (internal/reaper). When the hook had the console as its terminal, the kernel sends its
// process group SIGHUP as the hook exits, as on a logout: a daemon must ignore it (nohup,
// trap "" HUP) or leave the group (setsid) before the hook exits, or it dies with the hook (a
// hook that starts one in the background waits until it has). What the leftovers write to
// the hook's stdout or stderr is read and discarded by /init, so they neither block nor die of
// SIGPIPE, until /init switches root or kexecs:
//   - At switch_root they go on running under the image's init, which inherits them as it
//     inherits PID 1. Their root is still the initramfs, emptied by switch_root, and the pipe
//     that was their stdout has no reader any more: their next write there gets SIGPIPE. The
//     files of the initramfs they hold open (their own binary, at least) stay in RAM until they
//     exit.
//   - At kexec they end with the kernel, without a signal: nothing of theirs is flushed beyond
//     the sync /init does before kexec.
//
// Hooks are started through internal/reaper, so /init's orphan reaping leaves their exit
// status to Run.
package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ramboot/ramboot/internal/reaper"
)

// The stages /init runs hooks at.
const (
	PreNetwork  = "pre-network"
	PreFetch    = "pre-fetch"
	PostExtract = "post-extract"
)

// Runner runs the hooks below Dir.
type Runner struct {
	Dir string
	// Env is the hooks' environment; RAMBOOT_STAGE= is added.
	Env []string
	// Console, when set, is the tty a hook gets as stdin and controlling terminal (its own
	// session): ^C there interrupts the hook. Empty: stdin is /dev/null.
	Console string
	Logf    func(format string, args ...any)
}

// Run runs the executables of one stage in name order. A failing hook stops the boot: the error
// names it and carries its last output line; all its output is logged.
func (r Runner) Run(ctx context.Context, stage string) error {
	logf := r.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	ents, err := os.ReadDir(filepath.Join(r.Dir, stage))
	if err != nil {
		return nil // no hooks for this stage
	}
	var names []string
	for _, e := range ents {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() && info.Mode()&0o111 != 0 {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		logf("hook %s/%s", stage, n)
		out, err := r.runOne(ctx, stage, n)
		for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
			if l != "" {
				logf("  %s: %s", n, l)
			}
		}
		if err != nil {
			return fmt.Errorf("hook %s/%s failed: %w: %s", stage, n, err, lastLine(out))
		}
	}
	return nil
}

// OutputCap is how much of a hook's output is kept: its last OutputCap bytes, where a failing
// hook says why. What came before is dropped, and a first line says how much.
const OutputCap = 64 << 10

// Grace is how long the output of a hook that has exited is still read while something it
// left running holds the pipe. What the hook wrote is already in the pipe: this is only the
// time to take it out.
const Grace = 250 * time.Millisecond

func (r Runner) runOne(ctx context.Context, stage, name string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(r.Dir, stage, name))
	cmd.Env = append(append([]string(nil), r.Env...), "RAMBOOT_STAGE="+stage)
	// A session of its own, and so a process group of its own: signals from the console go to
	// the hook, never to /init, and a cancel kills all the group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Cancel = func() error {
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		} else if err != nil {
			return fmt.Errorf("killing process group %d: %w", cmd.Process.Pid, err)
		}
		return nil
	}
	if r.Console != "" {
		if tty, err := os.OpenFile(r.Console, os.O_RDWR|syscall.O_NOCTTY, 0); err == nil {
			defer tty.Close()
			cmd.Stdin = tty
			cmd.SysProcAttr.Setctty = true
			cmd.SysProcAttr.Ctty = 0 // the child's stdin
		}
	}
	// The hook writes into a pipe of our own rather than one of os/exec, whose Wait would
	// wait for every holder of it to close it: a daemon the hook started would hold the boot.
	pr, pw, err := os.Pipe()
	if err != nil {
		return "", fmt.Errorf("output pipe: %w", err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := reaper.Start(cmd); err != nil {
		pr.Close()
		pw.Close()
		return "", err
	}
	pw.Close()
	out := &tail{max: OutputCap}
	read := make(chan error, 1)
	go func() {
		_, err := io.Copy(out, pr)
		read <- err
	}()
	err = reaper.Wait(cmd)
	pr.SetReadDeadline(time.Now().Add(Grace))
	select {
	case rerr := <-read:
		if errors.Is(rerr, os.ErrDeadlineExceeded) {
			// Something the hook left running holds the pipe: drain it for as long as it
			// does, so that it neither blocks nor dies of SIGPIPE.
			pr.SetReadDeadline(time.Time{})
			go func() {
				io.Copy(io.Discard, pr)
				pr.Close()
			}()
		} else {
			pr.Close()
		}
	case <-time.After(2 * Grace):
		// The deadline did not take (a pipe is pollable: this should not happen). PID 1
		// does not wait on: the reader goes on into out, which stays capped.
	}
	return out.String(), err
}

// tail keeps the last max bytes written to it.
type tail struct {
	max     int
	mu      sync.Mutex
	buf     []byte
	dropped int64
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max {
		cut := len(t.buf) - t.max
		t.dropped += int64(cut)
		t.buf = append(t.buf[:0], t.buf[cut:]...)
	}
	return len(p), nil
}

// String is the output kept, from the start of a line, after a line that says how much was
// dropped.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b, dropped := t.buf, t.dropped
	if len(b) > t.max {
		dropped += int64(len(b) - t.max)
		b = b[len(b)-t.max:]
	}
	if dropped == 0 {
		return string(b)
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		dropped += int64(i + 1)
		b = b[i+1:]
	}
	return fmt.Sprintf("[%d bytes of earlier output dropped]\n%s", dropped, b)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
