package uki

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Arch is an EFI architecture as systemd names its stubs: linuxx64.efi.stub, linuxaa64.efi.stub.
type Arch string

// The architectures ramboot knows stubs for.
const (
	X64     Arch = "x64"
	IA32    Arch = "ia32"
	AA64    Arch = "aa64"
	RISCV64 Arch = "riscv64"
)

// StubDir is where Debian's systemd-boot-efi package installs the stubs.
const StubDir = "/usr/lib/systemd/boot/efi"

// DefaultStub is the path of systemd's stub for arch.
func (a Arch) DefaultStub() string { return StubDir + "/linux" + string(a) + ".efi.stub" }

// archOf is the architecture of a PE machine type ("" when unknown).
func archOf(machine uint16) Arch {
	switch machine {
	case pe.IMAGE_FILE_MACHINE_AMD64:
		return X64
	case pe.IMAGE_FILE_MACHINE_I386:
		return IA32
	case pe.IMAGE_FILE_MACHINE_ARM64:
		return AA64
	case pe.IMAGE_FILE_MACHINE_RISCV64:
		return RISCV64
	}
	return ""
}

// Kernel is what a UKI needs to know of its kernel.
type Kernel struct {
	Arch Arch
	// Release is the kernel's release (uname -r), from an x86 bzImage's header; "" for other
	// kernels, whose images do not say it where it can be read without decompressing them.
	Release string
}

// x86 boot protocol (Documentation/arch/x86/boot.rst): the setup header's fields.
const (
	hdrMagicOff     = 0x202 // "HdrS"
	hdrVersionOff   = 0x206 // boot protocol version
	hdrKernelVerOff = 0x20e // kernel_version: the version string's offset, less 0x200
	hdrXloadOff     = 0x236 // xloadflags (protocol 2.12+)
	xlfKernel64     = 1 << 0
)

// ParseKernel finds out the architecture of a kernel image and, for x86, its release: an x86
// bzImage (with or without the EFI stub's PE header), or an EFI-stub kernel of another
// architecture (arm64's Image or zboot image, riscv64's).
func ParseKernel(b []byte) (Kernel, error) {
	var k Kernel
	if len(b) > hdrXloadOff+2 && string(b[hdrMagicOff:hdrMagicOff+4]) == "HdrS" {
		k.Arch = IA32
		proto := binary.LittleEndian.Uint16(b[hdrVersionOff:])
		if proto >= 0x20c && binary.LittleEndian.Uint16(b[hdrXloadOff:])&xlfKernel64 != 0 {
			k.Arch = X64
		}
		if v := int(binary.LittleEndian.Uint16(b[hdrKernelVerOff:])); v != 0 && v+0x200 < len(b) {
			s := b[v+0x200:]
			if i := bytes.IndexByte(s, 0); i >= 0 {
				s = s[:i]
			}
			if f := strings.Fields(string(s[:min(len(s), 256)])); len(f) > 0 {
				k.Release = f[0]
			}
		}
		return k, nil
	}
	if bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		// Some distributions ship arm64's vmlinuz as a gzipped Image (Debian's is the raw
		// Image), which GRUB decompresses; the stub does not.
		return k, errors.New("the kernel is gzip-compressed: give the Image inside it (zcat VMLINUZ > Image)")
	}
	f, err := pe.NewFile(bytes.NewReader(b))
	if err != nil {
		return k, errors.New("not a kernel image: neither an x86 bzImage nor an EFI-stub PE")
	}
	defer f.Close()
	if k.Arch = archOf(f.Machine); k.Arch == "" {
		return k, fmt.Errorf("kernel for unknown PE machine %#x", f.Machine)
	}
	return k, nil
}
