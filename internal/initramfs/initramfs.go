// Package initramfs builds ramboot's initramfs (host side only; /init never links it): a newc
// cpio with the static /init, /dev/console, the directories /init needs, a CA bundle, the kernel
// modules a network boot needs (network drivers, virtio, their dependencies, and the depmod
// index trimmed to what is packed), and optionally firmware, a busybox shell, hooks, a menu and
// an embedded root-filesystem image. Compression follows the output's extension.
package initramfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/ramboot/ramboot/internal/kmod"
	"github.com/ramboot/ramboot/internal/layout"
)

// Spec says what goes into the initramfs.
type Spec struct {
	Init    string // the static /init binary (required)
	Modules string // a kernel's /lib/modules/<version> tree, "" for none
	// Arch, when set, is the architecture the initramfs is for: the modules and /init must be
	// built for it. Unset, the modules say it, and /init must match them.
	Arch Arch
	// ModulePrefixes, when set, replace DefaultModuleSet: every module under these
	// directories of Modules is packed.
	ModulePrefixes []string
	ModuleSets     []string // names of ModuleSets to pack besides
	Storage        bool     // also pack the "storage" set
	ExtraModules   []string // module names to pack besides (with their dependencies)
	// Firmware is a /lib/firmware tree, "" for none. With Modules, only the files the packed
	// modules name (their .modinfo "firmware=") are packed; without, all of it.
	Firmware     string
	Busybox      string   // a static busybox, linked as /bin/sh and its applets
	CA           string   // PEM bundle; default: the host's, when it has one
	Hooks        string   // a tree of hooks (pre-network/, pre-fetch/, post-extract/)
	Menu         string   // a menu file
	EmbedRootfs  string   // a root-filesystem image, put at /rootfs/<name>
	Trust        []string // minisign public key files: the trust anchors
	PasswordHash string   // a bcrypt or argon2id hash locking edits, shells, locked entries
	RegistryAuth string   // a docker config.json with registry credentials (docker:// images)
}

// Stats tell what was packed.
type Stats struct {
	Files        int
	Modules      int
	NetModules   int // of Modules, network drivers (kernel/drivers/net/)
	Uncompressed int64
	KernelVer    string // the modules' kernel release; "" when none are packed
	// Arch is the architecture of the modules and /init (Spec.Arch, else theirs); "" when
	// neither says (no modules, and an /init that is not ELF or of another machine).
	Arch Arch
	// Chosen says where the packed modules came from: each set, --module-dir, --module, and
	// the dependencies they pulled in; each module is counted once, in the first group that
	// chose it.
	Chosen []ModuleGroup
	// Firmware is the number of firmware files packed (links included), FirmwareBytes their
	// size; FirmwareMissing the files packed modules name that the firmware tree lacks.
	Firmware        int
	FirmwareBytes   int64
	FirmwareMissing []string
}

// ModuleGroup is one source of packed modules.
type ModuleGroup struct {
	Name    string // "ethernet", "--module-dir", "--module", "dependencies"
	Modules int
	Bytes   int64    // their size as packed
	Paths   []string // the modules, relative to /lib/modules/RELEASE, sorted
}

// HostCA is where Debian keeps the system bundle.
const HostCA = "/etc/ssl/certs/ca-certificates.crt"

// Write writes the uncompressed newc archive for s to w.
func Write(w io.Writer, s Spec) (*Stats, error) {
	b := &builder{dirs: map[string]bool{"/": true}}
	if err := b.collect(s); err != nil {
		return nil, err
	}
	cw := &countWriter{w: w}
	rw := cpio.Newc.Writer(cw)
	for _, r := range b.recs {
		if err := rw.WriteRecord(cpio.MakeReproducible(r)); err != nil {
			return nil, fmt.Errorf("writing %s: %w", r.Name, err)
		}
	}
	if err := cpio.WriteTrailer(rw); err != nil {
		return nil, err
	}
	b.stats.Files = len(b.recs)
	b.stats.Uncompressed = cw.n
	return &b.stats, nil
}

type builder struct {
	recs  []cpio.Record
	dirs  map[string]bool
	stats Stats
}

// dir adds name and its missing parents.
func (b *builder) dir(name string) {
	name = path.Clean("/" + name)
	if b.dirs[name] {
		return
	}
	b.dir(path.Dir(name))
	b.dirs[name] = true
	b.recs = append(b.recs, cpio.Directory(strings.TrimPrefix(name, "/"), 0o755))
}

func (b *builder) file(name string, data []byte, perm uint64) {
	b.dir(path.Dir(name))
	b.recs = append(b.recs, cpio.StaticRecord(data, cpio.Info{Name: strings.TrimPrefix(name, "/"), Mode: cpio.S_IFREG | perm}))
}

func (b *builder) copyFile(name, src string, perm uint64) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	b.file(name, data, perm)
	return nil
}

func (b *builder) symlink(name, target string) {
	b.dir(path.Dir(name))
	b.recs = append(b.recs, cpio.Symlink(strings.TrimPrefix(name, "/"), target))
}

func (b *builder) collect(s Spec) error {
	if s.Init == "" {
		return errors.New("no /init binary given")
	}
	for _, d := range []string{"/dev", "/proc", "/sys", "/run", "/tmp", "/newroot", "/etc", "/bin", "/sbin", "/var"} {
		b.dir(d)
	}
	b.recs = append(b.recs, cpio.CharDev("dev/console", 0o600, 5, 1), cpio.CharDev("dev/null", 0o666, 1, 3))
	if err := b.copyFile(layout.Init, s.Init, 0o755); err != nil {
		return fmt.Errorf("reading /init binary: %w", err)
	}
	ca := s.CA
	if ca == "" {
		if _, err := os.Stat(HostCA); err == nil {
			ca = HostCA
		}
	}
	if ca != "" {
		if err := b.copyFile(layout.CA, ca, 0o644); err != nil {
			return fmt.Errorf("reading CA bundle: %w", err)
		}
	}
	if s.RegistryAuth != "" {
		if err := b.registryAuth(s.RegistryAuth); err != nil {
			return err
		}
	}
	if s.Modules != "" {
		if err := b.modules(s); err != nil {
			return err
		}
	} else {
		a, err := checkArch(nil, nil, s)
		if err != nil {
			return err
		}
		b.stats.Arch = a
	}
	if s.Firmware != "" && s.Modules == "" {
		if err := b.tree(layout.FirmwareRoot, s.Firmware, 0o644); err != nil {
			return fmt.Errorf("firmware: %w", err)
		}
	}
	if s.Hooks != "" {
		if err := b.tree(layout.HooksDir, s.Hooks, 0); err != nil {
			return fmt.Errorf("hooks: %w", err)
		}
	}
	if s.Busybox != "" {
		if err := b.busybox(s.Busybox); err != nil {
			return err
		}
	}
	if s.Menu != "" {
		if err := b.copyFile(layout.Menu+filepath.Ext(s.Menu), s.Menu, 0o644); err != nil {
			return fmt.Errorf("menu: %w", err)
		}
	}
	if err := b.trust(s); err != nil {
		return err
	}
	if s.EmbedRootfs != "" {
		if err := b.copyFile(path.Join(layout.RootfsDir, filepath.Base(s.EmbedRootfs)), s.EmbedRootfs, 0o644); err != nil {
			return fmt.Errorf("embedded rootfs: %w", err)
		}
	}
	return nil
}

// modules packs the chosen modules (see choose), the firmware they name when Spec.Firmware
// is set, and a depmod index of just them (kmod builds it from the
// modules themselves when the tree has no depmod output, as a `dpkg -x` of a kernel package
// has not), so that /init's coldplug only ever matches modules it can load. They go to
// /lib/modules/RELEASE, RELEASE read from the modules (see release), since /init looks there
// for `uname -r`.
func (b *builder) modules(s Spec) error {
	st, err := os.Stat(s.Modules)
	if err != nil {
		return fmt.Errorf("kernel modules: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("kernel modules: %s is not a directory (want a kernel's /lib/modules/RELEASE)", s.Modules)
	}
	fsys := os.DirFS(s.Modules)
	ix, err := kmod.LoadIndex(fsys)
	if err != nil {
		return fmt.Errorf("reading module index of %s: %w", s.Modules, err)
	}
	// The sets choose by architecture (arm64's SoC NICs): the one --arch says, else the
	// modules'. checkArch then holds every packed module, and /init, to it.
	arch := s.Arch
	if arch == "" {
		if m, _, err := treeMachine(fsys); err == nil {
			arch = archOf(m)
		}
	}
	sel, err := b.choose(ix, s, arch)
	if err != nil {
		return err
	}
	if b.stats.Arch, err = checkArch(fsys, sel, s); err != nil {
		return err
	}
	if len(sel) == 0 {
		return nil // nothing to load, no index needed
	}
	ver, err := release(fsys, sel)
	if err != nil {
		return fmt.Errorf("kernel modules in %s: %w", s.Modules, err)
	}
	b.stats.KernelVer = ver
	base := path.Join(layout.ModulesRoot, ver)
	size := map[string]int64{}
	for _, rel := range sel {
		if strings.HasPrefix(rel, "kernel/drivers/net/") {
			b.stats.NetModules++
		}
		data, err := os.ReadFile(filepath.Join(s.Modules, rel))
		if err != nil {
			return fmt.Errorf("module: %w", err)
		}
		size[rel] = int64(len(data))
		b.file(path.Join(base, rel), data, 0o644)
	}
	for i := range b.stats.Chosen {
		g := &b.stats.Chosen[i]
		for _, p := range g.Paths {
			g.Bytes += size[p]
		}
	}
	if s.Firmware != "" {
		if err := b.firmware(fsys, sel, s.Firmware); err != nil {
			return fmt.Errorf("firmware: %w", err)
		}
	}
	b.stats.Modules = len(sel)
	files, err := ix.DepmodFiles(sel)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b.file(path.Join(base, n), files[n], 0o644)
	}
	return nil
}

// release is the kernel release the modules at paths were built for: the first word of their
// vermagic, which the kernel checks when it loads them. The tree's name says nothing (a
// symlink named "modules", a copy under any name). Modules of two releases are refused: the
// running kernel would reject one of them.
func release(fsys fs.FS, paths []string) (string, error) {
	var rel, first string
	for _, p := range paths {
		v, err := kmod.Vermagic(fsys, p)
		if err != nil {
			return "", err
		}
		r, _, _ := strings.Cut(strings.TrimSpace(v), " ")
		switch {
		case r == "":
			return "", fmt.Errorf("module %s: no kernel release in its vermagic %q", p, v)
		case rel == "":
			rel, first = r, p
		case r != rel:
			return "", fmt.Errorf("modules of two kernel releases: %s is for %s, %s for %s", first, rel, p, r)
		}
	}
	return rel, nil
}

// tree packs a host directory under dst; perm 0 keeps the files' own modes (hooks must stay
// executable).
func (b *builder) tree(dst, src string, perm uint64) error {
	var paths []string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	for _, p := range paths {
		rel, _ := filepath.Rel(src, p)
		name := path.Join(dst, filepath.ToSlash(rel))
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case st.IsDir():
			b.dir(name)
		case st.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			b.symlink(name, t)
		case st.Mode().IsRegular():
			m := perm
			if m == 0 {
				m = uint64(st.Mode().Perm())
			}
			if err := b.copyFile(name, p, m); err != nil {
				return err
			}
		}
	}
	return nil
}

// busybox packs a static busybox and links its applets (as it lists them, else as its
// applet table names them: a busybox of another architecture cannot run here) into /bin.
func (b *builder) busybox(p string) error {
	data, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("busybox: %w", err)
	}
	b.file(layout.Busybox, data, 0o755)
	applets := []string{"sh"}
	if out, err := exec.Command(p, "--list").Output(); err == nil {
		applets = strings.Fields(string(out))
	} else if names := appletNames(data); names != nil {
		applets = names
	}
	for _, a := range applets {
		if a == "init" || a == "linuxrc" || strings.Contains(a, "/") {
			continue // /init is ramboot's
		}
		b.symlink(path.Join("/bin", a), "busybox")
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
