package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
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

	"github.com/klauspost/compress/zstd"

	"github.com/ramboot/ramboot/internal/initramfs"
	"github.com/ramboot/ramboot/internal/vmtest"
)

// The VM tests boot Debian's cloud kernel with ramboot's initramfs in QEMU and read the serial
// console. Everything is built once per test binary.
var (
	buildOnce sync.Once
	built     struct {
		kernel vmtest.Kernel
		initrd string // path, .cpio.zst
		dir    string // served over HTTP
		base   string // the server's URL as the guest sees it
		sums   map[string]string
		err    error
	}
)

const bootTimeout = 3 * time.Minute

// goBuild builds pkg as the Makefile builds /init: static, stripped, and without net/http's
// HTTP/2 (the nethttpomithttp2 tag: 0.34 MiB that /init's HTTP/1.1 servers do not need).
func goBuild(out, pkg string) error { return goBuildArch(out, pkg, "amd64") }

// setup builds /init, the initramfs, the test images, and serves them.
func setup(t *testing.T) {
	t.Helper()
	kernel := vmtest.FindKernel(t)
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ramboot-vm-")
		if err != nil {
			built.err = err
			return
		}
		built.kernel, built.dir, built.sums = kernel, dir, map[string]string{}
		built.err = buildAll(dir)
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
}

func buildAll(dir string) error {
	initBin := filepath.Join(dir, "ramboot-init")
	if err := goBuild(initBin, "github.com/ramboot/ramboot/cmd/ramboot-init"); err != nil {
		return err
	}
	built.initrd = filepath.Join(dir, "initrd.cpio.zst")
	if err := writeInitramfs(built.initrd, initramfs.Spec{Init: initBin, Modules: built.kernel.Modules}); err != nil {
		return err
	}
	testInit := filepath.Join(dir, "testinit")
	if err := goBuild(testInit, "github.com/ramboot/ramboot/internal/vmtest/testinit"); err != nil {
		return err
	}
	bin, err := os.ReadFile(testInit)
	if err != nil {
		return err
	}
	img := testImage(bin, "ramroot-ok")
	if err := os.WriteFile(filepath.Join(dir, "rootfs.tar"), img, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "second.tar"), testImage(bin, "second-ok"), 0o644); err != nil {
		return err
	}
	for _, c := range [][]string{{"xz", "-T2", "-1", "-k", "-f"}, {"zstd", "-q", "-f", "-3"}, {"zstd", "-q", "-f", "-3", "second.tar"}} {
		args := c[1:]
		if !strings.HasSuffix(args[len(args)-1], ".tar") {
			args = append(args, "rootfs.tar")
		}
		for i := range args {
			if strings.HasSuffix(args[i], ".tar") {
				args[i] = filepath.Join(dir, args[i])
			}
		}
		cmd := exec.Command(c[0], args...)
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", c[0], err, b)
		}
	}
	for _, n := range []string{"rootfs.tar.xz", "rootfs.tar.zst", "ramboot-initrd.cpio.zst"} {
		if n == "ramboot-initrd.cpio.zst" {
			b, _ := os.ReadFile(built.initrd)
			os.WriteFile(filepath.Join(dir, n), b, 0o644)
		}
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return err
		}
		s := sha256.Sum256(b)
		built.sums[n] = hex.EncodeToString(s[:])
	}
	k, _ := os.ReadFile(built.kernel.Vmlinuz)
	os.WriteFile(filepath.Join(dir, "vmlinuz"), k, 0o644)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServer(http.Dir(dir)))
	mux.HandleFunc("/slow/", func(w http.ResponseWriter, r *http.Request) { trickle(w, r, dir) })
	go http.Serve(l, mux)
	built.base = fmt.Sprintf("http://10.0.2.2:%d", l.Addr().(*net.TCPAddr).Port)
	return nil
}

// trickle serves a file of dir at about 16 KiB/s: a download that takes long enough to be
// interrupted on the console.
func trickle(w http.ResponseWriter, r *http.Request, dir string) {
	b, err := os.ReadFile(filepath.Join(dir, filepath.Base(r.URL.Path)))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	for len(b) > 0 {
		n := min(len(b), 4096)
		if _, err := w.Write(b[:n]); err != nil {
			return
		}
		w.(http.Flusher).Flush()
		b = b[n:]
		select {
		case <-r.Context().Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func writeInitramfs(out string, s initramfs.Spec) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := zstd.NewWriter(f)
	if err != nil {
		return err
	}
	if _, err := initramfs.Write(w, s); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return f.Close()
}

// testImage is a root file system with testinit as /sbin/init (reached through a symlink, as
// on Debian), the directories a Debian root has for network configuration, and a marker.
func testImage(initBin []byte, marker string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(n string) { tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeDir, Mode: 0o755}) }
	file := func(n string, b []byte, mode int64) {
		tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(b))})
		tw.Write(b)
	}
	for _, d := range []string{"./", "bin/", "sbin/", "lib/", "etc/", "etc/systemd/", "etc/systemd/network/", "etc/network/", "etc/network/interfaces.d/", "proc/", "sys/", "dev/", "run/", "tmp/"} {
		dir(d)
	}
	file("lib/testinit", initBin, 0o755)
	tw.WriteHeader(&tar.Header{Name: "sbin/init", Typeflag: tar.TypeSymlink, Linkname: "/lib/testinit"})
	file("etc/marker", []byte(marker+"\n"), 0o644)
	tw.Close()
	return buf.Bytes()
}

const mac1, mac2 = "52:54:00:12:34:56", "52:54:00:ab:cd:ef"

func bootif(mac string) string { return "01-" + strings.ReplaceAll(mac, ":", "-") }

func TestVMRamroot(t *testing.T) {
	setup(t)
	for _, img := range []string{"rootfs.tar.xz", "rootfs.tar.zst"} {
		t.Run(img, func(t *testing.T) {
			vm := vmtest.Start(t, vmtest.Options{
				Kernel: built.kernel, Initrd: built.initrd,
				Append: fmt.Sprintf("boot=ramdisk ramroot=%s/%s ramroot.sha256=%s BOOTIF=%s ramboot.onerror=poweroff", built.base, img, built.sums[img], bootif(mac1)),
				NICs:   []vmtest.NIC{{Model: "virtio-net-pci", MAC: mac1}},
			})
			vm.Expect(`ramboot: starting`, bootTimeout)
			vm.Expect(`sha256 [0-9a-f]+… verified`, bootTimeout)
			vm.Expect(`TESTINIT-MARKER ramroot-ok`, bootTimeout)
			t.Logf("QEMU start → marker: %v", vm.Elapsed().Round(100*time.Millisecond))
			vm.Expect(`TESTINIT-ROOTFS tmpfs`, time.Minute)
			// The image has no modules: the running kernel's were copied in.
			vm.Expect(`TESTINIT-MODULES `+regexp.QuoteMeta(built.kernel.Version), time.Minute)
			vm.Expect(`TESTINIT-DONE`, time.Minute)
			vm.Wait(time.Minute)
		})
	}
}

func TestVMBadChecksum(t *testing.T) {
	setup(t)
	bad := strings.Repeat("ab", 32)
	vm := vmtest.Start(t, vmtest.Options{
		Kernel: built.kernel, Initrd: built.initrd,
		Append: fmt.Sprintf("ramroot=%s/rootfs.tar.zst ramroot.sha256=%s ramboot.onerror=poweroff", built.base, bad),
		NICs:   []vmtest.NIC{{Model: "virtio-net-pci", MAC: mac1}},
	})
	vm.Expect(`checksum mismatch: expected sha256 `+bad+`, got `+built.sums["rootfs.tar.zst"], bootTimeout)
	vm.ExpectNot(`TESTINIT-MARKER|switching to the new root`, `powering off`, time.Minute)
	vm.Wait(time.Minute)
}

func TestVMTwoNICs(t *testing.T) {
	setup(t)
	// The first NIC (vmxnet3) gets a lease but cannot reach the server; BOOTIF names the
	// second (virtio): ramboot must use it and write it into the image's config.
	vm := vmtest.Start(t, vmtest.Options{
		Kernel: built.kernel, Initrd: built.initrd,
		Append: fmt.Sprintf("ramroot=%s/rootfs.tar.zst BOOTIF=%s ramboot.onerror=poweroff", built.base, bootif(mac2)),
		NICs:   []vmtest.NIC{{Model: "vmxnet3", MAC: mac1, Restrict: true}, {Model: "virtio-net-pci", MAC: mac2}},
	})
	m := vm.Expect(`network: (\S+) `+mac2, bootTimeout)
	t.Logf("boot NIC in the initramfs: %s", m[1])
	vm.Expect(`TESTINIT-MARKER ramroot-ok`, bootTimeout)
	vm.Expect(`(?i)MACAddress=`+mac2, time.Minute)
	vm.Expect(`TESTINIT-DONE`, time.Minute)
	if strings.Contains(strings.ToLower(vm.Console()), "macaddress="+mac1) {
		t.Error("the other NIC was written into the image's config")
	}
}

func TestVMStaticIP(t *testing.T) {
	setup(t)
	vm := vmtest.Start(t, vmtest.Options{
		Kernel: built.kernel, Initrd: built.initrd,
		Append: fmt.Sprintf("ramroot=%s/rootfs.tar.zst ip=10.0.2.99::10.0.2.2:255.255.255.0:rambox::off rd.route=10.9.0.0/16:10.0.2.2 ramboot.onerror=poweroff", built.base),
		NICs:   []vmtest.NIC{{Model: "virtio-net-pci", MAC: mac1}},
	})
	vm.Expect(`netup: eth0: route 10\.9\.0\.0/16 via 10\.0\.2\.2 \(rd\.route=\)`, bootTimeout)
	vm.Expect(`network: \S+ `+mac1+` 10\.0\.2\.99/24`, bootTimeout)
	vm.Expect(`TESTINIT-MARKER ramroot-ok`, bootTimeout)
	vm.Expect(`Address=10\.0\.2\.99/24`, time.Minute)
	vm.Expect(`TESTINIT-DONE`, time.Minute)
}

func TestVMKexec(t *testing.T) {
	setup(t)
	marker := "kexec-marker-4242"
	vm := vmtest.Start(t, vmtest.Options{
		Kernel: built.kernel, Initrd: built.initrd,
		Append: fmt.Sprintf(`BOOTIF=%s ramboot.kernel=%s/vmlinuz ramboot.initrd=%s/ramboot-initrd.cpio.zst "ramboot.append=console=ttyS0 panic=-1 %s ramboot.timeout=0 ramboot.onerror=poweroff"`,
			bootif(mac1), built.base, built.base, marker),
		NICs: []vmtest.NIC{{Model: "virtio-net-pci", MAC: mac1}},
	})
	vm.Expect(`kexec: loading with command line`, bootTimeout)
	m := vm.Expect(`ramboot: starting; kernel command line: (.*)\r?\n`, bootTimeout)
	if !strings.Contains(m[1], marker) || !strings.Contains(m[1], "BOOTIF="+bootif(mac1)) {
		t.Fatalf("second kernel's command line %q lacks the marker or BOOTIF", m[1])
	}
	t.Logf("QEMU start → second kernel's /init: %v", vm.Elapsed().Round(100*time.Millisecond))
	vm.Wait(bootTimeout)
}

// TestVMEmbedded boots an image embedded in the initramfs (ramroot= a local path), with no NIC,
// in each compression: a small local .xz once panicked the loader's space check (PID 1: a
// kernel panic).
func TestVMEmbedded(t *testing.T) {
	setup(t)
	for _, img := range []string{"rootfs.tar.zst", "rootfs.tar.xz"} {
		t.Run(img, func(t *testing.T) {
			initrd := filepath.Join(built.dir, "embedded-"+img+".cpio.zst")
			if err := writeInitramfs(initrd, initramfs.Spec{Init: filepath.Join(built.dir, "ramboot-init"), Modules: built.kernel.Modules,
				EmbedRootfs: filepath.Join(built.dir, img)}); err != nil {
				t.Fatal(err)
			}
			vm := vmtest.Start(t, vmtest.Options{
				Kernel: built.kernel, Initrd: initrd,
				Append: "ramroot=/rootfs/" + img + " ramboot.onerror=poweroff",
			})
			vm.Expect(`TESTINIT-MARKER ramroot-ok`, bootTimeout)
			vm.Expect(`TESTINIT-DONE`, time.Minute)
			if strings.Contains(vm.Console(), "ramboot: network:") {
				t.Error("brought up a network that a local image does not need")
			}
		})
	}
}
