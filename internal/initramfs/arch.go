package initramfs

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/ramboot/ramboot/internal/kmod"
)

// Arch is a CPU architecture by its Go name (GOARCH): the /init binaries `make build` makes
// are for AMD64 and ARM64.
type Arch string

// The architectures ramboot builds /init for.
const (
	AMD64 Arch = "amd64"
	ARM64 Arch = "arm64"
)

// Arches are the architectures ramboot builds /init for, in --arch's order.
var Arches = []Arch{AMD64, ARM64}

var errNoModules = errors.New("no kernel module (.ko) found")

// ErrNotELF is returned by ReadMachine for a file that is not an ELF file.
var ErrNotELF = errors.New("not an ELF file")

// machines are the ELF machines of Arches.
var machines = map[Arch]elf.Machine{AMD64: elf.EM_X86_64, ARM64: elf.EM_AARCH64}

// ParseArch returns the architecture called s ("amd64", "arm64"; "x86_64" and "aarch64",
// uname's names, too).
func ParseArch(s string) (Arch, error) {
	switch strings.ToLower(s) {
	case "amd64", "x86_64", "x86-64":
		return AMD64, nil
	case "arm64", "aarch64":
		return ARM64, nil
	}
	return "", fmt.Errorf("unknown architecture %q (want amd64 or arm64)", s)
}

// InitName is the file name `make build` gives the /init for a, in bin/ beside ramboot:
// ramboot-init for amd64 (the name it always had), ramboot-init-arm64 for arm64.
func InitName(a Arch) string {
	if a == AMD64 {
		return "ramboot-init"
	}
	return "ramboot-init-" + string(a)
}

// Machine is a's ELF machine (EM_X86_64, EM_AARCH64).
func (a Arch) Machine() elf.Machine { return machines[a] }

// archOf is the architecture of ELF machine m, "" when ramboot builds no /init for it.
func archOf(m elf.Machine) Arch {
	for a, am := range machines {
		if am == m {
			return a
		}
	}
	return ""
}

// describeMachine names an ELF machine as an operator knows it: "arm64 (EM_AARCH64)".
func describeMachine(m elf.Machine) string {
	if a := archOf(m); a != "" {
		return fmt.Sprintf("%s (%v)", a, m)
	}
	return m.String()
}

// ReadMachine returns the machine of the ELF file r begins with, reading its header's first
// 20 bytes only (e_ident, e_type, e_machine: the same place in ELF32 and ELF64). It returns
// ErrNotELF when r does not start with the ELF magic.
func ReadMachine(r io.Reader) (elf.Machine, error) {
	var h [20]byte
	n, err := io.ReadFull(r, h[:])
	if n < len(elf.ELFMAG) || string(h[:len(elf.ELFMAG)]) != elf.ELFMAG {
		return 0, ErrNotELF
	}
	if err != nil {
		return 0, fmt.Errorf("reading ELF header: %w", err)
	}
	var bo binary.ByteOrder
	switch elf.Data(h[elf.EI_DATA]) {
	case elf.ELFDATA2LSB:
		bo = binary.LittleEndian
	case elf.ELFDATA2MSB:
		bo = binary.BigEndian
	default:
		return 0, fmt.Errorf("bad ELF data encoding %d", h[elf.EI_DATA])
	}
	if c := elf.Class(h[elf.EI_CLASS]); c != elf.ELFCLASS32 && c != elf.ELFCLASS64 {
		return 0, fmt.Errorf("bad ELF class %d", h[elf.EI_CLASS])
	}
	return elf.Machine(bo.Uint16(h[18:])), nil
}

// fileMachine is the ELF machine of the file at name; ErrNotELF when it is no ELF file (a
// script as /init).
func fileMachine(name string) (elf.Machine, error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return ReadMachine(f)
}

// moduleMachine is the ELF machine of the module at p in fsys, read from its (decompressed)
// header.
func moduleMachine(fsys fs.FS, p string) (elf.Machine, error) {
	rc, err := kmod.Open(fsys, p)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	m, err := ReadMachine(rc)
	if err != nil {
		return 0, fmt.Errorf("module %s: %w", p, err)
	}
	return m, nil
}

// ModulesArch returns the architecture of the kernel modules in dir, a /lib/modules/RELEASE
// tree, read from the ELF header of its first module (in path order); "" when it has none. A
// tree of modules for a machine ramboot builds no /init for is an error that names the machine.
func ModulesArch(dir string) (Arch, error) {
	m, p, err := treeMachine(os.DirFS(dir))
	if errors.Is(err, errNoModules) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("kernel modules in %s: %w", dir, err)
	}
	a := archOf(m)
	if a == "" {
		return "", fmt.Errorf("kernel modules in %s are for %v (%s): ramboot builds /init for amd64 and arm64", dir, m, p)
	}
	return a, nil
}

// treeMachine is the ELF machine of the first module of a modules tree, in path order, and
// that module's path.
func treeMachine(fsys fs.FS) (elf.Machine, string, error) {
	var first string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && (p == "build" || p == "source"):
			return fs.SkipDir // links to kernel headers
		case d.Type().IsRegular() && isModule(p):
			first = p
			return fs.SkipAll
		}
		return nil
	})
	if err != nil {
		return 0, "", err
	}
	if first == "" {
		return 0, "", errNoModules
	}
	m, err := moduleMachine(fsys, first)
	return m, first, err
}

// isModule reports whether p names a kernel module file.
func isModule(p string) bool {
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(p, ext) {
			return true
		}
	}
	return false
}

// checkArch checks that the packed modules (paths in fsys), the /init binary, the busybox and
// s.Arch agree on the architecture, and returns it ("" when nothing says). An /init that is
// not ELF (a script) is not checked.
func checkArch(fsys fs.FS, paths []string, s Spec) (Arch, error) {
	var (
		want    elf.Machine
		wantWho string
	)
	if s.Arch != "" {
		m := s.Arch.Machine()
		if m == 0 {
			return "", fmt.Errorf("unknown architecture %q (want amd64 or arm64)", s.Arch)
		}
		want, wantWho = m, "--arch says"
	}
	sorted := append([]string(nil), paths...)
	sort.Strings(sorted)
	for _, p := range sorted {
		m, err := moduleMachine(fsys, p)
		if err != nil {
			return "", fmt.Errorf("kernel modules in %s: %w", s.Modules, err)
		}
		switch {
		case want == 0:
			want, wantWho = m, "the modules in "+s.Modules+" are for"
		case m != want:
			return "", fmt.Errorf("architecture mismatch: module %s is for %s, but %s %s", p, describeMachine(m), wantWho, describeMachine(want))
		}
	}
	if m, err := fileMachine(s.Init); err == nil {
		if want != 0 && m != want {
			hint := "give an /init built for it"
			if a := archOf(want); a != "" {
				hint = fmt.Sprintf("give the one built for %s (make build leaves it as bin/%s)", a, InitName(a))
			}
			return "", fmt.Errorf("architecture mismatch: the /init binary %s is for %s, but %s %s: %s",
				s.Init, describeMachine(m), wantWho, describeMachine(want), hint)
		}
		if want == 0 {
			want = m
		}
	} else if !errors.Is(err, ErrNotELF) {
		return "", fmt.Errorf("reading /init binary: %w", err)
	}
	if s.Busybox != "" && want != 0 {
		// The recovery shell must run too; its own errors are busybox's to report.
		if m, err := fileMachine(s.Busybox); err == nil && m != want {
			return "", fmt.Errorf("architecture mismatch: the busybox %s is for %s, but the initramfs is for %s: give a static busybox built for it (Debian's busybox-static of that architecture)",
				s.Busybox, describeMachine(m), describeMachine(want))
		}
	}
	return archOf(want), nil
}
