package netup

import (
	"errors"

	"github.com/vishvananda/netlink"
)

// dumpTries bounds how often an interrupted netlink dump is taken again.
const dumpTries = 10

// redump takes a netlink dump again when the kernel interrupted it: a dump that races with a
// change (an IPv6 address leaving DAD, a link appearing, a bond port joining) ends with
// NLM_F_DUMP_INTR, and the library returns what it read with ErrDumpInterrupted. Links and
// addresses change all the time while Up runs, so that is not a failure.
func redump[T any](dump func() ([]T, error)) ([]T, error) {
	for i := 1; ; i++ {
		v, err := dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) || i == dumpTries {
			return v, err
		}
	}
}

// addrList is netlink.AddrList, taken again when interrupted (see redump).
func addrList(link netlink.Link, family int) ([]netlink.Addr, error) {
	return redump(func() ([]netlink.Addr, error) { return netlink.AddrList(link, family) })
}

// linkList is netlink.LinkList, taken again when interrupted (see redump).
func linkList() ([]netlink.Link, error) {
	return redump(netlink.LinkList)
}
