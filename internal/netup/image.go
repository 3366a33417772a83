package netup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/ramboot/ramboot/internal/atomicfile"
)

// Paths WriteImageConfig writes, inside the image.
const (
	UdevRulePath  = "/etc/udev/rules.d/70-ramboot-net.rules"
	IfupdownPath  = "/etc/network/interfaces.d/ramboot"
	NetworkdPath  = "/etc/systemd/network/10-ramboot.network"
	NetplanPath   = "/etc/netplan/10-ramboot.yaml"
	ResolvPath    = "/etc/resolv.conf"
	HostnamePath  = "/etc/hostname"
	interfacesCfg = "/etc/network/interfaces"
)

// netplanID is the netplan definition's name. Netplan renders it to
// 10-netplan-<id>.network and networkd takes the first file, in lexical order, that matches a
// link: "bootif" sorts before the eth*/en* names an image's own config (cloud-init's, say)
// uses for the same NIC, so ours wins when both match.
const netplanID = "bootif"

// WriteImageConfig writes l into the root filesystem at root, which ramroot is about to
// switch_root into, so the booted system keeps the network ramboot brought up. It returns the
// files it wrote (or changed) as paths inside the image, e.g. /etc/hostname.
//
// What is written depends on what the image has:
//   - /etc/netplan: NetplanPath, matching the NIC by MAC (no set-name), dhcp4 or static.
//     Netplan then owns networkd's configuration, so no networkd file is written.
//   - else /etc/systemd: NetworkdPath, [Match] MACAddress=, DHCP=ipv4 or static.
//   - /etc/network (ifupdown): IfupdownPath, by interface name, and a "source" line for it
//     appended to /etc/network/interfaces when that file exists and does not read
//     interfaces.d. Skipped if the image's ifupdown config already defines the interface.
//   - udev (/etc/udev, /lib/udev or /usr/lib/udev): UdevRulePath, which keeps the NIC's name
//     (see below).
//   - /etc/resolv.conf when the lease has DNS servers and the image has no resolver config:
//     the file is absent, or a regular file without a nameserver line (container images ship
//     an empty one). A symlink — even a dangling one, such as systemd-resolved's stub or
//     resolvconf's, whose target lives in /run — means a resolver manager will write it from
//     the network config above, so it is left alone; so is a file with nameservers in it.
//   - /etc/hostname when the lease has a hostname, replacing the image's (a container image's
//     is a build-time accident; the operator's DHCP or ip= hostname names this machine).
//
// Interface names: the initramfs has no udev, so the NIC has its kernel name (eth0), while
// the booted system's udev would give it a predictable name (ens4, enp0s4). But switch_root
// keeps the running kernel and its network state: the NIC is still up, and Linux refuses to
// rename an interface that is up (EBUSY), so in practice it keeps its kernel name. Guessing
// the predictable name instead would mean reimplementing udev's net_id for whichever naming
// scheme the image's systemd has, and would be wrong exactly because no rename happens.
// Renaming to a fresh name (bootnet0) fails with EBUSY for the same reason. So: where the
// tool can match by MAC (networkd, netplan) it does; ifupdown can only name interfaces, so it
// names Lease.Iface. And the udev rule, pinning that name by MAC, is needed by all three: the
// booted system's udev otherwise tries its predictable name, the rename fails ("already up,
// cannot rename"), the device event fails, and networkd leaves the link "pending" and never
// applies its .network file, MAC match or not (seen with systemd 252 in the Debian VM test).
// So the rule is written whenever the image has udev (/etc/udev, /lib/udev or /usr/lib/udev). Renaming into the kernel's eth* namespace is normally racy, but here the
// kernel already assigned these names in this boot and the rule only restates one. The
// files live in a RAM root, so none of this outlives the boot.
//
// Symlinks in the image are resolved inside root (os.Root); ones that escape it are errors.
func WriteImageConfig(root string, l *Lease) ([]string, error) {
	if l == nil || l.MAC == nil || l.Iface == "" {
		return nil, errors.New("writing image network config: no lease")
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("writing image network config: %w", err)
	}
	defer r.Close()
	w := &imageWriter{r: r}

	if isDir(r, "/etc/netplan") {
		w.write(NetplanPath, renderNetplan(l), 0o600) // netplan warns about readable files
	} else if isDir(r, "/etc/systemd") {
		w.write(NetworkdPath, renderNetworkd(l), 0o644)
	}
	if isDir(r, "/etc/network") && !ifupdownDefines(r, l.Iface) {
		w.write(IfupdownPath, renderIfupdown(l), 0o644)
		if b, err := r.ReadFile(rel(interfacesCfg)); err == nil && !sourcesInterfacesD(b) {
			if len(b) > 0 && !bytes.HasSuffix(b, []byte("\n")) {
				b = append(b, '\n')
			}
			b = append(b, "\n# Added by ramboot for the boot NIC.\nsource "+IfupdownPath+"\n"...)
			w.write(interfacesCfg, string(b), 0o644)
		}
	}
	if isDir(r, "/etc/udev") || isDir(r, "/lib/udev") || isDir(r, "/usr/lib/udev") {
		w.write(UdevRulePath, renderUdevRule(l), 0o644)
	}
	if len(l.DNS) > 0 && resolvConfUnmanaged(r) {
		w.write(ResolvPath, renderResolvConf(l.DNS, l.Search), 0o644)
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
// interfaces.d/*, ours excepted) already has "iface <name> inet": a second one would make
// ifup fail.
func ifupdownDefines(r *os.Root, iface string) bool {
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
			if len(f) >= 3 && f[0] == "iface" && f[1] == iface && f[2] == "inet" {
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

func renderUdevRule(l *Lease) string {
	return fmt.Sprintf(`# Written by ramboot: keep the name of the NIC it booted from. The NIC is up and
# configured when this system starts and Linux does not rename an up interface: a rename
# attempt would fail the device's udev event, and networkd would leave the link pending.
SUBSYSTEM=="net", ACTION=="add", ATTR{address}=="%s", ATTR{type}=="1", NAME="%s"
`, l.MAC, l.Iface)
}

func renderIfupdown(l *Lease) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by ramboot: the NIC it booted from (%s).\n", l.MAC)
	fmt.Fprintf(&b, "auto %s\n", l.Iface)
	method := "dhcp"
	if !l.DHCP {
		method = "static"
	}
	fmt.Fprintf(&b, "iface %s inet %s\n", l.Iface, method)
	// The address ramboot configured is still there; "ip addr add" of it again fails
	// ("File exists") and with it ifup. Start clean.
	fmt.Fprintf(&b, "\tpre-up ip -4 addr flush dev %s scope global || true\n", l.Iface)
	if !l.DHCP {
		fmt.Fprintf(&b, "\taddress %s\n", l.Addr)
		if l.Gateway.IsValid() {
			fmt.Fprintf(&b, "\tgateway %s\n", l.Gateway)
		}
		// Read by resolvconf, when installed.
		if len(l.DNS) > 0 {
			fmt.Fprintf(&b, "\tdns-nameservers %s\n", joinAddrs(l.DNS, " "))
		}
		if len(l.Search) > 0 {
			fmt.Fprintf(&b, "\tdns-search %s\n", strings.Join(l.Search, " "))
		}
	}
	return b.String()
}

func renderNetworkd(l *Lease) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by ramboot: the NIC it booted from, matched by MAC whatever its name.\n")
	fmt.Fprintf(&b, "[Match]\nMACAddress=%s\n\n[Network]\n", l.MAC)
	if l.DHCP {
		b.WriteString("DHCP=ipv4\n")
		return b.String()
	}
	fmt.Fprintf(&b, "Address=%s\n", l.Addr)
	if l.Gateway.IsValid() {
		fmt.Fprintf(&b, "Gateway=%s\n", l.Gateway)
	}
	for _, d := range l.DNS {
		fmt.Fprintf(&b, "DNS=%s\n", d)
	}
	if len(l.Search) > 0 {
		fmt.Fprintf(&b, "Domains=%s\n", strings.Join(l.Search, " "))
	}
	return b.String()
}

// renderNetplan matches by MAC without set-name: set-name would make netplan write a .link
// file asking udev to rename the NIC, which fails while it is up (see WriteImageConfig).
func renderNetplan(l *Lease) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by ramboot: the NIC it booted from, matched by MAC whatever its name.\n")
	fmt.Fprintf(&b, "network:\n  version: 2\n  ethernets:\n    %s:\n", netplanID)
	fmt.Fprintf(&b, "      match:\n        macaddress: %q\n", l.MAC.String())
	if l.DHCP {
		b.WriteString("      dhcp4: true\n")
		return b.String()
	}
	fmt.Fprintf(&b, "      dhcp4: false\n      addresses: [%q]\n", l.Addr.String())
	if l.Gateway.IsValid() {
		// "to: 0.0.0.0/0" rather than "to: default" or gateway4: every netplan reads it.
		fmt.Fprintf(&b, "      routes:\n        - to: 0.0.0.0/0\n          via: %s\n", l.Gateway)
	}
	if len(l.DNS) > 0 || len(l.Search) > 0 {
		b.WriteString("      nameservers:\n")
		if len(l.DNS) > 0 {
			fmt.Fprintf(&b, "        addresses: [%s]\n", joinAddrs(l.DNS, ", "))
		}
		if len(l.Search) > 0 {
			q := make([]string, len(l.Search))
			for i, s := range l.Search {
				q[i] = fmt.Sprintf("%q", s)
			}
			fmt.Fprintf(&b, "        search: [%s]\n", strings.Join(q, ", "))
		}
	}
	return b.String()
}
