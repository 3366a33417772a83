package netup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
)

// classID is sent as option 60 so DHCP servers can tell ramboot from firmware PXE clients
// ("PXEClient") and iPXE.
const classID = "ramboot"

// requested is the parameter request list (option 55). 209 and 210 are pxelinux's config
// file and path prefix, kept raw in Lease.Options.
var requested = []dhcpv4.OptionCode{
	dhcpv4.OptionSubnetMask,
	dhcpv4.OptionRouter,
	dhcpv4.OptionDomainNameServer,
	dhcpv4.OptionHostName,
	dhcpv4.OptionDomainName,
	dhcpv4.OptionInterfaceMTU,
	dhcpv4.OptionNTPServers,
	dhcpv4.OptionTFTPServerName,
	dhcpv4.OptionBootfileName,
	dhcpv4.OptionDNSDomainSearchList,
	dhcpv4.OptionClasslessStaticRoute,
	dhcpv4.GenericOptionCode(209),
	dhcpv4.GenericOptionCode(210),
}

// nonBlockingXIDs makes the DHCP library draw transaction IDs from /dev/urandom instead of a
// getrandom(2) that waits for the kernel's CRNG: on a machine without RDRAND or an RNG device
// that wait is minutes early in boot (the library gives up after two), and a transaction ID
// only has to differ from the neighbours', not be secret. u-root's uio/rand, which the library
// uses, reads this variable once, at its first use: it must be set before the first exchange.
func nonBlockingXIDs() { os.Setenv("UROOT_NOHWRNG", "1") }

// dhcpLease runs up to c.DHCPAttempts DHCP exchanges on iface, each bounded by
// c.DHCPTimeout, and returns the first lease.
func dhcpLease(ctx context.Context, c Config, iface string, mac net.HardwareAddr) (*Lease, error) {
	nonBlockingXIDs()
	var last error
	for i := 1; i <= c.DHCPAttempts; i++ {
		ack, err := dhcpOnce(ctx, c, iface, mac)
		if err == nil {
			l, err := leaseFromACK(iface, mac, ack, c.IP)
			if err == nil {
				c.Logf("netup: %s: lease %s from %s", iface, l.Addr, l.Server)
				return l, nil
			}
			last = err
		} else {
			last = err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		c.Logf("netup: %s: DHCP attempt %d of %d: %v", iface, i, c.DHCPAttempts, last)
	}
	return nil, fmt.Errorf("%w on %s after %d attempts: %v", ErrNoLease, iface, c.DHCPAttempts, last)
}

// dhcpOnce is one DISCOVER-OFFER-REQUEST-ACK exchange within c.DHCPTimeout. Within it the
// client retransmits with exponential backoff from a quarter of the timeout (RFC 2131 4.1).
// An attempt that fails early (a NAK, a socket error) still takes the whole timeout, so
// that attempts never spin.
func dhcpOnce(ctx context.Context, c Config, iface string, mac net.HardwareAddr) (*dhcpv4.DHCPv4, error) {
	ctx, cancel := context.WithTimeout(ctx, c.DHCPTimeout)
	defer cancel()
	ack, err := exchange(ctx, c, iface, mac)
	if err != nil {
		<-ctx.Done()
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %v", c.DHCPTimeout)
		}
	}
	return ack, err
}

func exchange(ctx context.Context, c Config, iface string, mac net.HardwareAddr) (*dhcpv4.DHCPv4, error) {
	retransmit := min(max(c.DHCPTimeout/4, 250*time.Millisecond), 4*time.Second)
	client, err := nclient4.New(iface,
		nclient4.WithHWAddr(mac),
		nclient4.WithTimeout(retransmit),
		nclient4.WithRetry(16), // bounded by ctx long before
		nclient4.WithLogger(dhcpLogger{c.Logf, iface}),
	)
	if err != nil {
		return nil, fmt.Errorf("opening DHCP socket: %w", err)
	}
	defer client.Close()
	mods := []dhcpv4.Modifier{
		dhcpv4.WithRequestedOptions(requested...),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier(classID)),
	}
	if c.IP != nil && validDomain(c.IP.Hostname) {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptHostName(c.IP.Hostname)))
	}
	lease, err := client.Request(ctx, mods...)
	if err != nil {
		return nil, err
	}
	return lease.ACK, nil
}

// dhcpLogger sends nclient4's messages to Logf, one short line per packet.
type dhcpLogger struct {
	logf  func(string, ...any)
	iface string
}

func (l dhcpLogger) Printf(format string, v ...any) {
	l.logf("netup: %s: "+format, append([]any{l.iface}, v...)...)
}

func (l dhcpLogger) PrintMessage(prefix string, m *dhcpv4.DHCPv4) {
	l.logf("netup: %s: %s %s xid %s", l.iface, prefix, m.MessageType(), m.TransactionID)
}
