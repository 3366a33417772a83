package netup

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/ramboot/ramboot/internal/atomicfile"
	"github.com/ramboot/ramboot/internal/cmdline"
)

// Paths WriteImageConfig writes, inside the image. With bonds or VLANs, networkd gets one
// more file per interface in NetworkdDir (10-ramboot-NAME.network, 10-ramboot-NAME.netdev);
// NetworkdPath is always the one of the interface that has the address.
const (
	UdevRulePath  = "/etc/udev/rules.d/70-ramboot-net.rules"
	IfupdownPath  = "/etc/network/interfaces.d/ramboot"
	NetworkdDir   = "/etc/systemd/network"
	NetworkdPath  = NetworkdDir + "/10-ramboot.network"
	NetplanPath   = "/etc/netplan/10-ramboot.yaml"
	ResolvPath    = "/etc/resolv.conf"
	HostnamePath  = "/etc/hostname"
	interfacesCfg = "/etc/network/interfaces"
)

// netplanID is the netplan definition's name. Netplan renders it to
// 10-netplan-<id>.network and networkd takes the first file, in lexical order, that matches a
// link: "bootif" sorts before the eth*/en* names an image's own config (cloud-init's, say)
// uses for the same NIC, so ours wins when both match. A NIC under a bond or a VLAN is
// "bootif-NAME", for the same reason.
const netplanID = "bootif"

// ImageNet is the network /init brought up, as WriteImageConfig writes it into an image and
// KernelParams passes it to a kexec'd kernel. It is plain data, independent of netlink: the
// code that created the interfaces fills it in.
type ImageNet struct {
	// Lease is the address configuration (IPv4 and V6) of the interface that carries it,
	// Lease.Iface: a NIC, a bond or a VLAN. Required.
	Lease *Lease
	// Links are the interfaces /init set up below and including Lease.Iface: NICs (bond
	// ports, a VLAN's parent), bonds and VLANs, in any order. Empty means Lease.Iface is a
	// plain NIC with the MAC Lease.MAC (the single-NIC boot). A NIC named by Lease.Iface
	// that is missing from Links is taken to be that one.
	Links []ImageLink
	// Net is the network part of the command line (or the menu entry's network: block)
	// the topology came from; nil if none. Its rd.route=, nameserver= and rd.net.timeout.*
	// go to the kexec'd kernel and rd.route= into the image.
	Net *cmdline.Network
}

// NewImageNet describes what Up brought up, l (its Bonds and VLANs included), for
// WriteImageConfig and KernelParams; n is the network part of the command line or menu entry
// it came from (nil if none). A VLAN is described when its parent is one of the bonds or it
// is the addressed interface (whose MAC is its parent NIC's); others are left out.
func NewImageNet(l *Lease, n *cmdline.Network) *ImageNet {
	in := &ImageNet{Lease: l, Net: n}
	if l == nil {
		return in
	}
	bonds := map[string]bool{}
	for _, b := range l.Bonds {
		bonds[b.Bond.Name] = true
		for _, m := range b.Members {
			in.Links = append(in.Links, ImageLink{Kind: ImageNIC, Name: m.Name, MAC: m.MAC, Master: b.Bond.Name, MTU: b.Bond.MTU})
		}
		in.Links = append(in.Links, ImageLink{Kind: ImageBond, Name: b.Bond.Name, MAC: b.MAC,
			BondOptions: b.Bond.Options, MTU: b.Bond.MTU})
	}
	for _, v := range l.VLANs {
		switch {
		case bonds[v.Parent]:
		case v.Name == l.Iface:
			in.Links = append(in.Links, ImageLink{Kind: ImageNIC, Name: v.Parent, MAC: l.MAC})
		default:
			continue
		}
		in.Links = append(in.Links, ImageLink{Kind: ImageVLAN, Name: v.Name, MAC: l.MAC, Parent: v.Parent, VLANID: v.ID})
	}
	return in
}

// ImageLinkKind is what an ImageLink is.
type ImageLinkKind int

// The kinds of ImageLink.
const (
	ImageNIC ImageLinkKind = iota
	ImageBond
	ImageVLAN
)

func (k ImageLinkKind) String() string {
	return [...]string{"NIC", "bond", "VLAN"}[k]
}

// ImageLink is one interface /init set up.
type ImageLink struct {
	Kind ImageLinkKind
	Name string // in the initramfs: eth0, bootnet (after ifname=), bond0, vlan42, eth0.42
	// MAC, for a NIC, is its permanent address (the hardware's, as `ethtool -P` shows it),
	// which the booted system matches it by. For a bond or a VLAN it is the address the
	// interface has (its first port's, its parent's), kept so that DHCP sees the same
	// client; nil leaves it to the booted system.
	MAC    net.HardwareAddr
	MTU    int    // the MTU set; 0 if left alone
	Master string // NIC: the bond it is a port of; "" if none
	Parent string // VLAN: the NIC or bond it is on
	VLANID int    // VLAN: 1 to 4094
	// BondOptions, for a bond, are its options as bond= gives them (mode=802.3ad,
	// miimon=100, lacp_rate=fast, xmit_hash_policy=layer3+4, primary=eth0, …).
	BondOptions []cmdline.BondOption
}

// imageTopo is an ImageNet checked and put in order: NICs, then bonds, then VLANs (parents
// before what is on them).
type imageTopo struct {
	lease *Lease
	links []ImageLink
	top   *ImageLink // the one named by lease.Iface
	// plain is the single-NIC boot (no Links given): the NIC is matched by lease.MAC, the
	// address it has now, as before bonds and VLANs existed.
	plain bool
	net   *cmdline.Network
}

// check checks n: names unique, each port's bond and each VLAN's parent present, NICs
// with a MAC, the leased interface neither a port nor missing.
func (n *ImageNet) check() (*imageTopo, error) {
	l := n.Lease
	if l == nil || l.Iface == "" {
		return nil, errors.New("no lease")
	}
	t := &imageTopo{lease: l, net: n.Net, plain: len(n.Links) == 0}
	byName := map[string]*ImageLink{}
	links := slices.Clone(n.Links)
	if !slices.ContainsFunc(links, func(k ImageLink) bool { return k.Name == l.Iface }) {
		links = append(links, ImageLink{Kind: ImageNIC, Name: l.Iface, MAC: l.MAC})
	}
	for _, kind := range []ImageLinkKind{ImageNIC, ImageBond, ImageVLAN} {
		for _, k := range links {
			if k.Kind == kind {
				t.links = append(t.links, k)
			}
		}
	}
	for i := range t.links {
		k := &t.links[i]
		switch {
		case k.Kind < ImageNIC || k.Kind > ImageVLAN:
			return nil, fmt.Errorf("%s: unknown kind %d", k.Name, k.Kind)
		case k.Name == "" || byName[k.Name] != nil:
			return nil, fmt.Errorf("interface name %q is empty or given twice", k.Name)
		case k.Kind == ImageNIC && len(k.MAC) != 6:
			return nil, fmt.Errorf("NIC %s has no MAC address", k.Name)
		case k.Kind == ImageVLAN && (k.VLANID < 1 || k.VLANID > 4094):
			return nil, fmt.Errorf("VLAN %s: id %d is not from 1 to 4094", k.Name, k.VLANID)
		}
		byName[k.Name] = k
	}
	for _, k := range t.links {
		if k.Master != "" {
			if m := byName[k.Master]; m == nil || m.Kind != ImageBond || k.Kind != ImageNIC {
				return nil, fmt.Errorf("%s: %s is not a bond of the topology (or %s is not a NIC)", k.Name, k.Master, k.Name)
			}
		}
		if k.Kind == ImageVLAN {
			// A VLAN on a VLAN (QinQ) is not something ramboot creates.
			if p := byName[k.Parent]; p == nil || p.Kind == ImageVLAN || p.Master != "" {
				return nil, fmt.Errorf("VLAN %s: its parent %q is not a NIC or bond of the topology", k.Name, k.Parent)
			}
		}
		if k.Kind == ImageBond && len(t.ports(k.Name)) == 0 {
			return nil, fmt.Errorf("bond %s has no ports", k.Name)
		}
	}
	t.top = byName[l.Iface]
	if t.top.Master != "" {
		return nil, fmt.Errorf("%s, which has the address, is a port of %s", l.Iface, t.top.Master)
	}
	if t.plain && len(l.MAC) != 6 {
		return nil, errors.New("no lease")
	}
	return t, nil
}

// ports are the NICs of bond, in order.
func (t *imageTopo) ports(bond string) []ImageLink {
	var out []ImageLink
	for _, k := range t.links {
		if k.Master == bond {
			out = append(out, k)
		}
	}
	return out
}

// vlansOn are the VLANs whose parent is name.
func (t *imageTopo) vlansOn(name string) []ImageLink {
	var out []ImageLink
	for _, k := range t.links {
		if k.Kind == ImageVLAN && k.Parent == name {
			out = append(out, k)
		}
	}
	return out
}

// under reports whether a bond or a VLAN sits on k: its current MAC is then not its own to
// be matched by (a bond gives its ports its address, a VLAN has its parent's).
func (t *imageTopo) under(k ImageLink) bool {
	return k.Master != "" || len(t.vlansOn(k.Name)) > 0
}

// routes are the rd.route= routes that belong on the interface with the address: those that
// name it, or no interface.
func (t *imageTopo) routes() []cmdline.Route {
	if t.net == nil {
		return nil
	}
	var out []cmdline.Route
	for _, r := range t.net.Routes {
		if r.Device == "" || r.Device == t.top.Name {
			out = append(out, r)
		}
	}
	return out
}

// addrConfig is the address configuration of the leased interface, by family, as the
// renderers need it.
type addrConfig struct {
	dhcp4, static4        bool
	v6                    bool // IPv6 was configured at all
	slaac, dhcp6, static6 bool
	acceptRA              bool // the booted system listens to router advertisements
	v4Prefix              string
	static6Addrs          []string
	gateway4, gateway6    string // of static configurations
	// DNS servers and search domains of static configurations (DHCP and RAs send theirs
	// again); dns and search are both families'.
	dns4, dns6, dns          []string
	search4, search6, search []string
}

func addrConfigOf(t *imageTopo) addrConfig {
	l := t.lease
	var c addrConfig
	c.dhcp4 = l.DHCP
	c.static4 = !l.DHCP && l.Addr.IsValid()
	if c.static4 {
		c.v4Prefix = l.Addr.String()
		if l.Gateway.IsValid() {
			c.gateway4 = l.Gateway.String()
		}
		c.dns4 = addrStrings(l.DNS)
		c.search4 = l.Search
	}
	if v6 := l.V6; v6 != nil {
		c.v6 = true
		for _, a := range v6.Addrs {
			switch a.From {
			case "slaac":
				c.slaac = true
			case "dhcpv6":
				c.dhcp6 = true
			default:
				c.static6 = true
				c.static6Addrs = append(c.static6Addrs, a.Prefix.String())
			}
		}
		// RAs gave the addresses or the default route: the booted system listens to them
		// too. Only a static address on a network that sent no RA is kept without them.
		c.acceptRA = c.slaac || c.dhcp6
		if c.static6 && !c.acceptRA {
			if v6.Gateway.IsValid() {
				c.gateway6 = v6.Gateway.String()
			}
			c.dns6 = addrStrings(v6.DNS)
			c.search6 = v6.Search
		}
	}
	c.dns = append(slices.Clone(c.dns4), c.dns6...)
	c.search = append(slices.Clone(c.search4), c.search6...)
	return c
}

func addrStrings(as []netip.Addr) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

// WriteImageConfig writes the network n describes into the root filesystem at root, which
// ramroot is about to switch_root into, so the booted system keeps the network ramboot
// brought up: the same NICs, bonds (their mode and options) and VLANs, a DHCP address as
// DHCP (asking as the same client), a static one as static, IPv6 as it was configured
// (router advertisements, DHCPv6, static). It returns the files it wrote (or changed) as
// paths inside the image, e.g. /etc/hostname.
//
// What is written depends on what the image has:
//   - /etc/netplan: NetplanPath (ethernets, bonds, vlans). Netplan then owns networkd's
//     configuration, so no networkd file is written.
//   - else /etc/systemd: NetworkdPath for the interface with the address, and per bond and
//     VLAN a .netdev and per port or parent a .network in NetworkdDir.
//   - /etc/network (ifupdown): IfupdownPath, by interface name, and a "source" line for it
//     appended to /etc/network/interfaces when that file exists and does not read
//     interfaces.d. Skipped if the image's ifupdown config already defines one of the
//     interfaces it would. Bonds need Debian's ifenslave in the image, VLANs named vlanN
//     its vlan package (DEV.N names ifupdown knows itself), DHCP isc-dhcp-client.
//   - udev (/etc/udev, /lib/udev or /usr/lib/udev): UdevRulePath, which keeps the NICs'
//     names (see below).
//   - /etc/resolv.conf when the lease has DNS servers and the image has no resolver config:
//     the file is absent, or a regular file without a nameserver line (container images ship
//     an empty one). A symlink — even a dangling one, such as systemd-resolved's stub or
//     resolvconf's, whose target lives in /run — means a resolver manager will write it from
//     the network config above, so it is left alone; so is a file with nameservers in it.
//   - /etc/hostname when the lease has a hostname, replacing the image's (a container image's
//     is a build-time accident; the operator's DHCP or ip= hostname names this machine).
//
// Interface names: the initramfs has no udev, so a NIC has its kernel name (eth0) or the
// one ifname= gave it, while the booted system's udev would give it a predictable name
// (ens4, enp0s4). But switch_root keeps the running kernel and its network state: the NIC
// is still up, and Linux refuses to rename an interface that is up (EBUSY), so in practice
// it keeps its name. Guessing the predictable name instead would mean reimplementing udev's
// net_id for whichever naming scheme the image's systemd has, and would be wrong exactly
// because no rename happens. So: where the tool can match a NIC by MAC (networkd, and
// netplan for a NIC with nothing on it) it does; ifupdown can only name interfaces, so it
// names them. And the udev rule, pinning each NIC's name, is needed by all three: the booted
// system's udev otherwise tries its predictable name, the rename fails ("already up, cannot
// rename"), the device event fails, and networkd leaves the link "pending" and never applies
// its .network file, MAC match or not (seen with systemd 252 in the Debian VM test). So the
// rule is written whenever the image has udev. It matches by name, not by MAC: a bond's
// ports all carry the bond's MAC, and a VLAN has its parent's. Renaming into the kernel's
// eth* namespace is normally racy, but here the kernel already assigned these names in this
// boot and the rule only restates them. The files live in a RAM root, so none of this
// outlives the boot.
//
// Which MAC: a lone NIC is matched by MACAddress=, the address it has. A NIC under a bond
// or a VLAN is matched by PermanentMACAddress= (systemd 245 and later): enslaving gives
// every port the bond's address, and a VLAN has its parent's, so MACAddress= would match a
// port by another's address, or the VLAN as well as its parent. Bonds and VLANs are matched
// by Name=, which their .netdev gives them.
//
// DHCP identity: ramboot's DHCPv4 client sends no client identifier, so servers know it by
// its MAC; networkd is told ClientIdentifier=mac (netplan: dhcp-identifier: mac), the
// equivalent, rather than its default DUID-based one, which a server such as ISC dhcpd
// takes for another client. DHCPv6 keys on the DUID and IAID: networkd is told DUIDType=link-layer
// (DUID-LL, from the MAC, no machine-id or time in it) and IAID= as ramboot's client sends
// them (dhcp6_linux.go); ifupdown's dhclient and netplan choose their own.
//
// Symlinks in the image are resolved inside root (os.Root); ones that escape it are errors.
func WriteImageConfig(root string, n *ImageNet) ([]string, error) {
	if n == nil {
		return nil, errors.New("writing image network config: no lease")
	}
	t, err := n.check()
	if err != nil {
		return nil, fmt.Errorf("writing image network config: %w", err)
	}
	l := t.lease
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("writing image network config: %w", err)
	}
	defer r.Close()
	w := &imageWriter{r: r}

	if isDir(r, "/etc/netplan") {
		w.write(NetplanPath, renderNetplan(t), 0o600) // netplan warns about readable files
	} else if isDir(r, "/etc/systemd") {
		for _, f := range renderNetworkd(t) {
			w.write(f.path, f.data, 0o644)
		}
	}
	if isDir(r, "/etc/network") && !ifupdownDefines(r, ifupdownNames(t)) {
		w.write(IfupdownPath, renderIfupdown(t), 0o644)
		if b, err := r.ReadFile(rel(interfacesCfg)); err == nil && !sourcesInterfacesD(b) {
			if len(b) > 0 && !bytes.HasSuffix(b, []byte("\n")) {
				b = append(b, '\n')
			}
			b = append(b, "\n# Added by ramboot for the boot NIC.\nsource "+IfupdownPath+"\n"...)
			w.write(interfacesCfg, string(b), 0o644)
		}
	}
	if isDir(r, "/etc/udev") || isDir(r, "/lib/udev") || isDir(r, "/usr/lib/udev") {
		w.write(UdevRulePath, renderUdevRule(t), 0o644)
	}
	dns, search := l.DNS, l.Search
	if l.V6 != nil {
		dns = append(slices.Clone(dns), l.V6.DNS...)
		search = append(slices.Clone(search), l.V6.Search...)
	}
	if len(dns) > 0 && resolvConfUnmanaged(r) {
		w.write(ResolvPath, renderResolvConf(dns, search), 0o644)
	}
	if l.Hostname != "" {
		w.write(HostnamePath, l.Hostname+"\n", 0o644)
	}
	if w.err != nil {
		return w.written, fmt.Errorf("writing image network config: %w", w.err)
	}
	return w.written, nil
}

// imageWriter writes files atomically inside an os.Root and keeps the first error.
type imageWriter struct {
	r       *os.Root
	written []string
	err     error
}

func (w *imageWriter) write(name, data string, perm fs.FileMode) {
	if w.err != nil {
		return
	}
	if err := atomicfile.WriteIn(w.r, rel(name), []byte(data), perm); err != nil {
		w.err = fmt.Errorf("%s: %w", name, err)
		return
	}
	w.written = append(w.written, name)
}

// rel makes an image path relative for os.Root.
func rel(name string) string { return strings.TrimPrefix(name, "/") }

func isDir(r *os.Root, name string) bool {
	fi, err := r.Stat(rel(name))
	return err == nil && fi.IsDir()
}

// resolvConfUnmanaged reports whether the image's /etc/resolv.conf is ours to write (see
// WriteImageConfig).
func resolvConfUnmanaged(r *os.Root) bool {
	fi, err := r.Lstat(rel(ResolvPath))
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	b, err := r.ReadFile(rel(ResolvPath))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "nameserver" {
			return false
		}
	}
	return true
}

// ifupdownDefines reports whether the image's ifupdown config (interfaces and
// interfaces.d/*, ours excepted) already has "iface <name> inet" or "inet6" for one of
// names: a second one would make ifup fail.
func ifupdownDefines(r *os.Root, names []string) bool {
	files := []string{rel(interfacesCfg)}
	if ents, err := fs.ReadDir(r.FS(), "etc/network/interfaces.d"); err == nil {
		for _, e := range ents {
			if n := "etc/network/interfaces.d/" + e.Name(); n != rel(IfupdownPath) {
				files = append(files, n)
			}
		}
	}
	for _, name := range files {
		b, err := r.ReadFile(name)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) >= 3 && f[0] == "iface" && slices.Contains(names, f[1]) && (f[2] == "inet" || f[2] == "inet6") {
				return true
			}
		}
	}
	return false
}

// sourcesInterfacesD reports whether an interfaces(5) file reads interfaces.d.
func sourcesInterfacesD(b []byte) bool {
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == "source" || f[0] == "source-directory") &&
			strings.Contains(f[1], "interfaces.d") {
			return true
		}
	}
	return false
}

func renderUdevRule(t *imageTopo) string {
	var b strings.Builder
	b.WriteString(`# Written by ramboot: keep the names of the NICs it booted over. They are up and configured
# when this system starts and Linux does not rename an up interface: a rename attempt would
# fail the device's udev event, and networkd would leave the link pending. Matched by name, as
# a bond's ports all carry the bond's MAC.
`)
	for _, k := range t.links {
		if k.Kind == ImageNIC {
			fmt.Fprintf(&b, "# %s\nSUBSYSTEM==\"net\", ACTION==\"add\", KERNEL==\"%s\", NAME=\"%s\"\n", k.MAC, k.Name, k.Name)
		}
	}
	return b.String()
}

// imageFile is one file to write into the image.
type imageFile struct{ path, data string }

// renderNetworkd renders the topology for systemd-networkd (systemd.network(5),
// systemd.netdev(5), as of systemd 252, Debian 12's): .netdev files for bonds and VLANs,
// .network files for ports and parents, and NetworkdPath for the interface with the address.
//
// The bond and the VLAN exist when networkd starts; it then uses them as they are ("netdev
// exists, using existing without changing its parameters"), so the .netdev is what a
// re-creation would get, and MACAddress= keeps the address DHCP knows.
func renderNetworkd(t *imageTopo) []imageFile {
	var files []imageFile
	for _, k := range t.links {
		if k.Kind != ImageNIC {
			files = append(files, imageFile{NetworkdDir + "/10-ramboot-" + k.Name + ".netdev", renderNetdev(k)})
		}
	}
	for _, k := range t.links {
		if k.Name != t.top.Name {
			if k.Kind == ImageNIC && !t.under(k) {
				continue // a NIC that is neither port nor parent nor the leased one
			}
			files = append(files, imageFile{NetworkdDir + "/10-ramboot-" + k.Name + ".network", renderNetworkdLink(t, k)})
		}
	}
	return append(files, imageFile{NetworkdPath, renderNetworkdLink(t, *t.top)})
}

func renderNetdev(k ImageLink) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by ramboot: the %s it booted over.\n[NetDev]\nName=%s\nKind=%s\n", k.Kind, k.Name, strings.ToLower(k.Kind.String()))
	if len(k.MAC) == 6 {
		fmt.Fprintf(&b, "MACAddress=%s\n", k.MAC)
	}
	if k.MTU > 0 {
		fmt.Fprintf(&b, "MTUBytes=%d\n", k.MTU)
	}
	switch k.Kind {
	case ImageVLAN:
		fmt.Fprintf(&b, "\n[VLAN]\nId=%d\n", k.VLANID)
	case ImageBond:
		b.WriteString("\n[Bond]\n")
		var skipped, keys []string
		for _, o := range k.BondOptions {
			key, val, ok := networkdBondOption(o)
			switch {
			case key == "": // a port's setting (primary=, active_slave=), in its .network
			case slices.Contains(keys, key):
				// num_grat_arp and num_unsol_na are one setting of the kernel's, and networkd's.
			case !ok:
				skipped = append(skipped, o.Name+"="+o.Value)
			default:
				keys = append(keys, key)
				fmt.Fprintf(&b, "%s=%s\n", key, val)
			}
		}
		for _, s := range skipped {
			fmt.Fprintf(&b, "# %s: no systemd-networkd 252 setting; the bond keeps what ramboot set.\n", s)
		}
	}
	return b.String()
}

// renderNetworkdLink is the .network file of one interface of the topology.
func renderNetworkdLink(t *imageTopo, k ImageLink) string {
	var b strings.Builder
	top := k.Name == t.top.Name
	switch {
	case top:
		fmt.Fprintf(&b, "# Written by ramboot: the %s it booted over", k.Kind)
	case k.Master != "":
		fmt.Fprintf(&b, "# Written by ramboot: %s, a port of %s", k.Name, k.Master)
	default:
		fmt.Fprintf(&b, "# Written by ramboot: %s, under the VLANs it booted over", k.Name)
	}
	switch {
	case k.Kind != ImageNIC:
		fmt.Fprintf(&b, ".\n[Match]\nName=%s\n", k.Name)
	case t.plain:
		fmt.Fprintf(&b, ", matched by MAC whatever its name.\n[Match]\nMACAddress=%s\n", t.lease.MAC)
	default:
		fmt.Fprintf(&b, ", matched by its permanent MAC whatever its name.\n[Match]\nPermanentMACAddress=%s\n", k.MAC)
	}
	mtu := k.MTU
	if top && mtu == 0 {
		mtu = t.lease.MTU
	}
	if mtu > 0 && k.Kind == ImageNIC {
		// A bond's and a VLAN's MTU is in their .netdev.
		fmt.Fprintf(&b, "\n[Link]\nMTUBytes=%d\n", mtu)
	}
	b.WriteString("\n[Network]\n")
	if k.Master != "" {
		fmt.Fprintf(&b, "Bond=%s\n", k.Master)
		if bond := t.link(k.Master); bond != nil {
			if v, _ := imageBondOption(bond, "primary"); v == k.Name {
				b.WriteString("PrimarySlave=yes\n")
			}
			if v, _ := imageBondOption(bond, "active_slave"); v == k.Name {
				b.WriteString("ActiveSlave=yes\n")
			}
		}
	}
	for _, v := range t.vlansOn(k.Name) {
		fmt.Fprintf(&b, "VLAN=%s\n", v.Name)
	}
	if !top {
		return b.String()
	}
	c := addrConfigOf(t)
	switch {
	case c.dhcp4 && c.dhcp6:
		b.WriteString("DHCP=yes\n")
	case c.dhcp4:
		b.WriteString("DHCP=ipv4\n")
	case c.dhcp6:
		b.WriteString("DHCP=ipv6\n")
	}
	if c.static4 {
		fmt.Fprintf(&b, "Address=%s\n", c.v4Prefix)
		if c.gateway4 != "" {
			fmt.Fprintf(&b, "Gateway=%s\n", c.gateway4)
		}
	}
	for _, a := range c.static6Addrs {
		fmt.Fprintf(&b, "Address=%s\n", a)
	}
	if c.gateway6 != "" {
		fmt.Fprintf(&b, "Gateway=%s\n", c.gateway6)
	}
	for _, d := range c.dns {
		fmt.Fprintf(&b, "DNS=%s\n", d)
	}
	if len(c.search) > 0 {
		fmt.Fprintf(&b, "Domains=%s\n", strings.Join(c.search, " "))
	}
	if c.v6 {
		fmt.Fprintf(&b, "IPv6AcceptRA=%s\n", yesNo(c.acceptRA))
	}
	for _, r := range t.routes() {
		fmt.Fprintf(&b, "\n[Route]\nDestination=%s\n", r.Dst)
		if r.Gateway.IsValid() {
			fmt.Fprintf(&b, "Gateway=%s\n", r.Gateway)
		}
	}
	if c.dhcp4 {
		b.WriteString("\n[DHCPv4]\nClientIdentifier=mac\n")
	}
	if c.dhcp6 {
		// WithoutRA=solicit: ask at once, as the initramfs did, rather than wait for an RA
		// with the M flag (a network may send none).
		// DUID-LL and IAID as ramboot's client makes them (dhcp6_linux.go): the server's
		// binding is by DUID and IAID, so the booted system asks for the same address.
		fmt.Fprintf(&b, "\n[DHCPv6]\nDUIDType=link-layer\nIAID=%d\nWithoutRA=solicit\n", iaid6(t.lease.MAC))
	}
	return b.String()
}

// iaid6 is the IAID ramboot's DHCPv6 client sends (iaid in dhcp6_linux.go, the MAC's last
// four bytes) as networkd's IAID= reads it: a number, sent big-endian.
func iaid6(mac net.HardwareAddr) uint32 {
	var id [4]byte
	copy(id[:], mac[max(len(mac)-4, 0):])
	return binary.BigEndian.Uint32(id[:])
}

// link is the link of the topology named name, or nil.
func (t *imageTopo) link(name string) *ImageLink {
	for i := range t.links {
		if t.links[i].Name == name {
			return &t.links[i]
		}
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func imageBondOption(k *ImageLink, name string) (string, bool) {
	for _, o := range k.BondOptions {
		if o.Name == name {
			return o.Value, true
		}
	}
	return "", false
}

// bondEnums are the bonding options whose values are words, by number (modinfo bonding):
// bond= takes either, networkd and netplan only the word.
var bondEnums = map[string][]string{
	"mode":             {"balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb"},
	"lacp_rate":        {"slow", "fast"},
	"lacp_active":      {"off", "on"},
	"xmit_hash_policy": {"layer2", "layer3+4", "layer2+3", "encap2+3", "encap3+4", "vlan+srcmac"},
	"ad_select":        {"stable", "bandwidth", "count"},
	"arp_validate":     {"none", "active", "backup", "all", "filter", "filter_active", "filter_backup"},
	"arp_all_targets":  {"any", "all"},
	"primary_reselect": {"always", "better", "failure"},
	"fail_over_mac":    {"none", "active", "follow"},
}

// bondWord returns an enumerated option's value as a word ("4" → "802.3ad").
func bondWord(o cmdline.BondOption) string {
	words := bondEnums[o.Name]
	for i, w := range words {
		if o.Value == fmt.Sprint(i) {
			return w
		}
	}
	return o.Value
}

// networkdBondOption maps a bonding option to systemd.netdev(5)'s [Bond] setting. key is ""
// for the options that are the ports' (primary, active_slave); ok is false for one networkd
// 252 has no setting or value for.
func networkdBondOption(o cmdline.BondOption) (key, val string, ok bool) {
	v := bondWord(o)
	ms := func(k string) (string, string, bool) { return k, v + "ms", true }
	bool01 := func(k string) (string, string, bool) {
		return k, map[string]string{"0": "no", "1": "yes"}[v], v == "0" || v == "1"
	}
	switch o.Name {
	case "primary", "active_slave":
		return "", "", true
	case "mode":
		return "Mode", v, true
	case "lacp_rate":
		return "LACPTransmitRate", v, true
	case "xmit_hash_policy":
		return "TransmitHashPolicy", v, v != "vlan+srcmac" // systemd 253 and later
	case "ad_select":
		return "AdSelect", v, true
	case "arp_validate":
		return "ARPValidate", v, !strings.HasPrefix(v, "filter")
	case "arp_all_targets":
		return "ARPAllTargets", v, true
	case "primary_reselect":
		return "PrimaryReselectPolicy", v, true
	case "fail_over_mac":
		return "FailOverMACPolicy", v, true
	case "miimon":
		return ms("MIIMonitorSec")
	case "updelay":
		return ms("UpDelaySec")
	case "downdelay":
		return ms("DownDelaySec")
	case "arp_interval":
		return ms("ARPIntervalSec")
	case "arp_ip_target":
		return "ARPIPTargets", strings.ReplaceAll(v, ";", " "), true
	case "all_slaves_active":
		return bool01("AllSlavesActive")
	case "tlb_dynamic_lb":
		return bool01("DynamicTransmitLoadBalancing")
	case "min_links":
		return "MinLinks", v, true
	case "resend_igmp":
		return "ResendIGMP", v, true
	case "num_grat_arp", "num_unsol_na":
		return "GratuitousARP", v, true
	case "packets_per_slave":
		return "PacketsPerSlave", v, true
	case "lp_interval":
		return "LearnPacketIntervalSec", v, true
	case "ad_actor_sys_prio":
		return "AdActorSystemPriority", v, true
	case "ad_user_port_key":
		return "AdUserPortKey", v, true
	case "ad_actor_system":
		return "AdActorSystem", strings.ReplaceAll(v, "-", ":"), true
	}
	// use_carrier, lacp_active, peer_notif_delay, missed_max: not in networkd 252.
	return o.Name, v, false
}

// ifupdownNames are the interfaces renderIfupdown writes a stanza for.
func ifupdownNames(t *imageTopo) []string {
	var out []string
	for _, k := range t.links {
		if k.Kind != ImageNIC || k.Master != "" || k.Name == t.top.Name {
			out = append(out, k.Name)
		}
	}
	return out
}

// renderIfupdown renders the topology as interfaces(5) stanzas: ports as "inet manual" with
// bond-master (ifenslave: the port stanza brings the port up again after ifenslave's
// "ip link set down"), the bond with its bond-* options and bond-slaves none, a VLAN with
// vlan-raw-device, and the interface with the address as inet dhcp|static and inet6
// auto|dhcp|static. A VLAN's parent NIC gets no stanza: the vlan package brings it up.
func renderIfupdown(t *imageTopo) string {
	var b strings.Builder
	l := t.lease
	fmt.Fprintf(&b, "# Written by ramboot: the network it booted over (%s, %s).\n", l.Iface, l.MAC)
	for _, k := range t.links {
		if !slices.Contains(ifupdownNames(t), k.Name) {
			continue
		}
		fmt.Fprintf(&b, "\nauto %s\n", k.Name)
		if k.Name == t.top.Name {
			writeIfupdownTop(&b, t, k)
			continue
		}
		fmt.Fprintf(&b, "iface %s inet manual\n", k.Name)
		writeIfupdownLink(&b, t, k)
	}
	return b.String()
}

// ifenslaveOptions are the bonding options Debian's ifenslave (bookworm's 2.13) sets from
// bond-* lines; it ignores others.
var ifenslaveOptions = map[string]bool{
	"mode": true, "miimon": true, "updelay": true, "downdelay": true, "lacp_rate": true,
	"xmit_hash_policy": true, "ad_select": true, "arp_interval": true, "arp_ip_target": true,
	"arp_validate": true, "fail_over_mac": true, "primary": true, "primary_reselect": true,
	"active_slave": true, "use_carrier": true, "num_grat_arp": true, "num_unsol_na": true,
	"packets_per_slave": true, "tlb_dynamic_lb": true,
}

// writeIfupdownLink writes the options of k's first stanza that make the link itself.
func writeIfupdownLink(b *strings.Builder, t *imageTopo, k ImageLink) {
	switch {
	case k.Master != "":
		fmt.Fprintf(b, "\tbond-master %s\n", k.Master)
	case k.Kind == ImageBond:
		// The ports join by their own stanzas (bond-master).
		b.WriteString("\tbond-slaves none\n")
		var skipped []string
		for _, o := range k.BondOptions {
			if !ifenslaveOptions[o.Name] {
				skipped = append(skipped, o.Name+"="+o.Value)
				continue
			}
			v := bondWord(o)
			if o.Name == "arp_ip_target" {
				v = strings.ReplaceAll(v, ";", " ")
			}
			// ifenslave reads IF_BOND_<OPTION> and writes it to the bonding sysfs file of
			// the same name unless that already shows the value: as a word, the same
			// whether bond= gave a number or a word.
			fmt.Fprintf(b, "\tbond-%s %s\n", strings.ReplaceAll(o.Name, "_", "-"), v)
		}
		for _, s := range skipped {
			fmt.Fprintf(b, "\t# %s: ifenslave has no option for it; the bond keeps what ramboot set.\n", s)
		}
	case k.Kind == ImageVLAN:
		fmt.Fprintf(b, "\tvlan-raw-device %s\n", k.Parent)
	}
	if k.MTU > 0 {
		fmt.Fprintf(b, "\tmtu %d\n", k.MTU)
	}
}

func writeIfupdownTop(b *strings.Builder, t *imageTopo, k ImageLink) {
	c := addrConfigOf(t)
	name := k.Name
	first := true
	stanza := func(family, method string) {
		fmt.Fprintf(b, "iface %s %s %s\n", name, family, method)
		if first {
			writeIfupdownLink(b, t, k)
			first = false
		}
	}
	switch {
	case c.dhcp4:
		stanza("inet", "dhcp")
	case c.static4:
		stanza("inet", "static")
	case !c.v6:
		stanza("inet", "manual")
	}
	if c.dhcp4 || c.static4 {
		// The address ramboot configured is still there; "ip addr add" of it again fails
		// ("File exists") and with it ifup. Start clean.
		fmt.Fprintf(b, "\tpre-up ip -4 addr flush dev %s scope global || true\n", name)
	}
	if c.static4 {
		fmt.Fprintf(b, "\taddress %s\n", c.v4Prefix)
		if c.gateway4 != "" {
			fmt.Fprintf(b, "\tgateway %s\n", c.gateway4)
		}
		writeIfupdownDNS(b, c.dns4, c.search4)
	}
	for _, r := range t.routes() {
		if r.Dst.Addr().Is4() && r.Gateway.IsValid() && (c.dhcp4 || c.static4) {
			fmt.Fprintf(b, "\tup ip route replace %s via %s dev %s || true\n", r.Dst, r.Gateway, name)
		}
	}
	if !c.v6 {
		return
	}
	switch {
	case c.dhcp6:
		stanza("inet6", "dhcp")
		b.WriteString("\taccept_ra 1\n")
	case c.slaac:
		// No flush: the kernel would only make the address again on the next RA.
		stanza("inet6", "auto")
	case c.static6:
		stanza("inet6", "static")
	default:
		stanza("inet6", "manual")
	}
	if c.dhcp6 || (c.static6 && !c.slaac) {
		fmt.Fprintf(b, "\tpre-up ip -6 addr flush dev %s scope global || true\n", name)
	}
	if c.static6 && !c.dhcp6 && !c.slaac {
		fmt.Fprintf(b, "\taddress %s\n", c.static6Addrs[0])
		if c.gateway6 != "" {
			fmt.Fprintf(b, "\tgateway %s\n", c.gateway6)
		}
		for _, a := range c.static6Addrs[1:] {
			fmt.Fprintf(b, "\tup ip -6 addr add %s dev %s || true\n", a, name)
		}
		writeIfupdownDNS(b, c.dns6, c.search6)
	}
	for _, r := range t.routes() {
		if r.Dst.Addr().Is6() && r.Gateway.IsValid() {
			fmt.Fprintf(b, "\tup ip -6 route replace %s via %s dev %s || true\n", r.Dst, r.Gateway, name)
		}
	}
}

// writeIfupdownDNS writes the options resolvconf reads, when installed.
func writeIfupdownDNS(b *strings.Builder, dns, search []string) {
	if len(dns) > 0 {
		fmt.Fprintf(b, "\tdns-nameservers %s\n", strings.Join(dns, " "))
	}
	if len(search) > 0 {
		fmt.Fprintf(b, "\tdns-search %s\n", strings.Join(search, " "))
	}
}

// netplanBondParams maps bonding options to netplan's bond parameters.
var netplanBondParams = map[string]string{
	"mode": "mode", "lacp_rate": "lacp-rate", "miimon": "mii-monitor-interval", "min_links": "min-links",
	"xmit_hash_policy": "transmit-hash-policy", "ad_select": "ad-select", "all_slaves_active": "all-slaves-active",
	"arp_interval": "arp-interval", "arp_ip_target": "arp-ip-targets", "arp_validate": "arp-validate",
	"arp_all_targets": "arp-all-targets", "updelay": "up-delay", "downdelay": "down-delay",
	"fail_over_mac": "fail-over-mac-policy", "num_grat_arp": "gratuitous-arp", "packets_per_slave": "packets-per-slave",
	"primary_reselect": "primary-reselect-policy", "resend_igmp": "resend-igmp", "lp_interval": "learn-packet-interval",
	"primary": "primary",
}

// netplanIDOf is the netplan definition name of a link: bonds and VLANs by their name,
// NICs as bootif (the leased one) or bootif-NAME.
func netplanIDOf(t *imageTopo, k ImageLink) string {
	switch {
	case k.Kind != ImageNIC:
		return k.Name
	case k.Name == t.top.Name:
		return netplanID
	}
	return netplanID + "-" + k.Name
}

// renderNetplan renders the topology for netplan. A NIC with nothing on it is matched by
// MAC, without set-name: set-name would make netplan write a .link file asking udev to
// rename the NIC, which fails while it is up (see WriteImageConfig). A port or a VLAN's
// parent is matched by name (which the udev rule keeps): netplan before 1.1 has no
// permanent-MAC match, and its MAC match would also catch the bond or the VLAN.
func renderNetplan(t *imageTopo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by ramboot: the network it booted over, NICs matched by MAC or kept name.\n")
	b.WriteString("network:\n  version: 2\n")
	for _, kind := range []ImageLinkKind{ImageNIC, ImageBond, ImageVLAN} {
		started := false
		for _, k := range t.links {
			if k.Kind != kind || (kind == ImageNIC && k.Name != t.top.Name && !t.under(k)) {
				continue
			}
			if !started {
				fmt.Fprintf(&b, "  %s:\n", map[ImageLinkKind]string{ImageNIC: "ethernets", ImageBond: "bonds", ImageVLAN: "vlans"}[kind])
				started = true
			}
			writeNetplanLink(&b, t, k)
		}
	}
	return b.String()
}

func writeNetplanLink(b *strings.Builder, t *imageTopo, k ImageLink) {
	fmt.Fprintf(b, "    %s:\n", netplanIDOf(t, k))
	switch k.Kind {
	case ImageNIC:
		if t.under(k) {
			fmt.Fprintf(b, "      match:\n        name: %q\n", k.Name)
		} else {
			mac := k.MAC
			if t.plain {
				mac = t.lease.MAC
			}
			fmt.Fprintf(b, "      match:\n        macaddress: %q\n", mac.String())
		}
	case ImageBond:
		var ports []string
		for _, p := range t.ports(k.Name) {
			ports = append(ports, netplanIDOf(t, p))
		}
		fmt.Fprintf(b, "      interfaces: [%s]\n", strings.Join(ports, ", "))
		if len(k.MAC) == 6 {
			fmt.Fprintf(b, "      macaddress: %q\n", k.MAC.String())
		}
		var params, skipped []string
		for _, o := range k.BondOptions {
			key, ok := netplanBondParams[o.Name]
			v := bondWord(o)
			switch {
			case !ok || v == "vlan+srcmac" || strings.HasPrefix(v, "filter"):
				skipped = append(skipped, o.Name+"="+o.Value)
				continue
			case o.Name == "primary":
				v = netplanIDOf(t, *t.link(v))
			case o.Name == "arp_ip_target":
				v = "[" + strings.ReplaceAll(v, ";", ", ") + "]"
			case o.Name == "all_slaves_active":
				v = map[string]string{"0": "false", "1": "true"}[v]
			}
			if o.Name != "arp_ip_target" {
				v = fmt.Sprintf("%q", v)
			}
			params = append(params, fmt.Sprintf("        %s: %s\n", key, v))
		}
		if len(params) > 0 {
			b.WriteString("      parameters:\n" + strings.Join(params, ""))
		}
		for _, s := range skipped {
			fmt.Fprintf(b, "      # %s: no netplan setting; the bond keeps what ramboot set.\n", s)
		}
	case ImageVLAN:
		fmt.Fprintf(b, "      id: %d\n      link: %s\n", k.VLANID, netplanIDOf(t, *t.link(k.Parent)))
	}
	mtu := k.MTU
	if k.Name == t.top.Name && mtu == 0 {
		mtu = t.lease.MTU
	}
	if mtu > 0 {
		fmt.Fprintf(b, "      mtu: %d\n", mtu)
	}
	if k.Name != t.top.Name {
		return
	}
	c := addrConfigOf(t)
	fmt.Fprintf(b, "      dhcp4: %t\n", c.dhcp4)
	if c.dhcp4 {
		b.WriteString("      dhcp-identifier: mac\n")
	}
	if c.v6 {
		fmt.Fprintf(b, "      dhcp6: %t\n      accept-ra: %t\n", c.dhcp6, c.acceptRA)
	}
	var addrs []string
	if c.static4 {
		addrs = append(addrs, c.v4Prefix)
	}
	addrs = append(addrs, c.static6Addrs...)
	if len(addrs) > 0 {
		q := make([]string, len(addrs))
		for i, a := range addrs {
			q[i] = fmt.Sprintf("%q", a)
		}
		fmt.Fprintf(b, "      addresses: [%s]\n", strings.Join(q, ", "))
	}
	var routes []string
	// "to: 0.0.0.0/0" rather than "to: default" or gateway4: every netplan reads it.
	if c.gateway4 != "" {
		routes = append(routes, fmt.Sprintf("        - to: 0.0.0.0/0\n          via: %s\n", c.gateway4))
	}
	if c.gateway6 != "" {
		routes = append(routes, fmt.Sprintf("        - to: \"::/0\"\n          via: %q\n", c.gateway6))
	}
	for _, r := range t.routes() {
		if r.Gateway.IsValid() {
			routes = append(routes, fmt.Sprintf("        - to: %q\n          via: %q\n", r.Dst.String(), r.Gateway.String()))
		}
	}
	if len(routes) > 0 {
		b.WriteString("      routes:\n" + strings.Join(routes, ""))
	}
	if len(c.dns) > 0 || len(c.search) > 0 {
		b.WriteString("      nameservers:\n")
		if len(c.dns) > 0 {
			q := slices.Clone(c.dns)
			for i, d := range q {
				if strings.Contains(d, ":") { // an IPv6 address may end in a colon
					q[i] = fmt.Sprintf("%q", d)
				}
			}
			fmt.Fprintf(b, "        addresses: [%s]\n", strings.Join(q, ", "))
		}
		if len(c.search) > 0 {
			q := make([]string, len(c.search))
			for i, s := range c.search {
				q[i] = fmt.Sprintf("%q", s)
			}
			fmt.Fprintf(b, "        search: [%s]\n", strings.Join(q, ", "))
		}
	}
}
