// vm_aarch64_test.go, not vm_arm64_test.go: the _arm64 suffix would build it on arm64 hosts only.

package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ramboot/ramboot/internal/initramfs"
	"github.com/ramboot/ramboot/internal/vmtest"
)

// The arm64 VM tests boot Debian's arm64 cloud kernel with ramboot's arm64 initramfs on QEMU's
// virt board (-cpu max, software emulation), its PL011 serial console (ttyAMA0) read as the
// x86-64 tests read ttyS0. One boot per path: emulating arm64 costs more than x86-64.
var (
	arm64Once  sync.Once
	arm64Built struct {
		kernel vmtest.Kernel
		initrd string // ramboot's arm64 initramfs, .cpio.zst
		dir    string // served over HTTP
		base   string // the server's URL as the guest sees it
		err    error
	}
)

// goBuildArch builds pkg statically for linux/arch, as the Makefile builds /init.
func goBuildArch(out, pkg, arch string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-tags", "nethttpomithttp2", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s for %s: %v: %s", pkg, arch, err, b)
	}
	return nil
}

// setupARM64 builds the arm64 /init and testinit, the initramfs (its /init chosen by the
// modules' architecture, as ramboot initramfs chooses it), a test image, a gzip'd vmlinuz,
// and serves them.
func setupARM64(t *testing.T) {
	t.Helper()
	kernel := vmtest.FindARM64Kernel(t)
	arm64Once.Do(func() {
		dir, err := os.MkdirTemp("", "ramboot-vm-arm64-")
		if err != nil {
			arm64Built.err = err
			return
		}
		arm64Built.kernel, arm64Built.dir = kernel, dir
		arm64Built.err = buildARM64(dir)
	})
	if arm64Built.err != nil {
		t.Fatal(arm64Built.err)
	}
}

func buildARM64(dir string) error {
	b := &arm64Built
	initBin := filepath.Join(dir, "ramboot-init-arm64")
	if err := goBuildArch(initBin, "github.com/ramboot/ramboot/cmd/ramboot-init", "arm64"); err != nil {
		return err
	}
	if a, err := initramfs.ModulesArch(b.kernel.Modules); err != nil || a != initramfs.ARM64 {
		return fmt.Errorf("the arm64 kernel's modules read as %q, %v", a, err)
	}
	b.initrd = filepath.Join(dir, "initrd.cpio.zst")
	if err := writeInitramfs(b.initrd, initramfs.Spec{Init: initBin, Modules: b.kernel.Modules}); err != nil {
		return err
	}
	testInit := filepath.Join(dir, "testinit")
	if err := goBuildArch(testInit, "github.com/ramboot/ramboot/internal/vmtest/testinit", "arm64"); err != nil {
		return err
	}
	bin, err := os.ReadFile(testInit)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "rootfs.tar"), testImage(bin, "arm64-ok"), 0o644); err != nil {
		return err
	}
	if out, err := exec.Command("zstd", "-q", "-f", "-3", filepath.Join(dir, "rootfs.tar")).CombinedOutput(); err != nil {
		return fmt.Errorf("zstd: %v: %s", err, out)
	}
	// Debian 12's arm64 vmlinuz is the Image itself; Ubuntu's is gzipped, the form kexec
	// must unpack: serve it that way.
	k, err := os.ReadFile(b.kernel.Vmlinuz)
	if err != nil {
		return err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	zw.Write(k)
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "vmlinuz.gz"), gz.Bytes(), 0o644); err != nil {
		return err
	}
	initrd, err := os.ReadFile(b.initrd)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "ramboot-initrd.cpio.zst"), initrd, 0o644); err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(l, http.FileServer(http.Dir(dir)))
	b.base = fmt.Sprintf("http://10.0.2.2:%d", l.Addr().(*net.TCPAddr).Port)
	return nil
}

const arm64Menu = `title: arm64 lab
default: %s
timeout: %s
entries:
  - name: rescue
    title: Rescue image (arm64)
    ramroot: {url: BASE/rootfs.tar.zst}
  - name: maint
    title: Maintenance kernel (gzip'd vmlinuz)
    kexec:
      kernel: BASE/vmlinuz.gz
      initrd: [BASE/ramboot-initrd.cpio.zst]
      cmdline: console=ttyAMA0 panic=-1 ramboot.timeout=0 ramboot.onerror=poweroff %s
`

// serveARM64Menu writes a menu beside the arm64 files and returns its URL for the guest.
func serveARM64Menu(t *testing.T, name, def, timeout, marker string) string {
	t.Helper()
	text := strings.ReplaceAll(fmt.Sprintf(arm64Menu, def, timeout, marker), "BASE", arm64Built.base)
	if err := os.WriteFile(filepath.Join(arm64Built.dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return arm64Built.base + "/" + name
}

// TestVMARM64Menu: Debian's arm64 cloud kernel with ramboot's arm64 initramfs on virt with
// UEFI (AAVMF): modules for its virtio NIC, DHCP, the menu on ttyAMA0 counting down, and the
// arm64 image boots to its init.
func TestVMARM64Menu(t *testing.T) {
	setupARM64(t)
	if st, err := os.Stat(arm64Built.initrd); err == nil {
		t.Logf("arm64 initramfs for %s: %.1f MiB", arm64Built.kernel.Version, float64(st.Size())/(1<<20))
	}
	vm := vmtest.Start(t, vmtest.Options{
		Kernel: arm64Built.kernel, Initrd: arm64Built.initrd, Firmware: vmtest.UEFI,
		Append: fmt.Sprintf("ramboot.menu=%s BOOTIF=%s ramboot.onerror=poweroff",
			serveARM64Menu(t, "menu.yaml", "rescue", "2s", ""), bootif(mac1)),
		NICs: []vmtest.NIC{{Model: "virtio-net-pci", MAC: mac1}},
	})
	vm.Expect(`ramboot: starting`, bootTimeout)
	t.Logf("QEMU start → ramboot's /init: %v", vm.Elapsed().Round(100*time.Millisecond))
	vm.Expect(`network: \S+ `+mac1+` 10\.0\.2\.15/24`, bootTimeout)
	vm.ExpectScreen(`(?s)Rescue image \(arm64\) +\(default\).*Maintenance kernel.*Booting rescue in \d+s`, bootTimeout)
	vm.Expect(`TESTINIT-MARKER arm64-ok`, bootTimeout)
	t.Logf("QEMU start → the image's init: %v", vm.Elapsed().Round(100*time.Millisecond))
	vm.Expect(`TESTINIT-MODULES `+regexp.QuoteMeta(arm64Built.kernel.Version), time.Minute)
	vm.Expect(`TESTINIT-DONE`, time.Minute)
	vm.Wait(time.Minute)
}

// TestVMARM64Kexec: a kexec entry boots an arm64 maintenance kernel from a gzip'd vmlinuz,
// which arm64's kexec calls cannot take: ramboot unpacks its Image first. (Debian 12's arm64
// kernel has no kexec_file_load: the kexec_load fallback loads it.) The second kernel's /init
// sees the entry's command line.
func TestVMARM64Kexec(t *testing.T) {
	setupARM64(t)
	marker := "arm64-kexec-4242"
	vm := vmtest.Start(t, vmtest.Options{
		Kernel: arm64Built.kernel, Initrd: arm64Built.initrd,
		Append: fmt.Sprintf("ramboot.menu=%s BOOTIF=%s ramboot.onerror=poweroff",
			serveARM64Menu(t, "kexec.yaml", "maint", "0", marker), bootif(mac1)),
		NICs: []vmtest.NIC{{Model: "virtio-net-pci", MAC: mac1}},
	})
	vm.Expect(`kexec: loading with command line`, bootTimeout)
	vm.Expect(`the kernel is a gzip-compressed arm64 Image: unpacked its Image`, time.Minute)
	m := vm.Expect(`ramboot: starting; kernel command line: (.*)\r?\n`, bootTimeout)
	if !strings.Contains(m[1], marker) || !strings.Contains(m[1], "BOOTIF="+bootif(mac1)) {
		t.Fatalf("second kernel's command line %q lacks the marker or BOOTIF", m[1])
	}
	t.Logf("QEMU start → second kernel's /init: %v", vm.Elapsed().Round(100*time.Millisecond))
	vm.Wait(bootTimeout)
}
