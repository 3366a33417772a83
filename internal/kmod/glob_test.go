package kmod

import (
	"path"
	"strings"
	"testing"
)

func TestMatchGlob(t *testing.T) {
	for _, tt := range []struct {
		pattern, name string
		want          bool
	}{
		{"", "", true},
		{"", "a", false},
		{"abc", "abc", true},
		{"abc", "abd", false},
		{"*", "", true},
		{"*", "a/b", true}, // fnmatch without FNM_PATHNAME: '*' crosses '/'
		{"?", "/", true},
		{"a*c", "abbbc", true},
		{"a*c", "abbbcd", false},
		{"*a*a*a", "aaaa", true},
		{"*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
		{"pci:v00001AF4d*sv*sd*bc*sc*i*", "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", true},
		{"pci:v00001AF4d*sv*sd*bc*sc*i*", "pci:v00008086d00001000sv00001AF4sd00000001bc02sc00i00", false},
		{"virtio:d00000001v*", "virtio:d00000001v00001AF4", true},
		{"virtio:d00000001v*", "virtio:d00000002v00001AF4", false},
		{"usb:v*p*d*dc*dsc*dp*ic02isc0[2-6]ip*in*", "usb:v0BDAp8153d3000dc00dsc00dp00ic02isc06ip00in00", true},
		{"usb:v*p*d*dc*dsc*dp*ic02isc0[2-6]ip*in*", "usb:v0BDAp8153d3000dc00dsc00dp00ic02isc07ip00in00", false},
		{"[!a]", "b", true},
		{"[!a]", "a", false},
		{"[^a]", "a", false},
		{"[]]", "]", true},
		{"[]a]", "a", true},
		{"[!]]", "]", false},
		{"[a-]", "-", true},
		{"[-a]", "-", true},
		{"[z-a]", "m", false},
		{"[\\]]", "]", true},
		{"[", "[", true},     // unterminated: literal
		{"a[b", "a[b", true}, // unterminated: literal
		{"\\*", "*", true},   // escaped
		{"\\*", "a", false},  // escaped
		{"a\\", "a\\", true}, // trailing backslash: literal
		{"?", "é", true},     // one rune
		{"??", "é", false},   // one rune, not two bytes
		{"[é]", "é", true},   // runes in classes
		{"*[é]", "xé", true}, // after a star
		{"x\\é", "xé", true}, // escaped multibyte literal
		{"dmi:*:svnQEMU:*", "dmi:bvnSeaBIOS:svnQEMU:pnStandardPC", true},
	} {
		if got := matchGlob(tt.pattern, tt.name); got != tt.want {
			t.Errorf("matchGlob(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestLiteralPrefix(t *testing.T) {
	for pattern, want := range map[string]string{
		"pci:v00001AF4d*sv*": "pci:v00001AF4d",
		"virtio:d00000001v*": "virtio:d00000001v",
		"acpi*:PNP0A03:*":    "acpi",
		"fs-ext4":            "fs-ext4",
		"a[bc]":              "a",
		"a\\*":               "a",
		"?":                  "",
	} {
		if got := literalPrefix(pattern); got != want {
			t.Errorf("literalPrefix(%q) = %q, want %q", pattern, got, want)
		}
	}
}

// FuzzMatch checks that the matcher never panics, that a pattern's literal prefix is a
// prefix of every name it matches, and that it agrees with path.Match wherever the two
// define the same thing: names without '/' (path.Match's '*' stops there), patterns that
// path.Match accepts and that do not use '!' (fnmatch's negation, a literal to path.Match).
func FuzzMatch(f *testing.F) {
	for _, s := range []struct{ pattern, name string }{
		{"pci:v00001AF4d*sv*sd*bc*sc*i*", "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00"},
		{"virtio:d00000001v*", "virtio:d00000001v00001AF4"},
		{"usb:v*p*d*dc*dsc*dp*ic02isc0[2-6]ip*in*", "usb:v0BDAp8153d3000dc00dsc00dp00ic02isc06ip00in00"},
		{"[!a-c]?\\*", "d\xffb*"},
		{"*[^é]", "xé"},
		{"[]a]", "]"},
		{"a[", "a["},
	} {
		f.Add(s.pattern, s.name)
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		got := matchGlob(pattern, name)
		if got && !strings.HasPrefix(name, literalPrefix(pattern)) {
			t.Errorf("matchGlob(%q, %q) matched without the literal prefix %q", pattern, name, literalPrefix(pattern))
		}
		if strings.Contains(name, "/") || strings.Contains(pattern, "!") {
			return
		}
		want, err := path.Match(pattern, name)
		if err != nil {
			return
		}
		if got != want {
			t.Errorf("matchGlob(%q, %q) = %v, path.Match = %v", pattern, name, got, want)
		}
	})
}
