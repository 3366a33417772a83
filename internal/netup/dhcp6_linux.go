package netup

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/dhcpv6/nclient6"
	"github.com/insomniacslk/dhcp/iana"
)

// requested6 is the option request option (6): DNS servers (23), search list (24) and the
// boot file URL (59, RFC 5970).
var requested6 = []dhcpv6.OptionCode{
	dhcpv6.OptionDNSRecursiveNameServer,
	dhcpv6.OptionDomainSearchList,
	dhcpv6.OptionBootfileURL,
}

// message6 is a DHCPv6 message of type t with a fresh transaction ID, the client ID (a
// DUID-LL from the MAC: stable, and with no clock in it, which PID 1 early in boot may not
// have set), the elapsed time and the option request, then mods.
//
// It builds the message itself rather than call the library's NewSolicit, NewMessage or
// NewRequestFromAdvertise, or the client's Solicit, Request and RapidSolicit, for the reason
// request (DHCPv4) does: those draw the transaction ID from getrandom(2) and, before the
// kernel's random pool is ready, spin on it without end. The Go runtime's generator, seeded
// from AT_RANDOM at exec, never blocks; a transaction ID needs to be unpredictable to no one.
func message6(t dhcpv6.MessageType, mac net.HardwareAddr, mods ...dhcpv6.Modifier) *dhcpv6.Message {
	x := rand.Uint32()
	m := &dhcpv6.Message{
		MessageType:   t,
		TransactionID: dhcpv6.TransactionID{byte(x >> 16), byte(x >> 8), byte(x)},
	}
	m.AddOption(dhcpv6.OptClientID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: mac}))
	m.AddOption(dhcpv6.OptElapsedTime(0))
	m.AddOption(dhcpv6.OptRequestedOption(requested6...))
	m.AddOption(&dhcpv6.OptUserClass{UserClasses: [][]byte{[]byte(classID)}})
	for _, mod := range mods {
		mod(m)
	}
	return m
}

// iaid is the IA_NA's identifier: the MAC's last four bytes, stable across boots.
func iaid(mac net.HardwareAddr) [4]byte {
	var id [4]byte
	copy(id[:], mac[max(len(mac)-4, 0):])
	return id
}

// solicitMsg asks for one address (IA_NA).
func solicitMsg(mac net.HardwareAddr) *dhcpv6.Message {
	return message6(dhcpv6.MessageTypeSolicit, mac, dhcpv6.WithIAID(iaid(mac)))
}

// requestMsg asks the advertising server for the addresses it offered.
func requestMsg(mac net.HardwareAddr, adv *dhcpv6.Message) *dhcpv6.Message {
	m := message6(dhcpv6.MessageTypeRequest, mac, dhcpv6.WithServerID(adv.Options.ServerID()))
	if ia := adv.Options.OneIANA(); ia != nil {
		m.AddOption(ia)
	}
	return m
}

// ours reports whether m answers our client ID.
func ours(mac net.HardwareAddr) func(*dhcpv6.Message) bool {
	want := (&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: mac}).ToBytes()
	return func(m *dhcpv6.Message) bool {
		id := m.Options.ClientID()
		return id != nil && string(id.ToBytes()) == string(want) && m.Options.ServerID() != nil
	}
}

// usableAdvertise reports whether adv offers an address (RFC 8415 18.2.9: an ADVERTISE
// with NoAddrsAvail, or without an address, is not one to request from).
func usableAdvertise(adv *dhcpv6.Message) bool {
	if s := adv.Options.Status(); s != nil && s.StatusCode != iana.StatusSuccess {
		return false
	}
	for _, ia := range adv.Options.IANA() {
		if s := ia.Options.Status(); s != nil && s.StatusCode != iana.StatusSuccess {
			continue
		}
		if len(ia.Options.Addresses()) > 0 {
			return true
		}
	}
	return false
}

// peerConn is the client's socket, remembering which address each transaction's answers
// came from (the client gives the message only, and Lease6.Server is the address), and
// logging each packet (the client has no logger of its own to give).
type peerConn struct {
	net.PacketConn
	mu    sync.Mutex
	peers map[dhcpv6.TransactionID]netip.Addr
	logf  func(string, ...any)
	iface string
}

func (c *peerConn) WriteTo(b []byte, a net.Addr) (int, error) {
	if m, err := dhcpv6.MessageFromBytes(b); err == nil {
		c.logf("netup: %s: DHCPv6 sent %s xid %s", c.iface, m.MessageType, m.TransactionID)
	}
	return c.PacketConn.WriteTo(b, a)
}

func (c *peerConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, a, err := c.PacketConn.ReadFrom(b)
	if u, ok := a.(*net.UDPAddr); ok && n >= 4 && err == nil {
		if ip, ok := netip.AddrFromSlice(u.IP); ok {
			c.mu.Lock()
			c.peers[dhcpv6.TransactionID(b[1:4])] = ip
			c.mu.Unlock()
			if m, err := dhcpv6.MessageFromBytes(b[:n]); err == nil {
				c.logf("netup: %s: DHCPv6 received %s xid %s from %s", c.iface, m.MessageType, m.TransactionID, ip)
			}
		}
	}
	return n, a, err
}

func (c *peerConn) peer(id dhcpv6.TransactionID) netip.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peers[id]
}

// dhcp6 runs DHCPv6 on the interface from its link-local address ll until ctx is done:
// SOLICIT, the first usable ADVERTISE, REQUEST, REPLY (RFC 8415 18.2); or, if infoOnly,
// INFORMATION-REQUEST and REPLY (stateless: options only). Retransmissions start at 1 s
// and double (SOL_TIMEOUT, INF_TIMEOUT), and a REQUEST that goes unanswered starts over
// with a SOLICIT. It calls noteHeard(ctx) on every answer.
func dhcp6(ctx context.Context, iface string, mac net.HardwareAddr, ll netip.Addr, infoOnly bool, logf func(string, ...any)) (*Lease6, error) {
	udp, err := net.ListenUDP("udp6", &net.UDPAddr{IP: ll.AsSlice(), Port: dhcpv6.DefaultClientPort, Zone: iface})
	if err != nil {
		return nil, fmt.Errorf("opening the DHCPv6 socket: %w", err)
	}
	conn := &peerConn{PacketConn: udp, peers: map[dhcpv6.TransactionID]netip.Addr{}, logf: logf, iface: iface}
	client, err := nclient6.NewWithConn(conn, mac,
		nclient6.WithTimeout(time.Second),
		nclient6.WithRetry(-1), // bounded by ctx
		nclient6.WithBroadcastAddr(&net.UDPAddr{IP: nclient6.AllDHCPRelayAgentsAndServers.IP, Port: dhcpv6.DefaultServerPort, Zone: iface}),
	)
	if err != nil {
		udp.Close()
		return nil, fmt.Errorf("opening the DHCPv6 client: %w", err)
	}
	defer client.Close()
	mine := ours(mac)
	heard := func(m *dhcpv6.Message) bool {
		if mine(m) {
			noteHeard(ctx)
			return true
		}
		return false
	}
	isReply := func(m *dhcpv6.Message) bool {
		return m.MessageType == dhcpv6.MessageTypeReply && heard(m)
	}
	if infoOnly {
		reply, err := client.SendAndRead(ctx, client.RemoteAddr(), message6(dhcpv6.MessageTypeInformationRequest, mac), isReply)
		if err != nil {
			return nil, fmt.Errorf("no DHCPv6 reply to the information request: %w", err)
		}
		return lease6FromReply(reply, conn.peer(reply.TransactionID), time.Now(), true)
	}
	for {
		adv, err := client.SendAndRead(ctx, client.RemoteAddr(), solicitMsg(mac), func(m *dhcpv6.Message) bool {
			return m.MessageType == dhcpv6.MessageTypeAdvertise && heard(m) && usableAdvertise(m)
		})
		if err != nil {
			return nil, fmt.Errorf("no DHCPv6 advertise: %w", err)
		}
		// A REQUEST is retransmitted up to REQ_MAX_RC (10) times, from 1 s up to 30 s
		// (RFC 8415 18.2.2); here within a bound, then the client solicits again.
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		reply, err := client.SendAndRead(rctx, client.RemoteAddr(), requestMsg(mac, adv), isReply)
		cancel()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("no DHCPv6 reply: %w", ctx.Err())
		}
		if err != nil {
			logf("netup: %s: DHCPv6: no reply to the request, soliciting again: %v", iface, err)
			continue
		}
		l, err := lease6FromReply(reply, conn.peer(reply.TransactionID), time.Now(), false)
		if err != nil {
			logf("netup: %s: %v; soliciting again", iface, err)
			if err := sleepUntil(ctx, time.Now().Add(time.Second)); err != nil && ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue
		}
		return l, nil
	}
}
