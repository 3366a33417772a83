package kmod

import (
	"bytes"
	"debug/elf"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ulikunitz/xz"
)

func TestModinfoSection(t *testing.T) {
	good := elfModule(t, "alias=virtio:d00000001v*", "name=virtio_net")
	got, err := modinfoSection(bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if want := "alias=virtio:d00000001v*\x00name=virtio_net\x00"; string(got) != want {
		t.Errorf("modinfoSection = %q, want %q", got, want)
	}
	for name, b := range map[string][]byte{
		"empty":      nil,
		"not ELF":    []byte("MZ\x90\x00 this is not an ELF file at all, not at all, not at all........"),
		"truncated":  good[:100],
		"bad class":  append([]byte{0x7f, 'E', 'L', 'F', 9, 1}, good[6:]...),
		"bad endian": append([]byte{0x7f, 'E', 'L', 'F', 2, 9}, good[6:]...),
		"no modinfo": bytes.Replace(good, []byte(".modinfo"), []byte(".modinfX"), 1),
	} {
		if _, err := modinfoSection(bytes.NewReader(b)); err == nil {
			t.Errorf("%s: modinfoSection succeeded, want an error", name)
		}
	}
}

// FuzzModinfoSection checks that no input makes the .modinfo reader panic or allocate
// without bound, and that it agrees with debug/elf whenever debug/elf reads the section.
func FuzzModinfoSection(f *testing.F) {
	f.Add(elfModule(f, "alias=virtio:d00000001v*", "depends=virtio_ring,virtio", "name=virtio_net"))
	f.Add(elfModule(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := modinfoSection(bytes.NewReader(b))
		ef, elfErr := elf.NewFile(bytes.NewReader(b))
		if elfErr != nil {
			return
		}
		sec := ef.Section(".modinfo")
		if sec == nil || sec.Type == elf.SHT_NOBITS || sec.Flags&elf.SHF_COMPRESSED != 0 || sec.Size > maxModinfo {
			return
		}
		want, wantErr := sec.Data()
		if wantErr != nil {
			return
		}
		if err != nil {
			t.Fatalf("modinfoSection: %v; debug/elf read %q", err, want)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("modinfoSection = %q, debug/elf = %q", got, want)
		}
	})
}

func TestVermagic(t *testing.T) {
	const vm = "6.1.0-31-cloud-amd64 SMP preempt mod_unload modversions "
	ko := elfModule(t, "license=GPL", "vermagic="+vm, "name=virtio_net")
	var xzb bytes.Buffer
	w, err := xz.WriterConfig{CheckSum: xz.CRC32}.NewWriter(&xzb)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(ko)
	w.Close()
	fsys := fstest.MapFS{
		"a.ko":      {Data: ko},
		"a.ko.zst":  {Data: zstdBytes(t, ko)},
		"a.ko.gz":   {Data: gzipBytes(t, ko)},
		"a.ko.xz":   {Data: xzb.Bytes()},
		"none.ko":   {Data: elfModule(t, "name=none")},
		"broken.ko": {Data: []byte("not ELF")},
	}
	for _, p := range []string{"a.ko", "a.ko.zst", "a.ko.gz", "a.ko.xz"} {
		got, err := Vermagic(fsys, p)
		if err != nil || got != vm {
			t.Errorf("Vermagic(%s) = %q, %v; want %q", p, got, err, vm)
		}
	}
	for _, p := range []string{"none.ko", "broken.ko", "missing.ko"} {
		if got, err := Vermagic(fsys, p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("Vermagic(%s) = %q, %v; want an error naming it", p, got, err)
		}
	}
}
