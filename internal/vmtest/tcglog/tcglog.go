// Package tcglog reads the firmware's TPM 2.0 event log in the crypto-agile format of the TCG
// PC Client Platform Firmware Profile (what Linux exposes at
// /sys/kernel/security/tpm0/binary_bios_measurements) and replays it into PCR values.
//
// It is test tooling: the VM tests' init recomputes the PCRs the firmware and systemd-stub
// extended and compares them with the TPM's. /init does not link it.
package tcglog

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"strings"
	"unicode/utf16"
)

// Alg is a TPM_ALG_ID, the hash algorithm of a PCR bank.
type Alg uint16

// The hash algorithms of the TPM 2.0 Library specification's algorithm registry that Replay
// knows.
const (
	SHA1   Alg = 0x0004
	SHA256 Alg = 0x000b
	SHA384 Alg = 0x000c
	SHA512 Alg = 0x000d
)

func (a Alg) String() string {
	switch a {
	case SHA1:
		return "sha1"
	case SHA256:
		return "sha256"
	case SHA384:
		return "sha384"
	case SHA512:
		return "sha512"
	}
	return fmt.Sprintf("alg%#04x", uint16(a))
}

// newHash returns the algorithm's hash, or nil for one Replay does not know.
func (a Alg) newHash() hash.Hash {
	switch a {
	case SHA1:
		return sha1.New()
	case SHA256:
		return sha256.New()
	case SHA384:
		return sha512.New384()
	case SHA512:
		return sha512.New()
	}
	return nil
}

// EventType is an event's type (the profile's EV_* values).
type EventType uint32

// Event types this package treats specially or that a report names.
const (
	EvNoAction   EventType = 0x03 // logged, never extended
	EvSeparator  EventType = 0x04
	EvEventTag   EventType = 0x06
	EvIPL        EventType = 0x0d // what a boot loader measures (systemd-stub's sections)
	EvEFIBootApp EventType = 0x80000003
)

// Digest is one bank's digest of an event.
type Digest struct {
	Alg Alg
	Sum []byte
}

// Event is one TCG_PCR_EVENT2 record.
type Event struct {
	PCR     uint32
	Type    EventType
	Digests []Digest
	Data    []byte
}

// Digest returns the event's digest in bank a.
func (e *Event) Digest(a Alg) ([]byte, bool) {
	for _, d := range e.Digests {
		if d.Alg == a {
			return d.Sum, true
		}
	}
	return nil, false
}

// Description is the event's data as text when it is text: UTF-16LE (what systemd-stub v252
// logs, e.g. ".linux") or ASCII, without the terminating NUL; for an EV_EVENT_TAG event, the
// tagged data as text (Linux's EFI stub tags "Linux initrd"). Otherwise "".
func (e *Event) Description() string {
	if e.Type == EvEventTag && len(e.Data) >= 8 {
		// TCG_PCClientTaggedEvent: taggedEventID, taggedEventDataSize, taggedEventData.
		if n := binary.LittleEndian.Uint32(e.Data[4:]); uint64(n) == uint64(len(e.Data)-8) {
			return text(e.Data[8:])
		}
	}
	return text(e.Data)
}

func text(b []byte) string {
	if len(b) >= 2 && len(b)%2 == 0 {
		u := make([]uint16, 0, len(b)/2)
		ascii := true
		for i := 0; i < len(b); i += 2 {
			c := binary.LittleEndian.Uint16(b[i:])
			ascii = ascii && c < 0x80
			u = append(u, c)
		}
		u = trimNUL16(u)
		if ascii && printable16(u) {
			return string(utf16.Decode(u))
		}
	}
	s := strings.TrimRight(string(b), "\x00")
	if s == "" {
		return ""
	}
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			return ""
		}
	}
	return s
}

func trimNUL16(u []uint16) []uint16 {
	for len(u) > 0 && u[len(u)-1] == 0 {
		u = u[:len(u)-1]
	}
	return u
}

func printable16(u []uint16) bool {
	if len(u) == 0 {
		return false
	}
	for _, c := range u {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// AlgSize is one row of the Spec ID event's algorithm table: a bank and its digest size.
type AlgSize struct {
	Alg  Alg
	Size int
}

// Log is a parsed event log: the banks the Spec ID event declares, and the events after it.
type Log struct {
	Algs   []AlgSize
	Events []Event
}

// ErrNotCryptoAgile is returned for a log that does not start with a "Spec ID Event03" event:
// a TPM 1.2 (SHA-1 only) log, or not an event log.
var ErrNotCryptoAgile = errors.New("not a crypto-agile TCG event log (no Spec ID Event03)")

// ErrMalformed marks a log that breaks the format: truncated records, a digest of a bank the
// Spec ID event did not declare, a digest size that contradicts the algorithm.
var ErrMalformed = errors.New("malformed TCG event log")

const specIDSignature = "Spec ID Event03\x00"

// reader reads little-endian fields and remembers the first short read.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) take(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)-r.off) {
		r.err = fmt.Errorf("%w: %d bytes at offset %d, %d left", ErrMalformed, n, r.off, len(r.b)-r.off)
		return nil
	}
	p := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return p
}

func (r *reader) u8() uint8 {
	if p := r.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if p := r.take(2); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if p := r.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

// Parse reads a crypto-agile event log: a first event in the SHA-1 format
// (TCG_PCClientPCREvent) carrying the TCG_EfiSpecIDEvent, then TCG_PCR_EVENT2 records whose
// digest sizes the Spec ID event's algorithm table gives. b is outside input: every length in
// it is checked against what is left.
func Parse(b []byte) (*Log, error) {
	r := &reader{b: b}
	// TCG_PCClientPCREvent: pcrIndex, eventType, digest[20], eventDataSize, event.
	r.u32()
	typ := EventType(r.u32())
	r.take(sha1.Size)
	data := r.take(uint64(r.u32()))
	if r.err != nil || typ != EvNoAction || !bytes.HasPrefix(data, []byte(specIDSignature)) {
		return nil, ErrNotCryptoAgile
	}
	algs, err := parseSpecID(data)
	if err != nil {
		return nil, err
	}
	l := &Log{Algs: algs}
	for n := 0; r.off < len(b); n++ {
		e, err := parseEvent(r, algs)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", n+1, err)
		}
		l.Events = append(l.Events, e)
	}
	return l, nil
}

// parseSpecID reads the TCG_EfiSpecIDEvent's algorithm table.
func parseSpecID(data []byte) ([]AlgSize, error) {
	r := &reader{b: data}
	r.take(uint64(len(specIDSignature)))
	r.u32() // platformClass
	r.u8()  // specVersionMinor
	r.u8()  // specVersionMajor
	r.u8()  // specErrata
	r.u8()  // uintnSize
	n := r.u32()
	if r.err == nil && uint64(n)*4 > uint64(len(data)-r.off) {
		return nil, fmt.Errorf("%w: Spec ID event: %d algorithms in %d bytes", ErrMalformed, n, len(data)-r.off)
	}
	var algs []AlgSize
	for i := uint32(0); i < n && r.err == nil; i++ {
		a, size := Alg(r.u16()), int(r.u16())
		if r.err != nil {
			break
		}
		if h := a.newHash(); h != nil && h.Size() != size {
			return nil, fmt.Errorf("%w: Spec ID event: %s with %d-byte digests", ErrMalformed, a, size)
		}
		for _, b := range algs {
			if b.Alg == a {
				return nil, fmt.Errorf("%w: Spec ID event: %s twice", ErrMalformed, a)
			}
		}
		algs = append(algs, AlgSize{a, size})
	}
	r.take(uint64(r.u8())) // vendorInfo
	if r.err != nil {
		return nil, fmt.Errorf("reading the Spec ID event: %w", r.err)
	}
	if len(algs) == 0 {
		return nil, fmt.Errorf("%w: Spec ID event: no algorithms", ErrMalformed)
	}
	return algs, nil
}

// parseEvent reads one TCG_PCR_EVENT2: pcrIndex, eventType, TPML_DIGEST_VALUES (count, then
// count of hashAlg and digest), eventSize, event.
func parseEvent(r *reader, algs []AlgSize) (Event, error) {
	e := Event{PCR: r.u32(), Type: EventType(r.u32())}
	count := r.u32()
	if r.err == nil && count > uint32(len(algs)) {
		return e, fmt.Errorf("%w: %d digests, the Spec ID event declares %d banks", ErrMalformed, count, len(algs))
	}
	for i := uint32(0); i < count && r.err == nil; i++ {
		a := Alg(r.u16())
		if r.err != nil {
			break
		}
		size := -1
		for _, s := range algs {
			if s.Alg == a {
				size = s.Size
			}
		}
		if size < 0 {
			return e, fmt.Errorf("%w: a digest of %s, a bank the Spec ID event does not declare", ErrMalformed, a)
		}
		if _, dup := e.Digest(a); dup {
			return e, fmt.Errorf("%w: two %s digests", ErrMalformed, a)
		}
		e.Digests = append(e.Digests, Digest{a, r.take(uint64(size))})
	}
	e.Data = r.take(uint64(r.u32()))
	return e, r.err
}

// Replay recomputes PCR pcr of bank a from the log: starting from zeros, PCR = H(PCR || digest)
// for each event of that PCR but EV_NO_ACTION, which is logged and not extended. PCR 0 starts
// from the locality a StartupLocality event records, as the profile says. It returns the value
// and the number of events extended.
func (l *Log) Replay(pcr uint32, a Alg) ([]byte, int, error) {
	h := a.newHash()
	if h == nil {
		return nil, 0, fmt.Errorf("replaying PCR %d: cannot hash %s", pcr, a)
	}
	v := make([]byte, h.Size())
	n := 0
	for i := range l.Events {
		e := &l.Events[i]
		if e.PCR != pcr {
			continue
		}
		if e.Type == EvNoAction {
			if loc, ok := startupLocality(e); ok && pcr == 0 && n == 0 {
				v[len(v)-1] = loc
			}
			continue
		}
		d, ok := e.Digest(a)
		if !ok {
			return nil, n, fmt.Errorf("replaying PCR %d: event %d has no %s digest", pcr, i+1, a)
		}
		h.Reset()
		h.Write(v)
		h.Write(d)
		v = h.Sum(v[:0])
		n++
	}
	return v, n, nil
}

// startupLocality reads the locality from a StartupLocality EV_NO_ACTION event.
func startupLocality(e *Event) (byte, bool) {
	const sig = "StartupLocality\x00"
	if len(e.Data) == len(sig)+1 && string(e.Data[:len(sig)]) == sig {
		return e.Data[len(sig)], true
	}
	return 0, false
}
