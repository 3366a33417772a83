package netup

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/insomniacslk/dhcp/iana"
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

// dhcpLease runs up to c.DHCPAttempts DHCP exchanges on iface, each bounded by
// c.DHCPTimeout, and returns the first lease.
func dhcpLease(ctx context.Context, c Config, iface string, mac net.HardwareAddr) (*Lease, error) {
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
	return request(ctx, client, mac, mods)
}

// request is the DISCOVER-OFFER-REQUEST-ACK exchange. It builds the messages itself rather than
// call the client's Request because the library draws each transaction ID from getrandom(2)
// and so waits for the kernel's random pool: minutes early in boot on machines without RDRAND
// or an RNG device (the library gives up after two), where a network bootloader must not wait
// at all. A transaction ID only has to differ from the neighbours', not be secret: the Go
// runtime's generator, seeded from the kernel's AT_RANDOM at exec, never blocks.
func request(ctx context.Context, client *nclient4.Client, mac net.HardwareAddr, mods []dhcpv4.Modifier) (*dhcpv4.DHCPv4, error) {
	discover := message(append([]dhcpv4.Modifier{
		dhcpv4.WithHwAddr(mac),
		dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover),
		dhcpv4.WithOption(dhcpv4.OptMaxMessageSize(nclient4.MaxMessageSize)),
	}, mods...)...)
	offer, err := client.SendAndRead(ctx, client.RemoteAddr(), discover, nclient4.IsMessageType(dhcpv4.MessageTypeOffer))
	if err != nil {
		return nil, fmt.Errorf("no offer: %w", err)
	}
	noteHeard(ctx) // for dual stack: DHCPv4 has a server
	req := message(append([]dhcpv4.Modifier{
		dhcpv4.WithReply(offer),
		dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithClientIP(offer.ClientIPAddr),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(offer.YourIPAddr)),
		dhcpv4.WithOptionCopied(offer, dhcpv4.OptionServerIdentifier),
		dhcpv4.WithOption(dhcpv4.OptMaxMessageSize(nclient4.MaxMessageSize)),
	}, mods...)...)
	ack, err := client.SendAndRead(ctx, client.RemoteAddr(), req, nclient4.IsAll(
		nclient4.IsCorrectServer(offer.ServerIdentifier()),
		nclient4.IsMessageType(dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak)))
	if err != nil {
		return nil, fmt.Errorf("no answer to the request: %w", err)
	}
	if ack.MessageType() == dhcpv4.MessageTypeNak {
		return nil, &nclient4.ErrNak{Offer: offer, Nak: ack}
	}
	return ack, nil
}

// message is an empty BOOTREQUEST with a fresh transaction ID, then mods.
func message(mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	var xid dhcpv4.TransactionID
	binary.BigEndian.PutUint32(xid[:], rand.Uint32())
	m := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootRequest,
		HWType:        iana.HWTypeEthernet,
		ClientHWAddr:  make(net.HardwareAddr, 6),
		TransactionID: xid,
		ClientIPAddr:  net.IPv4zero,
		YourIPAddr:    net.IPv4zero,
		ServerIPAddr:  net.IPv4zero,
		GatewayIPAddr: net.IPv4zero,
		Options:       make(dhcpv4.Options),
	}
	for _, mod := range mods {
		mod(m)
	}
	return m
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
