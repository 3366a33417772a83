package efi

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf16"
)

// node encodes one device path node.
func node(typ, sub uint8, data []byte) []byte {
	b := []byte{typ, sub, 0, 0}
	binary.LittleEndian.PutUint16(b[2:], uint16(4+len(data)))
	return append(b, data...)
}

// loadOption encodes an EFI_LOAD_OPTION with the description and device path given.
func loadOption(desc string, path []byte) []byte {
	b := make([]byte, 6)
	binary.LittleEndian.PutUint32(b, 1) // LOAD_OPTION_ACTIVE
	binary.LittleEndian.PutUint16(b[4:], uint16(len(path)))
	for _, c := range utf16.Encode([]rune(desc)) {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	b = append(b, 0, 0)
	return append(b, path...)
}

// httpBootPath is a device path as OVMF writes for HTTP boot of its second NIC:
// PciRoot(0x0)/Pci(0x3,0x0)/MAC(525400123457,0x1)/IPv4(0.0.0.0)/Uri().
func httpBootPath(uri string) []byte {
	mac := make([]byte, 33)
	copy(mac, []byte{0x52, 0x54, 0x00, 0x12, 0x34, 0x57})
	mac[32] = 1
	var p []byte
	p = append(p, node(0x02, 0x01, []byte{0xd0, 0x41, 0x03, 0x0a, 0, 0, 0, 0})...)
	p = append(p, node(0x01, 0x01, []byte{0x00, 0x03})...)
	p = append(p, node(typeMessaging, subMAC, mac)...)
	p = append(p, node(typeMessaging, subIPv4, make([]byte, 23))...)
	p = append(p, node(typeMessaging, subURI, []byte(uri))...)
	return append(p, node(typeEnd, 0xff, nil)...)
}

func TestParseLoadOption(t *testing.T) {
	o, err := ParseLoadOption(loadOption("UEFI HTTPv4 (MAC:525400123457)", httpBootPath("")))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := o.MAC().String(), "52:54:00:12:34:57"; got != want {
		t.Errorf("MAC = %s, want %s", got, want)
	}
	if o.Description != "UEFI HTTPv4 (MAC:525400123457)" || o.URI() != "" || !o.Network() {
		t.Errorf("option %+v: URI %q network %v", o, o.URI(), o.Network())
	}
	if got, want := o.String(), "PciRoot(0x0)/Pci(0x3,0x0)/MAC(525400123457,0x1)/IPv4(...)/Uri()"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	o, err = ParseLoadOption(loadOption("x", httpBootPath("http://10.0.2.2/ramboot.efi")))
	if err != nil || o.URI() != "http://10.0.2.2/ramboot.efi" {
		t.Errorf("URI = %q, %v", o.URI(), err)
	}
	// A disk entry: no MAC, not network.
	disk := append(node(0x04, 0x01, make([]byte, 38)), node(typeEnd, 0xff, nil)...)
	if o, err := ParseLoadOption(loadOption("debian", disk)); err != nil || o.MAC() != nil || o.Network() {
		t.Errorf("disk entry: %v, MAC %v, network %v", err, o.MAC(), o.Network())
	}
}

func TestParseLoadOptionBad(t *testing.T) {
	good := loadOption("x", httpBootPath(""))
	for name, b := range map[string][]byte{
		"short":          good[:4],
		"no NUL":         good[:9],
		"path too long":  append(append([]byte{}, good[:4]...), append([]byte{0xff, 0xff}, good[6:]...)...),
		"node of zero":   loadOption("x", []byte{3, 11, 0, 0}),
		"node past end":  loadOption("x", []byte{3, 11, 200, 0, 1, 2}),
		"no end node":    loadOption("x", node(typeMessaging, subURI, nil)),
		"header cut off": loadOption("x", []byte{3, 11}),
	} {
		if _, err := ParseLoadOption(b); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v, want ErrFormat", name, err)
		}
	}
}

// TestCurrent reads BootCurrent and its entry from an efivarfs-like directory.
func TestCurrent(t *testing.T) {
	dir := t.TempDir()
	attrs := []byte{7, 0, 0, 0}
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name+"-"+GlobalVariable), append(append([]byte{}, attrs...), data...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := Current(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("no variables: %v, want ErrNotExist", err)
	}
	write("BootCurrent", []byte{0x0a, 0x00})
	if _, _, err := Current(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("no Boot000A: %v, want ErrNotExist", err)
	}
	write("Boot000A", loadOption("UEFI HTTPv4", httpBootPath("")))
	num, o, err := Current(dir)
	if err != nil || num != 10 || o.MAC().String() != "52:54:00:12:34:57" {
		t.Errorf("Current = %d %v %v", num, o.MAC(), err)
	}
	write("BootCurrent", []byte{1})
	if _, _, err := Current(dir); !errors.Is(err, ErrFormat) {
		t.Errorf("BootCurrent of 1 byte: %v", err)
	}
}

func FuzzParseLoadOption(f *testing.F) {
	f.Add(loadOption("UEFI HTTPv4", httpBootPath("")))
	f.Add(loadOption("x", httpBootPath("http://[::1]/a.efi")))
	f.Add([]byte{1, 0, 0, 0, 4, 0, 0, 0, 0x7f, 0xff, 4, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := ParseLoadOption(b)
		if err != nil {
			return
		}
		_ = o.String()
		if m := o.MAC(); len(m) > 32 {
			t.Fatalf("MAC of %d bytes", len(m))
		}
		_ = o.URI()
	})
}
