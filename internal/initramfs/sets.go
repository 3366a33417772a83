package initramfs

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/ramboot/ramboot/internal/kmod"
)

// A ModuleSet is a named choice of kernel modules, made by where they sit in the kernel's tree
// (as modules.dep lists them) rather than by name, so that a newer kernel's new drivers are
// chosen too. Dependencies (modules.dep and softdep pre:) always come along.
type ModuleSet struct {
	Name string
	Doc  string // one line, for --help and the README
	// Paths are tree paths relative to /lib/modules/RELEASE: "kernel/drivers/net/ethernet/"
	// (ending in '/') is every module below that directory; "kernel/drivers/net/virtio_net"
	// is that module, whatever its compression suffix.
	Paths []string
	// Exclude are tree paths, in Paths' form, left out although Paths name them.
	Exclude []string
	// Buses, when set, keep only the modules under Paths that drive a device on one of these
	// buses (an alias "pci:...", "usb:..."): a boot NIC is found by its device's modalias, so a
	// module without one (a library, an offload add-on, a PCMCIA or device-tree-only driver)
	// is packed only when a chosen driver depends on it.
	Buses []string
	// ArchPaths and ArchBuses add, for the modules of one architecture, tree paths to Paths
	// and buses to Buses.
	ArchPaths map[Arch][]string
	ArchBuses map[Arch][]string
}

// nicBuses are the buses a boot NIC sits on: PCI (and what rides on it: auxiliary devices of
// split drivers such as mlx5), USB, and the hypervisors' own (virtio, Hyper-V's vmbus, Xen).
var nicBuses = []string{"pci", "usb", "virtio", "vmbus", "xen", "auxiliary"}

// socBuses are the buses of the NICs and PHYs of arm64 SoCs, which no PCI probe finds: devices
// the firmware describes (ACPI's "acpi*:HID:*" aliases, the device tree's "of:", and
// "platform:" by name), NXP's DPAA2 objects on the fsl-mc bus (LX2160A servers), and the PHYs
// on an MDIO bus that such NICs drive themselves (Realtek's, Marvell's and Broadcom's need
// their own driver for the link to come up).
var socBuses = []string{"platform", "of", "acpi*", "fsl-mc", "mdio"}

// socPaths are where the PHY, MDIO and PCS drivers of SoC NICs sit.
var socPaths = []string{"kernel/drivers/net/phy/", "kernel/drivers/net/mdio/", "kernel/drivers/net/pcs/"}

// InitModules are the modules /init itself may need, packed whatever the sets, when the kernel
// has them as modules: efivarfs, for the UEFI firmware's boot entry (the boot NIC), and USB
// keyboards for the menu on a VGA or EFI framebuffer console (a server's BMC offers its remote
// keyboard as a USB device; the USB host controllers come with the ethernet set), and the
// bonding and 802.1Q drivers for bond= and vlan= (LACP port channels, tagged boot networks).
var InitModules = []string{
	"kernel/fs/efivarfs/efivarfs",
	"kernel/drivers/hid/usbhid/usbhid",
	"kernel/drivers/hid/hid-generic",
	"kernel/drivers/net/bonding/bonding",
	"kernel/net/8021q/8021q",
}

// DefaultModuleSet is packed unless ModulePrefixes replaces it.
const DefaultModuleSet = "ethernet"

// ModuleSets are the sets --modules-set names; "ethernet" is always packed (see DefaultModuleSet).
var ModuleSets = []ModuleSet{
	{
		Name: "ethernet",
		Doc:  "wired Ethernet (PCI and USB, with the USB host controllers) and the virtual NICs of virtio, VMware, Hyper-V and Xen; for arm64 also the SoCs' own (ACPI, device tree, fsl-mc) and their PHYs",
		Paths: []string{
			"kernel/drivers/net/ethernet/",
			"kernel/drivers/net/usb/",
			"kernel/drivers/usb/host/",
			"kernel/drivers/net/virtio_net",
			"kernel/drivers/virtio/virtio_pci",
			"kernel/drivers/net/vmxnet3/",
			"kernel/drivers/net/hyperv/",
			"kernel/drivers/net/xen-netfront",
		},
		Exclude:   usbModems,
		Buses:     nicBuses,
		ArchPaths: map[Arch][]string{ARM64: socPaths},
		ArchBuses: map[Arch][]string{ARM64: socBuses},
	},
	{
		Name:  "wwan",
		Doc:   "cellular modems and phone tethering (USB QMI, MBIM, Sierra, iPhone) and the WWAN framework",
		Paths: append([]string{"kernel/drivers/net/wwan/"}, usbModems...),
	},
	{
		Name:  "infiniband",
		Doc:   "InfiniBand and RoCE adapters, IPoIB",
		Paths: []string{"kernel/drivers/infiniband/"},
	},
	{
		Name:  "wireless",
		Doc:   "Wi-Fi drivers and the 802.11 stack",
		Paths: []string{"kernel/drivers/net/wireless/", "kernel/net/wireless/", "kernel/net/mac80211/"},
	},
	{
		Name:  "storage",
		Doc:   "block, SCSI, ATA, NVMe and MD drivers and file systems",
		Paths: StoragePrefixes,
	},
	{
		Name:  "net",
		Doc:   "all of kernel/drivers/net (CAN, WWAN, wireless, ...) and virtio",
		Paths: []string{"kernel/drivers/net/", "kernel/drivers/virtio/"},
	},
	{
		Name:  "all",
		Doc:   "every module of the kernel",
		Paths: []string{"kernel/", "updates/", "extra/"},
	},
}

// usbModems are the modules of kernel/drivers/net/usb that drive cellular modems and phones
// rather than Ethernet adapters (the wwan set).
var usbModems = []string{
	"kernel/drivers/net/usb/cdc_mbim",
	"kernel/drivers/net/usb/cdc-phonet",
	"kernel/drivers/net/usb/hso",
	"kernel/drivers/net/usb/huawei_cdc_ncm",
	"kernel/drivers/net/usb/ipheth",
	"kernel/drivers/net/usb/kalmia",
	"kernel/drivers/net/usb/lg-vl600",
	"kernel/drivers/net/usb/qmi_wwan",
	"kernel/drivers/net/usb/sierra_net",
}

// StoragePrefixes are the "storage" set (and Spec.Storage).
var StoragePrefixes = []string{"kernel/drivers/block/", "kernel/drivers/scsi/", "kernel/drivers/ata/",
	"kernel/drivers/nvme/", "kernel/drivers/md/", "kernel/fs/"}

// ModuleSetNames lists the set names, for messages.
func ModuleSetNames() []string {
	var out []string
	for _, s := range ModuleSets {
		out = append(out, s.Name)
	}
	return out
}

// LookupModuleSet returns the set called name, or an error listing the known ones.
func LookupModuleSet(name string) (ModuleSet, error) {
	for _, s := range ModuleSets {
		if s.Name == name {
			return s, nil
		}
	}
	return ModuleSet{}, fmt.Errorf("unknown module set %q (known: %s)", name, strings.Join(ModuleSetNames(), ", "))
}

// matchPath reports whether the module at p is one a set path names.
func matchPath(p, pattern string) bool {
	if strings.HasSuffix(pattern, "/") {
		return strings.HasPrefix(p, pattern)
	}
	rest, ok := strings.CutPrefix(p, pattern)
	return ok && (rest == ".ko" || strings.HasPrefix(rest, ".ko."))
}

// onBus reports whether one of aliases is for a device on one of buses.
func onBus(aliases, buses []string) bool {
	for _, a := range aliases {
		bus, _, ok := strings.Cut(a, ":")
		if !ok {
			continue
		}
		for _, b := range buses {
			if bus == b {
				return true
			}
		}
	}
	return false
}

// members returns the modules of ix that s chooses for modules of arch ("" for none in
// particular), before dependencies, sorted.
func (s ModuleSet) members(ix *kmod.Index, arch Arch) []string {
	paths := append(slices.Clip(s.Paths), s.ArchPaths[arch]...)
	buses := append(slices.Clip(s.Buses), s.ArchBuses[arch]...)
	var out []string
	for _, p := range ix.Paths() {
		if slices.ContainsFunc(s.Exclude, func(pat string) bool { return matchPath(p, pat) }) {
			continue
		}
		for _, pat := range paths {
			if matchPath(p, pat) {
				if len(buses) == 0 || onBus(ix.Aliases(p), buses) {
					out = append(out, p)
				}
				break
			}
		}
	}
	sort.Strings(out)
	return out
}
