// Package uki builds Unified Kernel Images: systemd's EFI stub with a kernel, an initrd and
// a command line in sections of their own, one EFI binary that firmware boots (and Secure
// Boot checks) as a whole. The sections are the UAPI Group's UKI specification's: .osrel,
// .cmdline, .uname, .sbat, .initrd and .linux, the kernel last.
//
// Debian 12 has no ukify. The stub is read with debug/pe and the sections appended by
// internal/peimage; signing is internal/authenticode's.
package uki

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/ramboot/ramboot/internal/peimage"
)

// Spec is what goes into a UKI.
type Spec struct {
	Stub    []byte // systemd's linuxARCH.efi.stub
	Kernel  []byte // the kernel image (vmlinuz)
	Initrd  []byte
	Cmdline string
	// Release is the kernel's release for .uname: when empty, the one the kernel's header
	// says (x86); when both are known they must agree.
	Release string
	// Version is ramboot's version, for .osrel and ramboot's SBAT entry.
	Version string
}

// StubSBATName is what the stub's own .sbat section is renamed to: a UKI must have one .sbat
// (shim refuses an image with two), and its entries are in the UKI's, with ramboot's. The
// stub's section data stays where and as it was, so the stub's code is unchanged.
const StubSBATName = ".sbatstb"

// SBAT is ramboot's SBAT entry (shim's SBAT.md): component, generation, vendor, package,
// version, URL. The generation goes up when a security fix must revoke older UKIs.
func SBAT(version string) string {
	return "ramboot,1,ramboot,ramboot," + strings.ReplaceAll(version, ",", ".") + ",https://github.com/ramboot/ramboot\n"
}

// sbatHeader is the line every SBAT section starts with.
const sbatHeader = "sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n"

// OSRelease is the .osrel section: the UKI's os-release(5), which boot menus show.
func OSRelease(version string) string {
	return fmt.Sprintf("NAME=ramboot\nID=ramboot\nVERSION=%q\nPRETTY_NAME=%q\nHOME_URL=\"https://github.com/ramboot/ramboot\"\n",
		version, "ramboot "+version)
}

// Section names of a UKI (UAPI UKI specification).
var ukiSections = []string{".linux", ".osrel", ".cmdline", ".initrd", ".uname", ".sbat", ".splash", ".dtb", ".ucode", ".pcrsig", ".pcrpkey"}

// Build returns the UKI of s, unsigned. A signed stub loses its signature: appending
// sections would invalidate it, and the UKI is signed as a whole.
func Build(s Spec) ([]byte, error) {
	if len(s.Kernel) == 0 {
		return nil, errors.New("building uki: no kernel")
	}
	k, err := ParseKernel(s.Kernel)
	if err != nil {
		return nil, fmt.Errorf("building uki: %w", err)
	}
	stub, err := peimage.StripCertificates(bytes.Clone(s.Stub))
	if err != nil {
		return nil, fmt.Errorf("reading stub: %w", err)
	}
	l, err := peimage.Parse(stub)
	if err != nil {
		return nil, fmt.Errorf("reading stub: %w", err)
	}
	if a := archOf(l.Machine); a != k.Arch {
		return nil, fmt.Errorf("building uki: the stub is for %s, the kernel for %s", orUnknown(a), k.Arch)
	}
	release := s.Release
	switch {
	case release == "":
		release = k.Release
	case k.Release != "" && k.Release != release:
		return nil, fmt.Errorf("building uki: the kernel is %s, the modules are for %s", k.Release, release)
	}
	var stubSBAT []byte
	for _, sec := range l.Sections {
		if sec.Name != ".sbat" {
			for _, n := range ukiSections {
				if sec.Name == n {
					return nil, fmt.Errorf("reading stub: it has a %s section already (a UKI, not a stub?)", n)
				}
			}
			continue
		}
		if stubSBAT != nil {
			return nil, errors.New("reading stub: two .sbat sections")
		}
		stubSBAT = stub[sec.PointerToRaw:][:min(sec.VirtualSize, sec.SizeOfRawData)]
		if err := peimage.RenameSection(stub, ".sbat", StubSBATName); err != nil {
			return nil, err
		}
	}
	secs := []peimage.NewSection{
		{Name: ".osrel", Data: []byte(OSRelease(s.Version))},
	}
	if s.Cmdline != "" {
		secs = append(secs, peimage.NewSection{Name: ".cmdline", Data: []byte(s.Cmdline)})
	}
	if release != "" {
		secs = append(secs, peimage.NewSection{Name: ".uname", Data: []byte(release)})
	}
	secs = append(secs, peimage.NewSection{Name: ".sbat", Data: []byte(mergeSBAT(stubSBAT, s.Version))})
	if len(s.Initrd) > 0 {
		secs = append(secs, peimage.NewSection{Name: ".initrd", Data: s.Initrd})
	}
	// The kernel last, as the UKI specification recommends.
	secs = append(secs, peimage.NewSection{Name: ".linux", Data: s.Kernel})
	out, err := peimage.AppendSections(stub, secs)
	if err != nil {
		return nil, fmt.Errorf("building uki on the stub: %w", err)
	}
	return out, nil
}

func orUnknown(a Arch) string {
	if a == "" {
		return "an unknown architecture"
	}
	return string(a)
}

// mergeSBAT is the UKI's SBAT: the stub's entries (or the SBAT header line when it has none),
// then ramboot's.
func mergeSBAT(stub []byte, version string) string {
	s := strings.TrimRight(string(stub), "\x00")
	if strings.TrimSpace(s) == "" {
		s = sbatHeader
	}
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s + SBAT(version)
}
