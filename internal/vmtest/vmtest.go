// Package vmtest boots ramboot in QEMU for tests: Debian's stock cloud kernel, an initramfs
// built by internal/initramfs, user-mode networking (the host is 10.0.2.2 to the guest), and
// the serial console read (and typed into) by the test. Software emulation only: no KVM.
//
// Test-only: nothing in /init or the CLI imports it.
package vmtest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/vt"
)

// DefaultKernelDir is where scripts/get-kernel.sh unpacks the kernel package.
const DefaultKernelDir = "/var/cache/ramboot/kernel"

// Kernel is an unpacked kernel package.
type Kernel struct {
	Vmlinuz string
	Modules string // lib/modules/<version>
	Version string
}

// FindKernel finds the kernel of RAMBOOT_KERNEL_DIR (default DefaultKernelDir). It fails the
// test in CI (which must have installed it) and skips elsewhere when it is missing, as it does
// when QEMU is missing.
func FindKernel(t testing.TB) Kernel {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no VM tests")
	}
	dir := os.Getenv("RAMBOOT_KERNEL_DIR")
	if dir == "" {
		dir = DefaultKernelDir
	}
	vm, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	mods, _ := filepath.Glob(filepath.Join(dir, "lib", "modules", "*", "modules.dep"))
	if len(vm) == 0 || len(mods) == 0 {
		Missing(t, "kernel package in "+dir+" (run scripts/get-kernel.sh)")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		Missing(t, "qemu-system-x86_64")
	}
	m := filepath.Dir(mods[0])
	return Kernel{Vmlinuz: vm[0], Modules: m, Version: filepath.Base(m)}
}

// Missing fails the test in CI, where everything must be installed, and skips it elsewhere.
func Missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s missing: .ci/run must install it, VM tests must run in CI", what)
	}
	t.Skipf("%s missing", what)
}

// Tool returns the path of a program the test needs; without it the test fails in CI and is
// skipped elsewhere (Missing).
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name)
	}
	return p
}

// NIC is one network card of the VM.
type NIC struct {
	Model    string // QEMU device: virtio-net-pci, vmxnet3, e1000
	MAC      string
	Restrict bool // no route to the host: this NIC gets a DHCP lease but cannot reach the server
}

// Options describe a VM.
type Options struct {
	Kernel Kernel
	Initrd string
	Append string
	NICs   []NIC
	Memory string // default 1G
	// VirtConsole, when set, is a file that receives a virtio console (hvc0). A second serial
	// port would not do: the kernel's 8250 driver is one console, on one port only.
	VirtConsole string
	Timeout     time.Duration
	// CPU is QEMU's -cpu model: "" for max (RDRAND among much else), "default" for QEMU's
	// default model (qemu64: no RDRAND, so the kernel's random pool fills slowly, as on older
	// servers and many VMs).
	CPU string
	// Extra are more QEMU arguments (a TPM: -chardev, -tpmdev, -device).
	Extra []string
}

// appendLine adds the serial console unless the test chose its consoles, and panic=-1 so a
// kernel panic ends QEMU (with -no-reboot) instead of hanging the test.
func appendLine(s string) string {
	chosen := false
	for _, f := range strings.Fields(s) {
		chosen = chosen || strings.HasPrefix(f, "console=")
	}
	if !chosen {
		s = "console=ttyS0 " + s
	}
	return "panic=-1 " + s
}

// VM is a running QEMU whose serial console the test reads.
type VM struct {
	t       testing.TB
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	mu      sync.Mutex
	cond    *sync.Cond
	out     bytes.Buffer
	pos     int // how far Expect has consumed
	done    bool
	started time.Time
	// term is the serial terminal as a person would see it: an 80x24 VT emulator fed with
	// everything the guest writes. It answers the guest's cursor-position queries, as a
	// terminal emulator on a serial line does.
	term *vt.SafeEmulator
}

// Terminal size of the emulated serial terminal.
const (
	TermWidth  = 80
	TermHeight = 24
)

// Start boots the VM; it is killed when the test ends, and its console is logged on failure.
func Start(t testing.TB, o Options) *VM {
	t.Helper()
	mem := o.Memory
	if mem == "" {
		mem = "1G"
	}
	args := []string{"-machine", "q35"}
	switch o.CPU {
	case "":
		args = append(args, "-cpu", "max")
	case "default":
	default:
		args = append(args, "-cpu", o.CPU)
	}
	args = append(args, "-m", mem, "-smp", "1",
		"-display", "none", "-vga", "none", "-serial", "stdio", "-monitor", "none",
		"-no-reboot", "-kernel", o.Kernel.Vmlinuz, "-initrd", o.Initrd,
		"-append", appendLine(o.Append),
	)
	if o.VirtConsole != "" {
		args = append(args, "-device", "virtio-serial-pci", "-chardev", "file,id=vc0,path="+o.VirtConsole,
			"-device", "virtconsole,chardev=vc0")
	}
	if len(o.NICs) == 0 {
		args = append(args, "-nic", "none")
	}
	for i, n := range o.NICs {
		netdev := fmt.Sprintf("user,id=n%d", i)
		if n.Restrict {
			netdev += ",restrict=on"
		}
		dev := fmt.Sprintf("%s,netdev=n%d", n.Model, i)
		if n.MAC != "" {
			dev += ",mac=" + n.MAC
		}
		args = append(args, "-netdev", netdev, "-device", dev)
	}
	args = append(args, o.Extra...)
	vm := &VM{t: t, started: time.Now(), term: vt.NewSafeEmulator(TermWidth, TermHeight)}
	vm.cond = sync.NewCond(&vm.mu)
	vm.cmd = exec.Command("qemu-system-x86_64", args...)
	stdout, err := vm.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	vm.cmd.Stderr = vm.cmd.Stdout
	if vm.stdin, err = vm.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := vm.cmd.Start(); err != nil {
		t.Fatalf("starting qemu: %v", err)
	}
	go vm.answer()
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := stdout.Read(buf)
			vm.term.Write(buf[:n])
			vm.mu.Lock()
			vm.out.Write(buf[:n])
			if err != nil {
				vm.done = true
			}
			vm.cond.Broadcast()
			vm.mu.Unlock()
			if err != nil {
				vm.cmd.Wait()
				return
			}
		}
	}()
	t.Cleanup(func() {
		vm.cmd.Process.Kill()
		vm.term.Close()
		if t.Failed() {
			t.Logf("serial console:\n%s", vm.Console())
			t.Logf("last screen:\n%s", vm.Screen())
		}
	})
	return vm
}

// Console is everything the VM printed so far.
func (vm *VM) Console() string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.out.String()
}

// Elapsed is the time since QEMU started.
func (vm *VM) Elapsed() time.Duration { return time.Since(vm.started) }

// Expect waits until the console, after what earlier Expects consumed, matches re, and returns
// the submatches. It fails the test on timeout or when QEMU exits first.
func (vm *VM) Expect(re string, timeout time.Duration) []string {
	vm.t.Helper()
	m, err := vm.expect(regexp.MustCompile(re), timeout)
	if err != nil {
		vm.t.Fatalf("waiting for %q: %v", re, err)
	}
	return m
}

// answer sends the terminal's replies to the guest's queries back down the serial line: only
// cursor position reports (the answer to /init's size query), as other replies would have the
// guest's programs switch on features the test does not type with.
func (vm *VM) answer() {
	buf := make([]byte, 256)
	for {
		n, err := vm.term.Read(buf)
		if err != nil {
			return
		}
		for _, m := range cpr.FindAll(buf[:n], -1) {
			vm.stdin.Write(m)
		}
	}
}

var cpr = regexp.MustCompile(`\x1b\[\d+;\d+R`)

// Screen is what the 80x24 serial terminal shows now, as text.
func (vm *VM) Screen() string { return vm.term.String() }

// ExpectScreen waits until the terminal's screen, as a person sees it, matches re, and returns
// the submatches. It fails the test on timeout or when QEMU exits first.
func (vm *VM) ExpectScreen(re string, timeout time.Duration) []string {
	vm.t.Helper()
	r := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for {
		vm.mu.Lock()
		done := vm.done
		vm.mu.Unlock()
		if m := r.FindStringSubmatch(vm.Screen()); m != nil {
			return m
		}
		if done {
			vm.t.Fatalf("waiting for %q on the screen: qemu exited; the screen shows:\n%s", re, vm.Screen())
		}
		if time.Now().After(deadline) {
			vm.t.Fatalf("waiting for %q on the screen: timeout after %v; the screen shows:\n%s", re, timeout, vm.Screen())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var (
	csiForward = regexp.MustCompile(`\x1b\[(\d*)C`)
	csiAny     = regexp.MustCompile(`\x1b(\[[0-9;?<=>]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78DEHMNOZc])`)
)

// Plain turns terminal output into text: cursor-forward becomes spaces, other escape
// sequences go, carriage returns go.
func Plain(s string) string {
	s = csiForward.ReplaceAllStringFunc(s, func(m string) string {
		n := 1
		fmt.Sscanf(m, "\x1b[%dC", &n)
		return strings.Repeat(" ", max(1, n))
	})
	s = csiAny.ReplaceAllString(s, "")
	return strings.ReplaceAll(s, "\r", "")
}

// ExpectNot fails when re shows up before until does (until is consumed like Expect).
func (vm *VM) ExpectNot(re, until string, timeout time.Duration) {
	vm.t.Helper()
	start := vm.pos
	vm.Expect(until, timeout)
	vm.mu.Lock()
	seen := vm.out.String()[start:vm.pos]
	vm.mu.Unlock()
	if regexp.MustCompile(re).MatchString(seen) {
		vm.t.Fatalf("console showed %q before %q", re, until)
	}
}

func (vm *VM) expect(re *regexp.Regexp, timeout time.Duration) ([]string, error) {
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() {
		vm.mu.Lock()
		vm.cond.Broadcast()
		vm.mu.Unlock()
	})
	defer timer.Stop()
	vm.mu.Lock()
	defer vm.mu.Unlock()
	for {
		s := vm.out.String()[vm.pos:]
		if loc := re.FindStringSubmatchIndex(s); loc != nil {
			m := make([]string, len(loc)/2)
			for i := range m {
				if loc[2*i] >= 0 {
					m[i] = s[loc[2*i]:loc[2*i+1]]
				}
			}
			vm.pos += loc[1]
			return m, nil
		}
		if vm.done {
			return nil, fmt.Errorf("qemu exited after %v", time.Since(vm.started).Round(time.Millisecond))
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("timeout after %v", timeout)
		}
		vm.cond.Wait()
	}
}

// Send types s on the serial console.
func (vm *VM) Send(s string) {
	vm.t.Helper()
	if _, err := io.WriteString(vm.stdin, s); err != nil {
		vm.t.Fatalf("typing on the console: %v", err)
	}
}

// Wait waits for QEMU to exit (the guest powered off), failing after timeout.
func (vm *VM) Wait(timeout time.Duration) {
	vm.t.Helper()
	if _, err := vm.expect(regexp.MustCompile(`\z.\A`), timeout); err != nil && !strings.HasPrefix(err.Error(), "qemu exited") {
		vm.t.Fatalf("waiting for the VM to power off: %v", err)
	}
}
