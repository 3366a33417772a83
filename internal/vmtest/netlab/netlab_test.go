package netlab

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv6"

	"github.com/ramboot/ramboot/internal/vmtest/vswitch"
)

// lab is a namespace with a TAP uplink in VLAN 42 (10.42.0.1/24, fd00:42::1/64), a switch,
// and a fake host on an access port of VLAN 42.
func lab(t *testing.T) (*Lab, *vswitch.Switch, *vswitch.Peer) {
	t.Helper()
	l := New(t)
	sw := vswitch.New(vswitch.Options{Logf: t.Logf})
	t.Cleanup(func() { sw.Close() })
	if _, err := sw.AddTap("uplink", l.Path(), "lab0", vswitch.Access(42)); err != nil {
		t.Fatal(err)
	}
	l.Up("lab0", "10.42.0.1/24", "fd00:42::1/64")
	p, err := sw.AddPort("host", vswitch.Access(42))
	if err != nil {
		t.Fatal(err)
	}
	peer, err := p.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	return l, sw, peer
}

var hostMAC = net.HardwareAddr{0x52, 0x54, 0x00, 0x42, 0x00, 0x01}

// dhcpFrame wraps a DHCPv4 message from hostMAC in Ethernet, IPv4 and UDP (broadcast, UDP
// checksum 0: none, which IPv4 allows).
func dhcpFrame(m *dhcpv4.DHCPv4) []byte {
	payload := m.ToBytes()
	udp := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(udp[0:], 68)
	binary.BigEndian.PutUint16(udp[2:], 67)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	udp = append(udp, payload...)
	ip := []byte{0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	return vswitch.Frame{Dst: net.HardwareAddr{255, 255, 255, 255, 255, 255}, Src: hostMAC,
		EtherType: vswitch.EtherTypeIPv4, Payload: append(ip, udp...)}.Marshal()
}

// dhcpReply parses a DHCPv4 reply out of a frame, or returns nil.
func dhcpReply(f vswitch.Frame) *dhcpv4.DHCPv4 {
	if f.EtherType != vswitch.EtherTypeIPv4 || len(f.Payload) < 28 || f.Payload[9] != 17 {
		return nil
	}
	ihl := int(f.Payload[0]&0x0f) * 4
	if len(f.Payload) < ihl+8 || binary.BigEndian.Uint16(f.Payload[ihl+2:]) != 68 {
		return nil
	}
	m, err := dhcpv4.FromBytes(f.Payload[ihl+8:])
	if err != nil {
		return nil
	}
	return m
}

// TestDnsmasqOffer: a DHCPDISCOVER from a host on the switch reaches dnsmasq in the lab
// through the TAP, and its offer comes back with the options configured. The lease asked for
// is 60 s: dnsmasq offers 120 s, its floor (a lease test that wants 60 s needs another
// server).
func TestDnsmasqOffer(t *testing.T) {
	t.Parallel()
	l, _, peer := lab(t)
	d := l.Dnsmasq(DnsmasqConfig{Interface: "lab0", Lines: []string{
		"dhcp-range=10.42.0.50,10.42.0.99,255.255.255.0,60",
		"dhcp-option=option:bootfile-name,http://10.42.0.1:8080/menu",
		"dhcp-authoritative",
	}})
	disc, err := dhcpv4.NewDiscovery(hostMAC)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var offer *dhcpv4.DHCPv4
	// dnsmasq may take a moment to see the interface up: ask again until it answers.
	for offer == nil {
		if err := peer.Send(dhcpFrame(disc)); err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		f, err := peer.Recv(rctx, func(f vswitch.Frame) bool {
			m := dhcpReply(f)
			return m != nil && m.TransactionID == disc.TransactionID
		})
		rcancel()
		if ctx.Err() != nil {
			t.Fatalf("no DHCPOFFER: %v\ndnsmasq log:\n%s", err, d.Log())
		}
		if err == nil {
			offer = dhcpReply(f)
		}
	}
	if got := offer.MessageType(); got != dhcpv4.MessageTypeOffer {
		t.Fatalf("reply is a %v, want an offer", got)
	}
	if ip := offer.YourIPAddr.To4(); ip == nil || ip[2] != 0 || ip[3] < 50 || ip[3] > 99 {
		t.Errorf("offered %v, want 10.42.0.50-99", offer.YourIPAddr)
	}
	// dnsmasq puts option 67 in the BOOTP file field unless the client asks for option 67.
	if got, want := offer.BootFileName, "http://10.42.0.1:8080/menu"; got != want {
		t.Errorf("boot file = %q, want %q", got, want)
	}
	if got, want := offer.IPAddressLeaseTime(0), 120*time.Second; got != want {
		t.Errorf("lease time %v, want %v (dnsmasq's floor for the 60 s asked)", got, want)
	}
	t.Logf("offer: %v lease %v", offer.YourIPAddr, offer.IPAddressLeaseTime(0))
	if n := d.Count(`DHCPDISCOVER\(lab0\) ` + hostMAC.String()); n == 0 {
		t.Errorf("dnsmasq logged no DHCPDISCOVER from %s:\n%s", hostMAC, d.Log())
	}
}

// TestRouterAdvertisement: dnsmasq's router advertisements reach a host on the switch.
func TestRouterAdvertisement(t *testing.T) {
	t.Parallel()
	l, _, peer := lab(t)
	l.Dnsmasq(DnsmasqConfig{Interface: "lab0", Lines: []string{
		"enable-ra", "dhcp-range=fd00:42::100,fd00:42::1ff,64,2m",
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, err := peer.Recv(ctx, func(f vswitch.Frame) bool {
		p := f.Payload
		return f.EtherType == vswitch.EtherTypeIPv6 && len(p) > 40 && p[6] == 58 && p[40] == 134
	})
	if err != nil {
		t.Fatalf("no router advertisement: %v", err)
	}
	if src := net.IP(f.Payload[8:24]); !src.IsLinkLocalUnicast() {
		t.Errorf("RA from %v, want a link-local address", src)
	}
}

// TestServeHTTP: a server in the lab answers there, and the host's own namespace does not
// have its address.
func TestServeHTTP(t *testing.T) {
	t.Parallel()
	l := New(t)
	l.IP("addr", "add", "10.42.0.1/32", "dev", "lo")
	url := l.ServeHTTP("10.42.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from the lab")
	}))
	resp, err := l.HTTPClient().Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(body); got != "hello from the lab" {
		t.Errorf("body %q", got)
	}
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "http://"), time.Second)
	if err == nil {
		c.Close()
		t.Errorf("%s reachable from the host's namespace", url)
	}
}

// dhcp6Frame wraps a DHCPv6 message from hostMAC's link-local address to
// All_DHCP_Relay_Agents_and_Servers (ff02::1:2) in Ethernet, IPv6 and UDP.
func dhcp6Frame(m *dhcpv6.Message) []byte {
	payload := m.ToBytes()
	src := net.IP{0xfe, 0x80, 0, 0, 0, 0, 0, 0, hostMAC[0] ^ 2, hostMAC[1], hostMAC[2], 0xff, 0xfe, hostMAC[3], hostMAC[4], hostMAC[5]}
	dst := net.ParseIP("ff02::1:2")
	udp := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(udp[0:], 546)
	binary.BigEndian.PutUint16(udp[2:], 547)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	udp = append(udp, payload...)
	// The UDP checksum is mandatory over IPv6: over the pseudo-header (addresses, length,
	// next header) and the datagram.
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src)
	add(dst)
	sum += uint32(len(udp)) + 17
	add(udp)
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(udp[6:], ^uint16(sum))
	ip := make([]byte, 40)
	ip[0] = 6 << 4
	binary.BigEndian.PutUint16(ip[4:], uint16(len(udp)))
	ip[6], ip[7] = 17, 1
	copy(ip[8:], src)
	copy(ip[24:], dst)
	return vswitch.Frame{Dst: net.HardwareAddr{0x33, 0x33, 0, 1, 0, 2}, Src: hostMAC,
		EtherType: vswitch.EtherTypeIPv6, Payload: append(ip, udp...)}.Marshal()
}

// dhcp6Reply parses a DHCPv6 message to the client port out of a frame, or returns nil.
func dhcp6Reply(f vswitch.Frame) *dhcpv6.Message {
	p := f.Payload
	if f.EtherType != vswitch.EtherTypeIPv6 || len(p) < 48 || p[6] != 17 || binary.BigEndian.Uint16(p[42:]) != 546 {
		return nil
	}
	m, err := dhcpv6.MessageFromBytes(p[48:])
	if err != nil {
		return nil
	}
	return m
}

// TestDnsmasqDHCPv6: a stateful DHCPv6 Solicit from a host on the switch gets an Advertise
// with an address of the range and the boot file URL (option 59). Asked for 60 s, dnsmasq
// gives 120 s here too.
func TestDnsmasqDHCPv6(t *testing.T) {
	t.Parallel()
	l, _, peer := lab(t)
	d := l.Dnsmasq(DnsmasqConfig{Interface: "lab0", Lines: []string{
		"enable-ra", "dhcp-range=fd00:42::100,fd00:42::1ff,64,60",
		"dhcp-option=option6:bootfile-url,http://[fd00:42::1]:8080/menu",
	}})
	// The fake host answers no neighbour solicitation: the lab knows its address beforehand.
	l.IP("neigh", "add", "fe80::5054:ff:fe42:1", "lladdr", hostMAC.String(), "dev", "lab0", "nud", "permanent")
	sol, err := dhcpv6.NewSolicit(hostMAC, dhcpv6.WithRequestedOptions(dhcpv6.OptionBootfileURL))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var adv *dhcpv6.Message
	for adv == nil {
		if err := peer.Send(dhcp6Frame(sol)); err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		f, err := peer.Recv(rctx, func(f vswitch.Frame) bool {
			m := dhcp6Reply(f)
			return m != nil && m.TransactionID == sol.TransactionID
		})
		rcancel()
		if ctx.Err() != nil {
			t.Fatalf("no DHCPv6 advertise: %v\ndnsmasq log:\n%s", err, d.Log())
		}
		if err == nil {
			adv = dhcp6Reply(f)
		}
	}
	if adv.MessageType != dhcpv6.MessageTypeAdvertise {
		t.Fatalf("reply is a %v, want an advertise", adv.MessageType)
	}
	if got, want := adv.Options.BootFileURL(), "http://[fd00:42::1]:8080/menu"; got != want {
		t.Errorf("option 59 = %q, want %q", got, want)
	}
	ia := adv.Options.OneIANA()
	if ia == nil || len(ia.Options.Addresses()) == 0 {
		t.Fatalf("no IA_NA address in %v", adv)
	}
	a := ia.Options.Addresses()[0]
	if !net.ParseIP("fd00:42::").Mask(net.CIDRMask(64, 128)).Equal(a.IPv6Addr.Mask(net.CIDRMask(64, 128))) || a.IPv6Addr[14] != 1 {
		t.Errorf("address %v, want fd00:42::100-1ff", a.IPv6Addr)
	}
	if a.ValidLifetime != 120*time.Second {
		t.Errorf("valid lifetime %v, want 2m0s (dnsmasq's floor for the 60 s asked)", a.ValidLifetime)
	}
	t.Logf("advertised %v valid %v", a.IPv6Addr, a.ValidLifetime)
}
