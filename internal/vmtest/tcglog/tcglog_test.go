package tcglog

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// logBuilder writes a crypto-agile event log the way firmware does.
type logBuilder struct {
	buf  bytes.Buffer
	algs []AlgSize
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func le16(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }

// newLog starts a log with the Spec ID event declaring algs.
func newLog(algs ...AlgSize) *logBuilder {
	l := &logBuilder{algs: algs}
	var spec bytes.Buffer
	spec.WriteString(specIDSignature)
	spec.Write(le32(0))            // platformClass: client
	spec.Write([]byte{0, 2, 0, 2}) // version 2.0, errata 0, uintnSize 2 (64-bit UINTN)
	spec.Write(le32(uint32(len(algs))))
	for _, a := range algs {
		spec.Write(le16(uint16(a.Alg)))
		spec.Write(le16(uint16(a.Size)))
	}
	spec.WriteByte(0) // vendorInfoSize
	l.buf.Write(le32(0))
	l.buf.Write(le32(uint32(EvNoAction)))
	l.buf.Write(make([]byte, sha1.Size))
	l.buf.Write(le32(uint32(spec.Len())))
	l.buf.Write(spec.Bytes())
	return l
}

// event appends a TCG_PCR_EVENT2 measuring measured (hashed in each of the log's banks)
// and logging data.
func (l *logBuilder) event(pcr uint32, typ EventType, measured, data []byte) *logBuilder {
	var ds []Digest
	for _, a := range l.algs {
		sum := make([]byte, a.Size)
		if h := a.Alg.newHash(); h != nil {
			h.Write(measured)
			sum = h.Sum(nil)
		}
		ds = append(ds, Digest{a.Alg, sum})
	}
	return l.raw(pcr, typ, ds, data)
}

func (l *logBuilder) raw(pcr uint32, typ EventType, ds []Digest, data []byte) *logBuilder {
	l.buf.Write(le32(pcr))
	l.buf.Write(le32(uint32(typ)))
	l.buf.Write(le32(uint32(len(ds))))
	for _, d := range ds {
		l.buf.Write(le16(uint16(d.Alg)))
		l.buf.Write(d.Sum)
	}
	l.buf.Write(le32(uint32(len(data))))
	l.buf.Write(data)
	return l
}

func (l *logBuilder) bytes() []byte { return bytes.Clone(l.buf.Bytes()) }

// utf16z is a NUL-terminated UTF-16LE string, as systemd-stub logs its descriptions.
func utf16z(s string) []byte {
	var b []byte
	for _, c := range utf16.Encode([]rune(s + "\x00")) {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return b
}

var bothBanks = []AlgSize{{SHA1, sha1.Size}, {SHA256, sha256.Size}}

// stubLog is a log as OVMF and systemd-stub leave it: firmware events, then each UKI section's
// name and data in PCR 11, then a command line in PCR 12.
func stubLog() []byte {
	l := newLog(bothBanks...)
	l.event(0, EvNoAction, nil, append([]byte("StartupLocality\x00"), 3))
	l.event(0, 0x80000008, []byte("firmware volume"), []byte("fv"))
	l.event(4, EvEFIBootApp, []byte("the UKI"), []byte{1, 2, 3})
	for _, pcr := range []uint32{0, 1, 2, 3, 4, 5, 6, 7} {
		l.event(pcr, EvSeparator, []byte{0, 0, 0, 0}, []byte{0, 0, 0, 0})
	}
	for _, s := range stubSections {
		l.event(11, EvIPL, []byte(s[0]+"\x00"), utf16z(s[0]))
		l.event(11, EvIPL, []byte(s[1]), utf16z(s[0]))
	}
	l.event(11, EvNoAction, []byte("ignored"), []byte("not extended"))
	l.event(12, EvIPL, []byte("console=ttyS0"), utf16z("console=ttyS0"))
	return l.bytes()
}

var stubSections = [][2]string{
	{".linux", "kernel"}, {".osrel", "ID=debian\n"}, {".cmdline", "console=ttyS0"},
	{".initrd", "initramfs"}, {".uname", "6.1.0"}, {".sbat", "sbat,1\n"},
}

// extend is the PCR extension written out once more, independently of Replay.
func extend(alg string, values ...[]byte) string {
	switch alg {
	case "sha1":
		v := make([]byte, sha1.Size)
		for _, m := range values {
			d := sha1.Sum(m)
			s := sha1.Sum(append(v, d[:]...))
			v = s[:]
		}
		return hex.EncodeToString(v)
	default:
		v := make([]byte, sha256.Size)
		for _, m := range values {
			d := sha256.Sum256(m)
			s := sha256.Sum256(append(v, d[:]...))
			v = s[:]
		}
		return hex.EncodeToString(v)
	}
}

func TestParse(t *testing.T) {
	l, err := Parse(stubLog())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(bothBanks, l.Algs); diff != "" {
		t.Errorf("algorithms (-want +got):\n%s", diff)
	}
	if got, want := len(l.Events), 3+8+2*len(stubSections)+2; got != want {
		t.Fatalf("got %d events, want %d", got, want)
	}
	var got []string
	for _, e := range l.Events {
		if e.PCR == 11 && e.Type == EvIPL {
			got = append(got, e.Description())
		}
	}
	want := []string{".linux", ".linux", ".osrel", ".osrel", ".cmdline", ".cmdline", ".initrd", ".initrd", ".uname", ".uname", ".sbat", ".sbat"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PCR 11 descriptions (-want +got):\n%s", diff)
	}
	last := l.Events[len(l.Events)-1]
	d, ok := last.Digest(SHA256)
	if want := sha256.Sum256([]byte("console=ttyS0")); !ok || !bytes.Equal(d, want[:]) {
		t.Errorf("last event's sha256 digest is %x, want %x", d, want)
	}
	if _, ok := last.Digest(SHA384); ok {
		t.Errorf("last event has a sha384 digest")
	}
}

func TestReplay(t *testing.T) {
	l, err := Parse(stubLog())
	if err != nil {
		t.Fatal(err)
	}
	var pcr11 [][]byte
	for _, s := range stubSections {
		pcr11 = append(pcr11, []byte(s[0]+"\x00"), []byte(s[1]))
	}
	locality3 := func(alg string, size int, m ...[]byte) string {
		// PCR 0 starts at 0...03: extend it by hand.
		v := make([]byte, size)
		v[size-1] = 3
		for _, x := range m {
			if alg == "sha1" {
				d := sha1.Sum(x)
				s := sha1.Sum(append(v, d[:]...))
				v = s[:]
			} else {
				d := sha256.Sum256(x)
				s := sha256.Sum256(append(v, d[:]...))
				v = s[:]
			}
		}
		return hex.EncodeToString(v)
	}
	for _, tc := range []struct {
		pcr   uint32
		alg   Alg
		want  string
		wantN int
	}{
		{11, SHA256, extend("sha256", pcr11...), 12},
		{11, SHA1, extend("sha1", pcr11...), 12},
		{12, SHA256, extend("sha256", []byte("console=ttyS0")), 1},
		{4, SHA256, extend("sha256", []byte("the UKI"), []byte{0, 0, 0, 0}), 2},
		{0, SHA256, locality3("sha256", 32, []byte("firmware volume"), []byte{0, 0, 0, 0}), 2},
		{0, SHA1, locality3("sha1", 20, []byte("firmware volume"), []byte{0, 0, 0, 0}), 2},
		{13, SHA256, strings.Repeat("00", 32), 0},
	} {
		v, n, err := l.Replay(tc.pcr, tc.alg)
		if err != nil {
			t.Errorf("Replay(%d, %s): %v", tc.pcr, tc.alg, err)
			continue
		}
		if got := hex.EncodeToString(v); got != tc.want || n != tc.wantN {
			t.Errorf("Replay(%d, %s) = %s from %d events, want %s from %d", tc.pcr, tc.alg, got, n, tc.want, tc.wantN)
		}
	}
	if _, _, err := l.Replay(11, SHA384); err == nil {
		t.Errorf("Replay of a bank the log does not have: no error")
	}
	if _, _, err := l.Replay(11, Alg(0x99)); err == nil {
		t.Errorf("Replay of an unknown algorithm: no error")
	}
}

func TestParseErrors(t *testing.T) {
	sha256Only := []AlgSize{{SHA256, sha256.Size}}
	tpm12 := new(bytes.Buffer) // a SHA-1 log: its first event is a measurement
	tpm12.Write(le32(0))
	tpm12.Write(le32(8))
	tpm12.Write(make([]byte, 20))
	tpm12.Write(le32(0))
	// An event whose eventSize, its last field, says 4 GiB.
	hugeEvent := newLog(sha256Only...).event(11, EvIPL, nil, nil).bytes()
	copy(hugeEvent[len(hugeEvent)-4:], le32(0xffffffff))
	for _, tc := range []struct {
		name string
		log  []byte
		want error
	}{
		{"empty", nil, ErrNotCryptoAgile},
		{"TPM 1.2 log", tpm12.Bytes(), ErrNotCryptoAgile},
		{"no algorithms", newLog().bytes(), ErrMalformed},
		{"sha256 of 20 bytes", newLog(AlgSize{SHA256, 20}).bytes(), ErrMalformed},
		{"sha256 twice", newLog(AlgSize{SHA256, 32}, AlgSize{SHA256, 32}).bytes(), ErrMalformed},
		{"undeclared bank", newLog(sha256Only...).raw(11, EvIPL, []Digest{{SHA1, make([]byte, 20)}}, nil).bytes(), ErrMalformed},
		{"more digests than banks", newLog(sha256Only...).raw(11, EvIPL, []Digest{{SHA256, make([]byte, 32)}, {SHA256, make([]byte, 32)}}, nil).bytes(), ErrMalformed},
		{"a bank twice", newLog(bothBanks...).raw(11, EvIPL, []Digest{{SHA256, make([]byte, 32)}, {SHA256, make([]byte, 32)}}, nil).bytes(), ErrMalformed},
		{"event size past the end", hugeEvent, ErrMalformed},
	} {
		_, err := Parse(tc.log)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestParseTruncated: a log cut anywhere either fails or, cut between two events, holds the
// events before the cut.
func TestParseTruncated(t *testing.T) {
	b := stubLog()
	full, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	ok := 0
	for i := range len(b) {
		l, err := Parse(b[:i])
		if err != nil {
			continue
		}
		ok++
		if diff := cmp.Diff(full.Events[:len(l.Events)], l.Events, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("cut at %d: events differ (-want +got):\n%s", i, diff)
		}
	}
	if want := len(full.Events); ok != want { // one cut per event boundary, the empty log included
		t.Errorf("%d cuts parsed, want %d (one per event boundary)", ok, want)
	}
}

func TestDescription(t *testing.T) {
	tagged := func(s string) []byte {
		return append(append(le32(0x8F3B22EC), le32(uint32(len(s)))...), s...)
	}
	for _, tc := range []struct {
		typ  EventType
		data []byte
		want string
	}{
		{EvEventTag, tagged("Linux initrd\x00"), "Linux initrd"},
		{EvEventTag, tagged("Linux initrd\x00")[:10], ""},
		{EvIPL, tagged("Linux initrd\x00"), ""},
		{EvIPL, utf16z("console=ttyS0 ramroot=x"), "console=ttyS0 ramroot=x"},
		{0x80000007, []byte("Calling EFI Application from Boot Option"), "Calling EFI Application from Boot Option"},
		{EvIPL, []byte("abc\x00"), "abc"},
		{EvSeparator, []byte{0, 0, 0, 0}, ""},
		{EvIPL, []byte{0x80, 0x01, 0x02}, ""},
		{EvIPL, nil, ""},
	} {
		e := Event{Type: tc.typ, Data: tc.data}
		if got := e.Description(); got != tc.want {
			t.Errorf("Description(%x) = %q, want %q", tc.data, got, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(stubLog())
	f.Add(newLog(AlgSize{SHA256, 32}, AlgSize{Alg(0x12), 32}).event(11, EvIPL, nil, []byte(".linux")).bytes())
	seeds, _ := filepath.Glob("testdata/*.bin")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := Parse(b)
		if err != nil {
			return
		}
		for i := range l.Events {
			e := &l.Events[i]
			_ = e.Description()
			for _, d := range e.Digests {
				want := -1
				for _, a := range l.Algs {
					if a.Alg == d.Alg {
						want = a.Size
					}
				}
				if len(d.Sum) != want {
					t.Fatalf("event %d: %s digest of %d bytes, the table says %d", i, d.Alg, len(d.Sum), want)
				}
			}
		}
		for _, pcr := range []uint32{0, 11, 12} {
			if v, _, err := l.Replay(pcr, SHA256); err == nil && len(v) != sha256.Size {
				t.Fatalf("PCR %d replayed to %d bytes", pcr, len(v))
			}
		}
	})
}

// TestOVMFLog replays testdata/ovmf-swtpm-uki.bin, the log of OVMF (Debian 12) with swtpm
// HTTP-booting a ramboot UKI on systemd-stub 252.39 and Linux 6.1, and compares it with the
// PCRs the booted kernel read from the TPM in that boot.
func TestOVMFLog(t *testing.T) {
	b, err := os.ReadFile("testdata/ovmf-swtpm-uki.bin")
	if err != nil {
		t.Fatal(err)
	}
	l, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	var algs []string
	for _, a := range l.Algs {
		algs = append(algs, a.Alg.String())
	}
	if got, want := strings.Join(algs, ","), "sha1,sha256,sha384,sha512"; got != want {
		t.Errorf("banks %s, want %s", got, want)
	}
	tpm := map[uint32]string{
		0:  "eaa650ae9b6b9c6d0ef4fab4dda3af9769f23c839ca3c98307a7a84831cbb472",
		1:  "41e15d645ba629d852d1027bdedc41371d7484f16a9283121e883280bbdeda92",
		2:  "3d458cfe55cc03ea1f443f1562beec8df51c75e14a9fcf9a7234a13f198e7969",
		3:  "3d458cfe55cc03ea1f443f1562beec8df51c75e14a9fcf9a7234a13f198e7969",
		4:  "52b7e36f489168ce292aad5de1d0173b85b9ad8c41409045dc3d4845975a709f",
		5:  "a5ceb755d043f32431d63e39f5161464620a3437280494b5850dc1b47cc074e0",
		6:  "3d458cfe55cc03ea1f443f1562beec8df51c75e14a9fcf9a7234a13f198e7969",
		7:  "65caf8dd1e0ea7a6347b635d2b379c93b9a1351edc2afc3ecda700e534eb3068",
		9:  "fca13817d4869b3e5ec76c035733d49fd8e4d8c4789e3f79a0df4de2e4fe8e83",
		11: "5ee2856d104fb791f9ce82badba3f16f8574710d57afa78202e0453e74909d88",
	}
	for pcr, want := range tpm {
		v, _, err := l.Replay(pcr, SHA256)
		if err != nil {
			t.Errorf("PCR %d: %v", pcr, err)
		} else if got := hex.EncodeToString(v); got != want {
			t.Errorf("PCR %d replays to %s, the TPM read %s", pcr, got, want)
		}
	}
	var got []string
	for _, e := range l.Events {
		if e.PCR == 9 || e.PCR == 11 {
			got = append(got, e.Description())
		}
	}
	want := []string{".linux", ".linux", ".osrel", ".osrel", ".cmdline", ".cmdline", ".initrd", ".initrd", "LOADED_IMAGE::LoadOptions", "Linux initrd"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PCR 9 and 11 descriptions (-want +got):\n%s", diff)
	}
}
