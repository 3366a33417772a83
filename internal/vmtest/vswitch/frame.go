package vswitch

import (
	"encoding/binary"
	"errors"
	"net"
)

// Ethernet constants the switch needs.
const (
	EtherTypeVLAN   = 0x8100 // IEEE 802.1Q customer tag
	EtherTypeSlow   = 0x8809 // IEEE 802.3 slow protocols (LACP, marker)
	EtherTypeIPv4   = 0x0800
	EtherTypeIPv6   = 0x86dd
	EtherTypeARP    = 0x0806
	minFrame        = 14
	maxVID          = 4094
	slowSubtypeLACP = 1
)

// SlowProtocolsMAC is the destination of LACPDUs (IEEE 802.3 Annex 57A), one of the
// link-local group addresses 01:80:c2:00:00:0X that a bridge never forwards.
var SlowProtocolsMAC = net.HardwareAddr{0x01, 0x80, 0xc2, 0x00, 0x00, 0x02}

// ErrShortFrame is a frame too short for its headers.
var ErrShortFrame = errors.New("vswitch: frame too short")

// Frame is an Ethernet frame taken apart: its addresses, its 802.1Q tag if it has one, and
// the EtherType and payload after the tag.
type Frame struct {
	Dst, Src  net.HardwareAddr
	Tagged    bool   // an 802.1Q tag was present (VID 0 included: a priority tag)
	VID       int    // the tag's VLAN id (0: untagged or priority-tagged)
	PCP       uint8  // the tag's priority
	EtherType uint16 // after the tag
	Payload   []byte
}

// ParseFrame takes an Ethernet frame apart (one 802.1Q tag at most is looked at: a second
// one stays in the payload, as a switch that does not do Q-in-Q would treat it). The
// addresses and payload alias b.
func ParseFrame(b []byte) (Frame, error) {
	if len(b) < minFrame {
		return Frame{}, ErrShortFrame
	}
	f := Frame{Dst: net.HardwareAddr(b[0:6]), Src: net.HardwareAddr(b[6:12])}
	et := binary.BigEndian.Uint16(b[12:14])
	rest := b[14:]
	if et == EtherTypeVLAN {
		if len(rest) < 4 {
			return Frame{}, ErrShortFrame
		}
		tci := binary.BigEndian.Uint16(rest[0:2])
		f.Tagged = true
		f.PCP = uint8(tci >> 13)
		f.VID = int(tci & 0x0fff)
		et = binary.BigEndian.Uint16(rest[2:4])
		rest = rest[4:]
	}
	f.EtherType = et
	f.Payload = rest
	return f, nil
}

// Marshal builds the frame: with an 802.1Q tag when Tagged (VID and PCP), without otherwise.
func (f Frame) Marshal() []byte {
	n := 14 + len(f.Payload)
	if f.Tagged {
		n += 4
	}
	b := make([]byte, 0, n)
	b = append(b, f.Dst[:6]...)
	b = append(b, f.Src[:6]...)
	if f.Tagged {
		b = binary.BigEndian.AppendUint16(b, EtherTypeVLAN)
		b = binary.BigEndian.AppendUint16(b, uint16(f.PCP&7)<<13|uint16(f.VID&0x0fff))
	}
	b = binary.BigEndian.AppendUint16(b, f.EtherType)
	return append(b, f.Payload...)
}

// isLinkLocal says whether a is one of IEEE 802.1D's reserved group addresses
// 01:80:c2:00:00:00-0f, which a bridge consumes or drops but never forwards.
func isLinkLocal(a net.HardwareAddr) bool {
	return len(a) == 6 && a[0] == 0x01 && a[1] == 0x80 && a[2] == 0xc2 && a[3] == 0 && a[4] == 0 && a[5]&0xf0 == 0
}

// isGroup says whether a is a multicast or broadcast address.
func isGroup(a net.HardwareAddr) bool { return len(a) == 6 && a[0]&1 == 1 }
