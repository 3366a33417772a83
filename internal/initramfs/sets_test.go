package initramfs

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// setsTree is a kernel's module tree (no depmod index) with a driver of each kind the sets
// tell apart.
func setsTree(t *testing.T, dir string) string {
	vm := "vermagic=6.1.0-57-amd64 SMP preempt mod_unload modversions"
	mod := func(name string, info ...string) []byte {
		return module(t, append([]string{"name=" + name, vm}, info...)...)
	}
	return modulesTree(t, dir, "6.1.0-57-amd64", map[string][]byte{
		"kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko": mod("e1000e", "alias=pci:v00008086d000010D3sv*sd*bc*sc*i*",
			"depends=", "firmware=e1000e/nvm.bin"),
		"kernel/drivers/net/ethernet/mellanox/mlx5/core/mlx5_core.ko": mod("mlx5_core", "alias=pci:v000015B3d00001017sv*sd*bc*sc*i*",
			"depends=mlxfw", "firmware=mellanox/missing.bin"),
		"kernel/drivers/net/ethernet/mellanox/mlxfw/mlxfw.ko":       mod("mlxfw", "depends="),
		"kernel/drivers/net/ethernet/broadcom/cnic.ko":              mod("cnic", "depends="),
		"kernel/drivers/net/ethernet/3com/3c589_cs.ko":              mod("3c589_cs", "alias=pcmcia:m0101c0589f*fn*pfn*pa*pb*pc*pd*", "depends="),
		"kernel/drivers/net/ethernet/3com/3c59x.ko":                 mod("3c59x", "alias=pci:v000010B7d00005900sv*sd*bc*sc*i*", "depends="),
		"kernel/drivers/net/ethernet/realtek/r8169.ko":              mod("r8169", "alias=pci:v000010ECd00008168sv*sd*bc*sc*i*", "depends=", "softdep=pre: realtek"),
		"kernel/drivers/net/phy/realtek.ko":                         mod("realtek", "alias=mdio:000000000001110011001001????????", "depends="),
		"kernel/drivers/net/usb/r8152.ko":                           mod("r8152", "alias=usb:v0BDAp8152d*dc*dsc*dp*ic*isc*ip*in*", "depends=usbnet", "firmware=rtl_nic/rtl8153a-*.fw"),
		"kernel/drivers/net/usb/usbnet.ko":                          mod("usbnet", "depends="),
		"kernel/drivers/net/usb/qmi_wwan.ko":                        mod("qmi_wwan", "alias=usb:v05C6p9000d*dc*dsc*dp*ic*isc*ip*in04*", "depends=usbnet"),
		"kernel/drivers/usb/host/xhci-pci.ko":                       mod("xhci_pci", "alias=pci:v*d*sv*sd*bc0Csc03i30*", "depends=xhci-hcd"),
		"kernel/drivers/usb/host/xhci-hcd.ko":                       mod("xhci_hcd", "depends="),
		"kernel/drivers/net/wireless/intel/iwlwifi/iwlwifi.ko":      mod("iwlwifi", "alias=pci:v00008086d00002723sv*sd*bc*sc*i*", "depends=mac80211"),
		"kernel/net/mac80211/mac80211.ko":                           mod("mac80211", "depends="),
		"kernel/drivers/net/can/usb/gs_usb.ko":                      mod("gs_usb", "alias=usb:v1D50p606Fd*dc*dsc*dp*ic*isc*ip*in00*", "depends="),
		"kernel/drivers/net/virtio_net.ko":                          mod("virtio_net", "alias=virtio:d00000001v*", "depends=virtio"),
		"kernel/drivers/virtio/virtio.ko":                           mod("virtio", "depends="),
		"kernel/drivers/virtio/virtio_pci.ko":                       mod("virtio_pci", "alias=pci:v00001AF4d*sv*sd*bc*sc*i*", "depends=virtio"),
		"kernel/drivers/virtio/virtio_balloon.ko":                   mod("virtio_balloon", "alias=virtio:d00000005v*", "depends=virtio"),
		"kernel/drivers/infiniband/hw/mlx5/mlx5_ib.ko":              mod("mlx5_ib", "alias=auxiliary:mlx5_core.rdma", "depends=mlx5_core"),
		"kernel/fs/ext4/ext4.ko":                                    mod("ext4", "depends="),
		"kernel/drivers/net/ethernet/stmicro/stmmac/stmmac.ko":      mod("stmmac", "depends="),
		"kernel/drivers/net/ethernet/stmicro/stmmac/dwmac-intel.ko": mod("dwmac_intel", "alias=pci:v00008086d00004B30sv*sd*bc*sc*i*", "depends=stmmac"),
	})
}

// packedModules returns the modules an initramfs carries, relative to lib/modules/RELEASE.
func packedModules(recs map[string]bool) []string {
	var out []string
	for name := range recs {
		if rel, ok := strings.CutPrefix(name, "lib/modules/6.1.0-57-amd64/"); ok && strings.Contains(rel, ".ko") {
			out = append(out, rel)
		}
	}
	sort.Strings(out)
	return out
}

func TestModuleSets(t *testing.T) {
	dir := t.TempDir()
	tree := setsTree(t, dir)
	init := filepath.Join(dir, "init")
	os.WriteFile(init, []byte("INIT"), 0o755)
	ethernet := []string{
		"kernel/drivers/net/ethernet/3com/3c59x.ko", // PCI: in; 3c589_cs (PCMCIA) is not a boot NIC's bus
		"kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko",
		"kernel/drivers/net/ethernet/mellanox/mlx5/core/mlx5_core.ko",
		"kernel/drivers/net/ethernet/mellanox/mlxfw/mlxfw.ko", // a dependency, no device of its own
		"kernel/drivers/net/ethernet/realtek/r8169.ko",
		"kernel/drivers/net/ethernet/stmicro/stmmac/dwmac-intel.ko",
		"kernel/drivers/net/ethernet/stmicro/stmmac/stmmac.ko",
		"kernel/drivers/net/phy/realtek.ko", // softdep pre: of r8169
		"kernel/drivers/net/usb/r8152.ko",
		"kernel/drivers/net/usb/usbnet.ko",
		"kernel/drivers/net/virtio_net.ko",
		"kernel/drivers/usb/host/xhci-hcd.ko",
		"kernel/drivers/usb/host/xhci-pci.ko", // USB NICs need their host controller
		"kernel/drivers/virtio/virtio.ko",
		"kernel/drivers/virtio/virtio_pci.ko",
	}
	for _, tt := range []struct {
		name  string
		spec  Spec
		extra []string // packed besides ethernet
	}{
		{"default", Spec{}, nil},
		{"infiniband", Spec{ModuleSets: []string{"infiniband"}}, []string{"kernel/drivers/infiniband/hw/mlx5/mlx5_ib.ko"}},
		{"wireless", Spec{ModuleSets: []string{"wireless"}}, []string{"kernel/drivers/net/wireless/intel/iwlwifi/iwlwifi.ko", "kernel/net/mac80211/mac80211.ko"}},
		{"wwan", Spec{ModuleSets: []string{"wwan"}}, []string{"kernel/drivers/net/usb/qmi_wwan.ko"}},
		{"storage", Spec{Storage: true}, []string{"kernel/fs/ext4/ext4.ko"}},
		{"--module", Spec{ExtraModules: []string{"gs_usb", "cnic"}}, []string{"kernel/drivers/net/can/usb/gs_usb.ko", "kernel/drivers/net/ethernet/broadcom/cnic.ko"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.spec
			s.Init, s.CA, s.Modules = init, init, tree
			var buf bytes.Buffer
			st, err := Write(&buf, s)
			if err != nil {
				t.Fatal(err)
			}
			recs := map[string]bool{}
			for name := range records(t, buf.Bytes()) {
				recs[name] = true
			}
			want := slices.Sorted(slices.Values(append(append([]string{}, ethernet...), tt.extra...)))
			if diff := cmp.Diff(want, packedModules(recs)); diff != "" {
				t.Errorf("packed modules mismatch (-want +got):\n%s", diff)
			}
			// Every packed module is counted once, in some group, with its size.
			n, seen := 0, map[string]bool{}
			for _, g := range st.Chosen {
				n += g.Modules
				var size int64
				for _, p := range g.Paths {
					if seen[p] {
						t.Errorf("%s counted twice", p)
					}
					seen[p] = true
					fi, err := os.Stat(filepath.Join(tree, p))
					if err != nil {
						t.Fatal(err)
					}
					size += fi.Size()
				}
				if g.Modules != len(g.Paths) || g.Bytes != size {
					t.Errorf("group %s: %d modules, %d bytes; its paths: %d, %d bytes", g.Name, g.Modules, g.Bytes, len(g.Paths), size)
				}
			}
			if n != st.Modules || n != len(want) || st.Chosen[0].Name != "ethernet" {
				t.Errorf("groups %+v count %d modules, want %d, ethernet first", st.Chosen, n, st.Modules)
			}
		})
	}

	var buf bytes.Buffer
	for _, tt := range []struct {
		spec Spec
		want string
	}{
		{Spec{ModuleSets: []string{"bluetooth"}}, `unknown module set "bluetooth" (known: ethernet, `},
		{Spec{ExtraModules: []string{"nosuch"}}, "--module nosuch: module nosuch: unknown module"},
	} {
		s := tt.spec
		s.Init, s.CA, s.Modules = init, init, tree
		if _, err := Write(&buf, s); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: error %v, want %q", tt.spec, err, tt.want)
		}
	}

	// --module-dir replaces the ethernet set.
	st, err := Write(&buf, Spec{Init: init, CA: init, Modules: tree, ModulePrefixes: []string{"kernel/fs/"}})
	if err != nil || st.Modules != 1 || st.Chosen[0].Name != "--module-dir" {
		t.Errorf("--module-dir kernel/fs/: %+v, %v; want ext4 alone", st, err)
	}
}

// TestFirmwareRequested: with modules, only the firmware files they name are packed, found
// as they are, compressed, through a glob or through a link; names the tree lacks are counted.
func TestFirmwareRequested(t *testing.T) {
	dir := t.TempDir()
	tree := setsTree(t, dir)
	init := filepath.Join(dir, "init")
	os.WriteFile(init, []byte("INIT"), 0o755)
	fw := filepath.Join(dir, "firmware")
	for name, data := range map[string]string{
		"e1000e/nvm.bin.xz":       "XZ",
		"rtl_nic/rtl8153a-2.fw":   "A2",
		"rtl_nic/rtl8153a-3.fw":   "A3",
		"rtl_nic/rtl8168h-2.fw":   "not asked for",
		"iwlwifi-cc-a0-77.ucode":  "not asked for",
		"realtek/rtl8153a-4.real": "A4",
	} {
		p := filepath.Join(fw, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(data), 0o644)
	}
	os.Symlink("../realtek/rtl8153a-4.real", filepath.Join(fw, "rtl_nic/rtl8153a-4.fw"))
	var buf bytes.Buffer
	st, err := Write(&buf, Spec{Init: init, CA: init, Modules: tree, Firmware: fw})
	if err != nil {
		t.Fatal(err)
	}
	recs := records(t, buf.Bytes())
	var got []string
	for name := range recs {
		if rel, ok := strings.CutPrefix(name, "lib/firmware/"); ok && recs[name].Mode&0o170000 != 0o040000 {
			got = append(got, rel)
		}
	}
	sort.Strings(got)
	want := []string{"e1000e/nvm.bin.xz", "realtek/rtl8153a-4.real", "rtl_nic/rtl8153a-2.fw", "rtl_nic/rtl8153a-3.fw", "rtl_nic/rtl8153a-4.fw"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("firmware mismatch (-want +got):\n%s", diff)
	}
	if content(t, recs["lib/firmware/rtl_nic/rtl8153a-4.fw"]) != "../realtek/rtl8153a-4.real" {
		t.Error("the link is not packed as a link")
	}
	if st.Firmware != 5 || st.FirmwareBytes != 8 || !slices.Equal(st.FirmwareMissing, []string{"mellanox/missing.bin"}) {
		t.Errorf("stats: %d files, %d bytes, missing %v; want 5, 8, [mellanox/missing.bin]", st.Firmware, st.FirmwareBytes, st.FirmwareMissing)
	}
	if _, err := Write(&buf, Spec{Init: init, CA: init, Modules: tree, Firmware: init}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("firmware a file: %v", err)
	}
}
