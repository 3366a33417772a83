package vswitch

import (
	"fmt"
	"net"
	"net/netip"
)

// udpLink is a port that a QEMU NIC joins with `-netdev dgram`: the switch's socket on
// 127.0.0.1 and the address QEMU binds, both fixed before QEMU starts. QEMU's port is found
// by binding a socket to port 0 and closing it, which another program could in principle take
// in between; on loopback, among tests, that has not been seen.
type udpLink struct {
	conn *net.UDPConn
	peer netip.AddrPort // QEMU's end
}

func newUDPLink() (*udpLink, error) {
	lo := netip.MustParseAddr("127.0.0.1")
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, 0)))
	if err != nil {
		return nil, err
	}
	probe, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, 0)))
	if err != nil {
		conn.Close()
		return nil, err
	}
	peer := probe.LocalAddr().(*net.UDPAddr).AddrPort()
	probe.Close()
	return &udpLink{conn: conn, peer: peer}, nil
}

// ReadFrame returns the next datagram from QEMU's end; others (strays on loopback) are
// ignored.
func (l *udpLink) ReadFrame(b []byte) (int, error) {
	for {
		n, from, err := l.conn.ReadFromUDPAddrPort(b)
		if err != nil {
			return 0, err
		}
		if from == l.peer {
			return n, nil
		}
	}
}

func (l *udpLink) WriteFrame(b []byte) error {
	_, err := l.conn.WriteToUDPAddrPort(b, l.peer)
	return err
}

func (l *udpLink) Close() error { return l.conn.Close() }

// UDP returns the port's two addresses: the switch's socket and the one its peer (QEMU, or a
// test's fake host) must bind and send from. Zero for a TAP port.
func (p *Port) UDP() (sw, peer netip.AddrPort) {
	if l, ok := p.link.(*udpLink); ok {
		return l.conn.LocalAddr().(*net.UDPAddr).AddrPort(), l.peer
	}
	return netip.AddrPort{}, netip.AddrPort{}
}

// Netdev is QEMU's -netdev value (QEMU 7.2 and later) that joins a NIC to this port, with id
// id: "dgram,id=ID,local.type=inet,local.host=127.0.0.1,local.port=…,remote.type=inet,…".
func (p *Port) Netdev(id string) string {
	sw, peer := p.UDP()
	return fmt.Sprintf("dgram,id=%s,local.type=inet,local.host=%s,local.port=%d,remote.type=inet,remote.host=%s,remote.port=%d",
		id, peer.Addr(), peer.Port(), sw.Addr(), sw.Port())
}

// QEMUArgs are the QEMU arguments of a virtio-net NIC with MAC mac (empty: QEMU's choice) on
// this port, with netdev id id. It reports 1000 Mb/s full duplex: without a speed and duplex,
// Linux's 802.3ad bonding sends no LACPDU on the NIC and never aggregates it.
func (p *Port) QEMUArgs(id, mac string) []string {
	dev := "virtio-net-pci,netdev=" + id + ",speed=1000,duplex=full,romfile="
	if mac != "" {
		dev += ",mac=" + mac
	}
	return []string{"-netdev", p.Netdev(id), "-device", dev}
}
