package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/ramboot/ramboot/internal/report"
	"github.com/ramboot/ramboot/internal/serve"
	"github.com/ramboot/ramboot/internal/vmtest"
)

// reportMenu is the fleet tests' menu: the image of the VM tests, chosen by a short countdown.
const reportMenu = `title: Fleet
default: rescue
timeout: 1s
entries:
  - name: rescue
    ramroot: {url: http://SERVER/rootfs.tar.zst, sha256: "%s"}
  - name: second
    ramroot: http://SERVER/second.tar.zst
`

// fleetServer is `ramboot serve --reports --menu` in the test: the VM tests' directory, a menu
// and the boot reports. It returns the server's port and its handler.
func fleetServer(t *testing.T) (string, *serve.Handler) {
	return fleetServerMenu(t, fmt.Sprintf(reportMenu, built.sums["rootfs.tar.zst"]), nil)
}

// fleetServerMenu is fleetServer with the menu given, its renditions signed with key (nil:
// unsigned).
func fleetServerMenu(t *testing.T, text string, key *minisign.PrivateKey) (string, *serve.Handler) {
	t.Helper()
	menu := filepath.Join(t.TempDir(), "menu.yaml")
	if err := os.WriteFile(menu, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := serve.New(built.dir, serve.Options{Menu: menu, Reports: t.TempDir(), RollbackAfter: 2, Logf: t.Logf, SignKey: key})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := h.Server(nil)
	go srv.Serve(l)
	t.Cleanup(func() {
		srv.Close()
		h.Close()
	})
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port), h
}

// bootReported boots the VM with its menu and reports from the fleet server at port.
func bootReported(t *testing.T, port string) *vmtest.VM {
	return vmtest.Start(t, vmtest.Options{
		Kernel: built.kernel, Initrd: built.initrd,
		Append: fmt.Sprintf("ramboot.menu=http://10.0.2.2:%s/menu.yaml ramboot.report=http://10.0.2.2:%s%s BOOTIF=%s ramboot.onerror=poweroff",
			port, port, serve.EventsPath, bootif(mac1)),
		NICs: []vmtest.NIC{{Model: "virtio-net-pci", MAC: mac1}},
	})
}

// TestVMReport boots with ramboot.report= pointing at `ramboot serve --reports`: every stage's
// event arrives, in order, with the boot id and the MAC, and the booted image finds the whole
// report in /run/ramboot/boot.json.
func TestVMReport(t *testing.T) {
	setup(t)
	port, h := fleetServer(t)
	vm := bootReported(t, port)
	vm.Expect(`reporting boot [0-9a-f]{16} to http://10\.0\.2\.2:`+port, bootTimeout)
	m := vm.Expect(`TESTINIT-BOOTJSON boot_id=([0-9a-f]{16}) mac=(\S+) events=(\d+) first=(\S+) last=(\S+)\r?\n`, bootTimeout)
	vm.Expect(`TESTINIT-DONE`, time.Minute)
	if m[2] != mac1 || m[4] != report.Started || m[5] != report.SwitchRoot {
		t.Errorf("boot.json: %s", m[0])
	}
	bootID := m[1]

	// The events were sent before the switch (FinalWait): they are all there now.
	evs, ok := h.Fleet().Events(mac1)
	if !ok {
		t.Fatalf("no events from %s", mac1)
	}
	var types []string
	for i, e := range evs {
		if e.BootID != bootID || e.MAC != mac1 || e.Schema != report.Schema || e.Seq <= 0 {
			t.Errorf("event %d: %+v", i, e.Event)
		}
		if i > 0 && e.Seq <= evs[i-1].Seq {
			t.Errorf("event %d: seq %d after %d: out of order", i, e.Seq, evs[i-1].Seq)
		}
		if e.Type != report.FetchProgress {
			types = append(types, e.Type)
		}
		switch e.Type {
		case report.Started:
			if !strings.Contains(e.Cmdline, "ramboot.report=") || e.Kernel == "" {
				t.Errorf("started: %+v", e.Event)
			}
		case report.NetworkUp:
			if e.IP != "10.0.2.15" || e.Iface == "" || e.DHCPms <= 0 {
				t.Errorf("network: %+v", e.Event)
			}
		case report.EntryChosen:
			if e.Entry != "rescue" || e.By != "countdown" {
				t.Errorf("chosen: %+v", e.Event)
			}
		case report.FetchDone:
			if !e.Verified || e.SHA256 != built.sums["rootfs.tar.zst"] || e.Bytes <= 0 {
				t.Errorf("fetch_done: %+v", e.Event)
			}
		}
	}
	want := []string{report.Started, report.NetworkUp, report.MenuShown, report.EntryChosen, report.FetchStart,
		report.FetchDone, report.Extracted, report.SwitchRoot}
	if strings.Join(types, " ") != strings.Join(want, " ") {
		t.Errorf("events:\n got %v\nwant %v", types, want)
	}
	if n, _ := strconv.Atoi(m[3]); n != len(evs) {
		t.Errorf("boot.json has %s events, the server %d", m[3], len(evs))
	}
	ms := h.Fleet().Machines()
	if len(ms) != 1 || ms[0].State != serve.StateBooted || ms[0].Entry != "rescue" || ms[0].Dropped != 0 {
		t.Errorf("fleet: %+v", ms)
	}
	// The menu request named the machine: the server knows which menu it served to whom.
	resp, err := http.Get("http://127.0.0.1:" + port + serve.MachinesPath + "/" + mac1)
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("GET machine: %v %v", err, resp)
	}
	t.Logf("boot %s: %d events, %s", bootID, len(evs), strings.Join(types, " "))
}

// TestVMReportFailure: a boot that fails reports the failure (the step it reached, the error,
// the attempt) before the machine powers off.
func TestVMReportFailure(t *testing.T) {
	setup(t)
	port, h := fleetServer(t)
	vm := vmtest.Start(t, vmtest.Options{
		Kernel: built.kernel, Initrd: built.initrd,
		Append: fmt.Sprintf("ramroot=http://10.0.2.2:%s/missing.tar.zst ramboot.report=http://10.0.2.2:%s%s BOOTIF=%s ramboot.onerror=poweroff ramboot.retry=0",
			port, port, serve.EventsPath, bootif(mac1)),
		NICs: []vmtest.NIC{{Model: "virtio-net-pci", MAC: mac1}},
	})
	vm.Expect(`powering off`, bootTimeout)
	vm.Wait(time.Minute)
	evs, _ := h.Fleet().Events(mac1)
	var types []string
	for _, e := range evs {
		types = append(types, e.Type)
	}
	want := []string{report.Started, report.NetworkUp, report.EntryChosen, report.FetchStart, report.Failure}
	if strings.Join(types, " ") != strings.Join(want, " ") {
		t.Fatalf("events:\n got %v\nwant %v", types, want)
	}
	f := evs[len(evs)-1]
	if f.Step != report.FetchStart || f.Attempt != 1 || !strings.Contains(f.Error, "404") || !strings.Contains(f.Error, "missing.tar.zst") {
		t.Errorf("failure event %+v", f.Event)
	}
	if c := evs[2]; c.Entry != "ramroot" || c.By != "cmdline" {
		t.Errorf("chosen %+v", c.Event)
	}
	if m := h.Fleet().Machines(); len(m) != 1 || m[0].State != serve.StateFailed || !strings.Contains(m[0].LastError, "404") {
		t.Errorf("fleet: %+v", m)
	}
}

// rollbackMenu's default, new, is broken (its image is missing); old boots. No countdown: a
// failed boot goes to ramboot.onerror= instead of back to the menu. Both are pinned: the test
// runs under the chain of trust.
const rollbackMenu = `title: Fleet
default: new
timeout: 0
entries:
  - name: new
    ramroot: {url: http://SERVER/missing.tar.zst, sha256: "%[1]s"}
  - name: old
    ramroot: {url: http://SERVER/rootfs.tar.zst, sha256: "%[1]s"}
`

// TestVMRollback boots one machine four times against `ramboot serve --menu --reports
// --rollback-after 2 --sign-key`, with an initramfs that trusts only that key: old is booted
// and confirmed healthy, the menu's new default fails twice, and the third boot gets old as
// its default from the server, in a menu signed for that machine, and boots it.
func TestVMRollback(t *testing.T) {
	setupTrust(t)
	keyText, err := os.ReadFile(trusted.key)
	if err != nil {
		t.Fatal(err)
	}
	var key minisign.PrivateKey
	if err := key.UnmarshalText(keyText); err != nil {
		t.Fatal(err)
	}
	port, h := fleetServerMenu(t, fmt.Sprintf(rollbackMenu, built.sums["rootfs.tar.zst"]), &key)
	boot := func(extra string) *vmtest.VM {
		return vmtest.Start(t, vmtest.Options{
			Kernel: built.kernel, Initrd: trusted.initrd,
			Append: fmt.Sprintf("ramboot.menu=http://10.0.2.2:%s/menu.yaml ramboot.report=http://10.0.2.2:%s%s BOOTIF=%s ramboot.onerror=poweroff ramboot.retry=0 %s",
				port, port, serve.EventsPath, bootif(mac1), extra),
			NICs: []vmtest.NIC{{Model: "virtio-net-pci", MAC: mac1}},
		})
	}
	signed := `menu http://10\.0\.2\.2:` + port + `/menu\.yaml: signature by key [0-9A-F]{16} verified; trusted comment: timestamp:\d+ file:menu\.yaml hashed ramboot serve: rendition for 10\.0\.2\.2:` + port
	machine := func() serve.Machine {
		ms := h.Fleet().Machines()
		if len(ms) != 1 {
			t.Fatalf("fleet: %+v", ms)
		}
		return ms[0]
	}
	// Boot 1: the operator boots old, which comes up and confirms.
	vm := boot("ramboot.default=old")
	vm.Expect(signed, bootTimeout)
	vm.Expect(`TESTINIT-MARKER ramroot-ok`, bootTimeout)
	vm.Wait(time.Minute)
	resp, err := http.Post("http://127.0.0.1:"+port+serve.MachinesPath+"/"+mac1+"/healthy", "", nil)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST healthy: %v %v", err, resp)
	}
	// Boots 2 and 3: the default, new, fails.
	for i := 2; i <= 3; i++ {
		vm := boot("")
		vm.Expect(`menu from http://10\.0\.2\.2:`+port+`/menu\.yaml`, bootTimeout)
		vm.Expect(`booting new`, time.Minute)
		vm.Expect(`powering off`, bootTimeout)
		vm.Wait(time.Minute)
		if m := machine(); m.State != serve.StateFailed || m.Entry != "new" || m.Rollback != nil {
			t.Fatalf("after boot %d: %+v", i, m)
		}
	}
	// Boot 4: rolled back to old by the server.
	vm = boot("")
	vm.Expect(signed, bootTimeout)
	vm.Expect(`booting old`, bootTimeout)
	vm.Expect(`TESTINIT-MARKER ramroot-ok`, bootTimeout)
	vm.Wait(time.Minute)
	m := machine()
	if m.Rollback == nil || *m.Rollback != (serve.Rollback{From: "new", To: "old", Failures: 2}) || m.Entry != "old" || m.Boots != 4 {
		t.Errorf("after the rollback: %+v (rollback %+v)", m, m.Rollback)
	}
	t.Logf("boot 4 took %v; machine %s: %d boots, rollback %+v", vm.Elapsed().Round(time.Second), m.MAC, m.Boots, *m.Rollback)
}
