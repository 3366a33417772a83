package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/kmod"
	"github.com/ramboot/ramboot/internal/layout"
)

// coldplug loads the drivers for the hardware present (an optional step: failures are logged).
func coldplug(logf func(string, ...any)) {
	var u unix.Utsname
	unix.Uname(&u)
	dir := filepath.Join(layout.ModulesRoot, unix.ByteSliceToString(u.Release[:]))
	if _, err := os.Stat(dir); err != nil {
		logf("no modules for kernel %s in the initramfs: relying on built-in drivers", unix.ByteSliceToString(u.Release[:]))
		return
	}
	ix, err := kmod.LoadIndex(os.DirFS(dir))
	if err != nil {
		logf("modules: %v", err)
		return
	}
	start := time.Now()
	loaded, errs := kmod.Coldplug(ix, "/sys", kmod.NewLinuxLoader(dir), logf)
	for _, err := range errs {
		logf("modules: %v", err)
	}
	logf("loaded %d modules in %v: %s", len(loaded), time.Since(start).Round(time.Millisecond), strings.Join(loaded, " "))
}

// runHooks runs the executables of one hook stage in name order. A failing hook stops the
// boot, named, with its output.
func runHooks(ctx context.Context, hooksDir, stage string, env []string, logf func(string, ...any)) error {
	dir := filepath.Join(hooksDir, stage)
	ents, err := os.ReadDir(dir)
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
		p := filepath.Join(dir, n)
		logf("hook %s/%s", stage, n)
		cmd := exec.CommandContext(ctx, p)
		cmd.Env = append(env, "RAMBOOT_STAGE="+stage)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		for _, l := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
			if l != "" {
				logf("  %s: %s", n, l)
			}
		}
		if err != nil {
			return fmt.Errorf("hook %s/%s failed: %w: %s", stage, n, err, lastLine(out.String()))
		}
	}
	return nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func hasShell() bool {
	st, err := os.Stat("/bin/sh")
	return err == nil && st.Mode()&0o111 != 0
}

// shell runs /bin/sh on the console until it exits.
func shell(logf func(string, ...any)) {
	if !hasShell() {
		logf("no shell in this initramfs (build it with --busybox)")
		return
	}
	cmd := exec.Command("/bin/sh")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/", "TERM=linux", "PS1=ramboot# "}
	if err := cmd.Run(); err != nil {
		logf("shell: %v", err)
	}
}
