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
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ramboot/ramboot/internal/initramfs"
	"github.com/ramboot/ramboot/internal/uki"
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

// goBuildArch builds pkg statically for linux/arch, as the Makefile builds /init (goBuild's
// flags).
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

// TestVMARM64Menu: an arm64 UKI, built by ramboot on systemd's linuxaa64 stub from Debian's
// arm64 cloud kernel and ramboot's arm64 initramfs, HTTP-booted by UEFI (AAVMF) on virt: the
// boot NIC from the firmware (no BOOTIF=), modules for its virtio NIC, DHCP, the menu found
// beside the UKI on ttyAMA0 counting down, and the arm64 image boots to its init.
func TestVMARM64Menu(t *testing.T) {
	setupARM64(t)
	if st, err := os.Stat(arm64Built.initrd); err == nil {
		t.Logf("arm64 initramfs for %s: %.1f MiB", arm64Built.kernel.Version, float64(st.Size())/(1<<20))
	}
	serveARM64Menu(t, "menu.yaml", "rescue", "2s", "")
	stubFile := filepath.Join(filepath.Dir(filepath.Dir(arm64Built.kernel.Vmlinuz)), "usr/lib/systemd/boot/efi/linuxaa64.efi.stub")
	stub, err := os.ReadFile(stubFile)
	if err != nil {
		vmtest.Missing(t, stubFile+" (scripts/get-kernel.sh cloud-arm64 fetches arm64's systemd-boot-efi)")
	}
	kernel, err := os.ReadFile(arm64Built.kernel.Vmlinuz)
	if err != nil {
		t.Fatal(err)
	}
	initrd, err := os.ReadFile(arm64Built.initrd)
	if err != nil {
		t.Fatal(err)
	}
	efi, err := uki.Build(uki.Spec{Stub: stub, Kernel: kernel, Initrd: initrd, Release: arm64Built.kernel.Version, Version: "vmtest",
		Cmdline: "console=ttyAMA0 ramboot.menu=menu.yaml ramboot.onerror=poweroff"})
	if err != nil {
		t.Fatalf("arm64 UKI: %v", err)
	}
	if err := os.WriteFile(filepath.Join(arm64Built.dir, "ramboot-arm64.efi"), efi, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("arm64 UKI: %.1f MiB", float64(len(efi))/(1<<20))
	vm := vmtest.Start(t, vmtest.Options{
		Arch: vmtest.ARM64, Firmware: vmtest.UEFI,
		NICs: []vmtest.NIC{{Model: "virtio-net-pci", MAC: mac1, HTTPBoot: arm64Built.base + "/ramboot-arm64.efi", BootIndex: 1}},
	})
	vm.Expect(`EFI stub: Loaded initrd from LINUX_EFI_INITRD_MEDIA_GUID`, 5*time.Minute)
	vm.Expect(`ramboot: starting`, bootTimeout)
	t.Logf("QEMU start → ramboot's /init: %v", vm.Elapsed().Round(100*time.Millisecond))
	vm.Expect(`BOOTIF `+mac1+` from the firmware's boot entry`, bootTimeout)
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

// TestVMARM64Registry: an OCI index with an amd64 and an arm64 image (each pushed by ramboot
// image --platform, the index by go-containerregistry, to Debian's docker-registry): the
// arm64 machine boots the arm64 root, whose testinit is an arm64 binary.
func TestVMARM64Registry(t *testing.T) {
	setupARM64(t)
	regBin := vmtest.Tool(t, "docker-registry")
	tools := t.TempDir()
	rb := filepath.Join(tools, "ramboot")
	if err := goBuildArch(rb, "github.com/ramboot/ramboot/cmd/ramboot", runtime.GOARCH); err != nil {
		t.Fatal(err)
	}
	addr := startRegistry(t, regBin, tools)
	repo := addr + "/lab/multi"
	for _, arch := range []string{"amd64", "arm64"} {
		root := filepath.Join(tools, "root-"+arch)
		for _, d := range []string{"sbin", "lib", "etc/systemd/network", "proc", "sys", "dev", "run", "tmp"} {
			os.MkdirAll(filepath.Join(root, d), 0o755)
		}
		if err := goBuildArch(filepath.Join(root, "lib/testinit"), "github.com/ramboot/ramboot/internal/vmtest/testinit", arch); err != nil {
			t.Fatal(err)
		}
		os.Symlink("/lib/testinit", filepath.Join(root, "sbin/init"))
		os.WriteFile(filepath.Join(root, "etc/marker"), []byte("index-"+arch+"\n"), 0o644)
		if out, err := exec.Command(rb, "image", "-q", "--platform", "linux/"+arch, "dir:"+root, "docker://"+repo+":"+arch).CombinedOutput(); err != nil {
			t.Fatalf("ramboot image --platform linux/%s: %v: %s", arch, err, out)
		}
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range []string{"amd64", "arm64"} {
		ref, err := name.ParseReference(repo+":"+arch, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		img, err := remote.Image(ref)
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	ref, err := name.ParseReference(repo+":v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	port := addr[strings.LastIndex(addr, ":")+1:]
	vm := vmtest.Start(t, vmtest.Options{
		Kernel: arm64Built.kernel, Initrd: arm64Built.initrd,
		Append: fmt.Sprintf("ramroot=docker://10.0.2.2:%s/lab/multi:v1 BOOTIF=%s ramboot.onerror=poweroff", port, bootif(mac1)),
		NICs:   []vmtest.NIC{{Model: "virtio-net-pci", MAC: mac1}},
	})
	vm.Expect(`TESTINIT-MARKER index-arm64`, bootTimeout)
	t.Logf("QEMU start → the arm64 root's init: %v", vm.Elapsed().Round(100*time.Millisecond))
	vm.Expect(`TESTINIT-DONE`, time.Minute)
}

// startRegistry runs Debian's docker-registry on a free loopback port (QEMU's user network
// reaches it as 10.0.2.2) until the test ends, and returns its address.
func startRegistry(t *testing.T, bin, dir string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := filepath.Join(dir, "registry.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "data"), addr)), 0o644)
	reg := exec.Command(bin, "serve", cfg)
	var regLog strings.Builder
	reg.Stdout, reg.Stderr = &regLog, &regLog
	if err := reg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		reg.Process.Kill()
		reg.Wait()
	})
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			return addr
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("docker-registry did not come up:\n%s", regLog.String())
		}
	}
}
