package vmtest

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// TestVMUEFIHTTPBoot proves the firmware harness: OVMF, with no kernel given, HTTP-boots the
// NIC of bootindex=1 (the second) from the URL of its DHCP boot file, on its own network stack
// (no iPXE ROM), and fetches the EFI binary from a server on the host.
func TestVMUEFIHTTPBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no VM tests")
	}
	Tool(t, "qemu-system-x86_64")
	const efi = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"
	if _, err := os.Stat(efi); err != nil {
		Missing(t, efi+" (Debian's systemd-boot-efi)")
	}
	got := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.Method + " " + r.URL.Path + " " + r.UserAgent():
		default:
		}
		http.ServeFile(w, r, efi)
	}))
	defer srv.Close()
	url := "http://10.0.2.2:" + srv.URL[strings.LastIndex(srv.URL, ":")+1:] + "/boot.efi"
	vm := Start(t, Options{
		Firmware: UEFI,
		NICs: []NIC{
			{Model: "virtio-net-pci", MAC: "52:54:00:12:34:56"},
			{Model: "virtio-net-pci", MAC: "52:54:00:12:34:57", HTTPBoot: url, BootIndex: 1},
		},
	})
	m := vm.Expect(`BdsDxe: loading (Boot[0-9A-F]{4}) "UEFI HTTPv4 \(MAC:([0-9A-F]{12})\)"`, 5*time.Minute)
	if m[2] != "525400123457" {
		t.Errorf("the firmware HTTP-booted the NIC of MAC %s, want the bootindex=1 one, 525400123457", m[2])
	}
	t.Logf("%s: %s after %v", m[1], m[0], vm.Elapsed().Round(time.Second))
	for fetched := false; !fetched; {
		select {
		case req := <-got:
			t.Logf("server: %s after %v", req, vm.Elapsed().Round(time.Second))
			fetched = strings.HasPrefix(req, "GET /boot.efi ")
		case <-time.After(2 * time.Minute):
			t.Fatalf("the firmware did not fetch %s", url)
		}
	}
	vm.Expect(`BdsDxe: starting `+m[1], 2*time.Minute)
	t.Logf("started the fetched binary after %v", vm.Elapsed().Round(time.Second))
}

func TestNICArgs(t *testing.T) {
	for _, tt := range []struct {
		nic            NIC
		fw             Firmware
		netdev, device string
	}{
		{NIC{Model: "virtio-net-pci", MAC: "52:54:00:12:34:56"}, BIOS,
			"user,id=n0", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56"},
		{NIC{Model: "e1000", Restrict: true}, BIOS, "user,id=n0,restrict=on", "e1000,netdev=n0"},
		{NIC{Model: "virtio-net-pci", HTTPBoot: "http://10.0.2.2:8080/ramboot.efi", BootIndex: 1}, UEFI,
			"user,id=n0,bootfile=http://10.0.2.2:8080/ramboot.efi", "virtio-net-pci,netdev=n0,bootindex=1,romfile="},
		{NIC{Model: "virtio-net-pci", TFTP: "/srv/tftp", BootFile: "ramboot.efi"}, SecureBoot,
			"user,id=n0,tftp=/srv/tftp,bootfile=ramboot.efi", "virtio-net-pci,netdev=n0,romfile="},
		{NIC{Model: "virtio-net-pci", IPXE: true}, UEFI, "user,id=n0", "virtio-net-pci,netdev=n0"},
	} {
		if got := tt.nic.netdev(0); got != tt.netdev {
			t.Errorf("%+v: -netdev %s, want %s", tt.nic, got, tt.netdev)
		}
		if got := tt.nic.device(0, tt.fw); got != tt.device {
			t.Errorf("%+v under %q: -device %s, want %s", tt.nic, tt.fw, got, tt.device)
		}
	}
	http := []NIC{{HTTPBoot: "http://x/a.efi"}, {}}
	if got := noPXE(http); len(got) != 6 {
		t.Errorf("HTTP boot only: %q, want PXE and IPv6 off", got)
	}
	if got := noPXE(append(http, NIC{TFTP: "/srv", BootFile: "a.efi"})); got != nil {
		t.Errorf("with a TFTP NIC: %q, want PXE on", got)
	}
	if got := noPXE([]NIC{{}}); got != nil {
		t.Errorf("no boot file: %q, want the firmware's defaults", got)
	}
}
