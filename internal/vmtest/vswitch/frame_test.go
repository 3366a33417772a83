package vswitch

import (
	"bytes"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// linuxLACPDU is a LACPDU as Linux 6.1's bonding sends it (802.3ad, lacp_rate fast, in sync,
// collecting and distributing), written out field by field from IEEE 802.1AX's layout.
var linuxLACPDU = strings.Join([]string{
	"0180c2000002", "525400123456", "8809", // slow protocols, from the NIC
	"01", "01", // LACP version 1
	"01", "14", "ffff", "525400123456", "0009", "00ff", "0001", "3f", "000000", // actor
	"02", "14", "8000", "025e00000000", "0001", "8000", "0001", "3f", "000000", // partner
	"03", "10", "0000", strings.Repeat("00", 12), // collector
	"00", "00", strings.Repeat("00", 50), // terminator, reserved
}, "")

func TestParseLinuxLACPDU(t *testing.T) {
	b, err := hex.DecodeString(linuxLACPDU)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParseFrame(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.EtherType != EtherTypeSlow || !bytes.Equal(f.Dst, SlowProtocolsMAC) || f.Tagged {
		t.Fatalf("frame %+v", f)
	}
	got, err := ParseLACPDU(f.Payload)
	if err != nil {
		t.Fatal(err)
	}
	all := StateActivity | StateTimeout | StateAggregation | StateSync | StateCollecting | StateDistributing
	want := LACPDU{
		Actor: Info{SystemPriority: 0xffff, System: net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}, Key: 9,
			PortPriority: 255, Port: 1, State: all},
		Partner: Info{SystemPriority: 0x8000, System: net.HardwareAddr{2, 0x5e, 0, 0, 0, 0}, Key: 1,
			PortPriority: 0x8000, Port: 1, State: all},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parsed (-want +got):\n%s", diff)
	}
	if re := LACPFrame(f.Src, got); !bytes.Equal(re, b) {
		t.Errorf("re-encoded:\n%x\nwant\n%x", re, b)
	}
	if got := all.String(); got != "ACT|TMO|AGG|SYN|COL|DIS" {
		t.Errorf("state %q", got)
	}
}

func TestParseLACPDUErrors(t *testing.T) {
	good := LACPDU{Actor: Info{System: make(net.HardwareAddr, 6)}, Partner: Info{System: make(net.HardwareAddr, 6)}}.Marshal()
	for name, mod := range map[string]func([]byte) []byte{
		"marker subtype": func(b []byte) []byte { b[0] = 2; return b },
		"version 0":      func(b []byte) []byte { b[1] = 0; return b },
		"short":          func(b []byte) []byte { return b[:50] },
		"actor length":   func(b []byte) []byte { b[3] = 19; return b },
		"partner type":   func(b []byte) []byte { b[22] = 1; return b },
		"collector type": func(b []byte) []byte { b[42] = 4; return b },
		"no terminator":  func(b []byte) []byte { b[58] = 1; return b },
	} {
		if _, err := ParseLACPDU(mod(append([]byte(nil), good...))); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseLACPDU(good); err != nil {
		t.Errorf("good: %v", err)
	}
}

func TestFrameTagging(t *testing.T) {
	f := Frame{Dst: macA, Src: macB, Tagged: true, VID: 42, PCP: 5, EtherType: EtherTypeIPv6, Payload: []byte("x")}
	b := f.Marshal()
	if want := "5254000000" + "0a" + "5254000000" + "0b" + "8100" + "a02a" + "86dd" + "78"; hex.EncodeToString(b) != want {
		t.Errorf("tagged frame %x, want %s", b, want)
	}
	got, err := ParseFrame(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(f, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if _, err := ParseFrame(b[:15]); err == nil {
		t.Error("a tag cut short parsed")
	}
}

// FuzzParse feeds frames to the parsers: they must not panic, and what they accept must
// re-encode to itself.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.hex")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil {
			f.Fatalf("%s: %v", s, err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := ParseFrame(b)
		if err != nil {
			return
		}
		again, err := ParseFrame(fr.Marshal())
		if err != nil {
			t.Fatalf("re-encoded frame does not parse: %v", err)
		}
		if !cmp.Equal(fr, again) {
			t.Fatalf("frame round trip: %+v != %+v", fr, again)
		}
		if p, err := ParseLACPDU(fr.Payload); err == nil {
			q, err := ParseLACPDU(p.Marshal())
			if err != nil || !cmp.Equal(p, q) {
				t.Fatalf("LACPDU round trip: %+v != %+v (%v)", p, q, err)
			}
		}
	})
}
