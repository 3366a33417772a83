package main

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/ramboot/ramboot/internal/vmtest"
)

// TestVMKexecLockdown: a kernel locked down from its command line (lockdown=integrity, as
// Secure Boot locks Debian's kernel down, but under BIOS: nothing in the platform keyring)
// refuses to kexec a kernel its keys do not trust. /init tries kexec_file_load only, says so in
// one sentence that names the kernel's URL, does not retry the refusal, and shows the menu with
// that sentence on its status line.
func TestVMKexecLockdown(t *testing.T) {
	setup(t)
	vm := vmtest.Start(t, vmtest.Options{
		Kernel: built.kernel, Initrd: built.initrd,
		Append: fmt.Sprintf(`lockdown=integrity BOOTIF=%s ramboot.kernel=%s/vmlinuz ramboot.initrd=%s/ramboot-initrd.cpio.zst "ramboot.append=console=ttyS0"`,
			bootif(mac1), built.base, built.base),
		NICs: []vmtest.NIC{{Model: "virtio-net-pci", MAC: mac1}},
	})
	vm.Expect(`kexec: the kernel is locked down \(integrity\): only kexec_file_load`, bootTimeout)
	m := vm.Expect(`boot failed: (the kernel is locked down \(integrity\) and `+built.base+`/vmlinuz is not signed by a key it trusts[^\r\n]*)`, time.Minute)
	t.Logf("console: %s (after %v)", m[1], vm.Elapsed().Round(100*time.Millisecond))
	// The menu (no shell in this initramfs) says why on its status line.
	vm.ExpectScreen(`(?s)> Reboot.*Power off.*the kernel is locked down \(integrity\) and http`, time.Minute)
	if bad := regexp.MustCompile(`retrying in|trying kexec_load|kexec: booting`).FindString(vm.Console()); bad != "" {
		t.Errorf("console shows %q: the refusal was retried or kexec_load tried", bad)
	}
}
