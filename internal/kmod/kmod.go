// Package kmod loads the kernel modules the hardware needs, for ramboot's /init: PID 1 in an
// initramfs with no udev and no modprobe. Coldplug reads every device's modalias from sysfs,
// matches it against the module index, and loads the matching modules, dependencies first,
// until loading stops creating new devices.
//
// The index is the one depmod writes (modules.dep, modules.alias, modules.builtin,
// modules.softdep). A distribution's kernel package often ships without it (Debian runs
// depmod in postinst), so LoadIndex builds the same index from the modules' own .modinfo
// sections when modules.dep is absent. The initramfs builder uses Select to choose modules and
// DepmodFiles to write a small index for them, so /init never scans ELF files.
//
// u-root's pkg/kmodule has no modalias matching (u-root issue #2059), so the matching here is
// written by hand, following kmod's semantics (fnmatch with no flags, '-' equal to '_' in
// names). Parsing and matching are pure; the syscalls are in load_linux.go.
package kmod

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
)

// ErrUnknownModule is returned (wrapped) for a module that is neither in modules.dep nor
// built in.
var ErrUnknownModule = errors.New("unknown module")

// DefaultPrefixes are the directories the initramfs builder packs whole: every network
// driver, because /init cannot know the boot NIC in advance.
var DefaultPrefixes = []string{"kernel/drivers/net/"}

// Index is modules.dep + modules.alias + modules.builtin (+ modules.softdep pre: deps) of one
// kernel's /lib/modules/<version>.
type Index struct {
	modules map[string]*module // by name ('-' normalised to '_')
	byPath  map[string]*module
	aliases []alias // modules.alias order, then built-in aliases
	builtin map[string]bool
	// builtinPaths are modules.builtin's lines, for DepmodFiles.
	builtinPaths []string
}

type module struct {
	name string
	path string   // relative to the version directory
	deps []string // paths; in modules.dep order, where the last one loads first
	pre  []string // softdep pre: module names or aliases
	post []string // softdep post: (kept for DepmodFiles; Coldplug does not load them)
}

type alias struct {
	pattern string
	prefix  string // literalPrefix(pattern)
	module  string
	builtin bool
}

// Names of the files depmod writes that the index reads.
const (
	fileDep            = "modules.dep"
	fileAlias          = "modules.alias"
	fileSoftdep        = "modules.softdep"
	fileBuiltin        = "modules.builtin"
	fileBuiltinModinfo = "modules.builtin.modinfo"
)

// LoadIndex reads the index of the modules tree fsys, rooted at /lib/modules/<version>. When
// the tree has no modules.dep (an unpacked distribution package), it scans every module's
// .modinfo instead, which is what depmod would have done.
func LoadIndex(fsys fs.FS) (*Index, error) {
	ix := newIndex()
	dep, err := fs.ReadFile(fsys, fileDep)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := ix.scan(fsys); err != nil {
			return nil, fmt.Errorf("scanning modules: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("reading module index: %w", err)
	default:
		if err := ix.parseDep(dep); err != nil {
			return nil, err
		}
		for _, f := range []struct {
			name  string
			parse func([]byte) error
		}{{fileAlias, ix.parseAlias}, {fileSoftdep, ix.parseSoftdep}} {
			b, err := fs.ReadFile(fsys, f.name)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("reading module index: %w", err)
			}
			if err := f.parse(b); err != nil {
				return nil, err
			}
		}
	}
	// Built-in modules: loading them is a no-op, and their aliases say that a device needs
	// nothing loaded.
	b, err := fs.ReadFile(fsys, fileBuiltin)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading module index: %w", err)
	}
	ix.parseBuiltin(b)
	b, err = fs.ReadFile(fsys, fileBuiltinModinfo)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading module index: %w", err)
	}
	ix.parseBuiltinModinfo(b)
	return ix, nil
}

func newIndex() *Index {
	return &Index{
		modules: map[string]*module{},
		byPath:  map[string]*module{},
		builtin: map[string]bool{},
	}
}

// ModuleName is the module name of a path such as "kernel/drivers/net/xen-netfront.ko.xz":
// "xen_netfront". The kernel treats '-' and '_' in module names alike; so does this package.
func ModuleName(p string) string {
	base := path.Base(p)
	if i := strings.Index(base, ".ko"); i >= 0 && isModuleFile(base) {
		base = base[:i]
	}
	return normalise(base)
}

func normalise(name string) string { return strings.ReplaceAll(name, "-", "_") }

// isModuleFile reports whether name is a kernel module file, compressed or not.
func isModuleFile(name string) bool {
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// add records a module at path p, keeping the first one of a name (depmod's search order puts
// updates/ first; the scan does the same).
func (ix *Index) add(p string) *module {
	if m := ix.byPath[p]; m != nil {
		return m
	}
	m := &module{name: ModuleName(p), path: p}
	ix.byPath[p] = m
	if _, dup := ix.modules[m.name]; !dup {
		ix.modules[m.name] = m
	}
	return m
}

// parseDep parses modules.dep: "kernel/a.ko: kernel/b.ko kernel/c.ko", where depmod lists the
// whole closure and modprobe loads it from the end.
func (ix *Index) parseDep(b []byte) error {
	return eachLine(b, func(n int, line string) error {
		p, deps, ok := strings.Cut(line, ":")
		p = strings.TrimSpace(p)
		if !ok || p == "" {
			return fmt.Errorf("parsing %s line %d: missing ':'", fileDep, n)
		}
		m := ix.add(p)
		m.deps = strings.Fields(deps)
		return nil
	})
}

// parseAlias parses modules.alias: "alias PATTERN MODNAME".
func (ix *Index) parseAlias(b []byte) error {
	return eachLine(b, func(n int, line string) error {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "alias" {
			return fmt.Errorf("parsing %s line %d: want \"alias PATTERN MODULE\"", fileAlias, n)
		}
		ix.addAlias(f[1], f[2], false)
		return nil
	})
}

func (ix *Index) addAlias(pattern, mod string, builtin bool) {
	ix.aliases = append(ix.aliases, alias{
		pattern: pattern,
		prefix:  literalPrefix(pattern),
		module:  normalise(mod),
		builtin: builtin,
	})
}

// parseSoftdep parses modules.softdep: "softdep MODNAME pre: a b post: c". A module may have
// several lines; they add up.
func (ix *Index) parseSoftdep(b []byte) error {
	return eachLine(b, func(n int, line string) error {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "softdep" {
			return fmt.Errorf("parsing %s line %d: want \"softdep MODULE pre: ... post: ...\"", fileSoftdep, n)
		}
		if m := ix.modules[normalise(f[1])]; m != nil {
			m.addSoftdep(f[2:])
		}
		return nil
	})
}

// addSoftdep adds the words of a softdep (as in modules.softdep or a .modinfo "softdep=").
// Words before any "pre:" or "post:" are ignored, as kmod does.
func (m *module) addSoftdep(words []string) {
	var dst *[]string
	for _, w := range words {
		switch w {
		case "pre:":
			dst = &m.pre
		case "post:":
			dst = &m.post
		default:
			if dst != nil {
				*dst = append(*dst, w)
			}
		}
	}
}

// parseBuiltin parses modules.builtin: one path per line.
func (ix *Index) parseBuiltin(b []byte) {
	_ = eachLine(b, func(_ int, line string) error {
		ix.builtin[ModuleName(line)] = true
		ix.builtinPaths = append(ix.builtinPaths, line)
		return nil
	})
}

// parseBuiltinModinfo parses modules.builtin.modinfo: NUL-separated "module.key=value".
func (ix *Index) parseBuiltinModinfo(b []byte) {
	for _, kv := range bytes.Split(b, []byte{0}) {
		mod, rest, ok := strings.Cut(string(kv), ".")
		if !ok {
			continue
		}
		key, val, ok := strings.Cut(rest, "=")
		if !ok {
			continue
		}
		ix.builtin[normalise(mod)] = true
		if key == "alias" && val != "" {
			ix.addAlias(val, mod, true)
		}
	}
}

// eachLine calls fn for each non-blank line that is not a '#' comment, numbering from 1.
func eachLine(b []byte, fn func(n int, line string) error) error {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if err := fn(n, line); err != nil {
			return err
		}
	}
	return sc.Err()
}

// Match returns the names of the modules with an alias pattern matching modalias, in
// modules.alias order, each once. Built-in modules are included; Deps gives them nothing to
// load.
func (ix *Index) Match(modalias string) []string {
	var out []string
	for _, a := range ix.aliases {
		if !strings.HasPrefix(modalias, a.prefix) || slices.Contains(out, a.module) {
			continue
		}
		if matchGlob(a.pattern, modalias) {
			out = append(out, a.module)
		}
	}
	return out
}

// IsBuiltin reports whether the module is built into the kernel.
func (ix *Index) IsBuiltin(name string) bool { return ix.builtin[normalise(name)] }

// Deps returns the module paths to load for module, in load order: its soft (pre:) and hard
// dependencies first, the module itself last. A built-in module needs nothing; a module that
// is neither loadable nor built in is an error wrapping ErrUnknownModule.
func (ix *Index) Deps(name string) ([]string, error) {
	name = normalise(name)
	m := ix.modules[name]
	if m == nil {
		if ix.builtin[name] {
			return nil, nil
		}
		return nil, fmt.Errorf("module %s: %w", name, ErrUnknownModule)
	}
	var out []string
	ix.visit(m, map[string]bool{}, true, &out)
	return out, nil
}

// visit appends m's dependencies and then m to out, depth first, skipping what seen holds.
// Marking before recursing keeps a (broken) cyclic index from looping.
func (ix *Index) visit(m *module, seen map[string]bool, soft bool, out *[]string) {
	if seen[m.path] {
		return
	}
	seen[m.path] = true
	if soft {
		for _, s := range m.pre {
			for _, d := range ix.resolve(s) {
				ix.visit(d, seen, soft, out)
			}
		}
	}
	// modprobe loads modules.dep's list from the end; a module's own line lists its
	// dependencies' dependencies too, and visiting them first makes the order right even for
	// an index whose lists are incomplete or unordered (the .modinfo scan gives direct ones).
	for i := len(m.deps) - 1; i >= 0; i-- {
		d := ix.byPath[m.deps[i]]
		if d == nil {
			d = &module{name: ModuleName(m.deps[i]), path: m.deps[i]}
		}
		ix.visit(d, seen, soft, out)
	}
	*out = append(*out, m.path)
}

// resolve finds the loadable modules a softdep word names: a module name, or else an alias
// ("crypto-md5"). Built-in and unknown names give none: a soft dependency is optional.
func (ix *Index) resolve(word string) []*module {
	if m := ix.modules[normalise(word)]; m != nil {
		return []*module{m}
	}
	var out []*module
	for _, name := range ix.Match(word) {
		if m := ix.modules[name]; m != nil {
			out = append(out, m)
		}
	}
	return out
}

// Select returns the module paths (relative to the version directory) to pack into an
// initramfs: every module whose path starts with one of prefixes (DefaultPrefixes, typically),
// the modules names lists (e.g. "virtio_pci": bus drivers live outside drivers/net), and all
// their dependencies, hard and softdep pre:, sorted. A built-in name adds nothing; an unknown
// one is an error.
func (ix *Index) Select(prefixes []string, names []string) ([]string, error) {
	set := map[string]bool{}
	add := func(name string) error {
		paths, err := ix.Deps(name)
		if err != nil {
			return fmt.Errorf("selecting modules: %w", err)
		}
		for _, p := range paths {
			set[p] = true
		}
		return nil
	}
	for p, m := range ix.byPath {
		for _, pre := range prefixes {
			if strings.HasPrefix(p, pre) {
				if err := add(m.name); err != nil {
					return nil, err
				}
				break
			}
		}
	}
	for _, n := range names {
		if err := add(n); err != nil {
			return nil, err
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// Paths returns the path of every loadable module of the index, sorted.
func (ix *Index) Paths() []string {
	out := make([]string, 0, len(ix.byPath))
	for p := range ix.byPath {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Aliases returns the alias patterns of the loadable module at path p (modules.alias, or its
// .modinfo), in index order: "pci:v00008086d000010D3sv*sd*bc*sc*i*", ...
func (ix *Index) Aliases(p string) []string {
	m := ix.byPath[p]
	if m == nil {
		return nil
	}
	var out []string
	for _, a := range ix.aliases {
		if !a.builtin && a.module == m.name {
			out = append(out, a.pattern)
		}
	}
	return out
}

// DepmodFiles returns the index files for an initramfs that carries only the modules at
// paths (as Select returns), keyed by file name: modules.dep, modules.alias and
// modules.softdep restricted to them, modules.builtin whole, and modules.builtin.modinfo
// reduced to the built-in aliases, in depmod's formats. A path the index does not know is an
// error.
func (ix *Index) DepmodFiles(paths []string) (map[string][]byte, error) {
	var dep, ali, soft, builtin, binfo bytes.Buffer
	keep := map[string]bool{}
	for _, p := range paths {
		m := ix.byPath[p]
		if m == nil {
			return nil, fmt.Errorf("writing module index: module %s: %w", p, ErrUnknownModule)
		}
		keep[m.name] = true
		var load []string
		ix.visit(m, map[string]bool{}, false, &load)
		fmt.Fprintf(&dep, "%s:", p)
		// The closure, in the order modprobe expects: the last entry loads first.
		for i := len(load) - 2; i >= 0; i-- {
			fmt.Fprintf(&dep, " %s", load[i])
		}
		dep.WriteByte('\n')
		if len(m.pre)+len(m.post) > 0 {
			fmt.Fprintf(&soft, "softdep %s", m.name)
			if len(m.pre) > 0 {
				fmt.Fprintf(&soft, " pre: %s", strings.Join(m.pre, " "))
			}
			if len(m.post) > 0 {
				fmt.Fprintf(&soft, " post: %s", strings.Join(m.post, " "))
			}
			soft.WriteByte('\n')
		}
	}
	for _, a := range ix.aliases {
		switch {
		case a.builtin:
			fmt.Fprintf(&binfo, "%s.alias=%s\x00", a.module, a.pattern)
		case keep[a.module]:
			fmt.Fprintf(&ali, "alias %s %s\n", a.pattern, a.module)
		}
	}
	for _, p := range ix.builtinPaths {
		fmt.Fprintf(&builtin, "%s\n", p)
	}
	return map[string][]byte{
		fileDep:            dep.Bytes(),
		fileAlias:          ali.Bytes(),
		fileSoftdep:        soft.Bytes(),
		fileBuiltin:        builtin.Bytes(),
		fileBuiltinModinfo: binfo.Bytes(),
	}, nil
}
