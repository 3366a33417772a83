package main

import (
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ramboot/ramboot/internal/initramfs"
)

// TestDefaultInit: without --init, the /init beside ramboot is the one for --arch, else for
// the modules' architecture, else amd64's; a missing one says how to get it.
func TestDefaultInit(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	for _, n := range []string{"ramboot-init", "ramboot-init-arm64"} {
		os.WriteFile(filepath.Join(bin, n), []byte("INIT"), 0o755)
	}
	// A modules tree whose one module is an aarch64 ELF object (its header is all that is read).
	mods := filepath.Join(dir, "6.1.0-57-cloud-arm64")
	os.MkdirAll(filepath.Join(mods, "kernel/drivers/net"), 0o755)
	hdr := make([]byte, 64)
	copy(hdr, elf.ELFMAG)
	hdr[elf.EI_CLASS], hdr[elf.EI_DATA] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB)
	binary.LittleEndian.PutUint16(hdr[18:], uint16(elf.EM_AARCH64))
	os.WriteFile(filepath.Join(mods, "kernel/drivers/net/virtio_net.ko"), hdr, 0o644)

	for _, tt := range []struct {
		name string
		spec initramfs.Spec
		dir  string
		want string // file name in dir, or an error's text
	}{
		{"no modules", initramfs.Spec{}, bin, "ramboot-init"},
		{"arm64 modules", initramfs.Spec{Modules: mods}, bin, "ramboot-init-arm64"},
		{"--arch arm64", initramfs.Spec{Arch: initramfs.ARM64}, bin, "ramboot-init-arm64"},
		{"--arch amd64 wins", initramfs.Spec{Arch: initramfs.AMD64, Modules: mods}, bin, "ramboot-init"},
		{"missing", initramfs.Spec{Modules: mods}, dir, "no /init for arm64 at " + filepath.Join(dir, "ramboot-init-arm64") + ": run make build, or give --init FILE"},
	} {
		got, err := defaultInit(tt.spec, tt.dir)
		switch {
		case strings.Contains(tt.want, " "):
			if err == nil || err.Error() != tt.want {
				t.Errorf("%s: %q, %v; want error %q", tt.name, got, err, tt.want)
			}
		case err != nil || got != filepath.Join(tt.dir, tt.want):
			t.Errorf("%s: %q, %v; want %s", tt.name, got, err, tt.want)
		}
	}
}
