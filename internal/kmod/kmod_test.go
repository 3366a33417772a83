package kmod

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
)

// A small tree in depmod's text form, modelled on the Debian cloud kernel: virtio_net needs
// net_failover, which needs failover; virtio_pci is the PCI bus driver for virtio devices.
var textTree = fstest.MapFS{
	"modules.dep": {Data: []byte(`kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/net/core/failover.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/vmxnet3/vmxnet3.ko:
kernel/drivers/net/xen-netfront.ko:
kernel/drivers/net/dummy.ko:
kernel/lib/libcrc32c.ko:
kernel/crypto/crc32c_generic.ko:
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
`)},
	"modules.alias": {Data: []byte(`# Aliases extracted from modules themselves.
alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
alias virtio:d00000001v* virtio_net
alias virtio:d00000002v* virtio_blk
alias pci:v000015ADd000007B0sv*sd*bc*sc*i* vmxnet3
alias xen:vif xen_netfront
alias crypto-crc32c crc32c_generic
alias crc32c crc32c_generic
alias virtio:d*v00001AF4 virtio_net
`)},
	"modules.softdep": {Data: []byte(`# Soft dependencies extracted from modules themselves.
softdep libcrc32c pre: crc32c
softdep dummy post: virtio_blk
`)},
	"modules.builtin":         {Data: []byte("kernel/net/unix/unix.ko\nkernel/drivers/pci/hotplug/acpiphp.ko\n")},
	"modules.builtin.modinfo": {Data: []byte("unix.alias=net-pf-1\x00unix.license=GPL\x00acpiphp.alias=acpi*:PNP0A03:*\x00")},
}

// fstestFS makes a MapFS of text files.
func fstestFS(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for n, s := range files {
		m[n] = &fstest.MapFile{Data: []byte(s)}
	}
	return m
}

func mustLoad(t *testing.T, fsys fs.FS) *Index {
	t.Helper()
	ix, err := LoadIndex(fsys)
	if err != nil {
		t.Fatalf("LoadIndex: %v", err)
	}
	return ix
}

func TestMatch(t *testing.T) {
	ix := mustLoad(t, textTree)
	for _, tt := range []struct {
		modalias string
		want     []string
	}{
		{"pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", []string{"virtio_pci"}},
		// Two patterns match; the name comes once, at its first pattern.
		{"virtio:d00000001v00001AF4", []string{"virtio_net"}},
		{"virtio:d00000002v00001AF4", []string{"virtio_blk", "virtio_net"}},
		{"pci:v000015ADd000007B0sv000015ADsd000007B0bc02sc00i00", []string{"vmxnet3"}},
		{"pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00", nil},
		{"xen:vif", []string{"xen_netfront"}},
		{"acpi:PNP0A03:", []string{"acpiphp"}}, // built in
		{"", nil},
	} {
		if diff := cmp.Diff(tt.want, ix.Match(tt.modalias)); diff != "" {
			t.Errorf("Match(%q) mismatch (-want +got):\n%s", tt.modalias, diff)
		}
	}
}

func TestDeps(t *testing.T) {
	ix := mustLoad(t, textTree)
	for _, tt := range []struct {
		name    string
		want    []string
		wantErr error
	}{
		{name: "virtio_net", want: []string{
			// modules.dep's list loaded from its end, each dependency after its own.
			"kernel/drivers/virtio/virtio_ring.ko",
			"kernel/drivers/virtio/virtio.ko",
			"kernel/net/core/failover.ko",
			"kernel/drivers/net/net_failover.ko",
			"kernel/drivers/net/virtio_net.ko",
		}},
		{name: "failover", want: []string{"kernel/net/core/failover.ko"}},
		{name: "xen-netfront", want: []string{"kernel/drivers/net/xen-netfront.ko"}},
		{name: "xen_netfront", want: []string{"kernel/drivers/net/xen-netfront.ko"}},
		// softdep pre: by alias, before the module.
		{name: "libcrc32c", want: []string{"kernel/crypto/crc32c_generic.ko", "kernel/lib/libcrc32c.ko"}},
		// softdep post: is not loaded.
		{name: "dummy", want: []string{"kernel/drivers/net/dummy.ko"}},
		{name: "unix", want: nil},
		{name: "acpiphp", want: nil},
		{name: "e1000", wantErr: ErrUnknownModule},
	} {
		got, err := ix.Deps(tt.name)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("Deps(%q) error = %v, want %v", tt.name, err, tt.wantErr)
			continue
		}
		if err != nil {
			if !strings.Contains(err.Error(), tt.name) {
				t.Errorf("Deps(%q) error %q does not name the module", tt.name, err)
			}
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Deps(%q) mismatch (-want +got):\n%s", tt.name, diff)
		}
	}
}

// TestDepsOrderedFromLines checks that the order comes from each dependency's own line, not
// from the position in the list: an index whose lists are in the "wrong" order still loads
// failover before net_failover.
func TestDepsOrderedFromLines(t *testing.T) {
	ix := mustLoad(t, fstest.MapFS{"modules.dep": {Data: []byte(`c.ko: a.ko b.ko
b.ko: a.ko
a.ko:
`)}})
	got, err := ix.Deps("c")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a.ko", "b.ko", "c.ko"}, got); diff != "" {
		t.Errorf("Deps(c) mismatch (-want +got):\n%s", diff)
	}
}

func TestDepsCycle(t *testing.T) {
	ix := mustLoad(t, fstest.MapFS{
		"modules.dep":     {Data: []byte("a.ko: b.ko\nb.ko: a.ko\n")},
		"modules.softdep": {Data: []byte("softdep a pre: b\nsoftdep b pre: a\n")},
	})
	got, err := ix.Deps("a")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"b.ko", "a.ko"}, got); diff != "" {
		t.Errorf("Deps(a) mismatch (-want +got):\n%s", diff)
	}
}

func TestSelect(t *testing.T) {
	ix := mustLoad(t, textTree)
	got, err := ix.Select(DefaultPrefixes, []string{"virtio_pci", "virtio-blk", "unix", "libcrc32c"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"kernel/crypto/crc32c_generic.ko", // softdep pre: of libcrc32c
		"kernel/drivers/block/virtio_blk.ko",
		"kernel/drivers/net/dummy.ko",
		"kernel/drivers/net/net_failover.ko",
		"kernel/drivers/net/virtio_net.ko",
		"kernel/drivers/net/vmxnet3/vmxnet3.ko",
		"kernel/drivers/net/xen-netfront.ko",
		"kernel/drivers/virtio/virtio.ko",
		"kernel/drivers/virtio/virtio_pci.ko",
		"kernel/drivers/virtio/virtio_ring.ko",
		"kernel/lib/libcrc32c.ko",
		"kernel/net/core/failover.ko", // outside drivers/net, needed by net_failover
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Select mismatch (-want +got):\n%s", diff)
	}
	if _, err := ix.Select(nil, []string{"e1000e"}); !errors.Is(err, ErrUnknownModule) {
		t.Errorf("Select(e1000e) error = %v, want %v", err, ErrUnknownModule)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		fsys fstest.MapFS
	}{
		{"dep without colon", fstest.MapFS{"modules.dep": {Data: []byte("a.ko\n")}}},
		{"bad alias", fstest.MapFS{"modules.dep": {Data: []byte("a.ko:\n")}, "modules.alias": {Data: []byte("alias x\n")}}},
		{"bad softdep", fstest.MapFS{"modules.dep": {Data: []byte("a.ko:\n")}, "modules.softdep": {Data: []byte("pre: a\n")}}},
		{"scan: not ELF", fstest.MapFS{"kernel/a.ko": {Data: []byte("not an ELF file")}}},
		{"scan: unknown dependency", fstest.MapFS{"kernel/a.ko": {Data: elfModule(t, "name=a", "depends=b")}}},
	} {
		if _, err := LoadIndex(tt.fsys); err == nil {
			t.Errorf("%s: LoadIndex succeeded, want an error", tt.name)
		}
	}
}

// elfModule returns a minimal ELF64 file whose .modinfo section holds kv, NUL-terminated.
func elfModule(t testing.TB, kv ...string) []byte {
	t.Helper()
	var modinfo []byte
	for _, s := range kv {
		modinfo = append(append(modinfo, s...), 0)
	}
	shstrtab := []byte("\x00.modinfo\x00.shstrtab\x00")
	const ehsize, shentsize = 64, 64
	modinfoOff := ehsize
	shstrOff := modinfoOff + len(modinfo)
	shOff := shstrOff + len(shstrtab)
	var b bytes.Buffer
	le := binary.LittleEndian
	b.Write([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0})
	b.Write(make([]byte, 8))
	w := func(v any) {
		if err := binary.Write(&b, le, v); err != nil {
			t.Fatal(err)
		}
	}
	w(uint16(1))  // ET_REL
	w(uint16(62)) // EM_X86_64
	w(uint32(1))  // EV_CURRENT
	w(uint64(0))  // entry
	w(uint64(0))  // phoff
	w(uint64(shOff))
	w(uint32(0))         // flags
	w(uint16(ehsize))    // ehsize
	w(uint16(0))         // phentsize
	w(uint16(0))         // phnum
	w(uint16(shentsize)) // shentsize
	w(uint16(3))         // shnum
	w(uint16(2))         // shstrndx
	b.Write(modinfo)
	b.Write(shstrtab)
	section := func(name, typ uint32, off, size int) {
		w(name)
		w(typ)
		w(uint64(0)) // flags
		w(uint64(0)) // addr
		w(uint64(off))
		w(uint64(size))
		w(uint32(0)) // link
		w(uint32(0)) // info
		w(uint64(1)) // addralign
		w(uint64(0)) // entsize
	}
	section(0, 0, 0, 0)
	section(1, 1, modinfoOff, len(modinfo)) // .modinfo, SHT_PROGBITS
	section(10, 3, shstrOff, len(shstrtab)) // .shstrtab, SHT_STRTAB
	return b.Bytes()
}

func zstdBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	e, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	return e.EncodeAll(b, nil)
}

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	z := gzip.NewWriter(&buf)
	if _, err := z.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// scanTree is textTree's kernel as a distribution package ships it: modules, no index.
func scanTree(t *testing.T) fstest.MapFS {
	return fstest.MapFS{
		"kernel/drivers/virtio/virtio.ko":      {Data: elfModule(t, "name=virtio")},
		"kernel/drivers/virtio/virtio_ring.ko": {Data: elfModule(t, "name=virtio_ring")},
		"kernel/drivers/virtio/virtio_pci.ko": {Data: elfModule(t, "alias=pci:v00001AF4d*sv*sd*bc*sc*i*",
			"depends=virtio_ring,virtio", "name=virtio_pci")},
		"kernel/net/core/failover.ko":        {Data: elfModule(t, "depends=", "name=failover")},
		"kernel/drivers/net/net_failover.ko": {Data: elfModule(t, "depends=failover", "name=net_failover")},
		"kernel/drivers/net/virtio_net.ko.zst": {Data: zstdBytes(t, elfModule(t, "alias=virtio:d00000001v*",
			"depends=virtio_ring,virtio,net_failover", "name=virtio_net"))},
		"kernel/drivers/net/vmxnet3/vmxnet3.ko.gz": {Data: gzipBytes(t, elfModule(t,
			"alias=pci:v000015ADd000007B0sv*sd*bc*sc*i*", "depends=", "name=vmxnet3"))},
		"kernel/drivers/net/xen-netfront.ko": {Data: elfModule(t, "alias=xen:vif", "depends=", "name=xen_netfront")},
		"kernel/lib/libcrc32c.ko":            {Data: elfModule(t, "softdep=pre: crc32c", "name=libcrc32c")},
		"kernel/crypto/crc32c_generic.ko":    {Data: elfModule(t, "alias=crypto-crc32c", "alias=crc32c", "name=crc32c_generic")},
		// A newer build of a module in updates/ shadows the stock one.
		"updates/dkms/vmxnet3.ko":       {Data: elfModule(t, "alias=pci:v000015ADd000007B0sv*sd*bc*sc*i*", "name=vmxnet3")},
		"build/include/not-a-module.ko": {Data: []byte("skipped")},
		"modules.builtin":               textTree["modules.builtin"],
		"modules.builtin.modinfo":       textTree["modules.builtin.modinfo"],
	}
}

func TestScan(t *testing.T) {
	ix := mustLoad(t, scanTree(t))
	for _, tt := range []struct {
		name string
		want []string
	}{
		{"virtio_net", []string{
			"kernel/net/core/failover.ko",
			"kernel/drivers/net/net_failover.ko",
			"kernel/drivers/virtio/virtio.ko",
			"kernel/drivers/virtio/virtio_ring.ko",
			"kernel/drivers/net/virtio_net.ko.zst",
		}},
		{"vmxnet3", []string{"updates/dkms/vmxnet3.ko"}},
		{"libcrc32c", []string{"kernel/crypto/crc32c_generic.ko", "kernel/lib/libcrc32c.ko"}},
		{"unix", nil},
	} {
		got, err := ix.Deps(tt.name)
		if err != nil {
			t.Errorf("Deps(%q): %v", tt.name, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Deps(%q) mismatch (-want +got):\n%s", tt.name, diff)
		}
	}
	if diff := cmp.Diff([]string{"virtio_net"}, ix.Match("virtio:d00000001v00001AF4")); diff != "" {
		t.Errorf("Match(virtio) mismatch (-want +got):\n%s", diff)
	}
}

// TestDepmodFiles checks that the index written for an initramfs reads back as the same
// index, restricted to the selected modules.
func TestDepmodFiles(t *testing.T) {
	for name, fsys := range map[string]fs.FS{"text": textTree, "scan": scanTree(t)} {
		t.Run(name, func(t *testing.T) {
			ix := mustLoad(t, fsys)
			paths, err := ix.Select([]string{"kernel/drivers/net/virtio"}, []string{"virtio_pci", "libcrc32c"})
			if err != nil {
				t.Fatal(err)
			}
			files, err := ix.DepmodFiles(paths)
			if err != nil {
				t.Fatal(err)
			}
			small := fstest.MapFS{}
			for n, b := range files {
				small[n] = &fstest.MapFile{Data: b}
			}
			ix2 := mustLoad(t, small)
			for _, mod := range []string{"virtio_net", "virtio_pci", "libcrc32c", "failover", "unix"} {
				want, err := ix.Deps(mod)
				if err != nil {
					t.Fatal(err)
				}
				got, err := ix2.Deps(mod)
				if err != nil {
					t.Errorf("rewritten index: Deps(%q): %v", mod, err)
					continue
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("rewritten index: Deps(%q) mismatch (-want +got):\n%s", mod, diff)
				}
			}
			for _, a := range []string{"virtio:d00000001v00001AF4", "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", "acpi:PNP0A03:"} {
				if diff := cmp.Diff(ix.Match(a), ix2.Match(a)); diff != "" {
					t.Errorf("rewritten index: Match(%q) mismatch (-want +got):\n%s", a, diff)
				}
			}
			if got := ix2.Match("pci:v000015ADd000007B0sv000015ADsd000007B0bc02sc00i00"); got != nil {
				t.Errorf("rewritten index: Match(vmxnet3) = %v, want nothing (not selected)", got)
			}
			if _, err := ix2.Deps("xen_netfront"); !errors.Is(err, ErrUnknownModule) {
				t.Errorf("rewritten index: Deps(xen_netfront) error = %v, want %v", err, ErrUnknownModule)
			}
			if _, err := ix.DepmodFiles([]string{"kernel/nope.ko"}); !errors.Is(err, ErrUnknownModule) {
				t.Errorf("DepmodFiles(unknown) error = %v, want %v", err, ErrUnknownModule)
			}
		})
	}
}

func TestModuleName(t *testing.T) {
	for p, want := range map[string]string{
		"kernel/drivers/net/virtio_net.ko":                "virtio_net",
		"kernel/drivers/net/xen-netfront.ko.xz":           "xen_netfront",
		"kernel/drivers/char/hw_random/virtio-rng.ko.zst": "virtio_rng",
		"kernel/fs/ext4/ext4.ko.gz":                       "ext4",
		"xen-netfront":                                    "xen_netfront",
	} {
		if got := ModuleName(p); got != want {
			t.Errorf("ModuleName(%q) = %q, want %q", p, got, want)
		}
	}
}

func TestPathsAliases(t *testing.T) {
	ix := mustLoad(t, scanTree(t))
	paths := ix.Paths()
	for _, p := range []string{"kernel/drivers/net/vmxnet3/vmxnet3.ko.gz", "updates/dkms/vmxnet3.ko", "kernel/drivers/net/virtio_net.ko.zst"} {
		if !slices.Contains(paths, p) {
			t.Errorf("Paths() lacks %s: %v", p, paths)
		}
	}
	if !slices.IsSorted(paths) || slices.Contains(paths, "build/include/not-a-module.ko") {
		t.Errorf("Paths() = %v, want sorted, without build/", paths)
	}
	for p, want := range map[string][]string{
		"kernel/drivers/net/virtio_net.ko.zst": {"virtio:d00000001v*"},
		"kernel/crypto/crc32c_generic.ko":      {"crypto-crc32c", "crc32c"},
		"kernel/net/core/failover.ko":          nil,
		"kernel/nowhere.ko":                    nil,
	} {
		if diff := cmp.Diff(want, ix.Aliases(p)); diff != "" {
			t.Errorf("Aliases(%s) mismatch (-want +got):\n%s", p, diff)
		}
	}
	// A built-in module's aliases are not a loadable module's.
	if got := mustLoad(t, textTree).Aliases("kernel/net/unix/unix.ko"); got != nil {
		t.Errorf("Aliases(unix) = %v, want none", got)
	}
}

func TestFirmware(t *testing.T) {
	fsys := fstest.MapFS{
		"a.ko.zst": {Data: zstdBytes(t, elfModule(t, "firmware=intel/a.bin", "name=a", "firmware=rtl_nic/rtl8168*.fw", "firmware="))},
		"b.ko":     {Data: elfModule(t, "name=b")},
		"bad.ko":   {Data: []byte("not ELF")},
	}
	got, err := Firmware(fsys, "a.ko.zst")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"intel/a.bin", "rtl_nic/rtl8168*.fw"}, got); diff != "" {
		t.Errorf("Firmware(a) mismatch (-want +got):\n%s", diff)
	}
	if got, err := Firmware(fsys, "b.ko"); err != nil || got != nil {
		t.Errorf("Firmware(b) = %v, %v; want none", got, err)
	}
	if _, err := Firmware(fsys, "bad.ko"); err == nil || !strings.Contains(err.Error(), "bad.ko") {
		t.Errorf("Firmware(bad) error %v, want one naming bad.ko", err)
	}
}
