package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
