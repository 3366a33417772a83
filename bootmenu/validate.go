package bootmenu

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ramboot/ramboot/internal/cmdline"
)

// maxTimeout bounds a menu's countdown as ramboot.timeout= does (about 11.5 days).
const maxTimeout = 1e6

// Validate checks a menu as both parsers do before returning it, for menus built in code (the
// built-in one) and as a last line of defence: at least one entry, unique well-formed names,
// each entry's settings matching its kind, absolute URLs of a supported scheme, SHA-256 sums of
// 64 hex digits, a default that names an entry and a timeout of -1 (absent) or more.
func (m *Menu) Validate() error {
	merr := func(field string, err error) error {
		return &Error{Source: m.Source, Field: field, Err: err}
	}
	if err := checkText(m.Title); err != nil {
		return merr("title", err)
	}
	if m.Timeout < -1 {
		return merr("timeout", errors.New("must not be negative"))
	}
	if m.Timeout.Seconds() > maxTimeout {
		return merr("timeout", errors.New("too large"))
	}
	if len(m.Entries) == 0 {
		return merr("entries", errors.New("no entries"))
	}
	seen := make(map[string]bool, len(m.Entries))
	for i := range m.Entries {
		e := &m.Entries[i]
		if err := e.validate(); err != nil {
			return &Error{Source: m.Source, Line: e.Line, Entry: entryContext(i, e.Name), Field: err.field, Err: err.err}
		}
		if seen[e.Name] {
			return &Error{Source: m.Source, Line: e.Line, Entry: entryContext(i, e.Name), Field: "name", Err: errDuplicate(e.Name)}
		}
		seen[e.Name] = true
	}
	if m.Default != "" {
		if _, ok := m.Entry(m.Default); !ok {
			return merr("default", m.noEntry(m.Default))
		}
	}
	return nil
}

// entryContext names an entry in errors: "entries[1] (maint)", or "entries[1]" while the name
// is unknown or unprintable.
func entryContext(i int, name string) string {
	if name == "" || checkName(name) != nil {
		return fmt.Sprintf("entries[%d]", i)
	}
	return fmt.Sprintf("entries[%d] (%s)", i, name)
}

func errDuplicate(name string) error {
	return fmt.Errorf("duplicate name %q", name)
}

// fieldError is an error about one field of an entry, before it gets its place.
type fieldError struct {
	field string
	err   error
}

func ferr(field string, err error) *fieldError { return &fieldError{field, err} }

func (e *Entry) validate() *fieldError {
	if err := checkName(e.Name); err != nil {
		return ferr("name", err)
	}
	if err := checkText(e.Title); err != nil {
		return ferr("title", err)
	}
	for _, h := range []struct {
		kind Kind
		set  bool
	}{{KindRamroot, e.Ramroot != nil}, {KindKexec, e.Kexec != nil}, {KindMenu, e.Menu != ""}} {
		if h.set && h.kind != e.Kind {
			return ferr(string(h.kind), fmt.Errorf("set on a %s entry", e.Kind))
		}
	}
	if e.Network != nil {
		if !e.Bootable() && e.Kind != KindMenu {
			return ferr("network", fmt.Errorf("set on a %s entry", e.Kind))
		}
		if err := validateNetwork(e.Network); err != nil {
			return ferr("network", err)
		}
	}
	switch e.Kind {
	case KindRamroot:
		if e.Ramroot == nil {
			return ferr("ramroot", errors.New("missing"))
		}
		return e.Ramroot.validate()
	case KindKexec:
		if e.Kexec == nil {
			return ferr("kexec", errors.New("missing"))
		}
		return e.Kexec.validate()
	case KindMenu:
		if err := checkURL(e.Menu); err != nil {
			return ferr("menu", err)
		}
	case KindShell, KindReboot, KindPoweroff:
	default:
		return ferr("kind", fmt.Errorf("unknown kind %q", e.Kind))
	}
	return nil
}

func (r *Ramroot) validate() *fieldError {
	if strings.HasPrefix(r.URL, registryScheme) {
		if err := r.validateRegistry(); err != nil {
			return err
		}
	} else if err := r.File.validate("ramroot"); err != nil {
		return err
	}
	if r.Init != "" {
		if err := checkInit(r.Init); err != nil {
			return ferr("ramroot.init", err)
		}
	}
	if r.Size != "" {
		if err := checkSize(r.Size); err != nil {
			return ferr("ramroot.size", err)
		}
	}
	if err := checkCmdline(r.Cmdline); err != nil {
		return ferr("ramroot.cmdline", err)
	}
	return nil
}

func (k *Kexec) validate() *fieldError {
	if err := k.Kernel.validate("kexec.kernel"); err != nil {
		return err
	}
	for i, f := range k.Initrds {
		if err := f.validate(fmt.Sprintf("kexec.initrd[%d]", i)); err != nil {
			return err
		}
	}
	if err := checkCmdline(k.Cmdline); err != nil {
		return ferr("kexec.cmdline", err)
	}
	return nil
}

func (f *File) validate(field string) *fieldError {
	if f.URL == "" {
		return ferr(field, errors.New("missing url"))
	}
	for _, u := range f.URLs() {
		if strings.HasPrefix(u, registryScheme) {
			return ferr(field, errRegistryKexec)
		}
	}
	if err := checkURL(f.URL); err != nil {
		return ferr(field, err)
	}
	if f.SHA256 != "" {
		if err := checkSHA256(f.SHA256); err != nil {
			return ferr(field+".sha256", err)
		}
	}
	for i, u := range f.Mirrors {
		if err := checkURL(u); err != nil {
			return ferr(fmt.Sprintf("%s.mirrors[%d]", field, i), err)
		}
	}
	return nil
}

// checkName accepts what can be typed on a kernel command line (ramboot.default=NAME) without
// quoting.
func checkName(s string) error {
	if s == "" {
		return errors.New("empty name")
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%q has characters other than A-Z a-z 0-9 . _ -", s)
		}
	}
	return nil
}

// checkText rejects control characters in what the console shows: they would move the cursor
// or change the terminal's state.
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%q is not valid UTF-8", s)
	}
	for _, c := range s {
		if unicode.IsControl(c) {
			return fmt.Errorf("%q contains a control character", s)
		}
	}
	return nil
}

// checkCmdline accepts a kernel command line the kernel will split as intended: one line,
// quotes balanced.
func checkCmdline(s string) error {
	if err := checkText(s); err != nil {
		return err
	}
	if _, err := cmdline.Split(s); err != nil {
		return err
	}
	return nil
}

// checkURL accepts what the loader fetches: an http, https or file URL, or an absolute path
// (a file inside the initramfs). Relative references are resolved by the parsers; one left
// here had no base to resolve against.
func checkURL(s string) error {
	if s == "" {
		return errors.New("empty URL")
	}
	if err := checkText(s); err != nil {
		return err
	}
	if strings.ContainsAny(s, " \t") {
		return fmt.Errorf("URL %q contains a space", s)
	}
	if strings.HasPrefix(s, "/") {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("invalid URL %q", s)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		if u.Host == "" {
			return fmt.Errorf("no host in URL %q", s)
		}
	case "file":
		if u.Path == "" || u.Opaque != "" {
			return fmt.Errorf("no path in URL %q", s)
		}
	case "":
		return fmt.Errorf("relative URL %q and no base URL to resolve it against", s)
	case "docker":
		return checkRegistryRef(s)
	default:
		return fmt.Errorf("unsupported scheme in URL %q (want http, https, file or an absolute path)", s)
	}
	return nil
}

func checkSHA256(s string) error {
	if len(s) != 64 || strings.Trim(s, "0123456789abcdefABCDEF") != "" {
		return fmt.Errorf("%q is not 64 hex digits", s)
	}
	return nil
}

func checkInit(s string) error {
	if !strings.HasPrefix(s, "/") || strings.ContainsAny(s, " \t") || checkText(s) != nil {
		return fmt.Errorf("%q is not an absolute path", s)
	}
	return nil
}

// checkSize accepts what ramroot.size= accepts, with the value in the message.
func checkSize(v string) error {
	if cmdline.CheckSize(v) != nil {
		return fmt.Errorf("%q is not a size like 2G, 512M or 75%%", v)
	}
	return nil
}
