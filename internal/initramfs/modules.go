package initramfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/ramboot/ramboot/internal/kmod"
	"github.com/ramboot/ramboot/internal/layout"
)

// choose returns the module paths to pack for modules of arch, sorted: the default set (or every module under
// s.ModulePrefixes instead), s.ModuleSets, s.ExtraModules, and all their dependencies. It
// records in b.stats.Chosen which group chose each one.
func (b *builder) choose(ix *kmod.Index, s Spec, arch Arch) ([]string, error) {
	type group struct {
		name  string
		paths []string
	}
	var groups []group
	if len(s.ModulePrefixes) > 0 {
		groups = append(groups, group{"--module-dir", ModuleSet{Paths: s.ModulePrefixes}.members(ix, arch)})
	} else {
		s.ModuleSets = append([]string{DefaultModuleSet}, s.ModuleSets...)
	}
	if s.Storage {
		s.ModuleSets = append(s.ModuleSets, "storage")
	}
	for _, name := range s.ModuleSets {
		set, err := LookupModuleSet(name)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(groups, func(g group) bool { return g.name == name }) {
			continue
		}
		groups = append(groups, group{name, set.members(ix, arch)})
	}
	groups = append(groups, group{"/init", ModuleSet{Paths: InitModules}.members(ix, arch)})
	// A module's name resolves to one path (updates/ shadows kernel/): count that one.
	var names []string
	for i, g := range groups {
		var resolved []string
		for _, p := range g.paths {
			name := kmod.ModuleName(p)
			names = append(names, name)
			if deps, err := ix.Deps(name); err == nil && len(deps) > 0 {
				resolved = append(resolved, deps[len(deps)-1])
			}
		}
		groups[i].paths = resolved
	}
	// A named module is reported by the path its name resolves to; a built-in one packs
	// nothing, an unknown one is an error (from Select).
	var extra []string
	for _, n := range s.ExtraModules {
		deps, err := ix.Deps(n)
		if err != nil {
			return nil, fmt.Errorf("--module %s: %w", n, err)
		}
		if len(deps) > 0 {
			extra = append(extra, deps[len(deps)-1])
		}
		names = append(names, n)
	}
	groups = append(groups, group{"--module", extra})
	sel, err := ix.Select(nil, names)
	if err != nil {
		return nil, err
	}
	groups = append(groups, group{"dependencies", sel})
	seen := map[string]bool{}
	for _, g := range groups {
		var mine []string
		for _, p := range g.paths {
			if !seen[p] {
				seen[p] = true
				mine = append(mine, p)
			}
		}
		if len(mine) == 0 && (g.name == "--module" || g.name == "dependencies") {
			continue
		}
		sort.Strings(mine)
		b.stats.Chosen = append(b.stats.Chosen, ModuleGroup{Name: g.name, Modules: len(mine), Paths: mine})
	}
	return sel, nil
}

// maxLinks bounds how many symbolic links firmware follows for one file (a loop in the tree).
const maxLinks = 8

// firmware packs the files of the firmware tree dir that the modules at paths name (their
// "firmware=" lines), under /lib/firmware: the file itself and, for the kernel's loader built
// with compressed firmware, its .xz and .zst forms; symbolic links with what they point to in
// the tree. A name may hold glob characters. Names the tree lacks are counted, not an error:
// a driver names every file any of its chips might want.
func (b *builder) firmware(fsys fs.FS, paths []string, dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory (want a /lib/firmware tree)", dir)
	}
	packed := map[string]bool{}
	for _, p := range paths {
		names, err := kmod.Firmware(fsys, p)
		if err != nil {
			return err
		}
		for _, name := range names {
			name = path.Clean("/" + name)[1:]
			found := false
			for _, n := range []string{name, name + ".xz", name + ".zst"} {
				matches := []string{n}
				if strings.ContainsAny(n, "*?[") {
					if matches, err = filepath.Glob(filepath.Join(dir, filepath.FromSlash(n))); err != nil {
						return fmt.Errorf("module %s: firmware %q: %w", p, name, err)
					}
					for i, m := range matches {
						rel, _ := filepath.Rel(dir, m)
						matches[i] = filepath.ToSlash(rel)
					}
				}
				for _, m := range matches {
					ok, err := b.firmwareFile(dir, m, packed, 0)
					if err != nil {
						return err
					}
					found = found || ok
				}
			}
			if !found && !slices.Contains(b.stats.FirmwareMissing, name) {
				b.stats.FirmwareMissing = append(b.stats.FirmwareMissing, name)
			}
		}
	}
	return nil
}

// firmwareFile packs dir/rel (a slash path inside the tree) if it exists, following a
// symbolic link to its target inside the tree; it reports whether rel exists.
func (b *builder) firmwareFile(dir, rel string, packed map[string]bool, depth int) (bool, error) {
	if packed[rel] {
		return true, nil
	}
	src := filepath.Join(dir, filepath.FromSlash(rel))
	st, err := os.Lstat(src)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	dst := path.Join(layout.FirmwareRoot, rel)
	switch {
	case st.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return false, err
		}
		if depth >= maxLinks {
			return false, fmt.Errorf("%s: too many levels of symbolic links", src)
		}
		packed[rel] = true
		b.symlink(dst, target)
		b.stats.Firmware++
		// A link out of the tree (absolute, or climbing above it) is packed as it is.
		if t := path.Join(path.Dir(rel), target); !path.IsAbs(target) && t != ".." && !strings.HasPrefix(t, "../") {
			if _, err := b.firmwareFile(dir, t, packed, depth+1); err != nil {
				return false, err
			}
		}
	case st.Mode().IsRegular():
		data, err := os.ReadFile(src)
		if err != nil {
			return false, err
		}
		packed[rel] = true
		b.file(dst, data, 0o644)
		b.stats.Firmware++
		b.stats.FirmwareBytes += int64(len(data))
	default:
		return false, nil
	}
	return true, nil
}
