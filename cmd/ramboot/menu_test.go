package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ramboot/ramboot/bootmenu"
)

func TestMenuCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("menu.yaml", `title: Lab
default: rescue
timeout: 10s
entries:
  - name: rescue
    title: Debian rescue
    ramroot: {url: rescue.tar.zst, mirrors: [http://mirror.example/rescue.tar.zst]}
  - name: maint
    kexec:
      kernel: vmlinuz
      initrd: [initrd.img]
      cmdline: console=ttyS0
  - {name: shell, action: shell}
`)
	network := write("network.yaml", `entries:
  - name: lacp
    ramroot: http://boot.example/rescue.tar.zst
    network:
      bond: "bond0:eth0,eth1:mode=802.3ad,miimon=100"
      vlan: vlan42:bond0
      ip: [vlan42:dhcp, vlan42:auto6]
  - {name: plain, ramroot: http://boot.example/rescue.tar.zst}
  - name: v6
    ramroot: http://boot.example/rescue.tar.zst
    network: {ip: "[2001:db8::5]::[2001:db8::1]:64::eth0:none", nameserver: "2001:db8::53"}
`)
	badNet := write("badnet.yaml", "entries:\n  - name: a\n    ramroot: http://h/a.tar\n    network:\n      bond: bond0:eth0,eth1\n      ip:\n        - eth1:dhcp\n")
	bad := write("bad.yaml", "entries:\n  - name: maint\n    kexec:\n      kernel: {sha256: abc}\n")
	pxe := write("tftp/pxelinux.cfg/default", "default linux\ntimeout 50\ninclude pxelinux.cfg/common.cfg\nlabel old\n localboot 0\n")
	write("tftp/pxelinux.cfg/common.cfg", "label linux\n kernel vmlinuz\n append initrd=initrd.img quiet\n ipappend 2\n")

	for _, tt := range []struct {
		name       string
		args       []string
		want       []string // lines of stdout, in order
		wantStderr string
		wantErr    string
	}{
		{name: "yaml", args: []string{good}, want: []string{
			good + ": yaml menu",
			"title:   Lab",
			"default: rescue",
			"timeout: 10s",
			"entries: 3",
			"  rescue  ramroot  \"Debian rescue\"  " + filepath.Join(dir, "rescue.tar.zst") + " (mirrors: http://mirror.example/rescue.tar.zst)",
			"  maint   kexec    \"maint\"          " + filepath.Join(dir, "vmlinuz") + " " + filepath.Join(dir, "initrd.img") + ` cmdline "console=ttyS0"`,
			"  shell   shell    \"shell\"",
		}},
		{name: "base", args: []string{"--base", "http://boot.example/menus/lab.yaml", good}, want: []string{
			"  rescue  ramroot  \"Debian rescue\"  http://boot.example/menus/rescue.tar.zst (mirrors: http://mirror.example/rescue.tar.zst)",
		}},
		{name: "pxelinux", args: []string{pxe, "--base", "http://boot.example/tftp/pxelinux.cfg/default"}, want: []string{
			pxe + ": pxelinux menu",
			"title:   (none)",
			"default: linux",
			"timeout: 5s",
			`  linux  kexec  "linux"  http://boot.example/tftp/vmlinuz http://boot.example/tftp/initrd.img cmdline "quiet"`,
		}, wantStderr: "warning: " + pxe + ":4: label old: localboot is not supported; skipped"},
		{name: "network", args: []string{network}, want: []string{
			"entries: 3",
			"  lacp   ramroot  \"lacp\"   http://boot.example/rescue.tar.zst",
			"network:",
			"  lacp  bond=bond0:eth0,eth1:mode=802.3ad,miimon=100 vlan=vlan42:bond0 ip=vlan42:dhcp ip=vlan42:auto6",
			"  v6    ip=[2001:db8::5]::[2001:db8::1]:64::eth0:none nameserver=2001:db8::53",
		}},
		{name: "invalid network", args: []string{badNet}, wantErr: "menu: " + badNet + `:7: entries[0] (a): network.ip[0]: "eth1:dhcp": eth1 is a slave of bond0: configure bond0`},
		{name: "invalid", args: []string{bad}, wantErr: "menu: " + bad + `:4: entries[0] (maint): kexec.kernel: missing url`},
		{name: "missing file", args: []string{filepath.Join(dir, "nope.yaml")}, wantErr: "no such file"},
		{name: "usage", args: []string{good, good}, wantErr: "want FILE"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), append([]string{"menu", "check"}, tt.args...), &out, &errb)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, errb.String())
			}
			got := out.String()
			at := 0
			for _, w := range tt.want {
				i := strings.Index(got[at:], w+"\n")
				if i < 0 {
					t.Fatalf("stdout lacks %q after offset %d:\n%s", w, at, got)
				}
				at += i + len(w)
			}
			if !strings.Contains(errb.String(), tt.wantStderr) {
				t.Errorf("stderr %q lacks %q", errb.String(), tt.wantStderr)
			}
		})
	}
}

func TestMenuUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"menu"}, &out, &errb); err == nil || !strings.Contains(errb.String(), "ramboot menu check") {
		t.Errorf("error %v, stderr %q", err, errb.String())
	}
}

// TestMenuCheckRefusesSpecialFiles: menu check reads regular files of at most
// bootmenu.MaxMenuSize, menus and includes alike. INCLUDE /dev/zero once grew it until the
// OOM killer came; a FIFO blocked it in open(2).
func TestMenuCheckRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.cfg")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	big := filepath.Join(dir, "big.cfg")
	if err := os.WriteFile(big, []byte("label a\n kernel k\n"+strings.Repeat("#\n", bootmenu.MaxMenuSize)), 0o644); err != nil {
		t.Fatal(err)
	}
	withInclude := func(name, target string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("label a\n kernel k\ninclude "+target+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tooLarge := "larger than the 1024 KiB a menu file may have"
	for _, tt := range []struct {
		name, file, wantErr string
	}{
		{"fifo", fifo, fifo + ": a FIFO, not a menu file"},
		{"include fifo", withInclude("inc-fifo.cfg", fifo), "include: " + fifo + ": " + fifo + ": a FIFO, not a menu file"},
		{"dev zero", "/dev/zero", "/dev/zero: a device, not a menu file"},
		{"include dev zero", withInclude("inc-zero.cfg", "/dev/zero"), "include: /dev/zero: /dev/zero: a device, not a menu file"},
		{"directory", dir, dir + ": a directory, not a menu file"},
		{"too large", big, big + ": " + tooLarge},
		{"include too large", withInclude("inc-big.cfg", big), "include: " + big + ": " + big + ": " + tooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.file+tt.wantErr, "/dev/zero") {
				if _, err := os.Stat("/dev/zero"); err != nil {
					t.Skip(err)
				}
			}
			done := make(chan error, 1)
			go func() {
				var out, errb bytes.Buffer
				done <- run(context.Background(), []string{"menu", "check", tt.file}, &out, &errb)
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %v, want %q", err, tt.wantErr)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("menu check still running after 10s")
			}
		})
	}
}
