package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ramboot/ramboot/internal/initramfs"
	"github.com/ramboot/ramboot/internal/vmtest"
)

// Keys as a serial terminal sends them.
const (
	keyDown  = "\x1b[B"
	keyEnter = "\r"
)

// serveMenu writes a menu into the served directory and returns its URL as the guest sees it.
func serveMenu(t *testing.T, name, text string) string {
	t.Helper()
	text = strings.ReplaceAll(text, "BASE", built.base)
	if err := os.WriteFile(filepath.Join(built.dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return built.base + "/" + name
}

const labMenu = `title: VM lab
default: rescue
timeout: %s
entries:
  - name: rescue
    title: Rescue image
    ramroot: {url: BASE/rootfs.tar.zst}
  - name: second
    title: Second image
    ramroot: BASE/second.tar.zst
  - name: maint
    title: Maintenance kernel
    kexec:
      kernel: BASE/vmlinuz
      initrd: [BASE/ramboot-initrd.cpio.zst]
      cmdline: console=ttyS0 panic=-1 ramboot.timeout=0 ramboot.onerror=poweroff
  - name: off
    action: poweroff
`

func bootMenu(t *testing.T, menuURL, extra string) *vmtest.VM {
	return vmtest.Start(t, vmtest.Options{
		Kernel: built.kernel, Initrd: built.initrd,
		Append: fmt.Sprintf("ramboot.menu=%s BOOTIF=%s ramboot.onerror=poweroff %s", menuURL, bootif(mac1), extra),
		NICs:   []vmtest.NIC{{Model: "virtio-net-pci", MAC: mac1}},
	})
}

func TestVMMenuDownEnter(t *testing.T) {
	setup(t)
	vm := bootMenu(t, serveMenu(t, "lab.yaml", fmt.Sprintf(labMenu, "60s")), "")
	// One screen: every served entry, the default marked, the countdown running.
	vm.ExpectScreen(`(?s)Rescue image +\(default\).*Second image.*Maintenance kernel.*off.*Booting rescue in \d+s`, bootTimeout)
	vm.Send(keyDown)
	vm.Send(keyEnter)
	vm.Expect(`TESTINIT-MARKER second-ok`, bootTimeout)
	vm.Wait(time.Minute)
}

func TestVMMenuCountdown(t *testing.T) {
	setup(t)
	vm := bootMenu(t, serveMenu(t, "countdown.yaml", fmt.Sprintf(labMenu, "2s")), "")
	vm.ExpectScreen(`Booting rescue in`, bootTimeout)
	vm.Expect(`TESTINIT-MARKER ramroot-ok`, bootTimeout)
	vm.Wait(time.Minute)
}

func TestVMMenuEditKexec(t *testing.T) {
	setup(t)
	vm := bootMenu(t, serveMenu(t, "edit.yaml", fmt.Sprintf(labMenu, "60s")), "")
	vm.ExpectScreen("(?s)Rescue image.*Maintenance kernel", bootTimeout)
	vm.Send(keyDown)
	vm.Send(keyDown)
	vm.Send("e")
	vm.ExpectScreen(`edit maint`, time.Minute)
	vm.Send(" edited-marker-77")
	vm.Send(keyEnter)
	m := vm.Expect(`ramboot: starting; kernel command line: (.*edited-marker-77.*)\r?\n`, bootTimeout)
	if !strings.Contains(m[1], "BOOTIF="+bootif(mac1)) {
		t.Errorf("next kernel's command line %q lacks BOOTIF", m[1])
	}
	vm.Wait(bootTimeout)
}

func TestVMMenuPXELinux(t *testing.T) {
	setup(t)
	cfg := `# an existing PXE setup's config, unchanged
default maint
timeout 10
prompt 0
menu title PXE lab
label maint
  menu label Maintenance via pxelinux
  kernel vmlinuz
  initrd ramboot-initrd.cpio.zst
  append console=ttyS0 panic=-1 pxe-marker-55 ramboot.timeout=0 ramboot.onerror=poweroff
  ipappend 2
label local
  localboot 0
`
	vm := bootMenu(t, serveMenu(t, "pxelinux.cfg", cfg), "")
	m := vm.Expect(`ramboot: starting; kernel command line: (.*pxe-marker-55.*)\r?\n`, bootTimeout)
	if !strings.Contains(m[1], "BOOTIF="+bootif(mac1)) {
		t.Errorf("next kernel's command line %q lacks BOOTIF", m[1])
	}
	vm.Wait(bootTimeout)
}

// TestVMMenuUnattendedKexecRamroot: timeout 0 boots the default at once, a kexec entry whose
// command line has ramroot=; the second kernel's ramboot boots that image on the same NIC.
func TestVMMenuUnattendedKexecRamroot(t *testing.T) {
	setup(t)
	menu := `default: chain
timeout: 0
entries:
  - name: chain
    kexec:
      kernel: BASE/vmlinuz
      initrd: BASE/ramboot-initrd.cpio.zst
      cmdline: console=ttyS0 panic=-1 ramroot=BASE/rootfs.tar.zst ramboot.onerror=poweroff
`
	vm := bootMenu(t, serveMenu(t, "chain.yaml", menu), "")
	vm.Expect(`kexec: loading with command line`, bootTimeout)
	vm.Expect(`TESTINIT-MARKER ramroot-ok`, bootTimeout)
	m := vm.Expect(`TESTINIT-CMDLINE (.*)\r?\n`, time.Minute)
	if !strings.Contains(m[1], "BOOTIF="+bootif(mac1)) {
		t.Errorf("image's kernel command line %q lacks BOOTIF", m[1])
	}
	if strings.Contains(vm.Console(), "\x1b[?1049h") {
		t.Error("a UI took the screen during an unattended boot")
	}
	t.Logf("QEMU start → image booted after kexec: %v", vm.Elapsed().Round(100*time.Millisecond))
	vm.Wait(time.Minute)
}

// TestVMMenuTwoConsoles: the menu shows on every active console (here the serial port and a
// virtio console, as a machine has VGA and IPMI SOL); the first console where a key is pressed
// takes control and the menu leaves the other.
func TestVMMenuTwoConsoles(t *testing.T) {
	setup(t)
	initrd := filepath.Join(built.dir, "hvc.cpio.zst")
	if err := writeInitramfs(initrd, initramfs.Spec{Init: filepath.Join(built.dir, "ramboot-init"), Modules: built.kernel.Modules,
		ExtraModules: []string{"virtio_console"}}); err != nil {
		t.Fatal(err)
	}
	hvc := filepath.Join(t.TempDir(), "hvc0")
	vm := vmtest.Start(t, vmtest.Options{
		Kernel: built.kernel, Initrd: initrd, VirtConsole: hvc,
		Append: fmt.Sprintf("console=hvc0 console=ttyS0 ramboot.menu=%s BOOTIF=%s ramboot.onerror=poweroff",
			serveMenu(t, "two.yaml", fmt.Sprintf(labMenu, "60s")), bootif(mac1)),
		NICs: []vmtest.NIC{{Model: "virtio-net-pci", MAC: mac1}},
	})
	vm.ExpectScreen(`(?s)Rescue image.*Booting rescue in`, bootTimeout)
	waitFile := func(what string, ok func(string) bool) {
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
			b, _ := os.ReadFile(hvc)
			if ok(string(b)) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("hvc0: %s; it shows:\n%s", what, vmtest.Plain(string(b)))
			}
		}
	}
	waitFile("no menu", func(s string) bool { return strings.Contains(vmtest.Plain(s), "Second image") })
	vm.Send(keyDown) // the serial console takes control
	waitFile("menu not closed", func(s string) bool { return strings.Contains(s, "\x1b[?1049l") })
	vm.Send(keyEnter)
	vm.Expect(`TESTINIT-MARKER second-ok`, bootTimeout)
	vm.Wait(time.Minute)
}
