package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/ramboot/ramboot/internal/initramfs"
	"github.com/ramboot/ramboot/internal/vmtest"
)

// DefaultGenericKernelDir is where `scripts/get-kernel.sh generic` unpacks Debian's generic
// kernel (linux-image-amd64), the one bare metal boots; RAMBOOT_GENERIC_KERNEL_DIR overrides it.
const DefaultGenericKernelDir = "/var/cache/ramboot/kernel-generic"

// genericKernel finds the generic kernel: a failure in CI, which installs it, a skip elsewhere.
func genericKernel(t *testing.T) vmtest.Kernel {
	t.Helper()
	dir := os.Getenv("RAMBOOT_GENERIC_KERNEL_DIR")
	if dir == "" {
		dir = DefaultGenericKernelDir
	}
	vm, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	mods, _ := filepath.Glob(filepath.Join(dir, "lib", "modules", "*", "modules.dep"))
	if len(vm) == 0 || len(mods) == 0 {
		vmtest.Missing(t, "generic kernel package in "+dir+" (run scripts/get-kernel.sh generic)")
	}
	m := filepath.Dir(mods[0])
	return vmtest.Kernel{Vmlinuz: vm[0], Modules: m, Version: filepath.Base(m)}
}

// TestVMGenericE1000e boots Debian's generic kernel, as a bare-metal server would, with the
// initramfs `ramboot initramfs --modules` makes for it by default (the ethernet set) and an
// Intel e1000e (82574L, PCI Express) as its only NIC: /init must find and load e1000e among
// the wired drivers, get a lease over it and boot the image to its init.
func TestVMGenericE1000e(t *testing.T) {
	setup(t) // /init, the images and the server; the cloud kernel it finds is not used here
	k := genericKernel(t)
	initrd := filepath.Join(t.TempDir(), "generic.cpio.zst")
	if err := writeInitramfs(initrd, initramfs.Spec{Init: filepath.Join(built.dir, "ramboot-init"), Modules: k.Modules}); err != nil {
		t.Fatal(err)
	}
	img := "rootfs.tar.zst"
	vm := vmtest.Start(t, vmtest.Options{
		Kernel: k, Initrd: initrd,
		Append: fmt.Sprintf("ramroot=%s/%s ramroot.sha256=%s BOOTIF=%s ramboot.onerror=poweroff", built.base, img, built.sums[img], bootif(mac1)),
		NICs:   []vmtest.NIC{{Model: "e1000e", MAC: mac1}},
	})
	vm.Expect(`ramboot: starting`, bootTimeout)
	vm.Expect(`loaded \d+ modules in \S+: (\S+ )*e1000e\b`, bootTimeout)
	m := vm.Expect(`network: (\S+) `+mac1+` (\d+\.\d+\.\d+\.\d+/\d+)`, bootTimeout)
	t.Logf("boot NIC %s, lease %s", m[1], m[2])
	vm.Expect(`TESTINIT-MARKER ramroot-ok`, bootTimeout)
	t.Logf("QEMU start → marker: %v", vm.Elapsed().Round(100*time.Millisecond))
	// The image has no modules: the generic kernel's were copied in, not the cloud kernel's.
	vm.Expect(`TESTINIT-MODULES `+regexp.QuoteMeta(k.Version), time.Minute)
	vm.Expect(`TESTINIT-DONE`, time.Minute)
	vm.Wait(time.Minute)
}
