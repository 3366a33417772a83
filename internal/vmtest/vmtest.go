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

// DefaultKernelDir is where scripts/get-kernel.sh unpacks the kernel package;
// DefaultARM64KernelDir where `get-kernel.sh cloud-arm64` unpacks Debian's arm64 cloud kernel.
const (
	DefaultKernelDir      = "/var/cache/ramboot/kernel"
	DefaultARM64KernelDir = "/var/cache/ramboot/kernel-arm64"
)

// The architectures a VM can be: ""/AMD64 (q35, the default) or ARM64 (virt).
const (
	AMD64 = "amd64"
	ARM64 = "arm64"
)

// Kernel is an unpacked kernel package.
type Kernel struct {
	Vmlinuz string
	Modules string // lib/modules/<version>
	Version string
	Arch    string // "" (amd64) or ARM64: the machine Start emulates for it
}

// FindKernel finds the kernel of RAMBOOT_KERNEL_DIR (default DefaultKernelDir). It fails the
// test in CI (which must have installed it) and skips elsewhere when it is missing, as it does
// when QEMU is missing.
func FindKernel(t testing.TB) Kernel {
	t.Helper()
	return findKernel(t, "RAMBOOT_KERNEL_DIR", DefaultKernelDir, "", "")
}

// FindARM64Kernel finds Debian's arm64 cloud kernel in RAMBOOT_ARM64_KERNEL_DIR (default
// DefaultARM64KernelDir) and qemu-system-aarch64, as FindKernel finds its own.
func FindARM64Kernel(t testing.TB) Kernel {
	t.Helper()
	return findKernel(t, "RAMBOOT_ARM64_KERNEL_DIR", DefaultARM64KernelDir, " cloud-arm64", ARM64)
}

func findKernel(t testing.TB, env, dir, flavour, arch string) Kernel {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no VM tests")
	}
	if d := os.Getenv(env); d != "" {
		dir = d
	}
	vm, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	mods, _ := filepath.Glob(filepath.Join(dir, "lib", "modules", "*", "modules.dep"))
	if len(vm) == 0 || len(mods) == 0 {
		Missing(t, "kernel package in "+dir+" (run scripts/get-kernel.sh"+flavour+")")
	}
	if _, err := exec.LookPath(qemu(arch)); err != nil {
		Missing(t, qemu(arch))
	}
	m := filepath.Dir(mods[0])
	return Kernel{Vmlinuz: vm[0], Modules: m, Version: filepath.Base(m), Arch: arch}
}

// qemu is the QEMU binary of arch.
func qemu(arch string) string {
	if arch == ARM64 {
		return "qemu-system-aarch64"
	}
	return "qemu-system-x86_64"
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
	// HTTPBoot is the URL this NIC's DHCP offers as the boot file (UEFI HTTP boot fetches it;
	// the host is 10.0.2.2: "http://10.0.2.2:PORT/ramboot.efi").
	HTTPBoot string
	// TFTP is a directory served over TFTP on this NIC's network and BootFile the file in it its
	// DHCP offers (UEFI PXE, or iPXE under BIOS). Not together with HTTPBoot: DHCP offers one
	// boot file.
	TFTP, BootFile string
	// BootIndex is the NIC's place in the firmware's boot order (QEMU's bootindex=; lower boots
	// first). 0: none given.
	BootIndex int
	// IPXE keeps QEMU's iPXE option ROM on the NIC under UEFI, where it is left out by default
	// (romfile=) so that the firmware's own network stack boots, as on a server.
	IPXE bool
}

// netdev is the NIC's -netdev value.
func (n NIC) netdev(i int) string {
	s := fmt.Sprintf("user,id=n%d", i)
	if n.Restrict {
		s += ",restrict=on"
	}
	switch {
	case n.HTTPBoot != "":
		s += ",bootfile=" + n.HTTPBoot
	case n.TFTP != "":
		s += ",tftp=" + n.TFTP + ",bootfile=" + n.BootFile
	}
	return s
}

// device is the NIC's -device value.
func (n NIC) device(i int, fw Firmware) string {
	s := fmt.Sprintf("%s,netdev=n%d", n.Model, i)
	if n.MAC != "" {
		s += ",mac=" + n.MAC
	}
	if n.BootIndex > 0 {
		s += fmt.Sprintf(",bootindex=%d", n.BootIndex)
	}
	if fw != BIOS && !n.IPXE {
		s += ",romfile="
	}
	return s
}

// Firmware is what the VM boots with.
type Firmware string

const (
	// BIOS is QEMU's default (SeaBIOS): with Options.Kernel, QEMU loads it (-kernel);
	// without, SeaBIOS boots the NIC with a BootIndex through its iPXE option ROM.
	BIOS Firmware = ""
	// UEFI is Debian's OVMF without Secure Boot, with a fresh copy of its variable store.
	UEFI Firmware = "uefi"
	// SecureBoot is Debian's OVMF with Secure Boot on: a fresh copy of the variable store that
	// has Debian's test key (SnakeoilCert) in PK, KEK and db, SMM, and the secure flash.
	// What it boots must be signed with SnakeoilKey (see SnakeoilKeyPair).
	SecureBoot Firmware = "secureboot"
)

// Debian's OVMF (package ovmf). The snakeoil key is a test key: enrolled in the Secure Boot
// variable store OVMFSnakeoilVars, its private key beside it, encrypted with SnakeoilPassphrase.
const (
	OVMFCode           = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	OVMFVars           = "/usr/share/OVMF/OVMF_VARS_4M.fd"
	OVMFSecureCode     = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
	OVMFSnakeoilVars   = "/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd"
	SnakeoilKey        = "/usr/share/ovmf/PkKek-1-snakeoil.key"
	SnakeoilCert       = "/usr/share/ovmf/PkKek-1-snakeoil.pem"
	SnakeoilPassphrase = "snakeoil"
)

// Debian's AAVMF (package qemu-efi-aarch64): UEFI for QEMU's arm64 virt board.
const (
	AAVMFCode = "/usr/share/AAVMF/AAVMF_CODE.fd"
	AAVMFVars = "/usr/share/AAVMF/AAVMF_VARS.fd"
)

// firmwareArgs are the QEMU arguments of fw (none for BIOS): the code read-only, a fresh copy
// of the variable store (vars, else the firmware's own) writable, an RNG (UEFI HTTP boot needs
// one). A firmware that is missing fails the test in CI and skips it elsewhere.
func firmwareArgs(t testing.TB, fw Firmware, vars, arch string) []string {
	t.Helper()
	var code, store string
	var args []string
	pkg := "ovmf"
	switch {
	case fw == BIOS:
		return nil
	case arch == ARM64 && fw == UEFI:
		code, store, pkg = AAVMFCode, AAVMFVars, "qemu-efi-aarch64"
	case arch == ARM64:
		t.Fatalf("vmtest: no firmware %q for arm64 (UEFI only)", fw)
	case fw == UEFI:
		code, store = OVMFCode, OVMFVars
	case fw == SecureBoot:
		code, store = OVMFSecureCode, OVMFSnakeoilVars
		args = append(args, "-global", "driver=cfi.pflash01,property=secure,value=on")
	default:
		t.Fatalf("vmtest: unknown firmware %q", fw)
	}
	if vars != "" {
		store = vars
	}
	for _, f := range []string{code, store} {
		if _, err := os.Stat(f); err != nil {
			Missing(t, f+" (Debian's "+pkg+")")
		}
	}
	copied := filepath.Join(t.TempDir(), "OVMF_VARS.fd")
	b, err := os.ReadFile(store)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(copied, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return append(args,
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+code,
		"-drive", "if=pflash,format=raw,unit=1,file="+copied,
		"-device", "virtio-rng-pci")
}

// noPXE turns off the firmware's PXE when every NIC that offers a boot file offers a URL: OVMF
// tries PXE before HTTP boot on each NIC, which only fails there and costs a minute under TCG.
// Its IPv6 stack goes too: QEMU's user network has no DHCPv6 server, and HTTP boot over IPv6
// waits for one after an IPv4 boot failed (a refused image, say).
func noPXE(nics []NIC) []string {
	http := false
	for _, n := range nics {
		if n.TFTP != "" {
			return nil
		}
		http = http || n.HTTPBoot != ""
	}
	if !http {
		return nil
	}
	return []string{"-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=no",
		"-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=no",
		"-fw_cfg", "name=opt/org.tianocore/IPv6Support,string=no"}
}

// SnakeoilKeyPair returns the Secure Boot test key of OVMFSnakeoilVars decrypted (sbsign and
// `ramboot uki --key` take no passphrase) and its certificate, for signing what SecureBoot
// must accept. Without openssl or the key, the test fails in CI and is skipped elsewhere.
func SnakeoilKeyPair(t testing.TB) (key, cert string) {
	t.Helper()
	for _, f := range []string{SnakeoilKey, SnakeoilCert} {
		if _, err := os.Stat(f); err != nil {
			Missing(t, f+" (Debian's ovmf)")
		}
	}
	key = filepath.Join(t.TempDir(), "snakeoil.key")
	out, err := exec.Command(Tool(t, "openssl"), "pkey", "-in", SnakeoilKey, "-passin", "pass:"+SnakeoilPassphrase, "-out", key).CombinedOutput()
	if err != nil {
		t.Fatalf("decrypting %s: %v: %s", SnakeoilKey, err, out)
	}
	return key, SnakeoilCert
}

// SWTPM starts a software TPM 2.0 for the VM (stopped when the test ends) and returns the QEMU
// arguments that attach it. Without swtpm the test fails in CI and is skipped elsewhere.
func SWTPM(t testing.TB) []string {
	t.Helper()
	bin := Tool(t, "swtpm")
	state := t.TempDir()
	sock := filepath.Join(state, "swtpm-sock")
	sw := exec.Command(bin, "socket", "--tpm2", "--tpmstate", "dir="+state, "--ctrl", "type=unixio,path="+sock)
	if err := sw.Start(); err != nil {
		t.Fatalf("starting swtpm: %v", err)
	}
	t.Cleanup(func() { sw.Process.Kill(); sw.Wait() })
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i == 100 {
			t.Fatalf("swtpm: no socket %s after 5s", sock)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return []string{"-chardev", "socket,id=chrtpm,path=" + sock, "-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-tis,tpmdev=tpm0"}
}

// Options describe a VM.
type Options struct {
	// Kernel, Initrd and Append are loaded by QEMU (-kernel). With a Firmware, a zero Kernel
	// lets the firmware boot from the NICs (HTTPBoot, TFTP).
	Kernel Kernel
	Initrd string
	Append string
	NICs   []NIC
	// Firmware is BIOS (default), UEFI or SecureBoot.
	Firmware Firmware
	// Vars is a variable store to start from instead of the firmware's own (a copy is used).
	Vars string
	// TPM attaches a software TPM 2.0 (SWTPM).
	TPM    bool
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
	// Arch is the machine: "" for Kernel's (amd64 when none: q35), ARM64 for QEMU's virt
	// board with its PL011 serial port (ttyAMA0), UEFI from Debian's AAVMF.
	Arch string
}

// appendLine adds the serial console (console, ttyS0 or ttyAMA0) unless the test chose its
// consoles, and panic=-1 so a kernel panic ends QEMU (with -no-reboot) instead of hanging the
// test.
func appendLine(s, console string) string {
	chosen := false
	for _, f := range strings.Fields(s) {
		chosen = chosen || strings.HasPrefix(f, "console=")
	}
	if !chosen {
		s = "console=" + console + " " + s
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
	arch := o.Arch
	if arch == "" {
		arch = o.Kernel.Arch
	}
	machine, console := "q35", "ttyS0"
	switch {
	case arch == ARM64:
		machine, console = "virt", "ttyAMA0"
	case arch != "" && arch != AMD64:
		t.Fatalf("vmtest: unknown architecture %q", arch)
	case o.Firmware == SecureBoot:
		machine += ",smm=on" // the variable store is writable only from SMM
	}
	args := []string{"-machine", machine}
	switch o.CPU {
	case "":
		args = append(args, "-cpu", "max")
	case "default":
	default:
		args = append(args, "-cpu", o.CPU)
	}
	args = append(args, "-m", mem, "-smp", "1", "-display", "none")
	if arch != ARM64 {
		args = append(args, "-vga", "none") // virt has none to turn off
	}
	args = append(args, "-serial", "stdio", "-monitor", "none", "-no-reboot")
	args = append(args, firmwareArgs(t, o.Firmware, o.Vars, arch)...)
	if o.Kernel.Vmlinuz != "" {
		args = append(args, "-kernel", o.Kernel.Vmlinuz, "-initrd", o.Initrd, "-append", appendLine(o.Append, console))
	}
	if o.Firmware != BIOS {
		args = append(args, noPXE(o.NICs)...)
	}
	if o.TPM {
		args = append(args, SWTPM(t)...)
	}
	if o.VirtConsole != "" {
		args = append(args, "-device", "virtio-serial-pci", "-chardev", "file,id=vc0,path="+o.VirtConsole,
			"-device", "virtconsole,chardev=vc0")
	}
	if len(o.NICs) == 0 {
		args = append(args, "-nic", "none")
	}
	for i, n := range o.NICs {
		if n.HTTPBoot != "" && n.TFTP != "" {
			t.Fatalf("vmtest: NIC %d has both HTTPBoot and TFTP: its DHCP offers one boot file", i)
		}
		args = append(args, "-netdev", n.netdev(i), "-device", n.device(i, o.Firmware))
	}
	args = append(args, o.Extra...)
	vm := &VM{t: t, started: time.Now(), term: vt.NewSafeEmulator(TermWidth, TermHeight)}
	vm.cond = sync.NewCond(&vm.mu)
	vm.cmd = exec.Command(qemu(arch), args...)
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
