package boot

import (
	"net/url"
	"strings"

	"github.com/ramboot/ramboot/internal/cmdline"
	"github.com/ramboot/ramboot/internal/netup"
)

// Origin is the URL the firmware fetched this initramfs from (the UKI of a UEFI HTTP boot),
// against which relative ramroot= and ramboot.menu= resolve, as systemd-stub's bootorigin does,
// and where it was found; "" when there is none. The firmware's boot entry names it in its
// URI device path node when the firmware fills that in (uri, "" otherwise: OVMF leaves it
// empty); else the DHCP boot file of ramboot's own lease is the UKI's URL when it is an
// absolute http(s) URL, as a DHCP server answering UEFI HTTP boot gives it, else DHCPv6's boot
// file URL (option 59, which UEFI HTTP boot over IPv6 uses).
func Origin(uri string, lease *netup.Lease) (origin, from string) {
	if isHTTP(uri) {
		return uri, "the firmware's boot entry"
	}
	if lease != nil && isHTTP(lease.BootFile) {
		return lease.BootFile, "the DHCP boot file of " + lease.Iface
	}
	if lease != nil && lease.V6 != nil && isHTTP(lease.V6.BootFileURL) {
		return lease.V6.BootFileURL, "the DHCPv6 boot file URL of " + lease.Iface
	}
	return "", ""
}

func isHTTP(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// relative reports whether ref is a reference relative to the origin: no scheme, not a path
// from the root, not "./x" (which stays a file inside the initramfs).
func relative(ref string) bool {
	return ref != "" && !strings.Contains(ref, "://") && !strings.HasPrefix(ref, "/") &&
		!strings.HasPrefix(ref, "./") && !strings.HasPrefix(ref, "docker://")
}

// ResolveRelative makes the relative references of the command line (ramroot= and its mirrors,
// ramboot.menu=, ramboot.kernel=, ramboot.initrd=) absolute against origin, and returns
// "PARAM=REF: URL" for each one changed, for the log. Without an origin it changes nothing:
// a relative path is then a file inside the initramfs, as before.
func ResolveRelative(c *cmdline.Config, origin string) []string {
	base, err := url.Parse(origin)
	if origin == "" || err != nil {
		return nil
	}
	var changed []string
	fix := func(param string, ref *string) {
		if !relative(*ref) {
			return
		}
		r, err := url.Parse(*ref)
		if err != nil {
			return
		}
		abs := base.ResolveReference(r).String()
		changed = append(changed, param+"="+*ref+": "+abs)
		*ref = abs
	}
	for i := range c.Ramroot {
		fix("ramroot", &c.Ramroot[i])
	}
	fix("ramboot.menu", &c.Menu)
	fix("ramboot.kernel", &c.Kernel)
	for i := range c.Initrds {
		fix("ramboot.initrd", &c.Initrds[i])
	}
	return changed
}
