package vswitch

import (
	"context"
	"errors"
	"net"
	"time"
)

// Peer is a fake NIC on a UDP port, for tests without a VM: it binds the address QEMU would
// and sends and receives whole Ethernet frames.
type Peer struct {
	conn *net.UDPConn
}

// Connect binds the port's peer address. The port must be a UDP port with no QEMU on it.
func (p *Port) Connect() (*Peer, error) {
	sw, peer := p.UDP()
	if !sw.IsValid() {
		return nil, errors.New("vswitch: port " + p.name + " is not a UDP port")
	}
	c, err := net.DialUDP("udp4", net.UDPAddrFromAddrPort(peer), net.UDPAddrFromAddrPort(sw))
	if err != nil {
		return nil, err
	}
	return &Peer{conn: c}, nil
}

// Send sends a frame into the switch.
func (p *Peer) Send(frame []byte) error {
	_, err := p.conn.Write(frame)
	return err
}

// Recv returns the next frame the switch sends for which match is true (nil: any), and
// discards the others; it fails when ctx ends.
func (p *Peer) Recv(ctx context.Context, match func(Frame) bool) (Frame, error) {
	buf := make([]byte, 65536)
	for {
		dl, ok := ctx.Deadline()
		if !ok {
			dl = time.Now().Add(time.Hour)
		}
		p.conn.SetReadDeadline(dl)
		n, err := p.conn.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return Frame{}, ctx.Err()
			}
			return Frame{}, err
		}
		f, err := ParseFrame(append([]byte(nil), buf[:n]...))
		if err == nil && (match == nil || match(f)) {
			return f, nil
		}
	}
}

// Close closes the peer's socket.
func (p *Peer) Close() error { return p.conn.Close() }
