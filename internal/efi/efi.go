// Package efi reads what the UEFI firmware tells the booted kernel through efivarfs: which boot
// entry it booted (BootCurrent), and that entry's load option, whose device path names the NIC
// (its MAC address node) and, for HTTP boot, the URL (its URI node).
//
// The parsing is written here, from the UEFI specification (section 3.1.3, "Load Options", and
// chapter 10, "Device Path Protocol"), rather than taken from u-root's pkg/uefivars/boot: that
// package links archive/zip, the testing package and u-root's block-device code into whatever
// imports it, and /init is PID 1 in a size-bounded initramfs. Only the three node types /init
// needs are interpreted; every other node is kept raw.
package efi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf16"
)

// GlobalVariable is the vendor GUID of the variables the UEFI specification defines
// (BootCurrent, Boot####, BootOrder).
const GlobalVariable = "8be4df61-93ca-11d2-aa0d-00e098032b8c"

// Dir is where the kernel exposes the firmware's variables.
const Dir = "/sys/firmware/efi/efivars"

// ErrFormat marks a variable or load option that does not parse.
var ErrFormat = errors.New("malformed EFI variable")

// Device path node types and the messaging subtypes read here (UEFI 2.10, 10.3).
const (
	typeHardware  = 0x01
	typeACPI      = 0x02
	typeMessaging = 0x03
	typeEnd       = 0x7f
	subMAC        = 11
	subIPv4       = 12
	subIPv6       = 13
	subURI        = 24
	// pciRootHID is the ACPI node's _HID of a PCI root bridge, EISA "PNP0A03".
	pciRootHID = 0x0a0341d0
)

// Node is one node of a device path.
type Node struct {
	Type, SubType uint8
	Data          []byte // the node without its 4-byte header
}

// LoadOption is an EFI_LOAD_OPTION: a boot entry.
type LoadOption struct {
	Attributes  uint32
	Description string
	// Path is the first device path of the option's FilePathList (the device it boots from).
	Path []Node
}

// ParseLoadOption parses a Boot#### variable's data (without efivarfs's 4-byte attributes).
func ParseLoadOption(b []byte) (LoadOption, error) {
	var o LoadOption
	if len(b) < 6 {
		return o, fmt.Errorf("%w: load option of %d bytes", ErrFormat, len(b))
	}
	o.Attributes = binary.LittleEndian.Uint32(b)
	pathLen := int(binary.LittleEndian.Uint16(b[4:]))
	rest := b[6:]
	// The description is NUL-terminated UCS-2.
	var desc []uint16
	for {
		if len(rest) < 2 {
			return o, fmt.Errorf("%w: load option description has no end", ErrFormat)
		}
		c := binary.LittleEndian.Uint16(rest)
		rest = rest[2:]
		if c == 0 {
			break
		}
		desc = append(desc, c)
	}
	o.Description = string(utf16.Decode(desc))
	if pathLen > len(rest) {
		return o, fmt.Errorf("%w: load option's device path is %d bytes, %d left", ErrFormat, pathLen, len(rest))
	}
	p, err := ParseDevicePath(rest[:pathLen])
	if err != nil {
		return o, err
	}
	o.Path = p
	return o, nil
}

// ParseDevicePath parses a device path up to its first end node (an end-of-instance or
// end-of-path node both end the first instance).
func ParseDevicePath(b []byte) ([]Node, error) {
	var nodes []Node
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: device path node header of %d bytes", ErrFormat, len(b))
		}
		n := int(binary.LittleEndian.Uint16(b[2:]))
		if n < 4 || n > len(b) {
			return nil, fmt.Errorf("%w: device path node of length %d, %d bytes left", ErrFormat, n, len(b))
		}
		node := Node{Type: b[0], SubType: b[1], Data: b[4:n]}
		if node.Type == typeEnd {
			return nodes, nil
		}
		nodes = append(nodes, node)
		b = b[n:]
	}
	return nil, fmt.Errorf("%w: device path has no end node", ErrFormat)
}

// MAC is the hardware address of the option's MAC address node: the NIC the firmware booted
// from for a network boot; nil when the path has none.
func (o LoadOption) MAC() net.HardwareAddr {
	for _, n := range o.Path {
		if n.Type != typeMessaging || n.SubType != subMAC || len(n.Data) < 33 {
			continue
		}
		// 32 bytes of address, zero-padded, then the interface type (RFC 3232's ifType:
		// 1 is Ethernet, whose address is 6 bytes).
		size := 6
		if n.Data[32] != 1 {
			size = 32
			for size > 0 && n.Data[size-1] == 0 {
				size--
			}
		}
		if size == 0 {
			return nil
		}
		return net.HardwareAddr(append([]byte(nil), n.Data[:size]...))
	}
	return nil
}

// URI is the option's URI node (HTTP boot): "" when it has none or the node is empty, as
// OVMF's HTTP boot entries have it.
func (o LoadOption) URI() string {
	for _, n := range o.Path {
		if n.Type == typeMessaging && n.SubType == subURI {
			return string(n.Data)
		}
	}
	return ""
}

// Network reports whether the option boots from the network (its path has an IPv4 or IPv6
// node, as PXE and HTTP boot entries do).
func (o LoadOption) Network() bool {
	for _, n := range o.Path {
		if n.Type == typeMessaging && (n.SubType == subIPv4 || n.SubType == subIPv6) {
			return true
		}
	}
	return false
}

// String is the path in the firmware's own notation for the nodes read here
// ("MAC(525400123457,0x1)/IPv4(...)/Uri()"), others as their type and subtype.
func (o LoadOption) String() string {
	var parts []string
	for _, n := range o.Path {
		switch {
		case n.Type == typeACPI && n.SubType == 1 && len(n.Data) >= 8 && binary.LittleEndian.Uint32(n.Data) == pciRootHID:
			parts = append(parts, fmt.Sprintf("PciRoot(0x%x)", binary.LittleEndian.Uint32(n.Data[4:])))
		case n.Type == typeHardware && n.SubType == 1 && len(n.Data) >= 2:
			parts = append(parts, fmt.Sprintf("Pci(0x%x,0x%x)", n.Data[1], n.Data[0]))
		case n.Type == typeMessaging && n.SubType == subMAC && len(n.Data) >= 33:
			parts = append(parts, fmt.Sprintf("MAC(%x,0x%x)", []byte(o.MAC()), n.Data[32]))
		case n.Type == typeMessaging && n.SubType == subIPv4:
			parts = append(parts, "IPv4(...)")
		case n.Type == typeMessaging && n.SubType == subIPv6:
			parts = append(parts, "IPv6(...)")
		case n.Type == typeMessaging && n.SubType == subURI:
			parts = append(parts, "Uri("+string(n.Data)+")")
		default:
			parts = append(parts, fmt.Sprintf("Node(%d,%d)", n.Type, n.SubType))
		}
	}
	return strings.Join(parts, "/")
}

// readVar reads a variable's data from efivarfs at dir, without its 4-byte attributes.
func readVar(dir, name string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, name+"-"+GlobalVariable))
	if err != nil {
		return nil, err
	}
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: %s has %d bytes", ErrFormat, name, len(b))
	}
	return b[4:], nil
}

// Current reads BootCurrent and its Boot#### load option from efivarfs at dir (Dir in /init).
// It returns the option's number too, for the log. An error wrapping os.ErrNotExist means there
// is no such variable (not booted by UEFI, or efivarfs not mounted).
func Current(dir string) (uint16, LoadOption, error) {
	b, err := readVar(dir, "BootCurrent")
	if err != nil {
		return 0, LoadOption{}, fmt.Errorf("reading BootCurrent: %w", err)
	}
	if len(b) != 2 {
		return 0, LoadOption{}, fmt.Errorf("reading BootCurrent: %w: %d bytes", ErrFormat, len(b))
	}
	num := binary.LittleEndian.Uint16(b)
	name := fmt.Sprintf("Boot%04X", num)
	if b, err = readVar(dir, name); err != nil {
		return num, LoadOption{}, fmt.Errorf("reading %s: %w", name, err)
	}
	o, err := ParseLoadOption(b)
	if err != nil {
		return num, o, fmt.Errorf("reading %s: %w", name, err)
	}
	return num, o, nil
}
