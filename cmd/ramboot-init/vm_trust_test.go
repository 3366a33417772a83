package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ramboot/ramboot/internal/initramfs"
	"github.com/ramboot/ramboot/internal/trust"
	"github.com/ramboot/ramboot/internal/vmtest"
)

// The chain of trust in QEMU: an initramfs with a trust anchor and a password, menus signed by
// Debian's minisign, images served by a server that logs every request.
var (
	trustOnce sync.Once
	trusted   struct {
		initrd, dir, base, key string
		mu                     sync.Mutex
		requests               []string
		err                    error
	}
)

const labPassword = "lab-secret"

func minisignCmd(dir string, args ...string) error {
	cmd := exec.Command("minisign", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("minisign %v: %v: %s", args, err, out)
	}
	return nil
}

func setupTrust(t *testing.T) {
	t.Helper()
	setup(t)
	vmtest.Tool(t, "minisign")
	trustOnce.Do(func() { trusted.err = buildTrust() })
	if trusted.err != nil {
		t.Fatal(trusted.err)
	}
}

func buildTrust() error {
	dir, err := os.MkdirTemp("", "ramboot-vm-trust-")
	if err != nil {
		return err
	}
	trusted.dir, trusted.key = dir, filepath.Join(dir, "lab.key")
	if err := minisignCmd(dir, "-G", "-W", "-p", "lab.pub", "-s", "lab.key"); err != nil {
		return err
	}
	hash, err := trust.HashPassword(labPassword, 4)
	if err != nil {
		return err
	}
	trusted.initrd = filepath.Join(dir, "initrd.cpio.zst")
	if err := writeInitramfs(trusted.initrd, initramfs.Spec{Init: filepath.Join(built.dir, "ramboot-init"), Modules: built.kernel.Modules,
		Trust: []string{filepath.Join(dir, "lab.pub")}, PasswordHash: hash}); err != nil {
		return err
	}
	// evil.tar.zst boots as well as the others: only the chain of trust keeps it out.
	for from, to := range map[string]string{"rootfs.tar.zst": "rootfs.tar.zst", "second.tar.zst": "second.tar.zst", "evil.tar.zst": "rootfs.tar.zst"} {
		if err := os.Link(filepath.Join(built.dir, to), filepath.Join(dir, from)); err != nil {
			return err
		}
	}
	if err := minisignCmd(dir, "-S", "-s", "lab.key", "-m", "second.tar.zst", "-t", "file:second.tar.zst lab build 7"); err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	files := http.FileServer(http.Dir(dir))
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		trusted.mu.Lock()
		trusted.requests = append(trusted.requests, r.URL.Path)
		trusted.mu.Unlock()
		files.ServeHTTP(w, r)
	}))
	trusted.base = fmt.Sprintf("http://10.0.2.2:%d", l.Addr().(*net.TCPAddr).Port)
	return nil
}

// requestMark is where the request log stands (the server is shared by the tests).
func requestMark() int {
	trusted.mu.Lock()
	defer trusted.mu.Unlock()
	return len(trusted.requests)
}

// requested lists the paths with prefix asked for since mark.
func requested(mark int, prefix string) []string {
	trusted.mu.Lock()
	defer trusted.mu.Unlock()
	var out []string
	for _, p := range trusted.requests[mark:] {
		if strings.HasPrefix(p, prefix) {
			out = append(out, p)
		}
	}
	return out
}

// signedMenu writes a menu, signs it with minisign, then applies tamper (nil: none) to the
// file, and returns its URL.
func signedMenu(t *testing.T, name, text string, tamper func(string) string) string {
	t.Helper()
	text = strings.ReplaceAll(text, "BASE", trusted.base)
	p := filepath.Join(trusted.dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := minisignCmd(trusted.dir, "-S", "-s", "lab.key", "-m", name); err != nil {
		t.Fatal(err)
	}
	if tamper != nil {
		os.WriteFile(p, []byte(tamper(text)), 0o644)
	}
	return trusted.base + "/" + name
}

const trustMenu = `title: Signed lab
default: %s
timeout: %s
entries:
  - name: signed
    title: Signed image
    ramroot: BASE/second.tar.zst
  - name: pinned
    title: Pinned image
    ramroot: {url: BASE/%s, sha256: %s}
`

func bootTrusted(t *testing.T, menuURL string, extra ...string) *vmtest.VM {
	return vmtest.Start(t, vmtest.Options{
		Kernel: built.kernel, Initrd: trusted.initrd,
		Append: fmt.Sprintf("ramboot.menu=%s BOOTIF=%s ramboot.onerror=poweroff", menuURL, bootif(mac1)),
		NICs:   []vmtest.NIC{{Model: "virtio-net-pci", MAC: mac1}},
		Extra:  extra,
	})
}

// TestVMTrustSignedMenu: a menu signed with minisign boots its default, an image without a
// sha256 whose own signature is checked while it streams; the trusted comments are logged.
func TestVMTrustSignedMenu(t *testing.T) {
	setupTrust(t)
	menu := signedMenu(t, "signed.yaml", fmt.Sprintf(trustMenu, "signed", "1s", "rootfs.tar.zst", built.sums["rootfs.tar.zst"]), nil)
	vm := bootTrusted(t, menu)
	vm.Expect(`trust: 1 anchor\(s\), key [0-9A-F]{16}`, bootTimeout)
	vm.Expect(`tpm: none found`, bootTimeout)
	vm.Expect(`TESTINIT-MARKER second-ok`, bootTimeout)
	// While the menu is up the log goes to the kernel log only: the booted system's dmesg.
	vm.Expect(`menu \S+/signed.yaml: signature by key [0-9A-F]{16} verified; trusted comment: timestamp:\d+ file:signed.yaml hashed`, time.Minute)
	vm.Expect(`image \S+/second.tar.zst: checking its signature by key [0-9A-F]{16} while it streams; trusted comment: file:second.tar.zst lab build 7`, time.Minute)
	vm.Expect(`signature verified\)`, time.Minute)
	vm.Wait(time.Minute)
}

// TestVMTrustTamperedMenu: a menu changed after signing is refused with the error screen, and
// none of its images is fetched. r looks for the menu again: still refused while the file is
// tampered; once the operator signs it again, r shows it (without a countdown, though its
// timeout is 0) and it boots.
func TestVMTrustTamperedMenu(t *testing.T) {
	setupTrust(t)
	menu := signedMenu(t, "tampered.yaml", fmt.Sprintf(trustMenu, "pinned", "0", "rootfs.tar.zst", built.sums["rootfs.tar.zst"]),
		func(s string) string { return strings.ReplaceAll(s, "rootfs.tar.zst", "evil.tar.zst") })
	mark := requestMark()
	vm := bootTrusted(t, menu)
	vm.ExpectScreen(`(?s)Menu refused.*tampered\.yaml: refused by the chain of trust:\s+bad\s+signature\s+by\s+key`, bootTimeout)
	vm.Expect(`menu: \S+/tampered.yaml: refused by the chain of trust: bad signature by key [0-9A-F]{16}: the file or its trusted comment was changed`, time.Minute)
	time.Sleep(3 * time.Second) // a fetch started after the screen would show by now
	if got := requested(mark, "/tampered.yaml"); len(got) != 2 {
		t.Errorf("menu requests %v, want the menu and its signature", got)
	}
	for _, p := range []string{"/evil", "/rootfs", "/second"} {
		if got := requested(mark, p); len(got) > 0 {
			t.Errorf("fetched %v from a refused menu", got)
		}
	}
	// r while the menu is still tampered: refused again, after asking for it and its signature.
	mark = requestMark()
	vm.Send("r")
	vm.Expect(`menu: looking for the menu again`, time.Minute)
	vm.Expect(`menu: \S+/tampered.yaml: refused by the chain of trust: bad signature`, time.Minute)
	vm.ExpectScreen(`(?s)Menu refused.*tampered\.yaml: refused by the chain of trust`, time.Minute)
	if got := requested(mark, "/tampered.yaml"); len(got) != 2 {
		t.Errorf("menu requests after r: %v, want the menu and its signature", got)
	}
	// The operator signs what is now on the server: r shows that menu and waits for a key.
	if err := minisignCmd(trusted.dir, "-S", "-s", "lab.key", "-m", "tampered.yaml"); err != nil {
		t.Fatal(err)
	}
	vm.Send("r")
	vm.ExpectScreen(`(?s)Signed lab.*Pinned image`, time.Minute)
	time.Sleep(3 * time.Second) // an unattended boot would have started by now
	if got := requested(mark, "/evil"); len(got) > 0 {
		t.Errorf("the menu found again booted by itself: %v", got)
	}
	vm.Send(keyEnter)
	vm.Expect(`TESTINIT-MARKER ramroot-ok`, bootTimeout)
	vm.Wait(time.Minute)
}

// TestVMTrustPassword: e asks for the password without echo; a wrong one is refused, the right
// one opens the editor.
func TestVMTrustPassword(t *testing.T) {
	setupTrust(t)
	menu := signedMenu(t, "locked.yaml", fmt.Sprintf(trustMenu, "pinned", "60s", "rootfs.tar.zst", built.sums["rootfs.tar.zst"]), nil)
	vm := bootTrusted(t, menu)
	vm.ExpectScreen(`(?s)Signed image.*Pinned image`, bootTimeout)
	vm.Send("e")
	vm.ExpectScreen(`A password is needed to edit the command line of pinned`, time.Minute)
	vm.Send("guess123" + keyEnter)
	vm.ExpectScreen(`wrong password`, time.Minute)
	if strings.Contains(vm.Screen(), "guess123") || strings.Contains(vm.Screen(), "********") {
		t.Errorf("the password prompt echoed:\n%s", vm.Screen())
	}
	vm.Send(labPassword + keyEnter)
	vm.ExpectScreen(`edit pinned`, time.Minute)
	vm.Send(" unlocked-marker-9" + keyEnter)
	vm.Expect(`switching to the new root, exec /sbin/init unlocked-marker-9`, bootTimeout)
	vm.Expect(`TESTINIT-MARKER ramroot-ok`, bootTimeout)
	// dmesg in the booted system has the refused attempt.
	vm.Expect(`wrong password \(1 in a row\); next attempt in 1s`, time.Minute)
	vm.Expect(`menu: password accepted`, time.Minute)
}

// TestVMTrustTPM: with swtpm attached, PCR 12 as the booted system reads it equals the value
// replayed from /init's event log, whose events are the menu, the image and the command line.
func TestVMTrustTPM(t *testing.T) {
	setupTrust(t)
	vmtest.Tool(t, "swtpm")
	state := t.TempDir()
	sock := filepath.Join(state, "swtpm-sock")
	sw := exec.Command("swtpm", "socket", "--tpm2", "--tpmstate", "dir="+state, "--ctrl", "type=unixio,path="+sock)
	if err := sw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Process.Kill(); sw.Wait() })
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	text := fmt.Sprintf(trustMenu, "pinned", "0", "rootfs.tar.zst", built.sums["rootfs.tar.zst"])
	menu := signedMenu(t, "measured.yaml", text, nil)
	vm := bootTrusted(t, menu, "-chardev", "socket,id=chrtpm,path="+sock, "-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-tis,tpmdev=tpm0")
	vm.Expect(`tpm: /dev/tpm(rm)?0: measuring the boot into PCR 12`, bootTimeout)
	vm.Expect(`TESTINIT-MARKER ramroot-ok`, bootTimeout)
	pcr := vm.Expect(`TESTINIT-PCR12 ([0-9a-f]{64})`, time.Minute)[1]
	raw := vm.Expect(`TESTINIT-TPMLOG (\{.*\})\r?\n`, time.Minute)[1]
	var l trust.EventLog
	if err := json.Unmarshal([]byte(raw), &l); err != nil {
		t.Fatalf("event log %q: %v", raw, err)
	}
	got, err := l.Replay()
	if err != nil {
		t.Fatal(err)
	}
	if got != pcr {
		t.Errorf("PCR 12 is %s, the event log replays to %s", pcr, got)
	}
	menuSum := sha256.Sum256([]byte(strings.ReplaceAll(text, "BASE", trusted.base)))
	var kinds []string
	for _, e := range l.Events {
		kinds = append(kinds, e.Type)
		switch e.Type {
		case "menu":
			if e.SHA256 != hex.EncodeToString(menuSum[:]) {
				t.Errorf("menu event %s, want the menu's sha256", e.SHA256)
			}
		case "image":
			if e.SHA256 != built.sums["rootfs.tar.zst"] {
				t.Errorf("image event %s, want %s", e.SHA256, built.sums["rootfs.tar.zst"])
			}
		}
	}
	if strings.Join(kinds, ",") != "menu,image,cmdline" {
		t.Errorf("events %v, want menu, image, cmdline", kinds)
	}
	t.Logf("PCR 12 = %s from %d events (initial %s)", pcr, len(l.Events), l.Initial)
}

// TestVMTrustLocalMenu: the first door of the second review. The kernel command line names
// /proc/cmdline as the menu, and is written to read as a YAML menu that pins an image of the
// attacker's by its sha256. With an anchor built in, /init refuses it because the initramfs does
// not carry /proc/cmdline and nothing signs it, says so on the console, and fetches nothing.
func TestVMTrustLocalMenu(t *testing.T) {
	setupTrust(t)
	mark := requestMark()
	evil := fmt.Sprintf(`{title: 'x ramboot.menu=/proc/cmdline y', entries: [{name: x, ramroot: {url: '%s/evil.tar.zst', sha256: %s}}]}`,
		trusted.base, built.sums["rootfs.tar.zst"])
	vm := vmtest.Start(t, vmtest.Options{
		Kernel: built.kernel, Initrd: trusted.initrd,
		Append: fmt.Sprintf("%s BOOTIF=%s ramboot.onerror=poweroff", evil, bootif(mac1)),
		NICs:   []vmtest.NIC{{Model: "virtio-net-pci", MAC: mac1}},
	})
	vm.Expect(`menu: /proc/cmdline: refused by the chain of trust: no signature at /proc/cmdline.minisig \(/proc/cmdline: not a file the initramfs carries\)`, bootTimeout)
	vm.ExpectScreen(`(?s)Menu refused.*/proc/cmdline: refused by the chain of trust`, time.Minute)
	time.Sleep(3 * time.Second) // a fetch started after the screen would show by now
	if got := requested(mark, "/evil"); len(got) > 0 {
		t.Errorf("fetched %v named by a menu the initramfs does not carry", got)
	}
	if scr := vm.Screen(); strings.Contains(scr, "x ramboot.menu") {
		t.Errorf("the refused menu's title is on the screen:\n%s", scr)
	}
}
