package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ramboot/ramboot/internal/initramfs"
	"github.com/ramboot/ramboot/internal/vmtest"
)

// Control keys as a terminal sends them.
const (
	ctrlC         = "\x03"
	ctrlBackslash = "\x1c"
	ctrlZ         = "\x1a"
	keyUp         = "\x1b[A"
)

// shellInitrd is the test initramfs with busybox, for a shell.
func shellInitrd(t *testing.T) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		vmtest.Missing(t, "busybox (busybox-static)")
	}
	initrd := filepath.Join(built.dir, "shell.cpio.zst")
	if err := writeInitramfs(initrd, initramfs.Spec{Init: filepath.Join(built.dir, "ramboot-init"), Modules: built.kernel.Modules, Busybox: bb}); err != nil {
		t.Fatal(err)
	}
	return initrd
}

// noKill fails the test when the kernel reported that init died.
func noKill(t *testing.T, vm *vmtest.VM) {
	t.Helper()
	if c := vm.Console(); strings.Contains(c, "Attempted to kill init") || strings.Contains(c, "Kernel panic") {
		t.Fatal("/init died")
	}
}

// TestVMCtrlCMenu types ^C and ^\ at the countdown, during a download and in the shell; /init
// lives through all of them, the download is cancelled, the shell's command is interrupted, and
// the machine then boots normally.
func TestVMCtrlCMenu(t *testing.T) {
	setup(t)
	initrd := shellInitrd(t)
	menu := `title: VM lab
default: rescue
timeout: 60s
entries:
  - name: slow
    title: Slow image
    ramroot: BASE/slow/rootfs.tar.zst
  - name: rescue
    title: Rescue image
    ramroot: BASE/rootfs.tar.zst
  - name: shell
    title: A shell
    action: shell
`
	vm := vmtest.Start(t, vmtest.Options{
		Kernel: built.kernel, Initrd: initrd,
		Append: fmt.Sprintf("ramboot.menu=%s BOOTIF=%s ramboot.onerror=poweroff", serveMenu(t, "ctrlc.yaml", menu), bootif(mac1)),
		NICs:   []vmtest.NIC{{Model: "virtio-net-pci", MAC: mac1}},
	})
	// At the countdown: the keys stop it (as any key does), and nothing else happens.
	vm.ExpectScreen(`(?s)Slow image.*Rescue image.*Booting rescue in \d+s`, bootTimeout)
	vm.Send(ctrlC)
	vm.Send(ctrlBackslash)
	time.Sleep(3 * time.Second)
	noKill(t, vm)
	if scr := vm.Screen(); strings.Contains(scr, "Booting rescue in") || !strings.Contains(scr, "> Rescue image") {
		t.Fatalf("the countdown went on; the screen shows:\n%s", scr)
	}
	// During a download: ^C cancels it, back to the menu.
	vm.Send(keyUp)
	vm.Send(keyEnter)
	// The booting screen.
	vm.ExpectScreen(`slow/rootfs\.tar\.zst`, time.Minute)
	time.Sleep(3 * time.Second) // well inside the 50 s the trickle takes
	vm.Send(ctrlC)
	vm.ExpectScreen(`(?s)> Slow image.*Rescue image.*A shell`, time.Minute)
	vm.Send(ctrlBackslash)
	time.Sleep(2 * time.Second)
	noKill(t, vm)
	// In the shell: ^C interrupts the shell's command, not /init.
	vm.Send(keyDown)
	vm.Send(keyDown)
	vm.Send(keyEnter)
	vm.Expect(`ramboot# `, time.Minute)
	vm.Send("sleep 600\r")
	time.Sleep(2 * time.Second)
	vm.Send(ctrlC)
	vm.Expect(`ramboot# `, time.Minute)
	vm.Send(ctrlBackslash)
	vm.Send("echo shell-$((6*7))\r")
	vm.Expect(`shell-42`, time.Minute)
	if strings.Contains(vm.Console(), "job control turned off") {
		t.Error("the shell has no controlling terminal")
	}
	vm.Send("exit\r")
	// Back in the menu, without a countdown: boot the rescue image.
	vm.ExpectScreen(`(?s)Slow image.*> Rescue image`, time.Minute)
	vm.Send(keyEnter)
	vm.Expect(`TESTINIT-MARKER ramroot-ok`, bootTimeout)
	noKill(t, vm)
	vm.Wait(time.Minute)
	// The cancelled download is in the log the booted system keeps.
	if !regexp.MustCompile(`TESTINIT-KMSG ramboot: menu: boot of slow cancelled`).MatchString(vm.Console()) {
		t.Error("the cancelled download is not in the kernel log")
	}
}

// TestVMCtrlCUnattended types ^C, ^\ and ^Z while an unattended boot of an unreachable image
// retries: in cooked mode the tty would signal its session; /init is in none and lives on.
func TestVMCtrlCUnattended(t *testing.T) {
	setup(t)
	vm := vmtest.Start(t, vmtest.Options{
		Kernel: built.kernel, Initrd: built.initrd,
		Append: fmt.Sprintf("ramroot=http://10.0.2.2:1/nothing.tar.zst ramboot.retry=3s BOOTIF=%s", bootif(mac1)),
		NICs:   []vmtest.NIC{{Model: "virtio-net-pci", MAC: mac1}},
	})
	vm.Expect(`fetching http://10\.0\.2\.2:1/nothing`, bootTimeout)
	for _, k := range []string{ctrlC, ctrlBackslash, ctrlZ} {
		vm.Send(k)
		time.Sleep(time.Second)
	}
	vm.Expect(`retrying in 5s \(attempt 2 of 4\)`, bootTimeout)
	vm.Send(ctrlC)
	vm.Expect(`fetching http://10\.0\.2\.2:1/nothing`, bootTimeout)
	vm.Send(ctrlC)
	vm.Send(ctrlBackslash)
	vm.Expect(`retrying in 20s \(attempt 3 of 4\)`, bootTimeout)
	noKill(t, vm)
}

// TestVMDefaultCPUBadParams boots unattended over http on QEMU's default CPU model (no RDRAND)
// with no RNG device, with bad and operator-style parameters beside the valid ones: the bad ones
// are reported and skipped, DHCP does not wait for the kernel's random pool, and the booted
// system's kernel log holds every line /init logged.
func TestVMDefaultCPUBadParams(t *testing.T) {
	setup(t)
	vm := vmtest.Start(t, vmtest.Options{
		Kernel: built.kernel, Initrd: built.initrd, CPU: "default",
		Append: fmt.Sprintf(`ramroot=%s/rootfs.tar.zst BOOTIF=%s ip=eth0:dhcp ramboot.timeout=10s ramboot.idle=soon ramboot.onerror=poweroff ramboot.deadline=5m "ramboot.default=unterminated`,
			built.base, bootif(mac1)),
		NICs: []vmtest.NIC{{Model: "virtio-net-pci", MAC: mac1}},
	})
	vm.Expect(`kernel command line: unterminated quote in ramboot\.default`, bootTimeout)
	vm.Expect(`skipped a bad kernel parameter: ramboot\.idle="soon"`, bootTimeout)
	vm.Expect(`TESTINIT-MARKER ramroot-ok`, bootTimeout)
	t.Logf("QEMU start → marker on the default CPU model: %v", vm.Elapsed().Round(100*time.Millisecond))
	vm.Expect(`TESTINIT-DONE`, time.Minute)
	vm.Wait(time.Minute)
	c := vm.Console()
	for _, bad := range []string{"could not get random number", "DHCP attempt", "waiting for the kernel's random pool", "suppressed due to ratelimiting"} {
		if strings.Contains(c, bad) {
			t.Errorf("console shows %q", bad)
		}
	}
	// Every line /init printed on the console before the switch is in the booted system's
	// kernel log.
	kmsg := map[string]bool{}
	for _, m := range regexp.MustCompile(`TESTINIT-KMSG ramboot: (.*?)\r?\n`).FindAllStringSubmatch(c, -1) {
		kmsg[m[1]] = true
	}
	logged := regexp.MustCompile(`\[ *\d+\.\d+\] ramboot: (.*?)\r?\n`).FindAllStringSubmatch(c, -1)
	if len(logged) < 10 {
		t.Fatalf("only %d /init lines on the console", len(logged))
	}
	// The kernel may print its next message on the same console line (a record shown before
	// the line's end reached the console): what follows a timestamp is not /init's.
	glued := regexp.MustCompile(`\[ *\d+\.\d+\] .*$`)
	missing := 0
	for _, m := range logged {
		m[1] = glued.ReplaceAllString(m[1], "")
		if !kmsg[m[1]] {
			missing++
			t.Errorf("not in the booted system's kernel log: %q", m[1])
		}
	}
	t.Logf("%d /init lines on the console, %d in the kernel log, %d missing", len(logged), len(kmsg), missing)
}
