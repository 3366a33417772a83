package main

import (
	"bytes"
	"context"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
)

func runArgs(args ...string) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	err = run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), err
}

// TestExitCodes: no command or a bad command line exits 2 with the usage on stderr; --help
// exits 0 with the usage on stdout.
func TestExitCodes(t *testing.T) {
	for _, tt := range []struct {
		args       []string
		code       int
		wantStdout string
		wantStderr string
	}{
		{args: nil, code: 2, wantStderr: "usage: ramboot COMMAND"},
		{args: []string{"bogus"}, code: 2, wantStderr: "usage: ramboot COMMAND"},
		{args: []string{"help"}, code: 0, wantStdout: "usage: ramboot COMMAND"},
		{args: []string{"--help"}, code: 0, wantStdout: "usage: ramboot COMMAND"},
		{args: []string{"help", "fetch"}, code: 0, wantStdout: "usage: ramboot fetch "},
		{args: []string{"fetch", "--help"}, code: 0, wantStdout: "usage: ramboot fetch "},
		{args: []string{"fetch", "-h"}, code: 0, wantStdout: "usage: ramboot fetch "},
		{args: []string{"fetch", "--bogus", "u", "d"}, code: 2, wantStderr: "usage: ramboot fetch "},
		{args: []string{"fetch", "u"}, code: 2, wantStderr: "usage: ramboot fetch "},
		{args: []string{"menu", "--help"}, code: 0, wantStdout: "usage: ramboot menu check "},
		{args: []string{"menu", "-h"}, code: 0, wantStdout: "usage: ramboot menu check "},
		{args: []string{"menu", "check", "--help"}, code: 0, wantStdout: "usage: ramboot menu check "},
		{args: []string{"menu"}, code: 2, wantStderr: "usage: ramboot menu check "},
		{args: []string{"menu", "lint"}, code: 2, wantStderr: "usage: ramboot menu check "},
		{args: []string{"initramfs"}, code: 2, wantStderr: "usage: ramboot initramfs "},
		{args: []string{"serve", "--max-conns", "x", "dir"}, code: 2, wantStderr: "usage: ramboot serve "},
		{args: []string{"version"}, code: 0, wantStdout: "ramboot "},
		{args: []string{"--version"}, code: 0, wantStdout: "ramboot "},
		{args: []string{"version", "extra"}, code: 2, wantStderr: "usage: ramboot version"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			stdout, stderr, err := runArgs(tt.args...)
			if got := exitCode(err); got != tt.code {
				t.Errorf("exit code %d (error %v), want %d", got, err, tt.code)
			}
			if tt.wantStdout != "" && !strings.HasPrefix(stdout, tt.wantStdout) {
				t.Errorf("stdout %q, want it to start with %q", stdout, tt.wantStdout)
			}
			if tt.wantStderr != "" && !strings.HasPrefix(stderr, tt.wantStderr) {
				t.Errorf("stderr %q, want it to start with %q", stderr, tt.wantStderr)
			}
		})
	}
}

// TestUsageListsEveryFlag: each command's usage line and help name all of its flags, with two
// dashes (one for a one-letter flag), as the usage lines are written.
func TestUsageListsEveryFlag(t *testing.T) {
	top, _, _ := runArgs("help")
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			fset := c.flags()
			var help bytes.Buffer
			fset.printUsage(&help)
			usageLine, _, _ := strings.Cut(help.String(), "\n  -")
			n := 0
			fset.VisitAll(func(fl *flag.Flag) {
				n++
				name := dashes(fl.Name)
				word := regexp.MustCompile(`[\[ ]` + regexp.QuoteMeta(name) + `[\] ]`)
				if !word.MatchString(usageLine) {
					t.Errorf("usage line %q lacks %s", usageLine, name)
				}
				if !word.MatchString(top) {
					t.Errorf("ramboot help lacks %s %s", c.name, name)
				}
				if !strings.Contains(help.String(), "\n  "+name+" ") && !strings.Contains(help.String(), "\n  "+name+"\n") {
					t.Errorf("help lacks a paragraph for %s:\n%s", name, help.String())
				}
			})
			if c.name != "version" && n == 0 {
				t.Errorf("no flags")
			}
			if regexp.MustCompile(`(?m)^  -[a-z][a-z-]`).MatchString(help.String()) {
				t.Errorf("a long flag with one dash:\n%s", help.String())
			}
			for _, line := range strings.Split(help.String(), "\n") {
				if strings.HasPrefix(line, "usage:") || strings.HasPrefix(line, "   ") && !strings.HasPrefix(line, "    \t") {
					if len(line) > 80 {
						t.Errorf("usage line over 80 columns: %q", line)
					}
				}
			}
		})
	}
	if !strings.Contains(top, "initramfs [--arch ARCH] [--busybox FILE]") || !strings.Contains(top, "--menu FILE") || !strings.Contains(top, "--storage") ||
		!strings.Contains(top, "--firmware DIR") || !strings.Contains(top, "--module NAME]...") {
		t.Errorf("ramboot help:\n%s", top)
	}
}

func TestVersionString(t *testing.T) {
	goVer := runtime.Version()
	plat := runtime.GOOS + "/" + runtime.GOARCH
	for _, tt := range []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"module version", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}}, "ramboot v1.2.3 go1.26.8 " + plat},
		{"dirty checkout", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "9c2c3103ab12cdef0123456789abcdef01234567"}, {Key: "vcs.modified", Value: "true"}}},
			"ramboot 9c2c3103ab12-dirty go1.26.8 " + plat},
		{"clean checkout", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "9c2c3103ab12cdef"}, {Key: "vcs.modified", Value: "false"}}},
			"ramboot 9c2c3103ab12 go1.26.8 " + plat},
		{"no vcs", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, "ramboot (devel) go1.26.8 " + plat},
		{"no build info", nil, "ramboot (devel) " + goVer + " " + plat},
	} {
		if got := versionString(tt.bi); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
	stdout, _, err := runArgs("version")
	if err != nil || !strings.Contains(stdout, runtime.Version()) {
		t.Errorf("ramboot version: %q, %v", stdout, err)
	}
}

// withUmask runs f with the process umask set to mask.
func withUmask(t *testing.T, mask int, f func()) {
	old := syscall.Umask(mask)
	defer syscall.Umask(old)
	f()
}

// TestInitramfsOutputMode: the initramfs is readable by a web server running as another user:
// 0644 less the umask, as a file created in place, not os.CreateTemp's 0600.
func TestInitramfsOutputMode(t *testing.T) {
	dir := t.TempDir()
	init := filepath.Join(dir, "init")
	if err := os.WriteFile(init, []byte("INIT"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		umask int
		want  fs.FileMode
	}{{0o022, 0o644}, {0o027, 0o640}, {0o002, 0o644}} {
		out := filepath.Join(dir, "ramboot.cpio.gz")
		var err error
		withUmask(t, tt.umask, func() {
			_, _, err = runArgs("initramfs", "--init", init, "--ca", init, "-o", out)
		})
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != tt.want {
			t.Errorf("umask %03o: mode %03o, want %03o", tt.umask, got, tt.want)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("temporary files left: %v", ents)
	}
}

// TestImageOutputMode: ramboot image's outputs are readable by others too.
func TestImageOutputMode(t *testing.T) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "hostname"), []byte("ramby\n"), 0o644)
	for _, tt := range []struct {
		umask int
		want  os.FileMode
	}{{0o022, 0o644}, {0o027, 0o640}} {
		out := filepath.Join(t.TempDir(), "rootfs.tar.zst")
		withUmask(t, tt.umask, func() {
			if _, stderr, err := runArgs("image", "-q", "dir:"+src, out); err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
		})
		for _, p := range []string{out, out + ".sha256"} {
			if st, err := os.Stat(p); err != nil || st.Mode().Perm() != tt.want {
				t.Errorf("umask %03o: %s: %v, %v; want mode %v", tt.umask, p, st.Mode(), err, tt.want)
			}
		}
	}
}

// TestInitramfsModuleWarnings: without --modules, or without a network driver among them,
// initramfs warns that a distribution kernel needs them; a missing tree is named.
func TestInitramfsModuleWarnings(t *testing.T) {
	dir := t.TempDir()
	init := filepath.Join(dir, "init")
	os.WriteFile(init, []byte("INIT"), 0o755)
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	out := filepath.Join(dir, "x.cpio")
	for _, tt := range []struct {
		name    string
		args    []string
		warn    string
		wantErr string
	}{
		{name: "no modules", warn: "warning: no --modules: a distribution kernel's network drivers are modules"},
		{name: "no network driver", args: []string{"--modules", empty}, warn: "warning: no network driver (kernel/drivers/net/) among the modules packed from " + empty},
		{name: "missing tree", args: []string{"--modules", "/nonexistent"}, wantErr: "stat /nonexistent: no such file or directory"},
		{name: "not a directory", args: []string{"--modules", init}, wantErr: init + " is not a directory"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, err := runArgs(append([]string{"initramfs", "--init", init, "--ca", init, "-o", out}, tt.args...)...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(stderr, tt.warn) {
				t.Errorf("stderr %q, want %q", stderr, tt.warn)
			}
		})
	}
}
