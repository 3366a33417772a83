// Package peimagetest makes small PE32+ EFI images for tests, so that tests of PE rewriting
// and signing run where no systemd stub is installed, and fuzz targets have seeds.
//
// Test-only: nothing in /init or the CLI imports it.
package peimagetest

import (
	"debug/pe"
	"encoding/binary"
)

// Section is a section of the image to make.
type Section struct {
	Name string
	Data []byte
}

// Options shape the image; zero values take the defaults of systemd's x86-64 stub.
type Options struct {
	Machine          uint16 // default pe.IMAGE_FILE_MACHINE_AMD64
	SectionAlignment uint32 // default 0x200
	FileAlignment    uint32 // default 0x200
	SizeOfHeaders    uint32 // default 0x400
	Sections         []Section
}

// DefaultSections are a stub's: code, data and an SBAT section.
var DefaultSections = []Section{
	{".text", []byte("\xc3 this is not code but a test's bytes")},
	{".sbat", []byte("sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\ntest,1,Test,test,1,https://example.org/\n")},
	{".data", []byte("some data")},
}

func alignUp(v, a uint32) uint32 { return (v + a - 1) &^ (a - 1) }

// New returns a PE32+ EFI application with the given sections, each at its own aligned
// address and file offset. Its checksum is zero, as firmware does not check it.
func New(o Options) []byte {
	if o.Machine == 0 {
		o.Machine = pe.IMAGE_FILE_MACHINE_AMD64
	}
	if o.SectionAlignment == 0 {
		o.SectionAlignment = 0x200
	}
	if o.FileAlignment == 0 {
		o.FileAlignment = 0x200
	}
	if o.SizeOfHeaders == 0 {
		o.SizeOfHeaders = 0x400
	}
	if o.Sections == nil {
		o.Sections = DefaultSections
	}
	le := binary.LittleEndian
	img := make([]byte, o.SizeOfHeaders)
	copy(img, "MZ")
	const lfanew = 0x40
	le.PutUint32(img[0x3c:], lfanew)
	copy(img[lfanew:], "PE\x00\x00")
	coff := img[lfanew+4:]
	le.PutUint16(coff[0:], o.Machine)
	le.PutUint16(coff[2:], uint16(len(o.Sections)))
	le.PutUint16(coff[16:], 240)
	le.PutUint16(coff[18:], pe.IMAGE_FILE_EXECUTABLE_IMAGE|pe.IMAGE_FILE_LINE_NUMS_STRIPPED|pe.IMAGE_FILE_DEBUG_STRIPPED)
	opt := img[lfanew+24:]
	le.PutUint16(opt[0:], 0x20b)
	le.PutUint32(opt[32:], o.SectionAlignment)
	le.PutUint32(opt[36:], o.FileAlignment)
	le.PutUint32(opt[60:], o.SizeOfHeaders)
	le.PutUint16(opt[68:], pe.IMAGE_SUBSYSTEM_EFI_APPLICATION)
	le.PutUint32(opt[108:], 16)
	table := lfanew + 24 + 240
	va := alignUp(o.SizeOfHeaders, o.SectionAlignment)
	le.PutUint32(opt[16:], va) // the entry point: the first section
	for i, s := range o.Sections {
		raw := alignUp(uint32(len(s.Data)), o.FileAlignment)
		h := img[table+40*i:]
		copy(h[:8], s.Name)
		le.PutUint32(h[8:], uint32(len(s.Data)))
		le.PutUint32(h[12:], va)
		le.PutUint32(h[16:], raw)
		le.PutUint32(h[20:], uint32(len(img)))
		le.PutUint32(h[36:], pe.IMAGE_SCN_CNT_INITIALIZED_DATA|pe.IMAGE_SCN_MEM_READ)
		img = append(img, s.Data...)
		img = append(img, make([]byte, int(raw)-len(s.Data))...)
		va = alignUp(va+uint32(len(s.Data)), o.SectionAlignment)
	}
	opt = img[lfanew+24:]
	le.PutUint32(opt[56:], va)
	return img
}

// BzImage is a small x86-64 bzImage look-alike: a PE whose headers carry the x86 boot
// protocol's "HdrS" magic, the 64-bit load flag and a kernel version string that starts
// with release.
func BzImage(release string) []byte {
	b := New(Options{Sections: []Section{{Name: ".text", Data: make([]byte, 5000)}}})
	le := binary.LittleEndian
	copy(b[0x202:], "HdrS")
	le.PutUint16(b[0x206:], 0x20f) // boot protocol 2.15
	le.PutUint16(b[0x236:], 1)     // xloadflags: XLF_KERNEL_64
	le.PutUint16(b[0x20e:], 0x100) // kernel_version: the string at 0x200 past this
	copy(b[0x300:], release+" (test@example.org) #1 SMP\x00")
	return b
}
