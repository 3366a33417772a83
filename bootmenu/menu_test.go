package bootmenu

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseDetectsFormat(t *testing.T) {
	for _, tt := range []struct {
		name, data, want, wantErr string
	}{
		{name: "yaml", data: one("title: x\n"), want: "yaml"},
		{name: "yaml entries first", data: "entries:\n  - {name: a, action: shell}\ndefault: a\n", want: "yaml"},
		{name: "pxelinux", data: "DEFAULT a\nLABEL a\n KERNEL /k\n", want: "pxelinux"},
		{name: "pxelinux label only", data: "  label a\n\tkernel /k\n", want: "pxelinux"},
		{name: "pxelinux named like yaml", data: "# menu.yaml\nlabel a\n kernel /k\n", want: "pxelinux"},
		{name: "yaml typo explained", data: "title: x\nentires: []\n",
			wantErr: `menu:2: unknown key "entires" (want title, default, timeout, entries, password, report)`},
		{name: "broken yaml explained", data: "entries:\n  - {name: a\n",
			wantErr: `menu:2: invalid YAML: did not find expected ',' or '}'`}, // where the brace opens
		{name: "neither", data: "hello world\n",
			wantErr: "menu: neither a YAML menu (a mapping with entries) nor a pxelinux config (label, default or kernel lines)"},
		{name: "empty", data: "", wantErr: "menu: neither a YAML menu"},
		{name: "html", data: "<html><body>404</body></html>\n", wantErr: "menu: neither a YAML menu"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.data), "menu")
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Format != tt.want {
				t.Errorf("format %q, want %q", m.Format, tt.want)
			}
		})
	}
	if _, err := Parse([]byte("hello\n"), "x"); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("%v is not ErrUnknownFormat", err)
	}
}

func TestParseWithBase(t *testing.T) {
	m, err := ParseWith([]byte("entries:\n  - {name: a, ramroot: a.tar}\n"), "menu.yaml", Options{Base: "http://h/m/menu.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Source != "menu.yaml" || m.Entries[0].Ramroot.URL != "http://h/m/a.tar" {
		t.Errorf("source %q, URL %q", m.Source, m.Entries[0].Ramroot.URL)
	}
}

func TestOverride(t *testing.T) {
	parse := func() *Menu {
		m, err := ParseYAML(readTestdata(t, "design.yaml"), "design.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, tt := range []struct {
		name        string
		def         string
		timeout     time.Duration
		wantDef     string
		wantTimeout time.Duration
		wantErr     string
	}{
		{name: "keep", timeout: -1, wantDef: "rescue", wantTimeout: 10 * time.Second},
		{name: "both", def: "maint", timeout: 0, wantDef: "maint", wantTimeout: 0},
		{name: "timeout only", timeout: 3 * time.Second, wantDef: "rescue", wantTimeout: 3 * time.Second},
		{name: "unknown", def: "maintenance", timeout: 0, wantDef: "rescue", wantTimeout: 10 * time.Second,
			wantErr: `default: no such entry "maintenance" (entries: rescue, maint)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := parse()
			err := m.Override(tt.def, tt.timeout)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("error %v, want %s", err, tt.wantErr)
				}
				if !errors.Is(err, ErrNoEntry) {
					t.Errorf("%v is not ErrNoEntry", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if m.Default != tt.wantDef || m.Timeout != tt.wantTimeout {
				t.Errorf("default %q timeout %v, want %q %v", m.Default, m.Timeout, tt.wantDef, tt.wantTimeout)
			}
			if e, ok := m.DefaultEntry(); !ok || e.Name != tt.wantDef {
				t.Errorf("DefaultEntry %v %v, want %s", e, ok, tt.wantDef)
			}
		})
	}
}

func TestDefaultEntry(t *testing.T) {
	m := &Menu{Entries: []Entry{{Name: "sh", Kind: KindShell}, {Name: "k", Kind: KindKexec}, {Name: "r", Kind: KindRamroot}}}
	if e, ok := m.DefaultEntry(); !ok || e.Name != "k" {
		t.Errorf("DefaultEntry %v %v, want the first bootable, k", e, ok)
	}
	m.Entries = m.Entries[:1]
	if e, ok := m.DefaultEntry(); ok {
		t.Errorf("DefaultEntry %v, want none", e)
	}
	if _, ok := m.Entry("nope"); ok {
		t.Error("Entry(nope) found")
	}
}

func TestBuiltin(t *testing.T) {
	for _, tt := range []struct {
		name string
		c    BuiltinConfig
		want *Menu
	}{
		{name: "nothing", c: BuiltinConfig{}, want: &Menu{
			Title: "ramboot", Timeout: -1, Source: "built-in menu", Format: "yaml",
			Entries: []Entry{
				{Name: "reboot", Title: "Reboot", Kind: KindReboot},
				{Name: "poweroff", Title: "Power off", Kind: KindPoweroff},
			},
		}},
		{name: "ramroot and shell", c: BuiltinConfig{
			Ramroot: []string{"http://h/a.tar.zst", "http://m/a.tar.zst"}, SHA256: sumA, Size: "75%", Init: "/sbin/init", HasShell: true,
		}, want: &Menu{
			Title: "ramboot", Default: "ramroot", Timeout: 0, Source: "built-in menu", Format: "yaml",
			Entries: []Entry{
				{Name: "ramroot", Title: "Boot http://h/a.tar.zst in RAM", Kind: KindRamroot, Ramroot: &Ramroot{
					File: File{URL: "http://h/a.tar.zst", SHA256: sumA, Mirrors: []string{"http://m/a.tar.zst"}},
					Size: "75%", Init: "/sbin/init",
				}},
				{Name: "shell", Title: "Shell", Kind: KindShell},
				{Name: "reboot", Title: "Reboot", Kind: KindReboot},
				{Name: "poweroff", Title: "Power off", Kind: KindPoweroff},
			},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := Builtin(tt.c)
			// Line numbers are those of assets/builtin.yaml.
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(Entry{}, "Line")); diff != "" {
				t.Errorf("menu (-want +got):\n%s", diff)
			}
			if err := got.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := func() *Menu {
		return &Menu{Source: "m", Timeout: -1, Entries: []Entry{
			{Name: "a", Kind: KindRamroot, Line: 3, Ramroot: &Ramroot{File: File{URL: "http://h/a"}}},
			{Name: "k", Kind: KindKexec, Line: 7, Kexec: &Kexec{Kernel: File{URL: "/boot/vmlinuz"}}},
		}}
	}
	if err := ok().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		change func(m *Menu)
		want   string
	}{
		{"no entries", func(m *Menu) { m.Entries = nil }, "m: entries: no entries"},
		{"timeout", func(m *Menu) { m.Timeout = -2 }, "m: timeout: must not be negative"},
		{"default", func(m *Menu) { m.Default = "x" }, `m: default: no such entry "x" (entries: a, k)`},
		{"duplicate", func(m *Menu) { m.Entries[1].Name = "a" }, `m:7: entries[1] (a): name: duplicate name "a"`},
		{"kind", func(m *Menu) { m.Entries[0].Kind = "boot" }, `m:3: entries[0] (a): ramroot: set on a boot entry`},
		{"unknown kind", func(m *Menu) { m.Entries[0] = Entry{Name: "a", Kind: "boot"} }, `m: entries[0] (a): kind: unknown kind "boot"`},
		{"missing kexec", func(m *Menu) { m.Entries[1].Kexec = nil }, "m:7: entries[1] (k): kexec: missing"},
		{"kernel url", func(m *Menu) { m.Entries[1].Kexec.Kernel.URL = "" }, "m:7: entries[1] (k): kexec.kernel: missing url"},
		{"initrd mirror", func(m *Menu) {
			m.Entries[1].Kexec.Initrds = []File{{URL: "/i", Mirrors: []string{"i"}}}
		}, `m:7: entries[1] (k): kexec.initrd[0].mirrors[0]: relative URL "i" and no base URL to resolve it against`},
		{"sha256", func(m *Menu) { m.Entries[0].Ramroot.SHA256 = "x" }, `m:3: entries[0] (a): ramroot.sha256: "x" is not 64 hex digits`},
		{"menu", func(m *Menu) { m.Entries[0] = Entry{Name: "a", Kind: KindMenu} }, "m: entries[0] (a): menu: empty URL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := ok()
			tt.change(m)
			err := m.Validate()
			if err == nil || err.Error() != tt.want {
				t.Errorf("error\n got %v\nwant %s", err, tt.want)
			}
		})
	}
}
