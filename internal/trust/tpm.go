package trust

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
	"github.com/ramboot/ramboot/internal/atomicfile"
)

// PCR is the PCR /init extends. PCR 12 is where systemd-stub measures what varies per boot on
// top of signed binaries (the kernel command line, credentials, configuration images) and, in
// the TCG PC Client profile, one of the PCRs 8-15 left to the operating system. Stock kernels
// and firmware do not extend it on a plain (non-UKI) boot, while the kernel's EFI stub and GRUB
// extend PCR 9 with the initrd, ramboot's own initramfs: keeping what ramboot fetched in PCR 12
// lets a policy bind the initramfs (9) and the booted system (12) separately. The event log
// records PCR 12's value before ramboot's first event, so a value left by systemd-stub (ramboot
// booted as a UKI) does not get in the way of the recomputation.
const PCR = 12

// EventLogPath is where the booted system finds the event log (/run is moved into the new root).
const EventLogPath = "/run/ramboot/tpm-events.json"

// Event is one measurement: what was extended into the PCR.
type Event struct {
	Type   string `json:"type"`   // menu, image, kernel, initrd, cmdline
	Name   string `json:"name"`   // its URL, or the command line itself
	SHA256 string `json:"sha256"` // the digest extended
	Time   string `json:"time,omitempty"`
}

// EventLog is the record of one boot's measurements: replaying Events from Initial gives the
// PCR's value.
type EventLog struct {
	PCR       int     `json:"pcr"`
	Algorithm string  `json:"algorithm"` // sha256
	Initial   string  `json:"initial"`   // the PCR's value before the first event
	Events    []Event `json:"events"`
	Expected  string  `json:"expected"` // Replay's result, for convenience
}

// Replay recomputes the PCR: for each event, PCR = sha256(PCR || digest).
func (l *EventLog) Replay() (string, error) {
	v, err := hex.DecodeString(l.Initial)
	if err != nil || len(v) != sha256.Size {
		return "", fmt.Errorf("bad initial value %q", l.Initial)
	}
	for _, e := range l.Events {
		d, err := hex.DecodeString(e.SHA256)
		if err != nil || len(d) != sha256.Size {
			return "", fmt.Errorf("event %s %s: bad digest %q", e.Type, e.Name, e.SHA256)
		}
		h := sha256.New()
		h.Write(v)
		h.Write(d)
		v = h.Sum(nil)
	}
	return hex.EncodeToString(v), nil
}

// bank is a TPM's SHA-256 PCR bank (the device; a fake in tests).
type bank interface {
	Read(pcr int) ([]byte, error)
	Extend(pcr int, digest []byte) error
	Close() error
}

// Measurer extends the PCR with each thing /init boots and keeps the event log. Without a
// TPM it does nothing. A TPM that fails is logged and, unless Required, does not stop a boot.
type Measurer struct {
	mu   sync.Mutex
	dev  bank
	path string
	log  EventLog
	logf func(string, ...any)
	// Required makes a failing (or absent) TPM fail the boot (ramboot.tpm=required).
	Required bool
}

// ErrTPM marks a measurement that failed.
var ErrTPM = errors.New("tpm")

// TPMDevices are tried in order: the kernel's resource manager first (it lets other users of
// the TPM, in the booted system, share it safely).
var TPMDevices = []string{"/dev/tpmrm0", "/dev/tpm0"}

// OpenTPM opens the first TPM device present. None: one log line, and a Measurer that measures
// nothing.
func OpenTPM(logf func(string, ...any)) *Measurer {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	for _, d := range TPMDevices {
		if _, err := os.Stat(d); err != nil {
			continue
		}
		t, err := linuxtpm.Open(d)
		if err != nil {
			logf("tpm: %s: %v: the boot is not measured", d, err)
			return &Measurer{logf: logf}
		}
		m := newMeasurer(&tpmBank{t: t}, EventLogPath, logf)
		logf("tpm: %s: measuring the boot into PCR %d, event log %s", d, PCR, EventLogPath)
		return m
	}
	logf("tpm: none found (%s): the boot is not measured", TPMDevices[0])
	return &Measurer{logf: logf}
}

func newMeasurer(dev bank, path string, logf func(string, ...any)) *Measurer {
	return &Measurer{dev: dev, path: path, logf: logf, log: EventLog{PCR: PCR, Algorithm: "sha256"}}
}

// Present reports whether there is a TPM to measure into.
func (m *Measurer) Present() bool { return m != nil && m.dev != nil }

// Measure extends the PCR with sum (hex sha256) of a thing of type typ named name, and appends
// the event to the log on disk. Without a TPM it returns nil, or an ErrTPM error when Required;
// a TPM failure is logged and returned only when Required.
func (m *Measurer) Measure(typ, name, sum string) error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dev == nil {
		if m.Required {
			return fmt.Errorf("%w: no TPM, and ramboot.tpm=required", ErrTPM)
		}
		return nil
	}
	err := m.measure(typ, name, sum)
	if err != nil {
		m.logf("tpm: measuring %s %s: %v", typ, name, err)
		if m.Required {
			return fmt.Errorf("%w: measuring %s %s: %w", ErrTPM, typ, name, err)
		}
	}
	return nil
}

func (m *Measurer) measure(typ, name, sum string) error {
	d, err := hex.DecodeString(sum)
	if err != nil || len(d) != sha256.Size {
		return fmt.Errorf("bad sha256 %q", sum)
	}
	if m.log.Initial == "" {
		v, err := m.dev.Read(PCR)
		if err != nil {
			return fmt.Errorf("reading PCR %d: %w", PCR, err)
		}
		m.log.Initial = hex.EncodeToString(v)
	}
	if err := m.dev.Extend(PCR, d); err != nil {
		return fmt.Errorf("extending PCR %d: %w", PCR, err)
	}
	m.log.Events = append(m.log.Events, Event{Type: typ, Name: name, SHA256: sum, Time: time.Now().UTC().Format(time.RFC3339)})
	m.log.Expected, _ = m.log.Replay()
	m.logf("tpm: PCR %d extended with %s %s (sha256 %s…)", PCR, typ, name, sum[:16])
	return m.write()
}

// write replaces the event log file (a rename: a reader never sees half of it).
func (m *Measurer) write() error {
	if m.path == "" {
		return nil
	}
	b, err := json.MarshalIndent(&m.log, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(m.path, append(b, '\n'), 0o644)
}

// MeasureData measures data itself (a menu, a command line).
func (m *Measurer) MeasureData(typ, name string, data []byte) error {
	s := sha256.Sum256(data)
	return m.Measure(typ, name, hex.EncodeToString(s[:]))
}

// Log returns a copy of the event log so far.
func (m *Measurer) Log() EventLog {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.log
	l.Events = append([]Event(nil), m.log.Events...)
	return l
}

// tpmBank is a TPM 2.0 device through go-tpm.
type tpmBank struct{ t transport.TPMCloser }

func (b *tpmBank) Read(pcr int) ([]byte, error) {
	rsp, err := tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{
		{Hash: tpm2.TPMAlgSHA256, PCRSelect: tpm2.PCClientCompatible.PCRs(uint(pcr))},
	}}}.Execute(b.t)
	if err != nil {
		return nil, err
	}
	if len(rsp.PCRValues.Digests) != 1 {
		return nil, fmt.Errorf("the TPM returned %d values for PCR %d (no SHA-256 bank?)", len(rsp.PCRValues.Digests), pcr)
	}
	return bytes.Clone(rsp.PCRValues.Digests[0].Buffer), nil
}

func (b *tpmBank) Extend(pcr int, digest []byte) error {
	_, err := tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		Digests:   tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{HashAlg: tpm2.TPMAlgSHA256, Digest: digest}}},
	}.Execute(b.t)
	return err
}

func (b *tpmBank) Close() error { return b.t.Close() }
