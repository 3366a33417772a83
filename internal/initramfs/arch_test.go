package initramfs

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ramboot/ramboot/internal/vmtest"
)

// machineModule is module(t, info...) built for machine m.
func machineModule(t *testing.T, m elf.Machine, info ...string) []byte {
	t.Helper()
	b := module(t, info...)
	binary.LittleEndian.PutUint16(b[18:], uint16(m))
	return b
}

func gzipModule(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// xzModule compresses b with the xz command (as Debian 13 compresses its modules), skipping
// the test without it.
func xzModule(t *testing.T, b []byte) []byte {
	t.Helper()
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("no xz command")
	}
	cmd := exec.Command("xz", "-c", "--check=crc32")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// elfHeader is the first 20 bytes of an ELF file of class c, byte order d and machine m.
func elfHeader(c elf.Class, d elf.Data, m elf.Machine) []byte {
	h := make([]byte, 20)
	copy(h, elf.ELFMAG)
	h[elf.EI_CLASS], h[elf.EI_DATA], h[elf.EI_VERSION] = byte(c), byte(d), byte(elf.EV_CURRENT)
	if d == elf.ELFDATA2MSB {
		binary.BigEndian.PutUint16(h[18:], uint16(m))
	} else {
		binary.LittleEndian.PutUint16(h[18:], uint16(m))
	}
	return h
}

func TestReadMachine(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []byte
		want elf.Machine
		err  string // "" for none; ErrNotELF's text for it
	}{
		{"x86-64", elfHeader(elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_X86_64), elf.EM_X86_64, ""},
		{"aarch64", elfHeader(elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_AARCH64), elf.EM_AARCH64, ""},
		{"ELF32 big-endian", elfHeader(elf.ELFCLASS32, elf.ELFDATA2MSB, elf.EM_PPC), elf.EM_PPC, ""},
		{"script", []byte("#!/bin/sh\nexec /bin/busybox sh\n"), 0, ErrNotELF.Error()},
		{"empty", nil, 0, ErrNotELF.Error()},
		{"magic only", []byte(elf.ELFMAG), 0, "reading ELF header: unexpected EOF"},
		{"bad class", elfHeader(3, elf.ELFDATA2LSB, elf.EM_X86_64), 0, "bad ELF class 3"},
		{"bad data", elfHeader(elf.ELFCLASS64, 0, elf.EM_X86_64), 0, "bad ELF data encoding 0"},
	} {
		got, err := ReadMachine(bytes.NewReader(tt.in))
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%s: error %v, want %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	// A file that starts as ELF but ends early is a broken ELF file, not a script.
	if _, err := ReadMachine(strings.NewReader("\x7fELF")); errors.Is(err, ErrNotELF) {
		t.Error("a truncated ELF header is not ErrNotELF")
	}
}

// FuzzReadMachine: any input gives a machine or an error, never a panic; a machine only for
// an input that holds a whole header, read as the kernel's loaders read it.
func FuzzReadMachine(f *testing.F) {
	f.Add(elfHeader(elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_AARCH64))
	f.Add(elfHeader(elf.ELFCLASS32, elf.ELFDATA2MSB, elf.EM_MIPS))
	f.Add([]byte("#!/bin/sh"))
	f.Add([]byte("\x7fEL"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ReadMachine(bytes.NewReader(b))
		if err != nil {
			return
		}
		if len(b) < 20 || string(b[:4]) != elf.ELFMAG {
			t.Fatalf("machine %v from %q", m, b)
		}
		want := binary.LittleEndian.Uint16(b[18:])
		if elf.Data(b[5]) == elf.ELFDATA2MSB {
			want = binary.BigEndian.Uint16(b[18:])
		}
		if uint16(m) != want {
			t.Fatalf("machine %v, want %v", m, elf.Machine(want))
		}
	})
}

func TestParseArch(t *testing.T) {
	for in, want := range map[string]Arch{"amd64": AMD64, "x86_64": AMD64, "arm64": ARM64, "aarch64": ARM64, "ARM64": ARM64} {
		if got, err := ParseArch(in); err != nil || got != want {
			t.Errorf("ParseArch(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseArch("riscv64"); err == nil || !strings.Contains(err.Error(), "want amd64 or arm64") {
		t.Errorf("riscv64: %v", err)
	}
	if InitName(AMD64) != "ramboot-init" || InitName(ARM64) != "ramboot-init-arm64" {
		t.Errorf("init names %q, %q", InitName(AMD64), InitName(ARM64))
	}
}

// TestModulesArch reads the architecture from the first module of a tree, compressed as
// distributions ship them.
func TestModulesArch(t *testing.T) {
	dir := t.TempDir()
	vm := "vermagic=6.1.0-57-cloud-arm64 SMP mod_unload modversions aarch64"
	a64 := machineModule(t, elf.EM_AARCH64, "name=virtio_net", vm)
	for _, tt := range []struct {
		name  string
		files map[string][]byte
		want  Arch
		err   string
	}{
		{"ko", map[string][]byte{"kernel/drivers/net/virtio_net.ko": a64}, ARM64, ""},
		{"ko.zst", map[string][]byte{"kernel/drivers/net/virtio_net.ko.zst": zstdModule(t, a64)}, ARM64, ""},
		{"ko.gz", map[string][]byte{"kernel/drivers/net/virtio_net.ko.gz": gzipModule(t, a64)}, ARM64, ""},
		{"amd64", map[string][]byte{"kernel/fs/ext4/ext4.ko": module(t, "name=ext4")}, AMD64, ""},
		{"no modules", map[string][]byte{"modules.order": nil}, "", ""},
		{"riscv", map[string][]byte{"kernel/fs/ext4/ext4.ko": machineModule(t, elf.EM_RISCV, "name=ext4")}, "", "are for EM_RISCV (kernel/fs/ext4/ext4.ko): ramboot builds /init for amd64 and arm64"},
		{"not ELF", map[string][]byte{"kernel/fs/ext4/ext4.ko": []byte("junk")}, "", "module kernel/fs/ext4/ext4.ko: not an ELF file"},
		{"bad zstd", map[string][]byte{"kernel/fs/ext4/ext4.ko.zst": []byte("junk")}, "", "kernel/fs/ext4/ext4.ko.zst"},
	} {
		got, err := ModulesArch(modulesTree(t, dir, tt.name, tt.files))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: error %v, want %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	t.Run("xz", func(t *testing.T) {
		got, err := ModulesArch(modulesTree(t, dir, "xz", map[string][]byte{"kernel/drivers/net/virtio_net.ko.xz": xzModule(t, a64)}))
		if err != nil || got != ARM64 {
			t.Errorf("%q, %v; want arm64", got, err)
		}
	})
}

// TestWriteArch: the modules, /init and --arch must agree; a mismatch names both sides and
// the /init to give.
func TestWriteArch(t *testing.T) {
	dir := t.TempDir()
	vm := "vermagic=6.1.0-57-cloud-arm64 SMP mod_unload modversions aarch64"
	a64 := modulesTree(t, dir, "arm64", map[string][]byte{
		"kernel/drivers/net/virtio_net.ko.zst": zstdModule(t, machineModule(t, elf.EM_AARCH64, "name=virtio_net", "alias=virtio:d00000001v*", "depends=virtio", vm)),
		"kernel/drivers/virtio/virtio.ko":      machineModule(t, elf.EM_AARCH64, "name=virtio", "depends=", vm),
	})
	mixed := modulesTree(t, dir, "mixed", map[string][]byte{
		"kernel/drivers/net/virtio_net.ko": machineModule(t, elf.EM_AARCH64, "name=virtio_net", "alias=virtio:d00000001v*", "depends=virtio", vm),
		"kernel/drivers/virtio/virtio.ko":  machineModule(t, elf.EM_X86_64, "name=virtio", "depends=", vm),
	})
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	initA64 := write("init-arm64", elfHeader(elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_AARCH64))
	initX86 := write("init-amd64", elfHeader(elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_X86_64))
	script := write("init-sh", []byte("#!/bin/sh\n"))
	for _, tt := range []struct {
		name string
		spec Spec
		want Arch
		err  string
	}{
		{"arm64", Spec{Init: initA64, Modules: a64}, ARM64, ""},
		{"--arch arm64", Spec{Init: initA64, Modules: a64, Arch: ARM64}, ARM64, ""},
		{"script /init", Spec{Init: script, Modules: a64}, ARM64, ""},
		{"no modules", Spec{Init: initX86}, AMD64, ""},
		{"no modules, script", Spec{Init: script}, "", ""},
		{"amd64 /init", Spec{Init: initX86, Modules: a64},
			"", "architecture mismatch: the /init binary " + initX86 + " is for amd64 (EM_X86_64), but the modules in " + a64 + " are for arm64 (EM_AARCH64): give the one built for arm64 (make build leaves it as bin/ramboot-init-arm64)"},
		{"--arch amd64", Spec{Init: initX86, Modules: a64, Arch: AMD64},
			"", "architecture mismatch: module kernel/drivers/net/virtio_net.ko.zst is for arm64 (EM_AARCH64), but --arch says amd64 (EM_X86_64)"},
		{"--arch arm64, amd64 /init", Spec{Init: initX86, Arch: ARM64},
			"", "architecture mismatch: the /init binary " + initX86 + " is for amd64 (EM_X86_64), but --arch says arm64 (EM_AARCH64)"},
		{"mixed tree", Spec{Init: initA64, Modules: mixed},
			"", "module kernel/drivers/virtio/virtio.ko is for amd64 (EM_X86_64), but the modules in " + mixed + " are for arm64 (EM_AARCH64)"},
		{"bad --arch", Spec{Init: initA64, Arch: "sparc"}, "", `unknown architecture "sparc"`},
		{"arm64 busybox", Spec{Init: initA64, Modules: a64, Busybox: initA64}, ARM64, ""},
		{"amd64 busybox", Spec{Init: initA64, Modules: a64, Busybox: initX86},
			"", "architecture mismatch: the busybox " + initX86 + " is for amd64 (EM_X86_64), but the initramfs is for arm64 (EM_AARCH64)"},
	} {
		tt.spec.CA = script
		st, err := Write(&bytes.Buffer{}, tt.spec)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: error %v, want %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if st.Arch != tt.want {
			t.Errorf("%s: arch %q, want %q", tt.name, st.Arch, tt.want)
		}
	}
}

// TestArm64SoCNICs: for arm64 modules the ethernet set also takes the NICs of SoCs (found
// by ACPI, the device tree or the fsl-mc bus) and the PHY drivers they need; amd64's set is
// as before.
func TestArm64SoCNICs(t *testing.T) {
	dir := t.TempDir()
	mods := map[string][]string{
		"kernel/drivers/net/ethernet/amazon/ena/ena.ko":                {"alias=pci:v00001D0Fd0000EC20sv*sd*bc*sc*i*"},
		"kernel/drivers/net/ethernet/apm/xgene/xgene-enet.ko":          {"alias=acpi*:APMC0D05:*", "alias=of:N*T*Capm,xgene-enet"},
		"kernel/drivers/net/ethernet/broadcom/genet/genet.ko":          {"alias=of:N*T*Cbrcm,bcm2711-genet-v5", "alias=acpi*:BCM6E4E:*"},
		"kernel/drivers/net/ethernet/freescale/dpaa2/fsl-dpaa2-eth.ko": {"alias=fsl-mc:v00001957ddpni"},
		"kernel/drivers/net/ethernet/marvell/mvpp2/mvpp2.ko":           {"alias=platform:mvpp2", "alias=acpi*:MRVL0110:*"},
		"kernel/drivers/net/ethernet/hisilicon/hns/hnae.ko":            nil, // a library
		"kernel/drivers/net/phy/realtek.ko":                            {"alias=mdio:000000000001110011001001????????"},
		"kernel/drivers/net/mdio/mdio-xgene.ko":                        {"alias=acpi*:APMC0D65:*"},
		"kernel/drivers/net/can/m_can/m_can_platform.ko":               {"alias=of:N*T*Cbosch,m_can"}, // not Ethernet
	}
	tree := func(name string, m elf.Machine, rel string) string {
		files := map[string][]byte{}
		for p, info := range mods {
			files[p] = machineModule(t, m, append([]string{"name=" + strings.TrimSuffix(filepath.Base(p), ".ko"), "depends=", "vermagic=" + rel + " SMP"}, info...)...)
		}
		return modulesTree(t, dir, name, files)
	}
	initA64 := filepath.Join(dir, "init-arm64")
	os.WriteFile(initA64, elfHeader(elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_AARCH64), 0o755)
	initX86 := filepath.Join(dir, "init-amd64")
	os.WriteFile(initX86, elfHeader(elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_X86_64), 0o755)

	pci := []string{"kernel/drivers/net/ethernet/amazon/ena/ena.ko"}
	soc := []string{
		"kernel/drivers/net/ethernet/amazon/ena/ena.ko",
		"kernel/drivers/net/ethernet/apm/xgene/xgene-enet.ko",
		"kernel/drivers/net/ethernet/broadcom/genet/genet.ko",
		"kernel/drivers/net/ethernet/freescale/dpaa2/fsl-dpaa2-eth.ko",
		"kernel/drivers/net/ethernet/marvell/mvpp2/mvpp2.ko",
		"kernel/drivers/net/mdio/mdio-xgene.ko",
		"kernel/drivers/net/phy/realtek.ko",
	}
	for _, tt := range []struct {
		name, rel string
		machine   elf.Machine
		init      string
		want      []string
	}{
		{"arm64", "6.1.0-57-cloud-arm64", elf.EM_AARCH64, initA64, soc},
		{"amd64", "6.1.0-57-cloud-amd64", elf.EM_X86_64, initX86, pci},
	} {
		st, err := Write(&bytes.Buffer{}, Spec{Init: tt.init, CA: tt.init, Modules: tree(tt.name, tt.machine, tt.rel)})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var got []string
		for _, g := range st.Chosen {
			if g.Name == "ethernet" {
				got = g.Paths
			}
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: ethernet set (-want +got):\n%s", tt.name, diff)
		}
	}
}

// TestDebianARM64 reads Debian's arm64 cloud kernel's modules (scripts/get-kernel.sh
// cloud-arm64) as arm64 and packs its SoC NICs with the PCI and virtual ones.
func TestDebianARM64(t *testing.T) {
	k := vmtest.FindARM64Kernel(t)
	a, err := ModulesArch(k.Modules)
	if err != nil || a != ARM64 {
		t.Fatalf("ModulesArch: %q, %v; want arm64", a, err)
	}
	init := filepath.Join(t.TempDir(), "init")
	os.WriteFile(init, elfHeader(elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_AARCH64), 0o755)
	st, err := Write(io.Discard, Spec{Init: init, CA: init, Modules: k.Modules})
	if err != nil {
		t.Fatal(err)
	}
	var eth []string
	for _, g := range st.Chosen {
		if g.Name == "ethernet" {
			eth = g.Paths
		}
	}
	for _, want := range []string{"kernel/drivers/net/virtio_net.ko", "kernel/drivers/net/ethernet/amazon/ena/ena.ko",
		"kernel/drivers/net/ethernet/apm/xgene/xgene-enet.ko", "kernel/drivers/net/ethernet/hisilicon/hns/hns_enet_drv.ko"} {
		if !slices.Contains(eth, want) {
			t.Errorf("ethernet set lacks %s: %q", want, eth)
		}
	}
	if st.Arch != ARM64 || st.KernelVer != k.Version {
		t.Errorf("arch %q, release %q; want arm64, %s", st.Arch, st.KernelVer, k.Version)
	}
	_, err = Write(io.Discard, Spec{Init: init, CA: init, Modules: k.Modules, Arch: AMD64})
	if err == nil || !strings.Contains(err.Error(), "is for arm64 (EM_AARCH64), but --arch says amd64") {
		t.Errorf("--arch amd64 with arm64 modules: %v", err)
	}
}
