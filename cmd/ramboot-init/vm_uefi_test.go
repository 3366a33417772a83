package main

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ramboot/ramboot/internal/authenticode"
	"github.com/ramboot/ramboot/internal/peimage"
	"github.com/ramboot/ramboot/internal/pemkey"
	"github.com/ramboot/ramboot/internal/uki"
	"github.com/ramboot/ramboot/internal/vmtest"
)

// UEFI in QEMU: Debian's OVMF, its Secure Boot test key (enrolled in PK, KEK and db of
// OVMF_VARS_4M.snakeoil.fd), systemd's stub, and UKIs built and signed by ramboot's own code.
const (
	snakeoilKey      = "/usr/share/ovmf/PkKek-1-snakeoil.key"
	snakeoilCert     = "/usr/share/ovmf/PkKek-1-snakeoil.pem"
	snakeoilPassword = "snakeoil"
	x64Stub          = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"
)

var (
	dbOnce sync.Once
	db     struct {
		cert *x509.Certificate
		key  crypto.Signer
		err  error
	}
)

// dbKey is the snakeoil key and certificate: what the firmware's db trusts.
func dbKey(t *testing.T) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	for _, f := range []string{snakeoilKey, snakeoilCert, x64Stub} {
		if _, err := os.Stat(f); err != nil {
			vmtest.Missing(t, f+" (ovmf, systemd-boot-efi)")
		}
	}
	dbOnce.Do(func() {
		kb, err := os.ReadFile(snakeoilKey)
		if err != nil {
			db.err = err
			return
		}
		cb, err := os.ReadFile(snakeoilCert)
		if err != nil {
			db.err = err
			return
		}
		if db.cert, db.err = pemkey.Certificate(cb); db.err != nil {
			return
		}
		db.key, db.err = pemkey.PrivateKey(kb, func() (string, error) { return snakeoilPassword, nil })
	})
	if db.err != nil {
		t.Fatal(db.err)
	}
	return db.cert, db.key
}

// buildUKI writes the UKI of the test kernel and initramfs with cmdline into built.dir's uefi/
// directory as name, signed with the db key when sign is set, and returns its URL.
func buildUKI(t *testing.T, name, cmdline string, sign bool) string {
	t.Helper()
	cert, key := dbKey(t)
	stub, err := os.ReadFile(x64Stub)
	if err != nil {
		t.Fatal(err)
	}
	kernel, err := os.ReadFile(built.kernel.Vmlinuz)
	if err != nil {
		t.Fatal(err)
	}
	initrd, err := os.ReadFile(built.initrd)
	if err != nil {
		t.Fatal(err)
	}
	img, err := uki.Build(uki.Spec{Stub: stub, Kernel: kernel, Initrd: initrd, Cmdline: cmdline, Version: "vmtest"})
	if err != nil {
		t.Fatal(err)
	}
	if sign {
		if img, err = authenticode.Sign(img, cert, key); err != nil {
			t.Fatal(err)
		}
	}
	return serveUEFI(t, name, img)
}

// maintenanceKernel writes the test kernel as name into uefi/: without Debian's signature
// (the db does not trust it, and the kernel checks only a file's first signature), signed with
// the db key when sign is set. It returns the file's URL.
func maintenanceKernel(t *testing.T, name string, sign bool) string {
	t.Helper()
	cert, key := dbKey(t)
	kernel, err := os.ReadFile(built.kernel.Vmlinuz)
	if err != nil {
		t.Fatal(err)
	}
	if kernel, err = peimage.StripCertificates(kernel); err != nil {
		t.Fatal(err)
	}
	if sign {
		if kernel, err = authenticode.Sign(kernel, cert, key); err != nil {
			t.Fatal(err)
		}
	}
	return serveUEFI(t, name, kernel)
}

// serveUEFI writes b as uefi/name in the directory the VM tests serve and returns its URL.
func serveUEFI(t *testing.T, name string, b []byte) string {
	t.Helper()
	dir := filepath.Join(built.dir, "uefi")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return built.base + "/uefi/" + name
}

// uefiNICs are two NICs of which the firmware boots the second (bootindex=1) from url over HTTP:
// without BOOTIF= on the command line, /init must bring up that one.
func uefiNICs(url string) []vmtest.NIC {
	return []vmtest.NIC{
		{Model: "virtio-net-pci", MAC: mac1},
		{Model: "virtio-net-pci", MAC: mac2, HTTPBoot: url, BootIndex: 1},
	}
}

// TestVMUEFIHTTPBoot: OVMF with Secure Boot on and a TPM HTTP-boots a UKI that ramboot built
// and signed with the db key. Its command line names the menu relative to the UKI's own URL and
// has no BOOTIF=: /init takes the boot NIC from the firmware's boot entry, finds the menu beside
// the UKI, and boots the image. The kernel reports Secure Boot and lockdown; in the booted
// image, PCR 11 (the stub's measurements of the UKI's sections) and PCR 12 (ramboot's) replay
// from their event logs to what the TPM reads.
func TestVMUEFIHTTPBoot(t *testing.T) {
	setup(t)
	serveUEFI(t, "lab.yaml", []byte("title: UEFI lab\ndefault: rescue\ntimeout: 0\nentries:\n  - name: rescue\n    title: Rescue (beside the UKI)\n    ramroot: ../rootfs.tar.zst\n"))
	efi := buildUKI(t, "ramboot.efi", "console=ttyS0 ramboot.menu=lab.yaml ramboot.onerror=poweroff", true)
	vm := vmtest.Start(t, vmtest.Options{Firmware: vmtest.SecureBoot, TPM: true, NICs: uefiNICs(efi)})
	vm.Expect(`EFI stub: UEFI Secure Boot is enabled`, 5*time.Minute)
	firmware := vm.Elapsed()
	vm.Expect(`Kernel is locked down from EFI Secure Boot`, time.Minute)
	vm.Expect(`BOOTIF `+mac2+` from the firmware's boot entry Boot[0-9A-F]{4} "UEFI HTTPv4 \(MAC:525400ABCDEF\)" \(PciRoot\(0x0\)/Pci\([^)]*\)/MAC\(525400abcdef,0x1\)/IPv4\(\.\.\.\)/Uri\(\)\)`, bootTimeout)
	vm.Expect(`network: eth1 `+mac2, bootTimeout)
	vm.Expect(`ramboot.menu=lab.yaml: `+regexp.QuoteMeta(built.base)+`/uefi/lab.yaml \(relative to `+regexp.QuoteMeta(efi)+`, from the DHCP boot file of eth1\)`, time.Minute)
	vm.Expect(`TESTINIT-MARKER ramroot-ok`, bootTimeout)
	t.Logf("firmware start to the stub: %v; to the image's init: %v", firmware.Round(100*time.Millisecond), vm.Elapsed().Round(100*time.Millisecond))
	replayed, tpm := regexp.MustCompile(`replayed=([0-9a-f]{64})`), regexp.MustCompile(`tpm=([0-9a-f]{64})`)
	for _, pcr := range []string{"11", "12"} {
		line := vm.Expect(`TESTINIT-PCR`+pcr+` [^\r\n]*\r?\n`, time.Minute)[0]
		r, v := replayed.FindStringSubmatch(line), tpm.FindStringSubmatch(line)
		if r == nil || v == nil || r[1] != v[1] || v[1] == strings.Repeat("0", 64) {
			t.Errorf("PCR %s: the event log does not replay to what the TPM reads: %s", pcr, line)
		}
		t.Logf("%s", line)
	}
	vm.Wait(time.Minute)
}

// TestVMUEFIKexecSecureBoot: under Secure Boot the kernel is locked down. A maintenance kernel
// without a signature is refused, in one sentence that names it, at once and not retried, and
// the menu stays usable; the same kernel signed with the db key kexecs (the platform keyring
// trusts db), boots the image, and the next kernel's command line carries the entry's marker.
func TestVMUEFIKexecSecureBoot(t *testing.T) {
	setup(t)
	unsigned := maintenanceKernel(t, "vmlinuz-unsigned", false)
	signed := maintenanceKernel(t, "vmlinuz-signed", true)
	menu := fmt.Sprintf(`title: Maintenance
default: unsigned
timeout: 0
entries:
  - name: unsigned
    title: Maintenance kernel, unsigned
    kexec: {kernel: vmlinuz-unsigned, initrd: [../ramboot-initrd.cpio.zst], cmdline: "console=ttyS0 ramroot=%[1]s/rootfs.tar.zst"}
  - name: signed
    title: Maintenance kernel, signed by db
    kexec: {kernel: vmlinuz-signed, initrd: [../ramboot-initrd.cpio.zst], cmdline: "console=ttyS0 kexec-marker=signed-ok ramroot=%[1]s/rootfs.tar.zst"}
`, built.base)
	serveUEFI(t, "maint.yaml", []byte(menu))
	efi := buildUKI(t, "maint.efi", "console=ttyS0 ramboot.menu=maint.yaml", true)
	vm := vmtest.Start(t, vmtest.Options{Firmware: vmtest.SecureBoot, NICs: uefiNICs(efi)})
	vm.Expect(`the kernel is locked down by Secure Boot and `+regexp.QuoteMeta(unsigned)+` is not signed by a key it trusts`, 5*time.Minute)
	vm.ExpectScreen(`(?s)Maintenance kernel, unsigned.*Maintenance kernel, signed by db.*locked down by Secure Boot`, time.Minute)
	if c := vm.Console(); strings.Contains(c, "retrying in") || strings.Contains(c, "trying kexec_load") {
		t.Errorf("the refusal was retried or kexec_load tried")
	}
	vm.Send(keyDown)
	vm.Send(keyEnter)
	vm.Expect(regexp.QuoteMeta(signed), time.Minute)
	vm.Expect(`Command line: console=ttyS0 kexec-marker=signed-ok`, bootTimeout)
	vm.Expect(`TESTINIT-MARKER ramroot-ok`, bootTimeout)
	vm.Expect(`TESTINIT-CMDLINE [^\r\n]*kexec-marker=signed-ok`, time.Minute)
	vm.Wait(time.Minute)
}

// TestVMUEFISecureBootRefused: the firmware refuses a UKI that is not signed and one changed by
// one byte after signing (two NICs, one each), and nothing boots.
func TestVMUEFISecureBootRefused(t *testing.T) {
	setup(t)
	unsigned := buildUKI(t, "unsigned.efi", "console=ttyS0", false)
	tamperedURL := buildUKI(t, "tampered.efi", "console=ttyS0", true)
	p := filepath.Join(built.dir, "uefi", "tampered.efi")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("console=ttyS0")) // in .cmdline: the command line the stub would boot
	b[i] = 'C'
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	vm := vmtest.Start(t, vmtest.Options{Firmware: vmtest.SecureBoot, NICs: []vmtest.NIC{
		{Model: "virtio-net-pci", MAC: mac1, HTTPBoot: unsigned, BootIndex: 1},
		{Model: "virtio-net-pci", MAC: mac2, HTTPBoot: tamperedURL, BootIndex: 2},
	}})
	vm.Expect(`BdsDxe: failed to load Boot[0-9A-F]{4} "UEFI HTTPv4 \(MAC:525400123456\)"[^\r\n]*: Access Denied`, 5*time.Minute)
	vm.Expect(`BdsDxe: failed to load Boot[0-9A-F]{4} "UEFI HTTPv4 \(MAC:525400ABCDEF\)"[^\r\n]*: Access Denied`, 5*time.Minute)
	vm.Expect(`BdsDxe: No bootable option or device was found`, 5*time.Minute)
	if c := vm.Console(); strings.Contains(c, "EFI stub") || strings.Contains(c, "Linux version") {
		t.Error("a refused UKI started")
	}
	t.Logf("both refused after %v", vm.Elapsed().Round(100*time.Millisecond))
}

// TestVMUEFIPXE: UEFI PXE (TFTP) of a UKI, without Secure Boot: the same file boots from TFTP.
// Its command line names the image by its full URL: a TFTP boot file is no http origin.
func TestVMUEFIPXE(t *testing.T) {
	setup(t)
	buildUKI(t, "pxe.efi", "console=ttyS0 ramroot="+built.base+"/rootfs.tar.zst", false)
	vm := vmtest.Start(t, vmtest.Options{Firmware: vmtest.UEFI, NICs: []vmtest.NIC{
		{Model: "virtio-net-pci", MAC: mac1, TFTP: filepath.Join(built.dir, "uefi"), BootFile: "pxe.efi", BootIndex: 1},
	}})
	vm.Expect(`BdsDxe: (loading|starting) Boot[0-9A-F]{4} "UEFI PXEv4 \(MAC:525400123456\)"`, 5*time.Minute)
	vm.Expect(`BOOTIF `+mac1+` from the firmware's boot entry`, bootTimeout)
	vm.Expect(`TESTINIT-MARKER ramroot-ok`, bootTimeout)
	t.Logf("firmware start to the image's init over TFTP: %v", vm.Elapsed().Round(100*time.Millisecond))
	vm.Wait(time.Minute)
}
