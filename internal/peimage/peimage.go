// Package peimage reads the layout of a PE/COFF image (an EFI application) and rewrites the
// few header fields ramboot changes in one: new sections appended after the existing ones,
// the checksum, the certificate table's data directory entry.
//
// Reading is the standard library's debug/pe, plus the file offsets of the fields it does
// not report (the checksum, the data directories, the section table). Writing is ours: no
// maintained Go module writes PE sections (debug/pe only reads; github.com/saferwall/pe only
// reads; Binject/debug and go-coff/peln, which append sections, are not served by the module
// proxy), and appending sections is a few header fields and aligned copies.
package peimage

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"errors"
	"fmt"
)

// Data directory indexes (PE/COFF specification, "Optional Header Data Directories").
const (
	DirCertificate = 4 // the attribute certificate table: Authenticode signatures
)

// SectionHeaderSize is the size of one entry of the section table.
const SectionHeaderSize = 40

// ErrNoRoom is returned when the image's headers cannot hold more section headers.
var ErrNoRoom = errors.New("no room for more section headers")

// Layout is where a PE image keeps the fields ramboot reads and rewrites, as file offsets.
type Layout struct {
	Machine          uint16
	PE32Plus         bool
	NumSections      int
	SectionAlignment uint32
	FileAlignment    uint32
	SizeOfImage      uint32
	SizeOfHeaders    uint32

	NumSectionsOff  int    // COFF header NumberOfSections (uint16)
	SymbolTableOff  int    // COFF header PointerToSymbolTable (uint32)
	SymbolTable     uint32 // where the COFF symbol table is in the file, 0 for none
	SizeOfInitOff   int    // optional header SizeOfInitializedData (uint32)
	SizeOfImageOff  int    // optional header SizeOfImage (uint32)
	ChecksumOff     int    // optional header CheckSum (uint32)
	NumDirs         int    // NumberOfRvaAndSizes
	DirsOff         int    // the first data directory entry (8 bytes each)
	SectionTableOff int    // the first section header
	Sections        []Section
	CertTableOff    uint32 // the certificate table's file offset, 0 when there is none
	CertTableSize   uint32
}

// Section is a section header.
type Section struct {
	Name            string
	VirtualSize     uint32
	VirtualAddress  uint32
	SizeOfRawData   uint32
	PointerToRaw    uint32
	Characteristics uint32
}

// Parse reads the layout of the PE image img. It checks what ramboot relies on when it
// rewrites or hashes the image: the headers and section table lie within SizeOfHeaders and
// the file, and every section's data within the file.
func Parse(img []byte) (*Layout, error) {
	f, err := pe.NewFile(bytes.NewReader(img))
	if err != nil {
		return nil, fmt.Errorf("reading pe headers: %w", err)
	}
	defer f.Close()
	l := &Layout{Machine: f.Machine, NumSections: len(f.Sections)}
	lfanew := int(binary.LittleEndian.Uint32(img[0x3c:]))
	coff := lfanew + 4
	opt := coff + 20
	l.NumSectionsOff = coff + 2
	l.SymbolTableOff = coff + 8
	l.SymbolTable = f.PointerToSymbolTable
	optSize := int(f.SizeOfOptionalHeader)
	if opt+optSize > len(img) {
		return nil, errors.New("reading pe headers: optional header past the end of the file")
	}
	var dirOff int
	switch oh := f.OptionalHeader.(type) {
	case *pe.OptionalHeader32:
		l.SectionAlignment, l.FileAlignment = oh.SectionAlignment, oh.FileAlignment
		l.SizeOfImage, l.SizeOfHeaders = oh.SizeOfImage, oh.SizeOfHeaders
		l.NumDirs = int(oh.NumberOfRvaAndSizes)
		dirOff = 96
	case *pe.OptionalHeader64:
		l.PE32Plus = true
		l.SectionAlignment, l.FileAlignment = oh.SectionAlignment, oh.FileAlignment
		l.SizeOfImage, l.SizeOfHeaders = oh.SizeOfImage, oh.SizeOfHeaders
		l.NumDirs = int(oh.NumberOfRvaAndSizes)
		dirOff = 112
	default:
		return nil, errors.New("reading pe headers: no optional header (an object file, not an image)")
	}
	l.SizeOfInitOff = opt + 8
	l.SizeOfImageOff = opt + 56
	l.ChecksumOff = opt + 64
	l.DirsOff = opt + dirOff
	if l.DirsOff+8*l.NumDirs > opt+optSize {
		return nil, errors.New("reading pe headers: data directories past the optional header")
	}
	l.SectionTableOff = opt + optSize
	end := l.SectionTableOff + SectionHeaderSize*l.NumSections
	if end > int(l.SizeOfHeaders) || int(l.SizeOfHeaders) > len(img) {
		return nil, fmt.Errorf("reading pe headers: section table (ends at %#x) or SizeOfHeaders (%#x) past the headers or the file (%#x bytes)",
			end, l.SizeOfHeaders, len(img))
	}
	if l.FileAlignment == 0 || l.SectionAlignment == 0 || l.FileAlignment&(l.FileAlignment-1) != 0 || l.SectionAlignment&(l.SectionAlignment-1) != 0 {
		return nil, fmt.Errorf("reading pe headers: alignments %#x (file) and %#x (sections) are not powers of two", l.FileAlignment, l.SectionAlignment)
	}
	for i, s := range f.Sections {
		if uint64(s.Offset)+uint64(s.Size) > uint64(len(img)) {
			return nil, fmt.Errorf("reading pe headers: section %d (%q) data past the end of the file", i, s.Name)
		}
		h := img[l.SectionTableOff+SectionHeaderSize*i:]
		l.Sections = append(l.Sections, Section{
			Name:            string(bytes.TrimRight(h[:8], "\x00")),
			VirtualSize:     s.VirtualSize,
			VirtualAddress:  s.VirtualAddress,
			SizeOfRawData:   s.Size,
			PointerToRaw:    s.Offset,
			Characteristics: s.Characteristics,
		})
	}
	if l.NumDirs > DirCertificate {
		d := img[l.DirsOff+8*DirCertificate:]
		l.CertTableOff, l.CertTableSize = binary.LittleEndian.Uint32(d), binary.LittleEndian.Uint32(d[4:])
		if l.CertTableSize != 0 && uint64(l.CertTableOff)+uint64(l.CertTableSize) > uint64(len(img)) {
			return nil, fmt.Errorf("reading pe headers: certificate table (%#x bytes at %#x) past the end of the file", l.CertTableSize, l.CertTableOff)
		}
	}
	return l, nil
}

// Signed reports whether the image has a certificate table.
func (l *Layout) Signed() bool { return l.CertTableSize != 0 }

// CertDirOff is the file offset of the certificate table's data directory entry, or -1 when
// the image has too few data directories to have one.
func (l *Layout) CertDirOff() int {
	if l.NumDirs <= DirCertificate {
		return -1
	}
	return l.DirsOff + 8*DirCertificate
}

// DebugData reports whether a debug directory entry of img keeps its data in the file at or
// after off (outside the sections, where appending sections would cut it off). A directory
// that cannot be read counts as such data: nothing is dropped on a guess.
func (l *Layout) DebugData(img []byte, off uint32) bool {
	const dirDebug, entrySize = 6, 28
	if l.NumDirs <= dirDebug {
		return false
	}
	d := img[l.DirsOff+8*dirDebug:]
	rva, size := binary.LittleEndian.Uint32(d), binary.LittleEndian.Uint32(d[4:])
	if size == 0 {
		return false
	}
	for _, s := range l.Sections {
		if rva < s.VirtualAddress || uint64(rva)+uint64(size) > uint64(s.VirtualAddress)+uint64(s.SizeOfRawData) {
			continue
		}
		start := uint64(s.PointerToRaw) + uint64(rva-s.VirtualAddress)
		if start+uint64(size) > uint64(len(img)) {
			return true
		}
		dir := img[start : start+uint64(size)]
		for len(dir) >= entrySize {
			if p := binary.LittleEndian.Uint32(dir[24:]); p != 0 && p >= off {
				return true
			}
			dir = dir[entrySize:]
		}
		return false
	}
	return true
}

// DataEnd is where the data of the last section in the file ends (SizeOfHeaders when there is
// no section data).
func (l *Layout) DataEnd() uint32 {
	end := l.SizeOfHeaders
	for _, s := range l.Sections {
		if s.SizeOfRawData != 0 && s.PointerToRaw+s.SizeOfRawData > end {
			end = s.PointerToRaw + s.SizeOfRawData
		}
	}
	return end
}

// VirtualEnd is where the last section ends in memory.
func (l *Layout) VirtualEnd() uint32 {
	end := uint32(0)
	for _, s := range l.Sections {
		size := s.VirtualSize
		if size == 0 {
			size = s.SizeOfRawData
		}
		end = max(end, s.VirtualAddress+size)
	}
	return end
}

// Checksum is the PE image checksum of img (the optional header's CheckSum field, which the
// sum skips): the 16-bit one's-complement-style sum of the file with carries folded in, plus
// the file's length, as the PE/COFF specification's CheckSumMappedFile computes it.
func Checksum(img []byte, checksumOff int) uint32 {
	var sum uint64
	n := len(img) &^ 1
	for i := 0; i < n; i += 2 {
		if i == checksumOff || i == checksumOff+2 {
			continue
		}
		sum += uint64(binary.LittleEndian.Uint16(img[i:]))
		sum = (sum & 0xffff) + (sum >> 16)
	}
	if len(img)%2 == 1 {
		sum += uint64(img[len(img)-1])
	}
	sum = (sum & 0xffff) + (sum >> 16)
	sum = (sum + (sum >> 16)) & 0xffff
	return uint32(sum) + uint32(len(img))
}

// SetChecksum writes img's checksum into its header.
func SetChecksum(img []byte, l *Layout) {
	binary.LittleEndian.PutUint32(img[l.ChecksumOff:], Checksum(img, l.ChecksumOff))
}

// NewSection is a section to append: its data is loaded read-only (initialized data).
type NewSection struct {
	Name string // at most 8 bytes
	Data []byte
}

// Section characteristics of the appended sections: initialized data, readable.
const newSectionFlags = pe.IMAGE_SCN_CNT_INITIALIZED_DATA | pe.IMAGE_SCN_MEM_READ

func alignUp(v, a uint32) uint32 { return (v + a - 1) &^ (a - 1) }

// AppendSections returns a copy of the unsigned image img with sections appended in the given
// order: each at the next SectionAlignment boundary after the image's sections in memory, its
// data at the next FileAlignment boundary in the file, zero-padded. NumberOfSections,
// SizeOfImage, SizeOfInitializedData and the checksum are updated; the existing headers,
// sections and their data are left as they are.
//
// The headers must have room for the new section headers below SizeOfHeaders and the first
// section's data (ErrNoRoom otherwise: growing them would move every section in the file).
// img must have no certificate table (signing comes after). What follows its last section's
// data is dropped unless a debug directory entry points there: a COFF symbol table with its
// string table (the PE/COFF specification deprecates it in images, "should be zero"; Debian's
// x86-64 systemd stub has one), or an ELF symbol table the ELF-to-PE conversion left behind
// (Debian's arm64 stub has 5 KiB of it, which nothing in the headers points at). No loader
// reads such data, and left after the sections it is data no section covers, which sbverify
// warns about ("gaps between PE/COFF sections?").
func AppendSections(img []byte, secs []NewSection) ([]byte, error) {
	l, err := Parse(img)
	if err != nil {
		return nil, err
	}
	if l.Signed() {
		return nil, errors.New("appending sections: the image is signed (remove its signature first)")
	}
	dataEnd := l.DataEnd()
	tail := img[min(int(dataEnd), len(img)):]
	if st := l.SymbolTable; st != 0 && st >= dataEnd && int(st) < len(img) {
		tail = img[dataEnd:st]
	}
	if len(bytes.Trim(tail, "\x00")) != 0 && l.DebugData(img, dataEnd) {
		// Only what the headers do not point at may go: a debug directory's data outside the
		// sections would be cut off from its entry.
		return nil, fmt.Errorf("appending sections: %d bytes after the last section's data hold a debug directory's data: not supported", len(tail))
	}
	tableEnd := l.SectionTableOff + SectionHeaderSize*(l.NumSections+len(secs))
	limit := int(l.SizeOfHeaders)
	for _, s := range l.Sections {
		if s.SizeOfRawData != 0 {
			limit = min(limit, int(s.PointerToRaw))
		}
	}
	if tableEnd > limit {
		free := (limit - (l.SectionTableOff + SectionHeaderSize*l.NumSections)) / SectionHeaderSize
		return nil, fmt.Errorf("appending %d sections: %w: the headers end at %#x and hold %d more, not %d",
			len(secs), ErrNoRoom, limit, max(free, 0), len(secs))
	}

	fileOff := alignUp(dataEnd, l.FileAlignment)
	va := alignUp(max(l.VirtualEnd(), l.SizeOfImage), l.SectionAlignment)
	size := uint64(fileOff)
	for _, s := range secs {
		size += uint64(alignUp(uint32(len(s.Data)), l.FileAlignment))
	}
	if size > 1<<32-1 {
		return nil, fmt.Errorf("appending sections: the image would be %d bytes, over 4 GiB", size)
	}
	out := make([]byte, fileOff, size)
	copy(out, img[:dataEnd])
	le := binary.LittleEndian
	var initData uint32
	for i, s := range secs {
		if len(s.Name) > 8 || s.Name == "" {
			return nil, fmt.Errorf("appending sections: section name %q is not 1 to 8 bytes", s.Name)
		}
		if len(s.Data) == 0 {
			return nil, fmt.Errorf("appending section %s: empty", s.Name)
		}
		raw := alignUp(uint32(len(s.Data)), l.FileAlignment)
		h := out[l.SectionTableOff+SectionHeaderSize*(l.NumSections+i):][:SectionHeaderSize]
		clear(h)
		copy(h, s.Name)
		le.PutUint32(h[8:], uint32(len(s.Data)))
		le.PutUint32(h[12:], va)
		le.PutUint32(h[16:], raw)
		le.PutUint32(h[20:], uint32(len(out)))
		le.PutUint32(h[36:], newSectionFlags)
		out = append(out, s.Data...)
		out = append(out, make([]byte, int(raw)-len(s.Data))...)
		initData += raw
		va = alignUp(va+uint32(len(s.Data)), l.SectionAlignment)
	}
	clear(out[l.SymbolTableOff:][:8]) // PointerToSymbolTable, NumberOfSymbols
	le.PutUint16(out[l.NumSectionsOff:], uint16(l.NumSections+len(secs)))
	le.PutUint32(out[l.SizeOfImageOff:], va)
	le.PutUint32(out[l.SizeOfInitOff:], le.Uint32(out[l.SizeOfInitOff:])+initData)
	SetChecksum(out, l)
	return out, nil
}

// RenameSection renames, in img itself, the first section header named from to to (the
// section's data is untouched) and updates the checksum; an error when there is no such
// section.
func RenameSection(img []byte, from, to string) error {
	l, err := Parse(img)
	if err != nil {
		return err
	}
	if len(to) > 8 {
		return fmt.Errorf("renaming section %s: %q is longer than 8 bytes", from, to)
	}
	for i, s := range l.Sections {
		if s.Name == from {
			h := img[l.SectionTableOff+SectionHeaderSize*i:][:8]
			clear(h)
			copy(h, to)
			SetChecksum(img, l)
			return nil
		}
	}
	return fmt.Errorf("renaming section %s: no such section", from)
}

// StripCertificates returns img without its certificate table (its signatures), as it was
// before signing: the table must be at the end of the file. An image without one is returned
// as is.
func StripCertificates(img []byte) ([]byte, error) {
	l, err := Parse(img)
	if err != nil {
		return nil, err
	}
	if !l.Signed() {
		return img, nil
	}
	if int(l.CertTableOff)+int(l.CertTableSize) != len(img) {
		return nil, fmt.Errorf("removing signatures: the certificate table (%#x bytes at %#x) is not at the end of the file", l.CertTableSize, l.CertTableOff)
	}
	out := bytes.Clone(img[:l.CertTableOff])
	clear(out[l.CertDirOff():][:8])
	SetChecksum(out, l)
	return out, nil
}
