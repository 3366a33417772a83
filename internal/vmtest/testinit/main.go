// Command testinit is the /sbin/init of the VM tests' images: it proves it runs from the RAM
// root by printing a marker, the kernel command line, the root mount, the network links and the
// network configuration ramboot wrote, then powers the VM off.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/ramboot/ramboot/internal/vmtest/tcglog"
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
	// The addresses the boot network left on each interface (the same kernel runs on).
	if ifs, err := net.Interfaces(); err == nil {
		for _, i := range ifs {
			addrs, _ := i.Addrs()
			for _, a := range addrs {
				fmt.Printf("TESTINIT-ADDR %s %s\n", i.Name, a)
			}
		}
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

// tpm prints PCRs 11 and 12 as the TPM reads them beside their values replayed from the event
// logs, when there is a TPM: PCR 11 from the firmware's log (systemd-stub's measurements of the
// UKI's sections), PCR 12 from ramboot's own log (and what the firmware's log puts in PCR 12
// before it, the command line systemd-stub measures). The measured-boot tests compare them.
//
//	TESTINIT-TCGLOG events=<n> banks=<algs> matched=<PCRs> differ=<PCRs>
//	TESTINIT-PCR11 replayed=<hex> tpm=<hex> events=<n> sections=<descriptions>
//	TESTINIT-PCR12 <tpm> tpm=<hex> replayed=<hex> events=<n> initial=<hex> firmware=<hex> firmware-events=<n>
//
// The first field of the PCR 12 line stays the TPM's value, as older tests read it.
func tpm() {
	var fw *tcglog.Log
	if _, err := os.Stat("/sys/kernel/security/tpm0"); err != nil {
		// The image's init may be the first to want securityfs in this root.
		unix.Mount("securityfs", "/sys/kernel/security", "securityfs", 0, "")
	}
	if b, err := os.ReadFile("/sys/kernel/security/tpm0/binary_bios_measurements"); err == nil {
		if fw, err = tcglog.Parse(b); err != nil {
			fmt.Printf("TESTINIT-TCGLOG-ERROR %v\n", err)
		}
	}
	if fw != nil {
		fmt.Println(firmwareReport(fw))
		v, n, err := fw.Replay(11, tcglog.SHA256)
		if err != nil {
			fmt.Printf("TESTINIT-TCGLOG-ERROR %v\n", err)
		} else {
			fmt.Printf("TESTINIT-PCR11 replayed=%x tpm=%s events=%d sections=%s\n", v, pcr(11), n, sections(fw, 11))
		}
	}
	rambootLog, _ := os.ReadFile("/run/ramboot/tpm-events.json")
	defer func() { // after the PCR 12 line: the tests read them in that order
		var c bytes.Buffer
		if rambootLog != nil && json.Compact(&c, rambootLog) == nil {
			fmt.Printf("TESTINIT-TPMLOG %s\n", c.String())
		}
	}()
	tpm12, err := os.ReadFile("/sys/class/tpm/tpm0/pcr-sha256/12")
	if err != nil {
		return
	}
	line := fmt.Sprintf("TESTINIT-PCR12 %s tpm=%[1]s", strings.ToLower(strings.TrimSpace(string(tpm12))))
	if rambootLog != nil {
		var l struct {
			Initial string
			Events  []struct{ SHA256 string }
		}
		if err := json.Unmarshal(rambootLog, &l); err == nil {
			v, err := hex.DecodeString(l.Initial)
			for _, e := range l.Events {
				d, derr := hex.DecodeString(e.SHA256)
				err = errors.Join(err, derr)
				s := sha256.Sum256(append(v, d...))
				v = s[:]
			}
			if err == nil {
				line += fmt.Sprintf(" replayed=%x events=%d initial=%s", v, len(l.Events), l.Initial)
			}
		}
	}
	if fw != nil {
		if v, n, err := fw.Replay(12, tcglog.SHA256); err == nil {
			line += fmt.Sprintf(" firmware=%x firmware-events=%d", v, n)
		}
	}
	fmt.Println(line)
}

// firmwareReport replays each PCR the firmware's log extends and says which equal the TPM's:
// all should but 12 once ramboot measured into it (and 10, IMA's, which the log does not hold).
func firmwareReport(l *tcglog.Log) string {
	var banks, matched, differ []string
	for _, a := range l.Algs {
		banks = append(banks, a.Alg.String())
	}
	for p := uint32(0); p < 24; p++ {
		v, n, err := l.Replay(p, tcglog.SHA256)
		if n == 0 {
			continue
		}
		if err == nil && fmt.Sprintf("%x", v) == pcr(int(p)) {
			matched = append(matched, fmt.Sprint(p))
		} else {
			differ = append(differ, fmt.Sprint(p))
		}
	}
	return fmt.Sprintf("TESTINIT-TCGLOG events=%d banks=%s matched=%s differ=%s", len(l.Events),
		strings.Join(banks, ","), strings.Join(matched, ","), strings.Join(differ, ","))
}

// pcr reads a PCR of the SHA-256 bank from the kernel (5.12 and later), "none" if it cannot.
func pcr(n int) string {
	v, err := os.ReadFile(fmt.Sprintf("/sys/class/tpm/tpm0/pcr-sha256/%d", n))
	if err != nil {
		return "none"
	}
	return strings.ToLower(strings.TrimSpace(string(v)))
}

// sections lists the descriptions of the events extended into a PCR, a run of equal ones once
// (systemd-stub logs a section's name and its data under the same description).
func sections(l *tcglog.Log, pcr uint32) string {
	var ds []string
	for _, e := range l.Events {
		if e.PCR != pcr || e.Type == tcglog.EvNoAction {
			continue
		}
		d := strings.ReplaceAll(e.Description(), " ", "_")
		if d == "" {
			d = fmt.Sprintf("type%#x", uint32(e.Type))
		}
		if len(ds) == 0 || ds[len(ds)-1] != d {
			ds = append(ds, d)
		}
	}
	return strings.Join(ds, ",")
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
