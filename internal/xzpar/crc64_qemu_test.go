//go:build linux && amd64

package xzpar

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCRC64OnARM64 runs TestCRC64 and FuzzCRC64's seeds on arm64, where fold64 is crc64_arm64.s: this package's tests
// built for arm64, run by QEMU's user-mode emulator on a CPU with PMULL. It requires the
// folding to have run, not only the tables. The test cache cannot see the arm64 sources: run
// it with -count=1 (make test does).
func TestCRC64OnARM64(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the package's tests for arm64")
	}
	qemu := needTool(t, "qemu-aarch64")
	bin := filepath.Join(t.TempDir(), "xzpar-arm64.test")
	build := exec.Command("go", "test", "-c", "-o", bin, ".")
	build.Env = append(os.Environ(), "GOARCH=arm64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the tests for arm64: %v\n%s", err, out)
	}
	run := exec.Command(qemu, "-cpu", "max", bin, "-test.run", "^(TestCRC64|FuzzCRC64)$", "-test.v")
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("TestCRC64 on arm64: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestCRC64") || !strings.Contains(string(out), "--- PASS: FuzzCRC64") ||
		strings.Contains(string(out), "no carry-less multiplication") {
		t.Fatalf("TestCRC64 on arm64 did not fold with PMULL:\n%s", out)
	}
}
