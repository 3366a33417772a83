package netup

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
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

// writeFile replaces path atomically (temporary file, then rename), creating its directory:
// a reader never sees a half-written resolv.conf.
func writeFile(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
