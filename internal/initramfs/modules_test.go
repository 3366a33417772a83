package initramfs

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/ramboot/ramboot/internal/vmtest"
)

// module returns a relocatable ELF64 object whose only content is a .modinfo section holding
// the NUL-terminated strings info: all the module readers look at.
func module(t *testing.T, info ...string) []byte {
	t.Helper()
	modinfo := []byte(strings.Join(info, "\x00") + "\x00")
	names := []byte("\x00.modinfo\x00.shstrtab\x00")
	hdrSize := binary.Size(elf.Header64{})
	shSize := binary.Size(elf.Section64{})
	h := elf.Header64{
		Type: uint16(elf.ET_REL), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Shoff:     uint64(hdrSize + len(modinfo) + len(names)),
		Ehsize:    uint16(hdrSize),
		Shentsize: uint16(shSize), Shnum: 3, Shstrndx: 2,
	}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	sections := []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Off: uint64(hdrSize), Size: uint64(len(modinfo)), Addralign: 1},
		{Name: 10, Type: uint32(elf.SHT_STRTAB), Off: uint64(hdrSize + len(modinfo)), Size: uint64(len(names)), Addralign: 1},
	}
	var b bytes.Buffer
	for _, v := range []any{h, modinfo, names, sections} {
		if err := binary.Write(&b, binary.LittleEndian, v); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func zstdModule(t *testing.T, b []byte) []byte {
	e, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	return e.EncodeAll(b, nil)
}

// modulesTree writes a /lib/modules/RELEASE tree without depmod's index (as `dpkg -x` leaves
// one) under dir/name, files mapping paths to contents.
func modulesTree(t *testing.T, dir, name string, files map[string][]byte) string {
	t.Helper()
	root := filepath.Join(dir, name)
	for p, b := range files {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestModulesRelease: the modules go to /lib/modules/RELEASE with RELEASE read from their
// vermagic, whatever the tree is called. A symlink named "modules" once put them in
// /lib/modules/modules, where /init (looking for `uname -r`) found nothing to load.
func TestModulesRelease(t *testing.T) {
	dir := t.TempDir()
	const rel = "6.1.0-31-cloud-amd64"
	vm := "vermagic=" + rel + " SMP preempt mod_unload modversions "
	good := modulesTree(t, dir, rel, map[string][]byte{
		"kernel/drivers/net/virtio_net.ko.zst": zstdModule(t, module(t, "alias=virtio:d00000001v*", "depends=virtio", "name=virtio_net", vm)),
		"kernel/drivers/virtio/virtio.ko":      module(t, "depends=", "name=virtio", vm),
		"kernel/fs/ext4/ext4.ko":               module(t, "depends=", "name=ext4", "vermagic=6.1.0-9-amd64 SMP"),
	})
	link := filepath.Join(dir, "modules")
	if err := os.Symlink(rel, link); err != nil {
		t.Fatal(err)
	}
	init := filepath.Join(dir, "init")
	os.WriteFile(init, []byte("INIT"), 0o755)

	var buf bytes.Buffer
	st, err := Write(&buf, Spec{Init: init, CA: init, Modules: link})
	if err != nil {
		t.Fatal(err)
	}
	if st.KernelVer != rel || st.Modules != 2 || st.NetModules != 1 {
		t.Errorf("stats %+v, want release %s, 2 modules, 1 network driver", st, rel)
	}
	recs := records(t, buf.Bytes())
	for _, p := range []string{"kernel/drivers/net/virtio_net.ko.zst", "kernel/drivers/virtio/virtio.ko", "modules.dep", "modules.alias"} {
		if _, ok := recs["lib/modules/"+rel+"/"+p]; !ok {
			t.Errorf("lib/modules/%s/%s missing", rel, p)
		}
	}
	for name := range recs {
		if strings.HasPrefix(name, "lib/modules/modules") {
			t.Errorf("%s: packed under the symlink's name", name)
		}
	}

	// A module of another release among those packed is refused, naming both.
	_, err = Write(&buf, Spec{Init: init, CA: init, Modules: good, Storage: true})
	if err == nil || !strings.Contains(err.Error(), "two kernel releases") || !strings.Contains(err.Error(), "kernel/fs/ext4/ext4.ko for 6.1.0-9-amd64") {
		t.Errorf("mixed releases: %v", err)
	}

	for _, tt := range []struct {
		name    string
		modules string
		want    string
	}{
		{"missing tree", filepath.Join(dir, "none"), "stat " + filepath.Join(dir, "none") + ": no such file or directory"},
		{"a file", init, init + " is not a directory"},
		{"no vermagic", modulesTree(t, dir, "novermagic", map[string][]byte{"kernel/drivers/net/ethernet/a.ko": module(t, "name=a", "alias=pci:v*d*sv*sd*bc02sc00i*")}), "kernel/drivers/net/ethernet/a.ko: no vermagic"},
	} {
		if _, err := Write(&buf, Spec{Init: init, CA: init, Modules: tt.modules}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}

	// A tree with no network driver packs nothing, and says so in the stats.
	st, err = Write(&buf, Spec{Init: init, CA: init, Modules: modulesTree(t, dir, "nonet", map[string][]byte{"kernel/fs/ext4/ext4.ko": module(t, "name=ext4", vm)})})
	if err != nil || st.NetModules != 0 || st.Modules != 0 {
		t.Errorf("no network driver: %+v, %v", st, err)
	}
}

// TestDebianRelease reads the release of Debian's cloud kernel from its modules, through a
// symlink that does not carry it.
func TestDebianRelease(t *testing.T) {
	k := vmtest.FindKernel(t)
	link := filepath.Join(t.TempDir(), "modules")
	abs, err := filepath.Abs(k.Modules)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(abs, link); err != nil {
		t.Fatal(err)
	}
	init, err := exec.LookPath("true")
	if err != nil {
		t.Skip(err)
	}
	st, err := Write(&bytes.Buffer{}, Spec{Init: init, CA: init, Modules: link})
	if err != nil {
		t.Fatal(err)
	}
	if st.KernelVer != k.Version || st.NetModules == 0 {
		t.Errorf("release %q, %d network drivers; want %q and some", st.KernelVer, st.NetModules, k.Version)
	}
}
