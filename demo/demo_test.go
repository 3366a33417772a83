// Package demo holds the files of `make demo` (its image's init; its menu is assets/demo.yaml)
// and the tests that keep the newcomer's two commands working.
package demo

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestReadmeCommands: the README opens with the two commands, and both are Makefile targets.
func TestReadmeCommands(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)```sh\n(.*?)```").FindSubmatch(readme)
	if block == nil {
		t.Fatal("README has no opening sh block")
	}
	for _, target := range []string{"demo", "test"} {
		if !strings.Contains(string(block[1]), "make "+target) {
			t.Errorf("README's first commands lack `make %s`", target)
		}
		if !regexp.MustCompile(`(?m)^` + target + `:`).Match(mk) {
			t.Errorf("Makefile has no %s target", target)
		}
	}
}

// TestDemoSmoke runs `make demo`'s script as a person would, but without a terminal: it builds
// everything, serves it and boots QEMU until the menu shows.
func TestDemoSmoke(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI must run the tests as root")
		}
		t.Skip("make demo installs packages: needs root")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil && os.Getenv("CI") == "" {
		t.Skip("no QEMU")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	cmd := exec.Command("bash", "../scripts/demo.sh")
	cmd.Env = append(os.Environ(), "DEMO_SMOKE=1", "DEMO_DIR="+dir, "DEMO_PORT="+strconv.Itoa(port))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make demo: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "the menu is up") {
		t.Fatalf("no menu:\n%s", out)
	}
	for _, f := range []string{"srv/ramboot.cpio.zst", "srv/demo.tar.zst", "srv/demo.tar.zst.sha256", "srv/vmlinuz"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("demo did not make %s", f)
		}
	}
}
