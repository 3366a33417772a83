package kmod

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Loader loads one module. path is relative to the modules directory (/lib/modules/<version>).
// A module that is already loaded is a success.
type Loader interface {
	Load(path string, params string) error
}

// LoadedLister is implemented by a Loader that can tell which modules are already loaded;
// Coldplug skips them.
type LoadedLister interface {
	Loaded() (map[string]bool, error)
}

// MaxPasses bounds Coldplug's passes over sysfs. Each pass can only find devices that a
// driver loaded by the previous pass created (PCI → virtio → ...), so a few are plenty.
const MaxPasses = 10

// Coldplug loads the modules the devices under sysRoot (normally "/sys") need: it reads
// sysRoot/bus/*/devices/*/modalias, matches each with ix, and loads each matching module with
// l, dependencies first. Loading a bus driver creates devices (virtio_pci creates virtio0,
// whose modalias "virtio:d00000001v..." wants virtio_net), so it repeats until a pass loads
// nothing new, at most MaxPasses times.
//
// It returns the names of the modules it loaded, in order. Loading is an optional step: a
// module that fails to load is logged and skipped (and so are the modules that need it), and
// its error is returned in errs. logf may be nil.
func Coldplug(ix *Index, sysRoot string, l Loader, logf func(string, ...any)) (loaded []string, errs []error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	// done holds modules loaded before or by us; failed those that did not load, so that
	// later passes do not retry them.
	done := map[string]bool{}
	failed := map[string]bool{}
	if ll, ok := l.(LoadedLister); ok {
		names, err := ll.Loaded()
		if err != nil {
			logf("kmod: listing loaded modules: %v", err)
		}
		for n := range names {
			done[n] = true
		}
	}
	for pass := 1; pass <= MaxPasses; pass++ {
		aliases, err := Modaliases(sysRoot)
		if err != nil {
			return loaded, append(errs, err)
		}
		n := 0
		for _, a := range aliases {
			for _, name := range ix.Match(a) {
				if done[name] || failed[name] {
					continue
				}
				paths, err := ix.Deps(name)
				if err != nil {
					// An alias naming a module the index lacks: depmod would not write one.
					failed[name] = true
					logf("kmod: %s: %v", a, err)
					errs = append(errs, fmt.Errorf("device %s: %w", a, err))
					continue
				}
				for _, p := range paths {
					dn := ModuleName(p)
					if done[dn] {
						continue
					}
					if failed[dn] {
						failed[name] = true
						logf("kmod: skipping %s: %s did not load", name, dn)
						break
					}
					if err := l.Load(p, ""); err != nil {
						failed[dn], failed[name] = true, true
						logf("kmod: loading %s for %s: %v", dn, a, err)
						errs = append(errs, fmt.Errorf("loading module %s: %w", dn, err))
						break
					}
					logf("kmod: loaded %s for %s", dn, a)
					done[dn] = true
					loaded = append(loaded, dn)
					n++
				}
				// Built-in modules, and ones whose path was loaded under another name.
				if !failed[name] {
					done[name] = true
				}
			}
		}
		if n == 0 {
			return loaded, errs
		}
	}
	logf("kmod: devices still appearing after %d passes; giving up", MaxPasses)
	return loaded, errs
}

// Modaliases returns the distinct modalias strings of the devices under sysRoot, sorted.
// Devices without one, and files that vanish while it reads, are skipped.
func Modaliases(sysRoot string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(sysRoot, "bus", "*", "devices", "*", "modalias"))
	if err != nil {
		return nil, fmt.Errorf("listing devices: %w", err)
	}
	seen := map[string]bool{}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		a := strings.TrimSpace(string(b))
		if a != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out, nil
}

// ParseProcModules returns the names of the modules listed in r, in /proc/modules format
// ("virtio_net 73728 0 - Live 0x0000000000000000").
func ParseProcModules(r io.Reader) (map[string]bool, error) {
	out := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 {
			out[normalise(f[0])] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading module list: %w", err)
	}
	return out, nil
}
