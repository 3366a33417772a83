package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ramboot/ramboot/internal/vmtest"
)

// debianImage builds (once, cached by the script) the Debian image of scripts/debian-rootfs.sh
// and links it into built.dir. It returns the name it is served as and its sha256. CI must
// build it; elsewhere the test is skipped when it cannot be built (not root, no debootstrap).
func debianImage(t *testing.T) (name, sum string) {
	t.Helper()
	out := os.Getenv("RAMBOOT_DEBIAN_DIR")
	if out == "" {
		out = "/var/cache/ramboot/debian-rootfs.tar.zst"
	}
	if _, err := os.Stat(out + ".sha256"); err != nil {
		var why string
		if os.Geteuid() != 0 {
			why = "root (to build " + out + " with scripts/debian-rootfs.sh)"
		} else if _, err := debianLookPath("debootstrap"); err != nil {
			why = "debootstrap"
		}
		if why != "" {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s missing: .ci/run must provide it, the Debian VM test must run in CI", why)
			}
			t.Skipf("%s missing", why)
		}
	}
	start := time.Now()
	cmd := exec.Command("bash", "../../scripts/debian-rootfs.sh")
	cmd.Env = append(os.Environ(), "PATH="+os.Getenv("PATH")+":/usr/sbin:/sbin")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/debian-rootfs.sh: %v\n%s", err, stderr.Bytes())
	}
	path := strings.TrimSpace(string(b))
	t.Logf("Debian image %s: ready in %v %s", path, time.Since(start).Round(100*time.Millisecond), strings.TrimSpace(stderr.String()))
	s, err := os.ReadFile(path + ".sha256")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(s))
	if len(f) == 0 {
		t.Fatalf("%s.sha256 is empty", path)
	}
	name = "debian-rootfs.tar.zst"
	link := filepath.Join(built.dir, name)
	os.Remove(link)
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err == nil {
		t.Logf("Debian image size: %.1f MiB", float64(fi.Size())/(1<<20))
	}
	return name, f[0]
}

func debianLookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin"} {
		if p := filepath.Join(d, name); debianIsExecutable(p) {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

func debianIsExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// TestVMDebianUdev boots a Debian image with systemd, udev and systemd-networkd through ramboot,
// from OVMF's HTTP boot of a signed UKI with Secure Boot on, and checks that the network config ramboot wrote into it configures the boot NIC in the
// booted system. The initramfs has no udev, so the NIC has its kernel name there (eth0); the
// booted system's udev would name it by path (ID_NET_NAME_PATH, enp0s1 here). The config must
// name the interface the booted system has, or match it by MAC.
//
// The address alone proves nothing: the one ramboot configured survives switch_root. What is
// checked is that networkd took the link over with ramboot's file ("routable configured"):
// when udev cannot rename the (up) NIC to its predictable name, its event fails, the link is
// never initialized and networkd leaves it "pending", however its .network file matches.
func TestVMDebianUdev(t *testing.T) {
	testStart := time.Now()
	setup(t)
	img, sum := debianImage(t)
	// 1.5G: the unpacked image (~130 MiB) and the modules copied into it live in RAM, and
	// systemd wants room.
	// Booted as fleets boot: the firmware (OVMF, Secure Boot on) HTTP-boots a signed UKI whose
	// command line names the image relative to the UKI's URL and no BOOTIF=.
	efi := buildUKI(t, "debian.efi", fmt.Sprintf("console=ttyS0 ramroot=../%s ramroot.sha256=%s ramboot.onerror=poweroff", img, sum), true)
	vm := vmtest.Start(t, vmtest.Options{
		Firmware: vmtest.SecureBoot, Memory: "1536M",
		NICs: []vmtest.NIC{{Model: "virtio-net-pci", MAC: mac1, HTTPBoot: efi, BootIndex: 1}},
	})
	vm.Expect(`BOOTIF `+mac1+` from the firmware's boot entry`, 5*time.Minute)

	m := vm.Expect(`network: (\S+) `+mac1+` (\S+)`, bootTimeout)
	initName := m[1]
	files := vm.Expect(`network config for `+mac1+`: (.*?)\r?\n`, bootTimeout)[1]
	vm.Expect(`switching to the new root`, bootTimeout)
	vm.Expect(`systemd\[1\]|Welcome to`, time.Minute)
	t.Logf("QEMU start → systemd: %v", vm.Elapsed().Round(100*time.Millisecond))
	vm.Expect(`DEBIAN-BEGIN`, 2*time.Minute)
	t.Logf("QEMU start → report unit: %v", vm.Elapsed().Round(100*time.Millisecond))
	vm.Expect(`DEBIAN-DONE`, time.Minute)
	vm.Wait(time.Minute)
	t.Logf("QEMU start → power off: %v", vm.Elapsed().Round(100*time.Millisecond))

	r := parseDebianReport(vm.Console())
	bootName := r.linkByMAC[mac1]
	if bootName == "" {
		t.Fatalf("no link with MAC %s in the booted system; links: %v", mac1, r.linkByMAC)
	}
	t.Logf("boot NIC %s: %q in the initramfs, %q in the booted system; udev: %s", mac1, initName, bootName, strings.Join(r.udev[bootName], " "))
	t.Logf("ramboot wrote: %s", files)
	t.Logf("networkctl: %s", r.networkctl[bootName])
	t.Logf("addresses: %s", r.addr[bootName])

	// Configured by the booted system's networkd from ramboot's file: "routable configured".
	if nc := strings.Fields(r.networkctl[bootName]); len(nc) < 4 || nc[len(nc)-1] != "configured" || nc[len(nc)-2] != "routable" {
		t.Errorf("networkctl: %s is %q, want routable and configured", bootName, r.networkctl[bootName])
	}
	if !strings.Contains(r.addr[bootName], "10.0.2.15/") {
		t.Errorf("%s has addresses %q, want 10.0.2.15", bootName, r.addr[bootName])
	}
	if st := r.status[bootName]; !regexp.MustCompile(`Network File: /etc/systemd/network/10-ramboot\.network`).MatchString(st) {
		t.Errorf("%s is not configured by ramboot's networkd file; networkctl status:\n%s", bootName, st)
	}
	// The name-based config (ifupdown) must name the interface the booted system has.
	if ifs := r.ifupdownIfaces(); len(ifs) == 0 {
		t.Errorf("no ifupdown config written into the image")
	} else {
		for _, i := range ifs {
			if i != bootName {
				t.Errorf("ifupdown config names %q, the booted system calls the NIC %q", i, bootName)
			}
		}
	}
	for _, j := range r.journal {
		t.Logf("journal: %s", j)
	}
	t.Logf("total test time: %v", time.Since(testStart).Round(100*time.Millisecond))
}

// debianReport is what the image's report unit printed (DEBIAN-* lines).
type debianReport struct {
	linkByMAC  map[string]string   // MAC → interface name
	addr       map[string]string   // name → "UP 10.0.2.15/24"
	networkctl map[string]string   // name → "2 eth0 ether routable configured"
	status     map[string]string   // name → networkctl status
	udev       map[string][]string // name → ID_NET_NAME_PATH=enp0s2 ...
	files      map[string][]string // path → lines
	journal    []string
}

var debianANSI = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

func parseDebianReport(console string) *debianReport {
	r := &debianReport{linkByMAC: map[string]string{}, addr: map[string]string{}, networkctl: map[string]string{},
		status: map[string]string{}, udev: map[string][]string{}, files: map[string][]string{}}
	for _, line := range strings.Split(debianANSI.ReplaceAllString(console, ""), "\n") {
		line = strings.TrimRight(line, "\r")
		i := strings.Index(line, "DEBIAN-")
		if i < 0 {
			continue
		}
		kind, rest, _ := strings.Cut(line[i:], " ")
		f := strings.Fields(rest)
		switch kind {
		case "DEBIAN-LINK":
			if len(f) >= 2 {
				r.linkByMAC[strings.ToLower(f[1])] = f[0]
			}
		case "DEBIAN-ADDR":
			if len(f) >= 1 {
				r.addr[f[0]] = strings.Join(f[1:], " ")
			}
		case "DEBIAN-NETWORKCTL":
			if len(f) >= 2 {
				r.networkctl[f[1]] = strings.Join(f, " ")
			}
		case "DEBIAN-STATUS":
			if name, s, ok := strings.Cut(rest, " "); ok {
				r.status[name] += s + "\n"
			}
		case "DEBIAN-UDEV":
			if len(f) >= 2 {
				r.udev[f[0]] = append(r.udev[f[0]], f[1])
			}
		case "DEBIAN-FILE":
			if p, s, ok := strings.Cut(rest, ": "); ok {
				r.files[p] = append(r.files[p], s)
			}
		case "DEBIAN-JOURNAL":
			r.journal = append(r.journal, rest)
		}
	}
	return r
}

// ifupdownIfaces are the interfaces the ifupdown files in the image name ("iface X inet").
func (r *debianReport) ifupdownIfaces() []string {
	var ifs []string
	for p, lines := range r.files {
		if !strings.HasPrefix(p, "/etc/network/") {
			continue
		}
		for _, l := range lines {
			if f := strings.Fields(l); len(f) >= 3 && f[0] == "iface" && f[2] == "inet" {
				ifs = append(ifs, f[1])
			}
		}
	}
	return ifs
}
