// Package reaper reaps the orphans PID 1 inherits without taking the exit status of the
// children /init waits for itself.
//
// Every process whose parent exits is reparented to PID 1: what a hook or the shell left
// behind. Unless PID 1 waits for them they stay zombies. A plain wait4(-1) loop would also reap
// the children /init started and waits for with exec.Cmd.Wait, which then fails ("no child
// processes") and loses the exit status of a hook. So Reap looks at an exited child with
// waitid(WNOWAIT), which leaves it a zombie, and reaps it only when it is nobody's to wait for:
//   - children started through Start (or Run), which records their pid: the hooks and the
//     shell. Their Wait reaps them.
//   - children in /init's own session: /init starts its own children in sessions of their own,
//     so these were started by a library (u-root's kexec_load path runs a decompressor) that
//     waits for them itself. The orphans PID 1 inherits come from the hooks and the shell and
//     are never in its session.
//
// Ordering: Start holds the registry's lock from before fork until the pid is recorded, and Reap
// decides under the same lock, so a child that exits at once is never taken for an orphan. Wait
// forgets the pid only after exec.Cmd.Wait has reaped it, and then has Reap look again: a zombie
// that is not Reap's hides the ones behind it from waitid(P_ALL) until it is reaped (a library's
// child has no such Wait: the next SIGCHLD, or a tick, brings the next look).
package reaper

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

var (
	mu sync.Mutex
	// started counts, per pid, the children started by Start and not yet waited for (a pid
	// is used again only after its process was reaped, so a count above 1 is a brief overlap).
	started = map[int]int{}
	// again asks Reap for another pass: a recorded child was waited for.
	again = make(chan struct{}, 1)
)

// Start starts cmd as exec.Cmd.Start does and records its pid so that Reap leaves the child to
// Wait. Every process /init starts must be started here; one that is not is reaped as an orphan
// as soon as it exits, and its exec.Cmd.Wait then fails.
func Start(cmd *exec.Cmd) error {
	mu.Lock()
	defer mu.Unlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	started[cmd.Process.Pid]++
	return nil
}

// Wait waits for a child started by Start, as exec.Cmd.Wait does, then forgets it.
func Wait(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return cmd.Wait() // not started: its error
	}
	err := cmd.Wait()
	mu.Lock()
	pid := cmd.Process.Pid
	if started[pid]--; started[pid] <= 0 {
		delete(started, pid)
	}
	mu.Unlock()
	select {
	case again <- struct{}{}:
	default:
	}
	return err
}

// Run starts cmd and waits for it.
func Run(cmd *exec.Cmd) error {
	if err := Start(cmd); err != nil {
		return err
	}
	return Wait(cmd)
}

// tick is how often Reap looks without being asked.
const tick = 5 * time.Second

// Reap reaps orphans until ctx ends: at once, at every SIGCHLD, after every Wait and every tick.
// Only PID 1 (or a child subreaper, see prctl(2)) inherits orphans; in any other process it
// reaps only children of its own that run in another session and were not started by Start.
func Reap(ctx context.Context) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGCHLD)
	defer signal.Stop(sigs)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		ReapOnce()
		select {
		case <-ctx.Done():
			return
		case <-sigs:
		case <-again:
		case <-t.C:
		}
	}
}

// ReapOnce reaps the orphans that have exited and returns how many. It never blocks.
func ReapOnce() int {
	mu.Lock()
	defer mu.Unlock()
	own, _ := unix.Getsid(0)
	n := 0
	for {
		pid, err := exited()
		if err != nil || pid <= 0 {
			return n // no children (ECHILD), or none exited
		}
		if started[pid] > 0 {
			// Its Wait reaps it. waitid(P_ALL) names the same zombie until then: Wait asks
			// for the next pass.
			return n
		}
		sid, err := unix.Getsid(pid)
		if errors.Is(err, unix.ESRCH) {
			continue // reaped meanwhile by the library that started it
		}
		if err != nil {
			return n
		}
		if sid == own {
			return n // a library's child: its Wait reaps it
		}
		var ws unix.WaitStatus
		if got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err == nil && got == pid {
			n++
		}
	}
}

// siginfo is the start of siginfo_t as waitid(2) fills it for a child: si_pid is the first field
// of the union, which is aligned for a pointer (the [0]uintptr); the rest pads it beyond
// the kernel's 128 bytes.
type siginfo struct {
	_   [3]int32 // si_signo, si_errno, si_code
	_   [0]uintptr
	pid int32
	_   [128]byte
}

// exited returns the pid of a child that has exited, leaving it a zombie; 0 when none has.
func exited() (int, error) {
	var si siginfo
	err := unix.Waitid(unix.P_ALL, 0, (*unix.Siginfo)(unsafe.Pointer(&si)), unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	return int(si.pid), err
}
