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
