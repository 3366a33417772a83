package initramfs

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ramboot/ramboot/internal/vmtest"
)

// genericModules is /lib/modules/RELEASE of Debian's generic kernel (linux-image-amd64), as
// `scripts/get-kernel.sh generic` unpacks it: $RAMBOOT_GENERIC_KERNEL_DIR, default
// /var/cache/ramboot/kernel-generic. Missing, it fails the test in CI and skips it elsewhere.
func genericModules(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no kernel tests")
	}
	dir := os.Getenv("RAMBOOT_GENERIC_KERNEL_DIR")
	if dir == "" {
		dir = "/var/cache/ramboot/kernel-generic"
	}
	mods, _ := filepath.Glob(filepath.Join(dir, "lib", "modules", "*", "modules.dep"))
	if len(mods) == 0 {
		vmtest.Missing(t, "generic kernel package in "+dir+" (run scripts/get-kernel.sh generic)")
	}
	return filepath.Dir(mods[0])
}

// TestGenericKernel packs the default set for Debian's generic kernel, the one bare metal
// boots, with the real /init: every wired NIC driver a server boots from is in, wireless,
// CAN and modems are out, and the .cpio.zst is within 12 MiB (it was 23 MiB with all of
// kernel/drivers/net).
func TestGenericKernel(t *testing.T) {
	mods := genericModules(t)
	init := filepath.Join(t.TempDir(), "init")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", init, "github.com/ramboot/ramboot/cmd/ramboot-init")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building /init: %v: %s", err, out)
	}
	var raw bytes.Buffer
	st, err := Write(&raw, Spec{Init: init, Modules: mods})
	if err != nil {
		t.Fatal(err)
	}
	packed := map[string]bool{}
	for name := range records(t, raw.Bytes()) {
		if rel, ok := strings.CutPrefix(name, "lib/modules/"+st.KernelVer+"/"); ok {
			if i := strings.Index(rel, ".ko"); i >= 0 {
				packed[filepath.Base(rel[:i])] = true
			}
		}
	}
	for _, m := range []string{
		"e1000e", "e1000", "igb", "igc", "ixgbe", "ixgbevf", "i40e", "iavf", "ice", "mlx5_core", "mlx4_core",
		"bnxt_en", "bnx2x", "tg3", "r8169", "qede", "cxgb4", "sfc", "be2net", "enic", "ena", "gve", "atlantic",
		"virtio_net", "virtio_pci", "vmxnet3", "hv_netvsc", "xen-netfront",
		"usbnet", "r8152", "ax88179_178a", "asix", "cdc_ether", "cdc_ncm", "xhci-pci", "ehci-pci",
		"libphy", "realtek", // r8169's PHY driver (softdep pre:)
		"tulip", "8139too", "8139cp", "pcnet32", "ne2k-pci", "e100", "3c59x", // 10/100 NICs, still Ethernet (and QEMU's)
		"efivarfs", "usbhid", "hid-generic", "hid", // /init's own: the firmware's boot entry, a BMC's USB keyboard
		"bonding", "8021q", // bond= and vlan=
	} {
		if !packed[m] {
			t.Errorf("%s not packed", m)
		}
	}
	for _, m := range []string{"iwlwifi", "mac80211", "cfg80211", "can-dev", "gs_usb", "qmi_wwan", "wwan", "mlx5_ib", "ib_core", "ext4"} {
		if packed[m] {
			t.Errorf("%s packed, want it only when asked for", m)
		}
	}
	var z bytes.Buffer
	w, _ := Compressor("x.cpio.zst", &z)
	io.Copy(w, bytes.NewReader(raw.Bytes()))
	w.Close()
	for _, g := range st.Chosen {
		t.Logf("modules %s: %d, %.1f MiB", g.Name, g.Modules, float64(g.Bytes)/(1<<20))
	}
	t.Logf("initramfs for %s: %d modules, %.1f MiB uncompressed, %.2f MiB as .cpio.zst", st.KernelVer, st.Modules,
		float64(raw.Len())/(1<<20), float64(z.Len())/(1<<20))
	if z.Len() > 12<<20 {
		t.Errorf("initramfs is %.2f MiB compressed, over the 12 MiB target", float64(z.Len())/(1<<20))
	}

	// The sets that are not the default bring in what the default leaves out.
	st, err = Write(io.Discard, Spec{Init: init, Modules: mods, ModuleSets: []string{"infiniband", "wireless"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range st.Chosen {
		if (g.Name == "infiniband" || g.Name == "wireless") && g.Modules < 10 {
			t.Errorf("set %s chose %d modules, want the kernel's many", g.Name, g.Modules)
		}
	}
}
