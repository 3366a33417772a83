// Command testinit is the /sbin/init of the VM tests' images: it proves it runs from the RAM
// root by printing a marker, the kernel command line, the root mount, the network links and the
// network configuration ramboot wrote, then powers the VM off.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

func main() {
	// switch_root moved these; mount them in case an image runs it some other way.
	unix.Mount("proc", "/proc", "proc", 0, "")
	unix.Mount("sysfs", "/sys", "sysfs", 0, "")
	// Kernel messages would interleave with this report on the serial console (a line cut in
	// two is a line the test cannot read): keep all but emergencies off the console.
	os.WriteFile("/proc/sys/kernel/printk", []byte("1"), 0)
	marker, _ := os.ReadFile("/etc/marker")
	fmt.Printf("TESTINIT-MARKER %s\n", strings.TrimSpace(string(marker)))
	cmdline, _ := os.ReadFile("/proc/cmdline")
	fmt.Printf("TESTINIT-CMDLINE %s\n", strings.TrimSpace(string(cmdline)))
	mounts, _ := os.ReadFile("/proc/mounts")
	for _, l := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[1] == "/" {
			fmt.Printf("TESTINIT-ROOTFS %s\n", f[2])
		}
	}
	otherMounts()
	links, _ := filepath.Glob("/sys/class/net/*")
	for _, l := range links {
		mac, _ := os.ReadFile(filepath.Join(l, "address"))
		fmt.Printf("TESTINIT-LINK %s %s\n", filepath.Base(l), strings.TrimSpace(string(mac)))
	}
	for _, pat := range []string{"/etc/systemd/network/*", "/etc/network/interfaces.d/*", "/etc/netplan/*", "/etc/udev/rules.d/*"} {
		files, _ := filepath.Glob(pat)
		for _, f := range files {
			b, _ := os.ReadFile(f)
			fmt.Printf("TESTINIT-FILE %s\n", f)
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				fmt.Printf("TESTINIT-LINE %s\n", l)
			}
		}
	}
	mods, _ := os.ReadDir("/lib/modules")
	for _, m := range mods {
		fmt.Printf("TESTINIT-MODULES %s\n", m.Name())
	}
	tpm()
	bootReport()
	kmsg()
	fmt.Println("TESTINIT-DONE")
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

// otherMounts prints the mounts other processes see that this one does not: a process that a
// hook left running still has the initramfs as its root, and sees what stayed mounted on it.
func otherMounts() {
	seen := func(pid string) map[string]bool {
		b, _ := os.ReadFile("/proc/" + pid + "/mountinfo")
		m := map[string]bool{}
		for _, l := range strings.Split(string(b), "\n") {
			// The mount point is the fifth field, the type the first after " - ".
			_, after, _ := strings.Cut(l, " - ")
			if f, t := strings.Fields(l), strings.Fields(after); len(f) > 4 && len(t) > 0 {
				m[f[4]+" "+t[0]] = true
			}
		}
		return m
	}
	own := seen("self")
	others := map[string]bool{}
	pids, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range pids {
		for k := range seen(filepath.Base(p)) {
			if !own[k] && !others[k] {
				others[k] = true
				fmt.Printf("TESTINIT-OTHER-MOUNT %s\n", k)
			}
		}
	}
}

// kmsg prints the kernel log records /init wrote (the boot story as dmesg has it in the booted
// system) and the kernel's notes of lines it suppressed.
func kmsg() {
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		mknod := unix.Mknod("/dev/kmsg", unix.S_IFCHR|0o600, int(unix.Mkdev(1, 11)))
		if fd, err = unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK, 0); err != nil {
			fmt.Printf("TESTINIT-KMSG-ERROR %v %v\n", err, mknod)
			return
		}
	}
	defer unix.Close(fd)
	buf := make([]byte, 8192)
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EPIPE {
			continue // overwritten records: go on with the next
		}
		if err != nil || n <= 0 {
			return
		}
		// A record is "prio,seq,usec,flags;message\n" followed by continuation lines.
		rec := string(buf[:n])
		_, msg, ok := strings.Cut(rec, ";")
		if !ok {
			continue
		}
		msg, _, _ = strings.Cut(msg, "\n")
		if strings.HasPrefix(msg, "ramboot: ") || strings.Contains(msg, "suppressed due to ratelimiting") {
			fmt.Printf("TESTINIT-KMSG %s\n", msg)
		}
	}
}

// tpm prints PCR 12 as the kernel reads it from the TPM, and ramboot's event log of it, when
// there are (the measured-boot test recomputes the one from the other).
func tpm() {
	if v, err := os.ReadFile("/sys/class/tpm/tpm0/pcr-sha256/12"); err == nil {
		fmt.Printf("TESTINIT-PCR12 %s\n", strings.ToLower(strings.TrimSpace(string(v))))
	}
	if b, err := os.ReadFile("/run/ramboot/tpm-events.json"); err == nil {
		var c bytes.Buffer
		if json.Compact(&c, b) == nil {
			fmt.Printf("TESTINIT-TPMLOG %s\n", c.String())
		}
	}
}

// bootReport prints what /run/ramboot/boot.json, the boot report /init left, says: the boot id,
// the number of events and the types of the first and last.
func bootReport() {
	b, err := os.ReadFile("/run/ramboot/boot.json")
	if err != nil {
		return
	}
	var doc struct {
		BootID string `json:"boot_id"`
		MAC    string `json:"mac"`
		Events []struct {
			Type string `json:"type"`
		} `json:"events"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || len(doc.Events) == 0 {
		fmt.Printf("TESTINIT-BOOTJSON-ERROR %v %d events\n", err, len(doc.Events))
		return
	}
	fmt.Printf("TESTINIT-BOOTJSON boot_id=%s mac=%s events=%d first=%s last=%s\n", doc.BootID, doc.MAC,
		len(doc.Events), doc.Events[0].Type, doc.Events[len(doc.Events)-1].Type)
}
