package kmod

import (
	"bytes"
	"debug/elf"
	"testing"
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
