package peimage

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ramboot/ramboot/internal/peimage/peimagetest"
	"github.com/ramboot/ramboot/internal/vmtest"
)

const stubPath = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"

// TestChecksumStub: the checksum of systemd's stub is the one its linker wrote.
func TestChecksumStub(t *testing.T) {
	img, err := os.ReadFile(stubPath)
	if err != nil {
		vmtest.Missing(t, stubPath+" (systemd-boot-efi)")
	}
	l, err := Parse(img)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := Checksum(img, l.ChecksumOff), binary.LittleEndian.Uint32(img[l.ChecksumOff:]); got != want {
		t.Errorf("Checksum = %#x, the stub says %#x", got, want)
	}
}

func TestChecksumOdd(t *testing.T) {
	// 0x0201 + 0x0003 + the length 5, the checksum field (offset 2) skipped.
	if got := Checksum([]byte{1, 2, 0xff, 0xff, 3}, 2); got != 0x0204+5 {
		t.Errorf("Checksum = %#x, want %#x", got, 0x0204+5)
	}
}

func TestAppendSections(t *testing.T) {
	for _, align := range []uint32{0x200, 0x1000} {
		img := peimagetest.New(peimagetest.Options{SectionAlignment: align})
		add := []NewSection{
			{".osrel", []byte("ID=test\n")},
			{".cmdline", []byte("console=ttyS0")},
			{".linux", bytes.Repeat([]byte{0xaa}, 3000)},
		}
		out, err := AppendSections(img, add)
		if err != nil {
			t.Fatal(err)
		}
		f, err := pe.NewFile(bytes.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		old, _ := pe.NewFile(bytes.NewReader(img))
		if got, want := len(f.Sections), len(old.Sections)+len(add); got != want {
			t.Fatalf("%d sections, want %d", got, want)
		}
		oh := f.OptionalHeader.(*pe.OptionalHeader64)
		prevEnd := uint32(0)
		for i, s := range f.Sections {
			if i < len(old.Sections) {
				o := old.Sections[i]
				if s.SectionHeader != o.SectionHeader {
					t.Errorf("section %s header changed: %+v, was %+v", s.Name, s.SectionHeader, o.SectionHeader)
				}
			} else {
				a := add[i-len(old.Sections)]
				if s.Name != a.Name || s.VirtualSize != uint32(len(a.Data)) {
					t.Errorf("section %d: %s, %d bytes, want %s, %d", i, s.Name, s.VirtualSize, a.Name, len(a.Data))
				}
				data, _ := s.Data()
				if !bytes.Equal(data[:s.VirtualSize], a.Data) {
					t.Errorf("section %s: data differs", s.Name)
				}
			}
			if s.VirtualAddress%align != 0 || s.Offset%oh.FileAlignment != 0 || s.Size%oh.FileAlignment != 0 {
				t.Errorf("section %s: address %#x, offset %#x, raw size %#x not aligned", s.Name, s.VirtualAddress, s.Offset, s.Size)
			}
			if s.VirtualAddress < prevEnd {
				t.Errorf("section %s at %#x overlaps the one before (ends at %#x)", s.Name, s.VirtualAddress, prevEnd)
			}
			prevEnd = s.VirtualAddress + s.VirtualSize
		}
		last := f.Sections[len(f.Sections)-1]
		if want := (last.VirtualAddress + last.VirtualSize + align - 1) &^ (align - 1); oh.SizeOfImage != want {
			t.Errorf("SizeOfImage %#x, want %#x", oh.SizeOfImage, want)
		}
		if uint32(len(out)) != last.Offset+last.Size {
			t.Errorf("file is %d bytes, the last section ends at %d", len(out), last.Offset+last.Size)
		}
		if !bytes.Equal(out[oh.SizeOfHeaders:len(img)], img[oh.SizeOfHeaders:]) {
			t.Error("the image's section data changed")
		}
		l, _ := Parse(out)
		if got := Checksum(out, l.ChecksumOff); got != oh.CheckSum {
			t.Errorf("checksum %#x, want %#x", oh.CheckSum, got)
		}
	}
}

func TestAppendSectionsNoRoom(t *testing.T) {
	// 0x200 bytes of headers: 0x40 + 24 + 240 = 0x148 before the table, room for 4 headers.
	img := peimagetest.New(peimagetest.Options{SizeOfHeaders: 0x200})
	_, err := AppendSections(img, []NewSection{{"a", []byte{1}}, {"b", []byte{1}}})
	if !errors.Is(err, ErrNoRoom) {
		t.Errorf("got %v, want ErrNoRoom", err)
	}
	if _, err := AppendSections(img, []NewSection{{"a", []byte{1}}}); err != nil {
		t.Errorf("one section: %v", err)
	}
}

func TestRenameSection(t *testing.T) {
	img := peimagetest.New(peimagetest.Options{})
	if err := RenameSection(img, ".sbat", ".sbatstb"); err != nil {
		t.Fatal(err)
	}
	l, err := Parse(img)
	if err != nil {
		t.Fatal(err)
	}
	if l.Sections[1].Name != ".sbatstb" {
		t.Errorf("section 1 is %q", l.Sections[1].Name)
	}
	if err := RenameSection(img, ".sbat", "x"); err == nil {
		t.Error("renamed a section that is not there")
	}
}

// FuzzParse: Parse of any bytes returns an error or a layout whose offsets lie in the file.
func FuzzParse(f *testing.F) {
	f.Add(peimagetest.New(peimagetest.Options{}))
	if b, err := os.ReadFile(stubPath); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := Parse(b)
		if err != nil {
			return
		}
		if l.ChecksumOff+4 > len(b) || l.SectionTableOff > len(b) || int(l.DataEnd()) > len(b) {
			t.Fatalf("layout out of the file: %+v", l)
		}
		_ = Checksum(b, l.ChecksumOff)
	})
}

func TestStripCertificates(t *testing.T) {
	img := peimagetest.New(peimagetest.Options{})
	l, _ := Parse(img)
	signed := append(bytes.Clone(img), "8 bytes.a fake certificate table"...)
	binary.LittleEndian.PutUint32(signed[l.CertDirOff():], uint32(len(img)))
	binary.LittleEndian.PutUint32(signed[l.CertDirOff()+4:], uint32(len(signed)-len(img)))
	got, err := StripCertificates(signed)
	if err != nil {
		t.Fatal(err)
	}
	SetChecksum(img, l)
	if !bytes.Equal(got, img) {
		t.Error("stripping the table did not give back the unsigned image")
	}
}

// TestAppendSectionsSymbolTable: a COFF symbol table after the sections is dropped.
func TestAppendSectionsSymbolTable(t *testing.T) {
	img := peimagetest.New(peimagetest.Options{})
	l, _ := Parse(img)
	// One symbol (18 bytes: name, value, section 1, type, class 3, no aux), then an empty
	// string table (its length, 4).
	syms := []byte("dummy\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x03\x00\x04\x00\x00\x00")
	binary.LittleEndian.PutUint32(img[l.SymbolTableOff:], uint32(len(img)))
	binary.LittleEndian.PutUint32(img[l.SymbolTableOff+4:], 1)
	img = append(img, syms...)
	out, err := AppendSections(img, []NewSection{{".linux", []byte("kernel")}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := pe.NewFile(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if f.PointerToSymbolTable != 0 || f.NumberOfSymbols != 0 {
		t.Errorf("PointerToSymbolTable %#x, NumberOfSymbols %d: want none", f.PointerToSymbolTable, f.NumberOfSymbols)
	}
	last := f.Sections[len(f.Sections)-1]
	if len(out) != int(last.Offset+last.Size) {
		t.Errorf("the file is %d bytes, the last section ends at %d", len(out), last.Offset+last.Size)
	}
}

// TestAppendSectionsTail: data after the sections that nothing in the headers points at (the
// ELF symbols Debian's arm64 stub carries there) is dropped; data a debug directory entry
// points at is kept by refusing.
func TestAppendSectionsTail(t *testing.T) {
	img := append(peimagetest.New(peimagetest.Options{}), bytes.Repeat([]byte("elfsym\x03\x00"), 600)...)
	out, err := AppendSections(img, []NewSection{{".linux", []byte("kernel")}})
	if err != nil {
		t.Fatalf("an unreferenced tail: %v", err)
	}
	if bytes.Contains(out, []byte("elfsym")) {
		t.Error("the unreferenced tail is still in the image")
	}
	// A debug directory (data directory 6) in .data whose one entry points past the sections.
	l, _ := Parse(img)
	var data Section
	for _, s := range l.Sections {
		if s.Name == ".data" {
			data = s
		}
	}
	entry := make([]byte, 28)
	binary.LittleEndian.PutUint32(entry[20:], 8)                // AddressOfRawData
	binary.LittleEndian.PutUint32(entry[24:], l.DataEnd()+0x10) // PointerToRawData: in the tail
	copy(img[data.PointerToRaw:], entry)
	binary.LittleEndian.PutUint32(img[l.DirsOff+8*6:], data.VirtualAddress)
	binary.LittleEndian.PutUint32(img[l.DirsOff+8*6+4:], 28)
	if _, err := AppendSections(img, []NewSection{{".linux", []byte("kernel")}}); err == nil || !strings.Contains(err.Error(), "debug directory") {
		t.Errorf("a tail a debug directory points at: %v, want refused", err)
	}
}
