package bootmenu

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	sumA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	sumB = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../testdata/menus/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseYAMLDesign(t *testing.T) {
	got, err := ParseYAML(readTestdata(t, "design.yaml"), "design.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Menu{
		Title: "Lab rescue", Default: "rescue", Timeout: 10 * time.Second,
		Source: "design.yaml", Format: "yaml",
		Entries: []Entry{
			{Name: "rescue", Title: "Debian 12 rescue (in RAM)", Kind: KindRamroot, Line: 5, Ramroot: &Ramroot{
				File: File{URL: "http://boot.example/rescue.tar.zst", SHA256: sumA, Mirrors: []string{"http://mirror.example/rescue.tar.zst"}},
			}},
			{Name: "maint", Title: "Maintenance kernel", Kind: KindKexec, Line: 8, Kexec: &Kexec{
				Kernel:  File{URL: "http://boot.example/vmlinuz"},
				Initrds: []File{{URL: "http://boot.example/initramfs.cpio.gz"}},
				Cmdline: "console=ttyS0 boot=ramdisk ramroot=http://boot.example/maint.tar.zst",
				BootIF:  true,
			}},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("menu (-want +got):\n%s", diff)
	}
}

func TestParseYAMLLab(t *testing.T) {
	got, err := ParseYAML(readTestdata(t, "lab.yaml"), "http://boot.example/menus/lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Menu{
		Title: "Lab rescue", Default: "bookworm", Timeout: 5 * time.Second,
		Source: "http://boot.example/menus/lab.yaml", Format: "yaml",
		Entries: []Entry{
			{Name: "bookworm", Title: "Debian 12 (in RAM)", Kind: KindRamroot, Line: 6, Ramroot: &Ramroot{
				File: File{
					URL:     "http://boot.example/images/bookworm.tar.zst",
					SHA256:  sumA, // lowercased
					Mirrors: []string{"http://mirror.example/images/bookworm.tar.zst"},
				},
				Size: "75%", Init: "/lib/systemd/systemd", Cmdline: "systemd.unit=rescue.target",
			}},
			{Name: "trixie", Title: "trixie", Kind: KindRamroot, Line: 16, Ramroot: &Ramroot{
				File: File{URL: "http://boot.example/images/trixie.tar.zst"},
			}},
			{Name: "maint", Title: "Maintenance kernel", Kind: KindKexec, Line: 18, Kexec: &Kexec{
				Kernel: File{URL: "/boot/vmlinuz", SHA256: sumB}, // an absolute path stays local
				Initrds: []File{
					{URL: "http://boot.example/menus/maint/initrd.img"},
					{URL: "http://boot.example/menus/maint/firmware.cpio", Mirrors: []string{"http://mirror.example/firmware.cpio"}},
				},
				Cmdline:  "console=ttyS0,115200 boot=ramdisk ramroot=http://boot.example/maint.tar.zst",
				IPAppend: true, BootIF: true,
			}},
			{Name: "installer", Title: "Debian installer", Kind: KindKexec, Line: 27, Kexec: &Kexec{
				Kernel:  File{URL: "https://deb.debian.org/debian/dists/bookworm/main/installer-amd64/current/images/netboot/debian-installer/amd64/linux"},
				Initrds: []File{{URL: "https://deb.debian.org/debian/dists/bookworm/main/installer-amd64/current/images/netboot/debian-installer/amd64/initrd.gz"}},
				Cmdline: "priority=low",
			}},
			{Name: "more", Title: "More tools...", Kind: KindMenu, Line: 34, Menu: "http://boot.example/menus/tools.yaml"},
			{Name: "shell", Title: "Shell", Kind: KindShell, Line: 37},
			{Name: "reboot", Title: "reboot", Kind: KindReboot, Line: 38},
			{Name: "poweroff", Title: "Power off", Kind: KindPoweroff, Line: 39},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("menu (-want +got):\n%s", diff)
	}
}

// one is a valid one-entry menu after the given top-level lines.
func one(top string) string {
	return top + "entries:\n  - {name: a, action: shell}\n"
}

func TestParseYAMLValid(t *testing.T) {
	for _, tt := range []struct {
		name, src, yaml string
		check           func(t *testing.T, m *Menu)
	}{
		{name: "timeout absent", yaml: one(""), check: wantTimeout(-1)},
		{name: "timeout duration", yaml: one("timeout: 1m30s\n"), check: wantTimeout(90 * time.Second)},
		{name: "timeout seconds", yaml: one("timeout: 10\n"), check: wantTimeout(10 * time.Second)},
		{name: "timeout fraction", yaml: one("timeout: 2.5\n"), check: wantTimeout(2500 * time.Millisecond)},
		{name: "timeout quoted seconds", yaml: one("timeout: \"3\"\n"), check: wantTimeout(3 * time.Second)},
		{name: "timeout zero", yaml: one("timeout: 0\n"), check: wantTimeout(0)},
		{name: "timeout null", yaml: one("timeout:\n"), check: wantTimeout(-1)},
		{name: "title defaults to name", yaml: one(""), check: func(t *testing.T, m *Menu) {
			if got := m.Entries[0].Title; got != "a" {
				t.Errorf("title %q, want %q", got, "a")
			}
		}},
		{name: "relative to a local path", src: "/etc/ramboot/menu.yaml",
			yaml:  "entries:\n  - {name: a, ramroot: img/a.tar}\n  - {name: b, ramroot: ../b.tar}\n",
			check: wantURLs("/etc/ramboot/img/a.tar", "/etc/b.tar")},
		{name: "relative to a file URL", src: "file:///srv/menu.yaml",
			yaml:  "entries:\n  - {name: a, ramroot: a.tar}\n",
			check: wantURLs("file:///srv/a.tar")},
		{name: "relative to https, query kept", src: "https://boot.example/m/menu.yaml?mac=1",
			yaml:  "entries:\n  - {name: a, ramroot: 'a.tar?v=2'}\n  - {name: b, ramroot: /local.tar}\n",
			check: wantURLs("https://boot.example/m/a.tar?v=2", "/local.tar")},
		{name: "initrd as one string, bootif default", src: "http://h/menu.yaml",
			yaml: "entries:\n  - name: k\n    kexec: {kernel: vmlinuz, initrd: initrd.img}\n",
			check: func(t *testing.T, m *Menu) {
				want := &Kexec{Kernel: File{URL: "http://h/vmlinuz"}, Initrds: []File{{URL: "http://h/initrd.img"}}, BootIF: true}
				if diff := cmp.Diff(want, m.Entries[0].Kexec); diff != "" {
					t.Errorf("kexec (-want +got):\n%s", diff)
				}
			}},
		{name: "mirrors as one string", yaml: "entries:\n  - {name: a, ramroot: {url: http://h/a, mirrors: http://m/a}}\n",
			check: func(t *testing.T, m *Menu) {
				if diff := cmp.Diff([]string{"http://h/a", "http://m/a"}, m.Entries[0].Ramroot.URLs()); diff != "" {
					t.Errorf("URLs (-want +got):\n%s", diff)
				}
			}},
		{name: "numeric name", yaml: "entries:\n  - {name: 1, action: reboot}\n", check: func(t *testing.T, m *Menu) {
			if _, ok := m.Entry("1"); !ok {
				t.Error("no entry 1")
			}
		}},
		{name: "empty default", yaml: one("default: \"\"\n"), check: func(t *testing.T, m *Menu) {
			if m.Default != "" {
				t.Errorf("default %q", m.Default)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.src
			if src == "" {
				src = "menu.yaml"
			}
			m, err := ParseYAML([]byte(tt.yaml), src)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, m)
		})
	}
}

func wantTimeout(d time.Duration) func(*testing.T, *Menu) {
	return func(t *testing.T, m *Menu) {
		if m.Timeout != d {
			t.Errorf("timeout %v, want %v", m.Timeout, d)
		}
	}
}

func wantURLs(urls ...string) func(*testing.T, *Menu) {
	return func(t *testing.T, m *Menu) {
		var got []string
		for _, e := range m.Entries {
			got = append(got, e.Ramroot.URL)
		}
		if diff := cmp.Diff(urls, got); diff != "" {
			t.Errorf("URLs (-want +got):\n%s", diff)
		}
	}
}

func TestParseYAMLErrors(t *testing.T) {
	maint := `title: Lab
default: rescue
timeout: 10s
entries:
  - name: rescue
    ramroot: http://boot.example/rescue.tar.zst
  - name: maint
    title: Maintenance kernel
    kexec:
      cmdline: console=ttyS0
      initrd: http://boot.example/initrd.img
      kernel:
        sha256: ` + sumA + `
`
	for _, tt := range []struct {
		name, yaml, want string
	}{
		{"brief's example", maint, "menu.yaml:12: entries[1] (maint): kexec.kernel: missing url"},
		{"empty", "", "menu.yaml: empty menu"},
		{"comment only", "# nothing\n", "menu.yaml: empty menu"},
		{"not a mapping", "- a\n", "menu.yaml:1: want a mapping with entries"},
		{"invalid YAML", "entries:\n  - name: a\n    action: 'x\n", "menu.yaml:3: invalid YAML: found unexpected end of stream"},
		{"unknown key", "titel: x\n" + one(""), `menu.yaml:1: unknown key "titel" (want title, default, timeout, entries, password, report); did you mean title?`},
		{"duplicate key", "title: x\ntitle: y\n" + one(""), `menu.yaml:2: duplicate key "title"`},
		{"missing entries", "title: x\n", "menu.yaml: missing entries"},
		{"no entries", "entries: []\n", "menu.yaml:1: entries: no entries"},
		{"null entries", "entries:\n", "menu.yaml:1: entries: no entries"},
		{"entries not a list", "entries: shell\n", "menu.yaml:1: entries: want a list"},
		{"entry not a mapping", "entries:\n  - shell\n", "menu.yaml:2: entries[0]: want a mapping with name, title, ramroot, kexec, menu, action, locked, network"},
		{"missing name", "entries:\n  - action: shell\n", "menu.yaml:2: entries[0]: missing name"},
		{"empty name", "entries:\n  - {name: '', action: shell}\n", "menu.yaml:2: entries[0]: name: empty name"},
		{"bad name", "entries:\n  - name: my entry\n    action: shell\n", `menu.yaml:2: entries[0]: name: "my entry" has characters other than A-Z a-z 0-9 . _ -`},
		{"name not a string", "entries:\n  - name: [a]\n    action: shell\n", "menu.yaml:2: entries[0]: name: want a string"},
		{"duplicate name", "entries:\n  - {name: a, action: shell}\n  - name: a\n    action: reboot\n", `menu.yaml:3: entries[1] (a): name: duplicate name "a"`},
		{"unknown entry key", "entries:\n  - name: a\n    actoin: shell\n", `menu.yaml:3: entries[0]: unknown key "actoin" (want name, title, ramroot, kexec, menu, action, locked, network); did you mean action?`},
		{"no kind", "entries:\n  - name: a\n    title: A\n", "menu.yaml:2: entries[0] (a): want one of ramroot, kexec, menu, action"},
		{"two kinds", "entries:\n  - name: a\n    ramroot: http://h/a.tar\n    action: shell\n", "menu.yaml:4: entries[0] (a): action: only one of ramroot, kexec, menu, action per entry (also has ramroot)"},
		{"title control", "entries:\n  - {name: a, title: \"\\e[2J\", action: shell}\n", `menu.yaml:2: entries[0] (a): title: "\x1b[2J" contains a control character`},
		{"menu title control", "title: \"a\\nb\"\n" + one(""), `menu.yaml:1: title: "a\nb" contains a control character`},
		{"bad action", "entries:\n  - {name: a, action: halt}\n", `menu.yaml:2: entries[0] (a): action: "halt" is not shell, reboot or poweroff`},
		{"ramroot relative without base", "entries:\n  - {name: a, ramroot: a.tar}\n", `menu.yaml:2: entries[0] (a): ramroot: relative URL "a.tar" and no base URL to resolve it against`},
		{"ramroot empty", "entries:\n  - {name: a, ramroot: ''}\n", "menu.yaml:2: entries[0] (a): ramroot: missing url"},
		{"ramroot null", "entries:\n  - name: a\n    ramroot:\n", "menu.yaml:3: entries[0] (a): ramroot: missing url"},
		{"ramroot list", "entries:\n  - name: a\n    ramroot: [http://h/a]\n", "menu.yaml:3: entries[0] (a): ramroot: want a mapping with url, sha256, mirrors, init, size, cmdline"},
		{"ramroot missing url", "entries:\n  - name: a\n    ramroot: {sha256: " + sumA + "}\n", "menu.yaml:3: entries[0] (a): ramroot: missing url"},
		{"ramroot scheme", "entries:\n  - name: a\n    ramroot:\n      url: ftp://h/a.tar\n", `menu.yaml:4: entries[0] (a): ramroot.url: unsupported scheme in URL "ftp://h/a.tar" (want http, https, file or an absolute path)`},
		{"ramroot no host", "entries:\n  - {name: a, ramroot: 'http:///a.tar'}\n", `menu.yaml:2: entries[0] (a): ramroot: no host in URL "http:///a.tar"`},
		{"ramroot space", "entries:\n  - {name: a, ramroot: 'http://h/a b.tar'}\n", `menu.yaml:2: entries[0] (a): ramroot: URL "http://h/a b.tar" contains a space`},
		{"ramroot bad URL", "entries:\n  - {name: a, ramroot: 'http://h:port/a'}\n", `menu.yaml:2: entries[0] (a): ramroot: invalid URL "http://h:port/a"`},
		{"sha256 short", "entries:\n  - name: a\n    ramroot: {url: http://h/a, sha256: abc}\n", `menu.yaml:3: entries[0] (a): ramroot.sha256: "abc" is not 64 hex digits`},
		{"sha256 not hex", "entries:\n  - name: a\n    ramroot: {url: http://h/a, sha256: " + strings.Repeat("g", 64) + "}\n", `menu.yaml:3: entries[0] (a): ramroot.sha256: "` + strings.Repeat("g", 64) + `" is not 64 hex digits`},
		{"mirror bad", "entries:\n  - name: a\n    ramroot:\n      url: http://h/a\n      mirrors:\n        - http://m/a\n        - ftp://m/a\n", `menu.yaml:7: entries[0] (a): ramroot.mirrors[1]: unsupported scheme in URL "ftp://m/a" (want http, https, file or an absolute path)`},
		{"mirrors mapping", "entries:\n  - name: a\n    ramroot: {url: http://h/a, mirrors: {a: b}}\n", `menu.yaml:3: entries[0] (a): ramroot.mirrors: want a list`},
		{"init relative", "entries:\n  - name: a\n    ramroot: {url: http://h/a, init: sbin/init}\n", `menu.yaml:3: entries[0] (a): ramroot.init: "sbin/init" is not an absolute path`},
		{"size bad", "entries:\n  - name: a\n    ramroot: {url: http://h/a, size: lots}\n", `menu.yaml:3: entries[0] (a): ramroot.size: "lots" is not a size like 2G, 512M or 75%`},
		{"size percent", "entries:\n  - name: a\n    ramroot: {url: http://h/a, size: 150%}\n", `menu.yaml:3: entries[0] (a): ramroot.size: "150%" is not a size like 2G, 512M or 75%`},
		{"ramroot unknown key", "entries:\n  - name: a\n    ramroot: {url: http://h/a, sha: x}\n", `menu.yaml:3: entries[0] (a): unknown key "ramroot.sha" (want url, sha256, mirrors, init, size, cmdline)`},
		{"ramroot cmdline quote", "entries:\n  - name: a\n    ramroot: {url: http://h/a, cmdline: 'a=\"b'}\n", `menu.yaml:3: entries[0] (a): ramroot.cmdline: unterminated quote`},
		{"kexec not a mapping", "entries:\n  - {name: k, kexec: http://h/vmlinuz}\n", "menu.yaml:2: entries[0] (k): kexec: want a mapping with kernel, initrd, cmdline, ipappend, bootif"},
		{"kexec missing kernel", "entries:\n  - name: k\n    kexec:\n      cmdline: quiet\n", "menu.yaml:3: entries[0] (k): kexec: missing kernel"},
		{"kexec typo", "entries:\n  - name: k\n    kexec:\n      kernal: http://h/vmlinuz\n", `menu.yaml:4: entries[0] (k): unknown key "kexec.kernal" (want kernel, initrd, cmdline, ipappend, bootif); did you mean kernel?`},
		{"kernel file typo", "entries:\n  - name: k\n    kexec:\n      kernel: {url: http://h/vmlinuz, sha: x}\n", `menu.yaml:4: entries[0] (k): unknown key "kexec.kernel.sha" (want url, sha256, mirrors)`},
		{"kernel file init", "entries:\n  - name: k\n    kexec:\n      kernel: {url: http://h/vmlinuz, init: /init}\n", `menu.yaml:4: entries[0] (k): unknown key "kexec.kernel.init" (want url, sha256, mirrors)`},
		{"kernel url", "entries:\n  - name: k\n    kexec:\n      kernel: {url: 'gopher://h/vmlinuz'}\n", `menu.yaml:4: entries[0] (k): kexec.kernel.url: unsupported scheme in URL "gopher://h/vmlinuz" (want http, https, file or an absolute path)`},
		{"kernel sha256", "entries:\n  - name: k\n    kexec:\n      kernel:\n        url: http://h/vmlinuz\n        sha256: 12\n", `menu.yaml:6: entries[0] (k): kexec.kernel.sha256: "12" is not 64 hex digits`},
		{"initrd item", "entries:\n  - name: k\n    kexec:\n      kernel: http://h/vmlinuz\n      initrd:\n        - http://h/a\n        - {url: 'http:///b'}\n", `menu.yaml:7: entries[0] (k): kexec.initrd[1].url: no host in URL "http:///b"`},
		{"initrd item list", "entries:\n  - name: k\n    kexec:\n      kernel: http://h/vmlinuz\n      initrd: [[a]]\n", `menu.yaml:5: entries[0] (k): kexec.initrd[0]: want a mapping with url, sha256, mirrors`},
		{"cmdline quote", "entries:\n  - name: k\n    kexec:\n      kernel: http://h/vmlinuz\n      cmdline: 'a=\"b c'\n", "menu.yaml:5: entries[0] (k): kexec.cmdline: unterminated quote"},
		{"cmdline newline", "entries:\n  - name: k\n    kexec:\n      kernel: http://h/vmlinuz\n      cmdline: \"a\\nb\"\n", `menu.yaml:5: entries[0] (k): kexec.cmdline: "a\nb" contains a control character`},
		{"ipappend", "entries:\n  - name: k\n    kexec:\n      kernel: http://h/vmlinuz\n      ipappend: 1\n", "menu.yaml:5: entries[0] (k): kexec.ipappend: want true or false"},
		{"bootif", "entries:\n  - name: k\n    kexec:\n      kernel: http://h/vmlinuz\n      bootif: yes\n", "menu.yaml:5: entries[0] (k): kexec.bootif: want true or false"},
		{"menu url", "entries:\n  - {name: m, menu: 'ftp://h/m.yaml'}\n", `menu.yaml:2: entries[0] (m): menu: unsupported scheme in URL "ftp://h/m.yaml" (want http, https, file or an absolute path)`},
		{"menu mapping", "entries:\n  - {name: m, menu: {url: m.yaml}}\n", "menu.yaml:2: entries[0] (m): menu: want a string"},
		{"default unknown", "default: rescue\nentries:\n  - {name: a, action: shell}\n  - {name: b, action: reboot}\n", `menu.yaml:1: default: no such entry "rescue" (entries: a, b)`},
		{"timeout negative", one("timeout: -1\n"), "menu.yaml:1: timeout: must not be negative"},
		{"timeout negative duration", one("timeout: -5s\n"), "menu.yaml:1: timeout: must not be negative"},
		{"timeout word", one("timeout: soon\n"), `menu.yaml:1: timeout: "soon" is not a duration like 10s or a number of seconds`},
		{"timeout nan", one("timeout: .nan\n"), `menu.yaml:1: timeout: ".nan" is not a duration like 10s or a number of seconds`},
		{"timeout huge", one("timeout: 1e300\n"), "menu.yaml:1: timeout: too large"},
		{"timeout list", one("timeout: [1]\n"), `menu.yaml:1: timeout: "" is not a duration like 10s or a number of seconds`},
		{"alias", "x: &a {name: a, action: shell}\nentries:\n  - *a\n", `menu.yaml:1: unknown key "x" (want title, default, timeout, entries, password, report)`},
		{"alias entry", "entries:\n  - &a {name: a, action: shell}\n  - *a\n", "menu.yaml:3: entries: YAML aliases are not supported"},
		{"merge key", "entries:\n  - &a {name: a, action: shell}\n  - {<<: *a, name: b}\n", `menu.yaml:3: entries[1]: unknown key "<<" (want name, title, ramroot, kexec, menu, action, locked, network)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseYAML([]byte(tt.yaml), "menu.yaml")
			if err == nil {
				t.Fatalf("no error, menu %+v", m)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error\n got %s\nwant %s", got, tt.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("error %T is not an *Error", err)
			}
		})
	}
}

// TestYAMLErrorLines: errors name the line at fault. The YAML library names the line where the
// enclosing block starts: a key mis-indented on line 4 was reported on line 2, the line of
// "entries:".
func TestYAMLErrorLines(t *testing.T) {
	const indent = " (check this line's indentation against the lines above)"
	for _, tt := range []struct {
		name, yaml, want string
	}{
		{"key indented too little in an entry",
			"title: x\nentries:\n  - name: a\n   action: shell\n",
			"menu.yaml:4: invalid YAML: did not find expected '-' indicator" + indent},
		{"key indented too far",
			"title: x\nentries:\n  - name: a\n     action: shell\n",
			"menu.yaml:4: invalid YAML: mapping values are not allowed in this context" + indent},
		{"second entry",
			"title: x\nentries:\n  - name: a\n    action: shell\n  - name: b\n   action: reboot\n",
			"menu.yaml:6: invalid YAML: did not find expected '-' indicator" + indent},
		{"ramroot key indented too little",
			"title: x\nentries:\n  - name: a\n    ramroot:\n      url: http://a/b\n     sha256: " + sumA + "\n",
			"menu.yaml:6: invalid YAML: did not find expected key" + indent},
		{"kexec key after a list",
			"title: x\nentries:\n  - name: a\n    kexec:\n      kernel: http://a/k\n      initrd:\n      - http://a/i\n     cmdline: x\n",
			"menu.yaml:8: invalid YAML: did not find expected key" + indent},
		{"entry indented less than the first",
			"title: x\nentries:\n- name: a\n  action: shell\n - name: b\n",
			"menu.yaml:5: invalid YAML: did not find expected key" + indent},
		{"menu key indented",
			"title: x\ntimeout: 5s\n  default: a\nentries:\n  - name: a\n    action: shell\n",
			"menu.yaml:3: invalid YAML: mapping values are not allowed in this context" + indent},
		{"tab",
			"title: x\nentries:\n  - name: a\n    action: shell\n\n\n\t- name: b\n",
			"menu.yaml:7: invalid YAML: found a tab character that violates indentation" + indent},
		{"unclosed quote", "title: \"x\nentries:\n  - name: a\n", "menu.yaml:1: invalid YAML: found unexpected end of stream"},
		{"unclosed bracket",
			"title: x\nentries:\n  - name: a\n    action: shell\n    title: [a, b\n",
			"menu.yaml:5: invalid YAML: did not find expected ',' or ']'"},
		{"file key outside ramroot",
			"title: x\nentries:\n  - name: a\n    ramroot:\n    url: http://a/b\n",
			`menu.yaml:5: entries[0]: unknown key "url" (want name, title, ramroot, kexec, menu, action, locked, network); is it meant to be indented under ramroot (line 4)?`},
		{"kexec key outside kexec",
			"entries:\n  - name: k\n    kexec:\n      kernel: http://a/k\n    cmdline: quiet\n",
			`menu.yaml:5: entries[0]: unknown key "cmdline" (want name, title, ramroot, kexec, menu, action, locked, network); is it meant to be indented under kexec (line 3)?`},
		{"typo", "entries:\n  - name: a\n    ramroot:\n      url: http://a/b\n      mirror: [http://m/b]\n",
			`menu.yaml:5: entries[0] (a): unknown key "ramroot.mirror" (want url, sha256, mirrors, init, size, cmdline); did you mean mirrors?`},
		{"no line ending", "entries:\n  - name: a\n   action: shell",
			"menu.yaml:3: invalid YAML: did not find expected '-' indicator" + indent},
		{"CRLF", "entries:\r\n  - name: a\r\n   action: shell\r\n",
			"menu.yaml:3: invalid YAML: did not find expected '-' indicator" + indent},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseYAML([]byte(tt.yaml), "menu.yaml")
			if err == nil || err.Error() != tt.want {
				t.Errorf("error\n got %v\nwant %s", err, tt.want)
			}
		})
	}
}

// TestParseYAMLPasswordAndLocked: the chain of trust's keys.
func TestParseYAMLPasswordAndLocked(t *testing.T) {
	m, err := ParseYAML([]byte("password: \"$2a$04$abc\"\nentries:\n  - {name: a, action: shell, locked: true}\n  - {name: b, action: reboot, locked: false}\n"), "menu.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if m.Password != "$2a$04$abc" || !m.Entries[0].Locked || m.Entries[1].Locked || m.Trusted || m.Entries[0].Pinned {
		t.Errorf("parsed %+v", m)
	}
	_, err = ParseYAML([]byte("entries:\n  - {name: a, action: shell, locked: yes please}\n"), "menu.yaml")
	if err == nil || err.Error() != "menu.yaml:2: entries[0] (a): locked: want true or false" {
		t.Errorf("bad locked: %v", err)
	}
}
