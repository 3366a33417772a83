// Package hooks runs the operator's hook programs of /init: the executables in
// /etc/ramboot/hooks/<stage>/, in name order, each in a session of its own so that a ^C on the
// console stops the hook and never reaches PID 1.
package hooks

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
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

func (r Runner) runOne(ctx context.Context, stage, name string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(r.Dir, stage, name))
	cmd.Env = append(append([]string(nil), r.Env...), "RAMBOOT_STAGE="+stage)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// A session of its own: signals from the console go to the hook, never to /init.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if r.Console != "" {
		if tty, err := os.OpenFile(r.Console, os.O_RDWR|syscall.O_NOCTTY, 0); err == nil {
			defer tty.Close()
			cmd.Stdin = tty
			cmd.SysProcAttr.Setctty = true
			cmd.SysProcAttr.Ctty = 0 // the child's stdin
		}
	}
	err := cmd.Run()
	return out.String(), err
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
