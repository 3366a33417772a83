// Package bootmenu is the boot menu's schema, parsing and validation: ramboot's YAML menus and
// imported pxelinux/syslinux configs become one Menu value, checked before anything acts on it.
// Everything here is pure (no I/O; a pxelinux include is fetched through a callback), so the
// parsers are fuzzed. The console UI lives in bootmenu/tui; /init acts on the chosen Entry.
package bootmenu

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ramboot/ramboot/internal/cmdline"
)

// Kind is what an entry does when chosen.
type Kind string

// The entry kinds.
const (
	KindRamroot  Kind = "ramroot"  // stream an image into a tmpfs and switch_root into it
	KindKexec    Kind = "kexec"    // fetch a kernel and initrds and kexec into them
	KindShell    Kind = "shell"    // a shell in the initramfs
	KindReboot   Kind = "reboot"   // reboot the machine
	KindPoweroff Kind = "poweroff" // power the machine off
	KindMenu     Kind = "menu"     // load another menu (Entry.Menu) in place of this one
)

// File is a fetched file: a URL (or an absolute path inside the initramfs), an optional
// SHA-256 to verify it against, and mirrors tried in order when the URL fails. In YAML it is a
// plain URL string or {url, sha256, mirrors}.
type File struct {
	URL     string
	SHA256  string // lowercase hex, "" when not given
	Mirrors []string
}

// URLs returns the URL followed by its mirrors, the order in which to try them.
func (f File) URLs() []string {
	return append([]string{f.URL}, f.Mirrors...)
}

// Ramroot is a ramroot entry: the image (with its mirrors and checksum) and how to start it.
type Ramroot struct {
	File
	Init string // the image's init, "" for the default (/sbin/init)
	Size string // the tmpfs size ("2G", "75%"), "" for the default
	// Cmdline holds extra parameters handed to the image (what the menu's `e` edits for
	// ramroot entries).
	Cmdline string
}

// Kexec is a kexec entry: a kernel, its initrds (concatenated in order) and its command line.
type Kexec struct {
	Kernel  File
	Initrds []File
	Cmdline string
	// IPAppend adds ip= of the current lease to the command line (pxelinux ipappend 1).
	IPAppend bool
	// BootIF adds BOOTIF= of the boot NIC (pxelinux ipappend 2). YAML entries default to true;
	// ramboot adds BOOTIF when it is missing anyway, the field is kept for fidelity.
	BootIF bool
}

// Entry is one line of the menu.
type Entry struct {
	Name    string // unique, [A-Za-z0-9._-]+
	Title   string // what the menu shows; defaults to Name
	Kind    Kind
	Ramroot *Ramroot // set when Kind is KindRamroot
	Kexec   *Kexec   // set when Kind is KindKexec
	Menu    string   // the sub-menu's URL when Kind is KindMenu
	// Network is the entry's network: block (ramroot, kexec and menu entries), nil without
	// one: the network it boots over, in the command line's parameters.
	Network *cmdline.Network
	Line    int // the line of the source the entry starts at, 0 when not from a file
	// Locked entries need the password (when one is set) to boot.
	Locked bool
	// Pinned is set by /init when the entry comes from a menu whose signature verified (or
	// one inside the initramfs): its sha256s and @sha256: digests then vouch for what it boots.
	Pinned bool
}

// Bootable reports whether choosing the entry boots something (ramroot or kexec), as opposed
// to a shell, a power action or another menu.
func (e *Entry) Bootable() bool {
	return e.Kind == KindRamroot || e.Kind == KindKexec
}

// Cmdline returns the command line the menu's `e` key edits: the kexec command line or the
// parameters handed to a ramroot image; "" for other kinds.
func (e *Entry) Cmdline() string {
	switch {
	case e.Kexec != nil:
		return e.Kexec.Cmdline
	case e.Ramroot != nil:
		return e.Ramroot.Cmdline
	}
	return ""
}

// Menu is a parsed and validated menu.
type Menu struct {
	Title   string
	Default string // the entry booted when the countdown ends; "" for the first bootable one
	// Timeout is the countdown: -1 when absent (wait for a key), 0 to boot the default at once.
	Timeout time.Duration
	Entries []Entry
	Source  string // where the menu came from, as given to Parse (names it in errors)
	// Report is the http(s) URL /init POSTs its boot events to (YAML `report:`, resolved
	// against the menu's URL); ramboot.report= on the command line takes precedence.
	Report string
	Format string // "yaml" or "pxelinux"
	// Password is a password hash (bcrypt or argon2id) that locks editing, the shell and
	// locked entries; /init honours it only from a trusted menu.
	Password string
	// Trusted is set by /init when the menu's signature verified or it came from the
	// initramfs.
	Trusted bool
	// Signature is the trusted comment of the menu's verified signature, "" for none.
	Signature string
	// Warnings lists what an import dropped (pxelinux localboot, com32 modules, ...), each
	// naming its line, for `ramboot menu check` and the log.
	Warnings []string
}

// The formats of Menu.Format.
const (
	FormatYAML     = "yaml"
	FormatPXELinux = "pxelinux"
)

// ErrNoEntry is returned (wrapped) when a default names no entry.
var ErrNoEntry = errors.New("no such entry")

// Entry returns the entry named name.
func (m *Menu) Entry(name string) (*Entry, bool) {
	for i := range m.Entries {
		if m.Entries[i].Name == name {
			return &m.Entries[i], true
		}
	}
	return nil, false
}

// DefaultEntry returns the entry named by Default, else the first bootable entry; false when
// there is neither (a menu of only a shell and power actions).
func (m *Menu) DefaultEntry() (*Entry, bool) {
	if m.Default != "" {
		return m.Entry(m.Default)
	}
	for i := range m.Entries {
		if m.Entries[i].Bootable() {
			return &m.Entries[i], true
		}
	}
	return nil, false
}

// Override applies ramboot.default= and ramboot.timeout= from the kernel command line: def ""
// keeps the menu's default, a negative timeout keeps the menu's timeout. A def that names no
// entry is an error listing the entries, and changes nothing.
func (m *Menu) Override(def string, timeout time.Duration) error {
	if def != "" {
		if _, ok := m.Entry(def); !ok {
			return fmt.Errorf("default: %w", m.noEntry(def))
		}
		m.Default = def
	}
	if timeout >= 0 {
		m.Timeout = timeout
	}
	return nil
}

// noEntry is the error for a default that names no entry: it lists the entries, since the
// usual cause is a typo on a kernel command line typed at a console.
func (m *Menu) noEntry(name string) error {
	names := make([]string, len(m.Entries))
	for i, e := range m.Entries {
		names[i] = e.Name
	}
	return fmt.Errorf("%w %q (entries: %s)", ErrNoEntry, name, strings.Join(names, ", "))
}

// Error is a parse or validation error: where (source and line), what (entry and field) and
// why. It reads like a compiler's: "menu.yaml:12: entries[1] (maint): kexec.kernel: missing url".
type Error struct {
	Source string
	Line   int    // 0 when the error is about the whole file
	Entry  string // "entries[1] (maint)", "label maint"; "" for menu-level errors
	Field  string // "kexec.kernel", "timeout"; "" when the error is about the whole entry
	Err    error
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.Source != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d", e.Source, e.Line)
	case e.Source != "":
		b.WriteString(e.Source)
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d", e.Line)
	default:
		b.WriteString("menu")
	}
	for _, s := range []string{e.Entry, e.Field, e.Err.Error()} {
		if s != "" {
			b.WriteString(": " + s)
		}
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }
