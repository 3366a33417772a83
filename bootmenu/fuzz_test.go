package bootmenu

import (
	"os"
	"path/filepath"
	"testing"
)

// seed adds every file under testdata as a corpus entry.
func seed(f *testing.F) {
	err := filepath.WalkDir("../testdata/menus", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Base(filepath.Dir(filepath.Dir(path))) == "fuzz" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f.Add(b)
		return nil
	})
	if err != nil {
		f.Fatal(err)
	}
}

// checkFuzzed is the property both parsers keep: a returned menu validates, and is of the
// format asked for.
func checkFuzzed(t *testing.T, m *Menu, err error, format string) {
	if err != nil {
		if m != nil {
			t.Fatalf("menu and error %v", err)
		}
		if _, ok := err.(*Error); !ok {
			t.Fatalf("error %T %v is not an *Error", err, err)
		}
		return
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("returned menu does not validate: %v", err)
	}
	if m.Format != format {
		t.Fatalf("format %q, want %q", m.Format, format)
	}
	if e, ok := m.DefaultEntry(); m.Default != "" && (!ok || e.Name != m.Default) {
		t.Fatalf("default %q has no entry", m.Default)
	}
}

func FuzzParseYAML(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, src := range []string{"menu.yaml", "http://boot.example/menus/menu.yaml", "/etc/ramboot/menu.yaml"} {
			m, err := ParseYAML(data, src)
			checkFuzzed(t, m, err, FormatYAML)
		}
		if m, err := Parse(data, "menu"); err == nil {
			if err := m.Validate(); err != nil {
				t.Fatalf("Parse: returned menu does not validate: %v", err)
			}
		}
	})
}

func FuzzParsePXELinux(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, src := range []string{"default", pxeSource, "/srv/tftp/pxelinux.cfg/default"} {
			m, err := ParsePXELinux(data, src)
			checkFuzzed(t, m, err, FormatPXELinux)
		}
		// Includes of the config itself: bounded in depth and number.
		include := func(string) ([]byte, error) { return data, nil }
		m, err := ParseWith(data, pxeSource, Options{Include: include})
		if err == nil {
			if err := m.Validate(); err != nil {
				t.Fatalf("returned menu does not validate: %v", err)
			}
		}
	})
}
