package netup

import (
	"fmt"
	"net/netip"
	"strings"
)

// renderResolvConf is resolv.conf(5) for the lease's servers and search list. glibc reads
// at most three nameservers (MAXNS); the rest are written anyway, for other resolvers.
func renderResolvConf(dns []netip.Addr, search []string) string {
	var b strings.Builder
	b.WriteString("# Written by ramboot from the boot NIC's configuration.\n")
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	for _, a := range dns {
		fmt.Fprintf(&b, "nameserver %s\n", a)
	}
	return b.String()
}
