package vswitch

// LACPDUs are encoded and decoded here by hand: no well-kept Go library implements LACP
// (the few that exist are unmaintained fragments of larger programs), and the format is small
// and fixed. The layout follows IEEE 802.1AX-2008 clause 5.4.2 (802.3ad's Annex 43B before it):
// slow protocols EtherType 0x8809, subtype 1, version 1, then actor (TLV 1, 20 bytes), partner
// (TLV 2, 20 bytes), collector (TLV 3, 16 bytes) and terminator (TLV 0) information, and 50
// reserved bytes: 110 bytes after the EtherType.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
)

// State is an LACP port state octet (actor or partner state).
type State uint8

// The bits of State, from the least significant.
const (
	StateActivity     State = 1 << iota // LACP_Activity: active (sends LACPDUs unasked)
	StateTimeout                        // LACP_Timeout: short (wants a LACPDU every second)
	StateAggregation                    // Aggregation: the link can be aggregated
	StateSync                           // Synchronization: attached to the right aggregator
	StateCollecting                     // Collecting: takes frames in
	StateDistributing                   // Distributing: sends frames out
	StateDefaulted                      // Defaulted: no partner information received
	StateExpired                        // Expired: the partner's information timed out
)

var stateNames = []string{"ACT", "TMO", "AGG", "SYN", "COL", "DIS", "DEF", "EXP"}

// String lists the set bits: "ACT|AGG|SYN|COL|DIS".
func (s State) String() string {
	var set []string
	for i, n := range stateNames {
		if s&(1<<i) != 0 {
			set = append(set, n)
		}
	}
	if len(set) == 0 {
		return "-"
	}
	return strings.Join(set, "|")
}

// Info is one side's information in an LACPDU (actor or partner): who it is (system), which
// aggregation group (key), which port, and its state.
type Info struct {
	SystemPriority uint16
	System         net.HardwareAddr
	Key            uint16
	PortPriority   uint16
	Port           uint16
	State          State
}

// sameParty says whether a and b name the same system, key and port (their states aside).
func (a Info) sameParty(b Info) bool {
	return a.SystemPriority == b.SystemPriority && macEqual(a.System, b.System) && a.Key == b.Key &&
		a.PortPriority == b.PortPriority && a.Port == b.Port
}

// LACPDU is a Link Aggregation Control PDU.
type LACPDU struct {
	Actor, Partner    Info
	CollectorMaxDelay uint16
}

// LACPDU sizes: the PDU after the EtherType, and its TLVs.
const (
	lacpduLen     = 110
	infoTLVLen    = 20
	collectorLen  = 16
	lacpVersion   = 1
	tlvActor      = 1
	tlvPartner    = 2
	tlvCollector  = 3
	tlvTerminator = 0
)

// Errors of ParseLACPDU.
var (
	ErrNotLACP = errors.New("vswitch: not an LACPDU")
	ErrBadLACP = errors.New("vswitch: malformed LACPDU")
)

// ParseLACPDU decodes the payload of a slow protocols frame (after the EtherType). Versions
// above 1 are accepted as 802.1AX requires (their extra TLVs come after the ones read here).
func ParseLACPDU(b []byte) (LACPDU, error) {
	if len(b) < 2 || b[0] != slowSubtypeLACP {
		return LACPDU{}, ErrNotLACP
	}
	if b[1] < lacpVersion {
		return LACPDU{}, fmt.Errorf("%w: version %d", ErrBadLACP, b[1])
	}
	if len(b) < 2+2*infoTLVLen+collectorLen+2 {
		return LACPDU{}, fmt.Errorf("%w: %d bytes", ErrBadLACP, len(b))
	}
	var p LACPDU
	off := 2
	for _, tlv := range []struct {
		typ uint8
		dst *Info
	}{{tlvActor, &p.Actor}, {tlvPartner, &p.Partner}} {
		if b[off] != tlv.typ || b[off+1] != infoTLVLen {
			return LACPDU{}, fmt.Errorf("%w: TLV %d length %d at %d, want TLV %d length %d", ErrBadLACP, b[off], b[off+1], off, tlv.typ, infoTLVLen)
		}
		*tlv.dst = parseInfo(b[off+2 : off+infoTLVLen])
		off += infoTLVLen
	}
	if b[off] != tlvCollector || b[off+1] != collectorLen {
		return LACPDU{}, fmt.Errorf("%w: TLV %d length %d at %d, want the collector TLV", ErrBadLACP, b[off], b[off+1], off)
	}
	p.CollectorMaxDelay = binary.BigEndian.Uint16(b[off+2:])
	off += collectorLen
	if b[off] != tlvTerminator || b[off+1] != 0 {
		return LACPDU{}, fmt.Errorf("%w: no terminator at %d", ErrBadLACP, off)
	}
	return p, nil
}

func parseInfo(b []byte) Info {
	return Info{
		SystemPriority: binary.BigEndian.Uint16(b[0:]),
		System:         net.HardwareAddr(append([]byte(nil), b[2:8]...)),
		Key:            binary.BigEndian.Uint16(b[8:]),
		PortPriority:   binary.BigEndian.Uint16(b[10:]),
		Port:           binary.BigEndian.Uint16(b[12:]),
		State:          State(b[14]),
	}
}

// Marshal encodes p as the payload of a slow protocols frame (110 bytes, version 1).
func (p LACPDU) Marshal() []byte {
	b := make([]byte, lacpduLen)
	b[0], b[1] = slowSubtypeLACP, lacpVersion
	off := 2
	for _, tlv := range []struct {
		typ uint8
		in  Info
	}{{tlvActor, p.Actor}, {tlvPartner, p.Partner}} {
		b[off], b[off+1] = tlv.typ, infoTLVLen
		i := b[off+2:]
		binary.BigEndian.PutUint16(i[0:], tlv.in.SystemPriority)
		copy(i[2:8], tlv.in.System)
		binary.BigEndian.PutUint16(i[8:], tlv.in.Key)
		binary.BigEndian.PutUint16(i[10:], tlv.in.PortPriority)
		binary.BigEndian.PutUint16(i[12:], tlv.in.Port)
		i[14] = byte(tlv.in.State)
		off += infoTLVLen
	}
	b[off], b[off+1] = tlvCollector, collectorLen
	binary.BigEndian.PutUint16(b[off+2:], p.CollectorMaxDelay)
	// The terminator TLV (0, 0) and the reserved bytes are already zero.
	return b
}

// LACPFrame is the Ethernet frame that carries p from src.
func LACPFrame(src net.HardwareAddr, p LACPDU) []byte {
	return Frame{Dst: SlowProtocolsMAC, Src: src, EtherType: EtherTypeSlow, Payload: p.Marshal()}.Marshal()
}

func macEqual(a, b net.HardwareAddr) bool { return string(a) == string(b) }
