package kmod

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// debianModules returns the /lib/modules/<version> directory of the unpacked Debian cloud
// kernel package (dpkg -x linux-image-cloud-amd64): $RAMBOOT_KERNEL_DIR, default /var/cache/ramboot/kernel (scripts/get-kernel.sh),
// is the package root holding boot/ and lib/. The tests skip without it, except in CI ($CI set),
// which unpacks it and must run them.
func debianModules(t *testing.T) string {
	t.Helper()
	root := os.Getenv("RAMBOOT_KERNEL_DIR")
	if root == "" {
		root = "/var/cache/ramboot/kernel"
	}
	dirs, _ := filepath.Glob(filepath.Join(root, "lib", "modules", "*", "kernel"))
	if len(dirs) == 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("no kernel modules under %s/lib/modules (set RAMBOOT_KERNEL_DIR to the unpacked kernel package)", root)
		}
		t.Skipf("no kernel modules under %s/lib/modules; set RAMBOOT_KERNEL_DIR", root)
	}
	sort.Strings(dirs)
	return filepath.Dir(dirs[len(dirs)-1])
}

// scanOnly hides depmod's modules.dep, so that LoadIndex scans the modules' .modinfo.
type scanOnly struct{ fs.FS }

func (s scanOnly) Open(name string) (fs.File, error) {
	if name == fileDep {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return s.FS.Open(name)
}

// loadDebian returns the Debian kernel's index as LoadIndex builds it from a scan of the
// modules (the package as shipped), and, if depmod has been run on the tree, as it reads it
// from depmod's files; keyed "scan" and "depmod".
func loadDebian(t *testing.T) (map[string]*Index, string) {
	t.Helper()
	dir := debianModules(t)
	fsys := os.DirFS(dir)
	out := map[string]*Index{}
	ix, err := LoadIndex(scanOnly{fsys})
	if err != nil {
		t.Fatalf("LoadIndex(%s) scanning: %v", dir, err)
	}
	out["scan"] = ix
	if _, err := os.Stat(filepath.Join(dir, fileDep)); err == nil {
		if out["depmod"], err = LoadIndex(fsys); err != nil {
			t.Fatalf("LoadIndex(%s): %v", dir, err)
		}
	}
	return out, dir
}

// forEach runs f on each index of the Debian kernel, as a subtest.
func forEach(t *testing.T, f func(t *testing.T, ix *Index, mode string)) {
	ixs, _ := loadDebian(t)
	for mode, ix := range ixs {
		t.Run(mode, func(t *testing.T) { f(t, ix, mode) })
	}
}

func TestDebianMatch(t *testing.T) { forEach(t, testDebianMatch) }

func testDebianMatch(t *testing.T, ix *Index, _ string) {
	for _, tt := range []struct {
		modalias string
		want     []string
	}{
		// QEMU's virtio-net-pci: the PCI function wants virtio_pci (a module on this kernel,
		// CONFIG_VIRTIO_PCI=m), and the virtio device it creates wants virtio_net.
		{"pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", []string{"virtio_pci"}},
		{"virtio:d00000001v00001AF4", []string{"virtio_net"}},
		{"pci:v000015ADd000007B0sv000015ADsd000007B0bc02sc00i00", []string{"vmxnet3"}},
		// QEMU's default NIC (e1000, 8086:100E): CONFIG_E1000 is not set in the cloud kernel.
		{"pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00", nil},
	} {
		if diff := cmp.Diff(tt.want, ix.Match(tt.modalias)); diff != "" {
			t.Errorf("Match(%q) mismatch (-want +got):\n%s", tt.modalias, diff)
		}
	}
	for _, name := range []string{"virtio", "virtio_ring", "virtio_pci", "virtio_net", "failover", "net_failover", "vmxnet3"} {
		if ix.IsBuiltin(name) {
			t.Errorf("%s is built in; this test expects the Debian cloud kernel, where it is a module", name)
		}
	}
	for _, name := range []string{"unix", "ipv6", "af_packet"} {
		if !ix.IsBuiltin(name) {
			t.Errorf("%s is not built in, want built in", name)
		}
	}
}

func TestDebianDeps(t *testing.T) { forEach(t, testDebianDeps) }

func testDebianDeps(t *testing.T, ix *Index, mode string) {
	got, err := ix.Deps("virtio_net")
	if err != nil {
		t.Fatal(err)
	}
	// modules.dep says "virtio_net.ko: net_failover.ko failover.ko virtio.ko virtio_ring.ko";
	// this is `modprobe --show-depends virtio_net`, which loads that list from its end.
	want := []string{
		"kernel/drivers/virtio/virtio_ring.ko",
		"kernel/drivers/virtio/virtio.ko",
		"kernel/net/core/failover.ko",
		"kernel/drivers/net/net_failover.ko",
		"kernel/drivers/net/virtio_net.ko",
	}
	if mode == "scan" {
		// .modinfo gives direct dependencies, "depends=virtio_ring,virtio,net_failover", and
		// virtio's own "depends=virtio_ring": an order just as good.
		want = []string{
			"kernel/net/core/failover.ko",
			"kernel/drivers/net/net_failover.ko",
			"kernel/drivers/virtio/virtio_ring.ko",
			"kernel/drivers/virtio/virtio.ko",
			"kernel/drivers/net/virtio_net.ko",
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Deps(virtio_net) mismatch (-want +got):\n%s", diff)
	}
	got, err = ix.Deps("virtio_pci")
	if err != nil {
		t.Fatal(err)
	}
	if got[len(got)-1] != "kernel/drivers/virtio/virtio_pci.ko" || len(got) != 5 {
		t.Errorf("Deps(virtio_pci) = %v, want virtio_ring, virtio, virtio_pci_{modern,legacy}_dev in some order, then virtio_pci", got)
	}
	if got, err := ix.Deps("unix"); err != nil || got != nil {
		t.Errorf("Deps(unix) = %v, %v; want nothing (built in)", got, err)
	}
	if _, err := ix.Deps("e1000"); err == nil || !strings.Contains(err.Error(), "e1000") {
		t.Errorf("Deps(e1000) error = %v, want one naming e1000", err)
	}
}

// TestDebianLoadOrder checks, for every module of the kernel, that Deps puts each module
// after all of its own dependencies and lists each once.
func TestDebianLoadOrder(t *testing.T) { forEach(t, testDebianLoadOrder) }

func testDebianLoadOrder(t *testing.T, ix *Index, _ string) {
	for name, m := range ix.modules {
		order, err := ix.Deps(name)
		if err != nil {
			t.Fatal(err)
		}
		pos := map[string]int{}
		for i, p := range order {
			if _, dup := pos[p]; dup {
				t.Errorf("Deps(%s) lists %s twice", name, p)
			}
			pos[p] = i
		}
		if order[len(order)-1] != m.path {
			t.Errorf("Deps(%s) ends with %s, want the module itself", name, order[len(order)-1])
		}
		for _, p := range order {
			for _, d := range ix.byPath[p].deps {
				if pos[d] >= pos[p] {
					t.Errorf("Deps(%s) loads %s before its dependency %s", name, p, d)
				}
			}
		}
	}
}

func TestDebianSelect(t *testing.T) {
	ixs, dir := loadDebian(t)
	ix := ixs["scan"]
	paths, err := ix.Select(DefaultPrefixes, []string{"virtio_pci", "virtio_blk"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		"kernel/drivers/net/virtio_net.ko",
		"kernel/drivers/net/vmxnet3/vmxnet3.ko",
		"kernel/net/core/failover.ko",
		"kernel/drivers/virtio/virtio_pci.ko",
		"kernel/drivers/virtio/virtio_pci_modern_dev.ko",
		"kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
		"kernel/drivers/block/virtio_blk.ko",
	} {
		if !slices.Contains(paths, p) {
			t.Errorf("Select does not include %s", p)
		}
	}
	var size int64
	for _, p := range paths {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		size += fi.Size()
	}
	t.Logf("Select: %d modules, %d KiB", len(paths), size>>10)
	if ref := ixs["depmod"]; ref != nil {
		refPaths, err := ref.Select(DefaultPrefixes, []string{"virtio_pci", "virtio_blk"})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(refPaths, paths); diff != "" {
			t.Errorf("Select differs between the depmod and scanned indexes (-depmod +scan):\n%s", diff)
		}
	}
}

// TestDebianColdplug runs Coldplug on the real index with a fake sysfs holding QEMU's
// virtio-net PCI function; loading virtio_pci creates virtio0.
func TestDebianColdplug(t *testing.T) { forEach(t, testDebianColdplug) }

func testDebianColdplug(t *testing.T, ix *Index, _ string) {
	sys := t.TempDir()
	for _, d := range []struct{ bus, dev, alias string }{
		{"pci", "0000:00:00.0", "pci:v00008086d00001237sv00001AF4sd00001100bc06sc00i00"},
		{"pci", "0000:00:01.0", "pci:v00008086d00007000sv00001AF4sd00001100bc06sc01i00"},
		{"pci", "0000:00:03.0", "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00"},
		{"serio", "serio0", "serio:ty01pr00id00ex00"},
	} {
		if err := addDevice(sys, d.bus, d.dev, d.alias); err != nil {
			t.Fatal(err)
		}
	}
	l := &fakeLoader{onLoad: map[string]func() error{"virtio_pci": func() error {
		return addDevice(sys, "virtio", "virtio0", "virtio:d00000001v00001AF4")
	}}}
	loaded, errs := Coldplug(ix, sys, l, t.Logf)
	if errs != nil {
		t.Errorf("Coldplug errors: %v", errs)
	}
	for _, pair := range [][2]string{
		{"virtio", "virtio_pci"}, {"virtio_pci", "virtio_net"}, {"failover", "net_failover"}, {"net_failover", "virtio_net"},
	} {
		i, j := slices.Index(loaded, pair[0]), slices.Index(loaded, pair[1])
		if i < 0 || j < 0 || i > j {
			t.Errorf("loaded %v: want %s before %s", loaded, pair[0], pair[1])
		}
	}
	t.Logf("loaded %v", loaded)
}

// TestDebianAgainstDepmod compares the index LoadIndex scans from the modules with the one
// kmod's depmod writes for the same tree: same dependency closures, aliases and softdeps.
// It needs depmod ($RAMBOOT_DEPMOD, or depmod in $PATH, /sbin or /usr/sbin).
func TestDebianAgainstDepmod(t *testing.T) {
	ixs, dir := loadDebian(t)
	scanned := ixs["scan"]
	depmod := os.Getenv("RAMBOOT_DEPMOD")
	if depmod == "" {
		for _, p := range []string{"depmod", "/usr/sbin/depmod", "/sbin/depmod"} {
			if q, err := exec.LookPath(p); err == nil {
				depmod = q
				break
			}
		}
	}
	if depmod == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("depmod not found (.ci/run must install kmod)")
		}
		t.Skip("depmod not found")
	}
	// depmod -b BASE VERSION writes into BASE/lib/modules/VERSION; link the tree there.
	version := filepath.Base(dir)
	out := filepath.Join(t.TempDir(), "lib", "modules", version)
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "modules.") && !slices.Contains([]string{fileBuiltin, fileBuiltinModinfo, "modules.order"}, e.Name()) {
			continue // depmod's own output, if the tree has it: we make a fresh one
		}
		if err := os.Symlink(filepath.Join(dir, e.Name()), filepath.Join(out, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	base := filepath.Dir(filepath.Dir(filepath.Dir(out)))
	if b, err := exec.Command(depmod, "-b", base, version).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", depmod, err, b)
	}
	ref, err := LoadIndex(os.DirFS(out))
	if err != nil {
		t.Fatal(err)
	}
	summary := func(ix *Index) map[string]string {
		s := map[string]string{}
		for name, m := range ix.modules {
			deps, err := ix.Deps(name)
			if err != nil {
				t.Fatal(err)
			}
			sort.Strings(deps)
			var aliases []string
			for _, a := range ix.aliases {
				if a.module == name {
					aliases = append(aliases, a.pattern)
				}
			}
			sort.Strings(aliases)
			s[name] = fmt.Sprintf("path %s\ndeps %v\naliases %v\npre %v post %v", m.path, deps, aliases, m.pre, m.post)
		}
		return s
	}
	if diff := cmp.Diff(summary(ref), summary(scanned)); diff != "" {
		t.Errorf("scanned index differs from depmod's (-depmod +scanned):\n%s", diff)
	}
	if diff := cmp.Diff(ref.builtin, scanned.builtin); diff != "" {
		t.Errorf("built-in modules differ (-depmod +scanned):\n%s", diff)
	}
}
