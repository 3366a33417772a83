package bootmenu

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const pxeSource = "http://boot.example/tftp/pxelinux.cfg/default"

func TestParsePXELinuxLab(t *testing.T) {
	got, err := ParsePXELinux(readTestdata(t, "pxelinux.cfg/default"), pxeSource)
	if err != nil {
		t.Fatal(err)
	}
	want := &Menu{
		Title:   "Lab PXE boot menu",
		Default: "bookworm", // ontimeout names a localboot label: menu default wins
		Timeout: 5 * time.Second,
		Source:  pxeSource, Format: "pxelinux",
		Entries: []Entry{
			{Name: "bookworm", Title: "Debian 12 rescue (in RAM)", Kind: KindKexec, Line: 14, Kexec: &Kexec{
				Kernel: File{URL: "http://boot.example/tftp/debian/bookworm/vmlinuz"},
				Initrds: []File{
					{URL: "http://boot.example/tftp/debian/bookworm/initrd.img"},
					{URL: "http://boot.example/tftp/debian/bookworm/firmware.cpio"},
				},
				Cmdline: "console=ttyS0,115200 boot=ramdisk ramroot=http://boot.example/images/bookworm.tar.zst quiet",
				BootIF:  true, // ipappend 2
			}},
			{Name: "install", Title: "Debian installer", Kind: KindKexec, Line: 26, Kexec: &Kexec{
				Kernel:   File{URL: "http://deb.example/debian-installer/amd64/linux"},
				Initrds:  []File{{URL: "http://deb.example/debian-installer/amd64/initrd.gz"}}, // from append
				Cmdline:  "vga=788 --- quiet",
				IPAppend: true, BootIF: true, // sysappend 3
			}},
			{Name: "tools", Title: "Tools...", Kind: KindMenu, Line: 40, Menu: "http://boot.example/tftp/pxelinux.cfg/tools"},
			{Name: "reboot", Title: "Reboot", Kind: KindReboot, Line: 45},
		},
		Warnings: []string{
			pxeSource + ":10: label local: localboot is not supported; skipped",
			pxeSource + ":34: label memtest: kernel /tools/memtest86+.bin is not a Linux kernel; skipped",
			pxeSource + ":38: label hdt: com32 module hdt.c32 is not supported; skipped",
			pxeSource + ":10: label local is skipped, so not the default",
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("menu (-want +got):\n%s", diff)
	}
}

func TestParsePXELinuxSyslinux(t *testing.T) {
	got, err := ParsePXELinux(readTestdata(t, "syslinux.cfg"), "/boot/syslinux/syslinux.cfg")
	if err != nil {
		t.Fatal(err)
	}
	want := &Menu{
		Default: "linux",
		Timeout: 0, // no timeout, prompt or menu: syslinux boots the default at once
		Source:  "/boot/syslinux/syslinux.cfg", Format: "pxelinux",
		Entries: []Entry{
			{Name: "linux", Title: "linux", Kind: KindKexec, Line: 3, Kexec: &Kexec{
				Kernel:  File{URL: "/boot/syslinux/vmlinuz"},
				Initrds: []File{{URL: "/boot/syslinux/initrd.img"}},
				Cmdline: "root=/dev/sda1 ro",
			}},
			{Name: "rescue", Title: "rescue", Kind: KindKexec, Line: 6, Kexec: &Kexec{
				Kernel:  File{URL: "/boot/syslinux/vmlinuz"},
				Initrds: []File{{URL: "/boot/syslinux/initrd.img"}},
				Cmdline: "root=/dev/sda1 single",
			}},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("menu (-want +got):\n%s", diff)
	}
}

func TestParsePXELinux(t *testing.T) {
	for _, tt := range []struct {
		name, src, cfg string
		check          func(t *testing.T, m *Menu)
	}{
		{name: "timeout 0 waits", cfg: "timeout 0\ndefault a\nlabel a\n kernel k\n", check: wantTimeout(-1)},
		{name: "timeout tenths", cfg: "timeout 15\nlabel a\n kernel k\n", check: wantTimeout(1500 * time.Millisecond)},
		{name: "prompt waits", cfg: "prompt 1\ndefault a\nlabel a\n kernel k\n", check: wantTimeout(-1)},
		{name: "ui waits", cfg: "ui menu.c32\ndefault a\nlabel a\n kernel k\n", check: wantTimeout(-1)},
		{name: "no default waits", cfg: "label a\n kernel k\n", check: wantTimeout(-1)},
		{name: "keywords ignore case", cfg: "DeFaUlT b\nLABEL a\n KERNEL k\nLaBeL b\n Linux k2\n", check: func(t *testing.T, m *Menu) {
			if m.Default != "b" || len(m.Entries) != 2 || m.Entries[1].Kexec.Kernel.URL != "http://boot.example/tftp/k2" {
				t.Errorf("got %+v", m)
			}
		}},
		{name: "default is a kernel", cfg: "append quiet\ndefault vmlinuz initrd=a.img,b.img root=/dev/sda\nlabel vmlinuz2\n kernel vmlinuz\n",
			check: func(t *testing.T, m *Menu) {
				want := []Entry{
					{Name: "vmlinuz2", Title: "vmlinuz2", Kind: KindKexec, Line: 3, Kexec: &Kexec{
						Kernel: File{URL: "http://boot.example/tftp/vmlinuz"}, Cmdline: "quiet"}},
					{Name: "vmlinuz", Title: "vmlinuz", Kind: KindKexec, Line: 2, Kexec: &Kexec{
						Kernel:  File{URL: "http://boot.example/tftp/vmlinuz"},
						Initrds: []File{{URL: "http://boot.example/tftp/a.img"}, {URL: "http://boot.example/tftp/b.img"}},
						Cmdline: "root=/dev/sda"}},
				}
				if diff := cmp.Diff(want, m.Entries); diff != "" || m.Default != "vmlinuz" {
					t.Errorf("default %q, entries (-want +got):\n%s", m.Default, diff)
				}
			}},
		{name: "default names a label ignoring case", cfg: "default RESCUE\nlabel rescue\n kernel k\n", check: func(t *testing.T, m *Menu) {
			if m.Default != "rescue" || len(m.Entries) != 1 {
				t.Errorf("got %+v", m)
			}
		}},
		{name: "ontimeout wins", cfg: "default a\nontimeout b\nlabel a\n kernel k\n menu default\nlabel b\n kernel k\n", check: func(t *testing.T, m *Menu) {
			if m.Default != "b" {
				t.Errorf("default %q, want b", m.Default)
			}
		}},
		{name: "initrd directive wins over append", cfg: "label a\n kernel k\n initrd x.img , y.img\n append initrd=z.img ro\n", check: func(t *testing.T, m *Menu) {
			k := m.Entries[0].Kexec
			if diff := cmp.Diff([]File{{URL: "http://boot.example/tftp/x.img"}, {URL: "http://boot.example/tftp/y.img"}}, k.Initrds); diff != "" || k.Cmdline != "ro" {
				t.Errorf("cmdline %q, initrds (-want +got):\n%s", k.Cmdline, diff)
			}
		}},
		{name: "global append and ipappend, append - clears", cfg: "append quiet\nipappend 1\nlabel a\n kernel k\nlabel b\n kernel k\n append -\n ipappend 0\n", check: func(t *testing.T, m *Menu) {
			a, b := m.Entries[0].Kexec, m.Entries[1].Kexec
			if a.Cmdline != "quiet" || !a.IPAppend || a.BootIF || b.Cmdline != "" || b.IPAppend {
				t.Errorf("a %+v, b %+v", a, b)
			}
		}},
		{name: "quoted parameter kept", cfg: "label a\n kernel k\n append  a=\"x  initrd=y\"\tinitrd=i b\n", check: func(t *testing.T, m *Menu) {
			k := m.Entries[0].Kexec
			if k.Cmdline != `a="x  initrd=y" b` || len(k.Initrds) != 1 || k.Initrds[0].URL != "http://boot.example/tftp/i" {
				t.Errorf("got %+v", k)
			}
		}},
		{name: "kernel line arguments", cfg: "label a\n kernel k console=ttyS0\n append quiet\n", check: func(t *testing.T, m *Menu) {
			if got := m.Entries[0].Kexec.Cmdline; got != "console=ttyS0 quiet" {
				t.Errorf("cmdline %q", got)
			}
		}},
		{name: "root-relative paths", cfg: "label a\n kernel /boot/k\n initrd ::i.img\n", check: func(t *testing.T, m *Menu) {
			k := m.Entries[0].Kexec
			if k.Kernel.URL != "http://boot.example/boot/k" || k.Initrds[0].URL != "http://boot.example/i.img" {
				t.Errorf("got %+v", k)
			}
		}},
		{name: "local pxelinux.cfg stripped", src: "/srv/tftp/pxelinux.cfg/01-aa-bb-cc-dd-ee-ff", cfg: "label a\n kernel k\n", check: func(t *testing.T, m *Menu) {
			if got := m.Entries[0].Kexec.Kernel.URL; got != "/srv/tftp/k" {
				t.Errorf("kernel %q", got)
			}
		}},
		{name: "not under pxelinux.cfg", src: "http://h/boot/menu.cfg", cfg: "label a\n kernel k\n", check: func(t *testing.T, m *Menu) {
			if got := m.Entries[0].Kexec.Kernel.URL; got != "http://h/boot/k" {
				t.Errorf("kernel %q", got)
			}
		}},
		{name: "labels become names", cfg: "label Debian 12\n kernel k\nlabel Debian-12\n kernel k\nlabel Debian 12\n kernel k\n", check: func(t *testing.T, m *Menu) {
			var got []string
			for _, e := range m.Entries {
				got = append(got, e.Name+"|"+e.Title)
			}
			if diff := cmp.Diff([]string{"Debian-12|Debian 12", "Debian-12-2|Debian-12", "Debian-12-3|Debian 12"}, got); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
		}},
		{name: "text block and comments skipped", cfg: "# label x\nlabel a\n kernel k\n text help\nlabel b\n kernel evil\n endtext\n  # kernel y\n", check: func(t *testing.T, m *Menu) {
			if len(m.Entries) != 1 || m.Entries[0].Kexec.Kernel.URL != "http://boot.example/tftp/k" {
				t.Errorf("got %+v", m.Entries)
			}
		}},
		{name: "config is a sub-menu", cfg: "label more\n config other.cfg\n", check: func(t *testing.T, m *Menu) {
			if e := m.Entries[0]; e.Kind != KindMenu || e.Menu != "http://boot.example/tftp/other.cfg" {
				t.Errorf("got %+v", e)
			}
		}},
		{name: "poweroff and chained menus", cfg: "label off\n com32 poweroff.c32\nlabel m\n kernel menu.c32 m.cfg\n", check: func(t *testing.T, m *Menu) {
			if m.Entries[0].Kind != KindPoweroff || m.Entries[1].Menu != "http://boot.example/tftp/m.cfg" {
				t.Errorf("got %+v", m.Entries)
			}
		}},
		{name: "CRLF", cfg: "DEFAULT a\r\nLABEL a\r\n  KERNEL k\r\n  APPEND quiet\r\n", check: func(t *testing.T, m *Menu) {
			if got := m.Entries[0].Kexec.Cmdline; got != "quiet" || m.Default != "a" {
				t.Errorf("cmdline %q", got)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.src
			if src == "" {
				src = pxeSource
			}
			m, err := ParsePXELinux([]byte(tt.cfg), src)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, m)
		})
	}
}

func TestParsePXELinuxErrors(t *testing.T) {
	for _, tt := range []struct {
		name, cfg, want string
	}{
		{"no entries", "default local\nlabel local\n localboot 0\n", pxeSource + ": entries: no entries"},
		{"empty", "", pxeSource + ": entries: no entries"},
		{"bad timeout", "timeout 5s\nlabel a\n kernel k\n", pxeSource + `:1: timeout: "5s" is not a number of tenths of a second`},
		{"bad ipappend", "label a\n kernel k\n ipappend two\n", pxeSource + `:3: label a: ipappend: "two" is not a number`},
		{"label without name", "label\n", pxeSource + ":1: label: missing name"},
		{"include", "label a\n kernel k\ninclude common.cfg\n", pxeSource + ":3: label a: include: common.cfg: include is not supported without a resolver"},
		{"menu include", "menu include common.cfg Common\n", pxeSource + ":1: menu include: common.cfg: include is not supported without a resolver"},
		{"bad kernel URL", "label a\n kernel ftp://h/k\n", pxeSource + `:2: label a: kernel: unsupported scheme in URL "ftp://h/k" (want http, https, file or an absolute path)`},
		{"bad initrd URL", "label a\n kernel k\n append initrd=tftp://h/i\n", pxeSource + `:3: label a: initrd: unsupported scheme in URL "tftp://h/i" (want http, https, file or an absolute path)`},
		{"unbalanced quote", "label a\n kernel k\n append a=\"b\n", pxeSource + ":3: label a: append: unterminated quote"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParsePXELinux([]byte(tt.cfg), pxeSource)
			if err == nil {
				t.Fatalf("no error, menu %+v", m)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error\n got %s\nwant %s", got, tt.want)
			}
		})
	}
	_, err := ParsePXELinux([]byte("include x\n"), pxeSource)
	if !errors.Is(err, ErrInclude) {
		t.Errorf("include: %v is not ErrInclude", err)
	}
}

func TestParsePXELinuxInclude(t *testing.T) {
	files := map[string]string{
		"http://boot.example/tftp/common.cfg":       "menu title Included\nappend quiet\nlabel inc\n kernel inc/vmlinuz\n",
		"http://boot.example/tftp/pxelinux.cfg/sub": "label sub\n kernel vmlinuz\n",
		"http://boot.example/tftp/loop.cfg":         "include loop.cfg\n",
	}
	var asked []string
	include := func(url string) ([]byte, error) {
		asked = append(asked, url)
		if s, ok := files[url]; ok {
			return []byte(s), nil
		}
		return nil, fmt.Errorf("HTTP 404 Not Found")
	}
	cfg := "include common.cfg\nlabel a\n kernel k\nmenu include pxelinux.cfg/sub Sub\n"
	m, err := ParseWith([]byte(cfg), pxeSource, Options{Include: include})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range m.Entries {
		got = append(got, e.Name+" "+e.Kexec.Kernel.URL+" "+e.Kexec.Cmdline)
	}
	want := []string{
		"inc http://boot.example/tftp/inc/vmlinuz quiet",
		"a http://boot.example/tftp/k quiet",
		"sub http://boot.example/tftp/vmlinuz quiet",
	}
	if diff := cmp.Diff(want, got); diff != "" || m.Title != "Included" {
		t.Errorf("title %q, entries (-want +got):\n%s", m.Title, diff)
	}

	_, err = ParseWith([]byte("include gone.cfg\n"), pxeSource, Options{Include: include})
	if want := pxeSource + ":1: include: gone.cfg: HTTP 404 Not Found"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
	asked = nil
	_, err = ParseWith([]byte("include loop.cfg\n"), pxeSource, Options{Include: include})
	if want := "http://boot.example/tftp/loop.cfg:1: include: loop.cfg: includes nested more than 8 deep"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
	if len(asked) != maxIncludeDepth {
		t.Errorf("%d includes fetched, want %d", len(asked), maxIncludeDepth)
	}
	// Includes that fan out are bounded in number, not only in depth.
	files["http://boot.example/tftp/fan.cfg"] = strings.Repeat("include leaf.cfg\n", 100)
	files["http://boot.example/tftp/leaf.cfg"] = "label leaf\n kernel k\n"
	_, err = ParseWith([]byte("include fan.cfg\n"), pxeSource, Options{Include: include})
	if err == nil || !strings.Contains(err.Error(), "more than 64 includes") {
		t.Errorf("error %v, want more than 64 includes", err)
	}
}
