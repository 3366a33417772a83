package trust

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2/transport/linuxudstpm"

	"github.com/ramboot/ramboot/internal/vmtest"
)

// fakeBank is a PCR bank in memory.
type fakeBank struct {
	pcrs map[int][]byte
	fail error
}

func (b *fakeBank) Read(pcr int) ([]byte, error) {
	if b.fail != nil {
		return nil, b.fail
	}
	if v, ok := b.pcrs[pcr]; ok {
		return bytes.Clone(v), nil
	}
	return make([]byte, 32), nil
}

func (b *fakeBank) Extend(pcr int, d []byte) error {
	if b.fail != nil {
		return b.fail
	}
	v, _ := b.Read(pcr)
	s := sha256.Sum256(append(v, d...))
	b.pcrs[pcr] = s[:]
	return nil
}

func (b *fakeBank) Close() error { return nil }

// measureAll measures what a boot measures and checks the log file against the bank.
func measureAll(t *testing.T, dev bank) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run/ramboot/tpm-events.json")
	m := newMeasurer(dev, path, t.Logf)
	for _, e := range []struct{ typ, name, data string }{
		{"menu", "http://boot/menu.yaml", "entries: ..."},
		{"image", "http://boot/rescue.tar.zst", "image bytes"},
		{"cmdline", "/sbin/init quiet", "/sbin/init quiet"},
	} {
		if err := m.MeasureData(e.typ, e.name, []byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var l EventLog
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	if len(l.Events) != 3 || l.PCR != PCR || l.Events[1].Type != "image" {
		t.Fatalf("event log %s", b)
	}
	got, err := l.Replay()
	if err != nil {
		t.Fatal(err)
	}
	pcr, err := dev.Read(PCR)
	if err != nil {
		t.Fatal(err)
	}
	if got != hex.EncodeToString(pcr) || l.Expected != got {
		t.Errorf("replayed %s (expected field %s), PCR %x", got, l.Expected, pcr)
	}
}

func TestMeasureFake(t *testing.T) {
	// A PCR that already holds a value (systemd-stub's, say): the log's initial value.
	start := sha256.Sum256([]byte("stub"))
	measureAll(t, &fakeBank{pcrs: map[int][]byte{PCR: start[:]}})
}

func TestMeasureFailures(t *testing.T) {
	m := newMeasurer(&fakeBank{pcrs: map[int][]byte{}, fail: errors.New("TPM_RC_FAILURE")}, "", t.Logf)
	if err := m.Measure("image", "x", strings.Repeat("00", 32)); err != nil {
		t.Errorf("a failing TPM stopped the boot: %v", err)
	}
	m.Required = true
	if err := m.Measure("image", "x", strings.Repeat("00", 32)); !errors.Is(err, ErrTPM) {
		t.Errorf("required: %v", err)
	}
	var none *Measurer
	if err := none.Measure("image", "x", "zz"); err != nil {
		t.Error(err)
	}
	absent := &Measurer{logf: t.Logf}
	if err := absent.Measure("image", "x", strings.Repeat("00", 32)); err != nil || absent.Present() {
		t.Errorf("absent TPM: %v", err)
	}
}

// TestMeasureSWTPM: the same against Debian's swtpm, through go-tpm.
func TestMeasureSWTPM(t *testing.T) {
	vmtest.Tool(t, "swtpm")
	dir := t.TempDir()
	sock := filepath.Join(dir, "sock")
	cmd := exec.Command("swtpm", "socket", "--tpm2", "--tpmstate", "dir="+dir,
		"--server", "type=unixio,path="+sock, "--ctrl", "type=unixio,path="+filepath.Join(dir, "ctrl"),
		"--flags", "not-need-init,startup-clear")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	tp, err := linuxudstpm.Open(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	measureAll(t, &tpmBank{t: tp})
}
