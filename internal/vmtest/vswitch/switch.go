// Package vswitch is a user-space Ethernet switch for VM tests: QEMU's NICs join it over
// `-netdev dgram` (one UDP socket per switch port, on 127.0.0.1), and a TAP device in a network
// namespace joins it as an uplink, so that servers in the namespace (dnsmasq, an HTTP server)
// reach the guests. It exists because the host's kernel may have neither 8021q nor bonding:
// the switch side of a VLAN trunk or of an LACP bond cannot be a host device there.
//
// It learns MAC addresses per VLAN and floods what it does not know. A port is an access port
// (untagged, in one VLAN: tagged frames are dropped) or a trunk (802.1Q tagged, a list of
// allowed VLANs: untagged frames and other VLANs are dropped). Ports can be aggregated into a
// LAG whose switch side is an active 802.3ad/802.1AX LACP partner; it is strict: no data frame
// passes on a member, either way, before LACP has it collecting and distributing with the
// partner in sync. Every dropped frame is counted by reason, and the LACP state of each member
// is exposed, for tests to assert on.
//
// Test-only: nothing in /init or the CLI imports it.
package vswitch

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"slices"
	"sync"
	"time"
)

// DropReason says why the switch dropped a frame.
type DropReason string

// The reasons a frame is dropped.
const (
	DropMalformed       DropReason = "malformed frame"
	DropUntaggedOnTrunk DropReason = "untagged frame on a trunk"
	DropTaggedOnAccess  DropReason = "tagged frame on an access port"
	DropVLANNotAllowed  DropReason = "VLAN not allowed on the port"
	DropNotCollecting   DropReason = "LAG member not collecting (LACP not in sync)"
	DropNoDistributing  DropReason = "LAG has no distributing member"
	DropLACPNotLAG      DropReason = "LACPDU on a port without LACP"
	DropBadLACPDU       DropReason = "malformed LACPDU or other slow protocol"
	DropLinkLocal       DropReason = "link-local group address (802.1D reserved)"
	DropSameSegment     DropReason = "destination is on the ingress port"
)

// Mode is a port's VLAN membership: access (untagged, in VLAN) or trunk (tagged, in Allowed).
type Mode struct {
	Trunk   bool
	VLAN    int   // access: the port's VLAN
	Allowed []int // trunk: the VLANs it carries, tagged
}

// Access is an untagged port in VLAN vlan (1-4094).
func Access(vlan int) Mode { return Mode{VLAN: vlan} }

// Trunk is a tagged port carrying vlans (1-4094); it drops untagged frames.
func Trunk(vlans ...int) Mode { return Mode{Trunk: true, Allowed: vlans} }

func (m Mode) String() string {
	if m.Trunk {
		return fmt.Sprintf("trunk %v", m.Allowed)
	}
	return fmt.Sprintf("access %d", m.VLAN)
}

func (m Mode) check() error {
	vlans := m.Allowed
	if !m.Trunk {
		vlans = []int{m.VLAN}
	}
	if m.Trunk && len(vlans) == 0 {
		return errors.New("vswitch: a trunk with no VLANs")
	}
	for _, v := range vlans {
		if v < 1 || v > maxVID {
			return fmt.Errorf("vswitch: VLAN %d out of 1-%d", v, maxVID)
		}
	}
	return nil
}

// carries says whether the port is in vlan.
func (m Mode) carries(vlan int) bool {
	if m.Trunk {
		return slices.Contains(m.Allowed, vlan)
	}
	return m.VLAN == vlan
}

// Options configure a Switch.
type Options struct {
	// Logf, when set, receives what the switch does that a test may want to read on failure
	// (LACP state changes). Nil: silent.
	Logf func(format string, args ...any)
	// Observe, when set, is called (with the switch's lock held: it must not call back into
	// the switch) for every frame a port takes in, with the VLAN it was classified into and
	// the reason it was dropped, if it was. The event's frame is the observer's to keep.
	Observe func(Event)
}

// Event is a frame a port took in.
type Event struct {
	Port  string
	VLAN  int        // the VLAN it was classified into; 0 when dropped before that
	Frame Frame      // as received (Frame.Tagged says whether it came tagged)
	Drop  DropReason // "" when forwarded (or consumed: LACPDUs)
}

// Switch is a running switch. Its ports' goroutines run until Close.
type Switch struct {
	opts Options

	mu      sync.Mutex
	bports  []*bport
	fdb     map[fdbKey]*bport
	changed chan struct{} // closed and replaced when LACP state changes
	closed  bool
	stop    chan struct{}
	wg      sync.WaitGroup
}

type fdbKey struct {
	vlan int
	mac  [6]byte
}

// bport is a bridge port: what MAC learning and flooding see. A plain port is one Port; a
// LAG is several.
type bport struct {
	name  string
	mode  Mode
	ports []*Port
	lag   *LAG
}

// New starts an empty switch.
func New(o Options) *Switch {
	return &Switch{opts: o, fdb: map[fdbKey]*bport{}, changed: make(chan struct{}), stop: make(chan struct{})}
}

func (s *Switch) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf("vswitch: "+format, args...)
	}
}

// Close stops every port and closes their sockets and TAPs.
func (s *Switch) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stop)
	var ports []*Port
	for _, b := range s.bports {
		ports = append(ports, b.ports...)
	}
	s.mu.Unlock()
	for _, p := range ports {
		p.link.Close()
	}
	s.wg.Wait()
	return nil
}

// Port is one physical port of the switch: a UDP socket a QEMU NIC sends its frames to, or a
// TAP device.
type Port struct {
	sw   *Switch
	name string
	bp   *bport
	link link
	mac  net.HardwareAddr // the port's own address (source of its LACPDUs)
	num  uint16           // LACP port number (1-based, unique in the switch)
	lacp *member          // nil unless in a LAG

	// counters, under sw.mu
	rx, tx uint64
	drops  map[DropReason]uint64
	rxVLAN map[int]uint64
}

// link is where a port's frames come from and go to.
type link interface {
	ReadFrame(b []byte) (int, error)
	WriteFrame(b []byte) error
	io.Closer
}

// Name is the port's name.
func (p *Port) Name() string { return p.name }

// MAC is the port's own address: the source of the LACPDUs it sends.
func (p *Port) MAC() net.HardwareAddr { return p.mac }

// Counters are a port's frame counters.
type Counters struct {
	Rx, Tx uint64                // frames taken in, frames sent out (LACPDUs included)
	Drops  map[DropReason]uint64 // frames taken in (or due out) and dropped, by reason
	RxVLAN map[int]uint64        // data frames taken in and forwarded, by VLAN
}

// Counters returns a copy of the port's counters.
func (p *Port) Counters() Counters {
	p.sw.mu.Lock()
	defer p.sw.mu.Unlock()
	c := Counters{Rx: p.rx, Tx: p.tx, Drops: map[DropReason]uint64{}, RxVLAN: map[int]uint64{}}
	for k, v := range p.drops {
		c.Drops[k] = v
	}
	for k, v := range p.rxVLAN {
		c.RxVLAN[k] = v
	}
	return c
}

// Drops returns how many frames the port dropped for reason.
func (p *Port) Drops(reason DropReason) uint64 {
	p.sw.mu.Lock()
	defer p.sw.mu.Unlock()
	return p.drops[reason]
}

// AddPort adds a port that a QEMU NIC joins over UDP on 127.0.0.1 (see Port.Netdev).
func (s *Switch) AddPort(name string, m Mode) (*Port, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	l, err := newUDPLink()
	if err != nil {
		return nil, fmt.Errorf("vswitch: port %s: %w", name, err)
	}
	return s.add(&bport{name: name, mode: m}, []link{l}, []string{name})[0], nil
}

// add registers a bridge port and its physical ports, and starts reading them.
func (s *Switch) add(b *bport, links []link, names []string) []*Port {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, o := range s.bports {
		n += len(o.ports)
	}
	for i, l := range links {
		n++
		p := &Port{sw: s, name: names[i], bp: b, link: l, num: uint16(n),
			mac:   net.HardwareAddr{0x02, 0x5e, 0x00, 0x00, byte(n >> 8), byte(n)},
			drops: map[DropReason]uint64{}, rxVLAN: map[int]uint64{}}
		if b.lag != nil { // before the port reads: no frame may find a LAG port without it
			p.lacp = &member{state: StateActivity | StateTimeout | StateAggregation | StateDefaulted}
		}
		b.ports = append(b.ports, p)
		s.wg.Add(1)
		go s.read(p)
	}
	s.bports = append(s.bports, b)
	return b.ports
}

// read takes frames in from p until its link is closed.
func (s *Switch) read(p *Port) {
	defer s.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, err := p.link.ReadFrame(buf)
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if !closed {
				s.logf("port %s: %v", p.name, err)
			}
			return
		}
		s.input(p, append([]byte(nil), buf[:n]...))
	}
}

func (s *Switch) drop(p *Port, ev Event, why DropReason) {
	p.drops[why]++
	ev.Drop = why
	if s.opts.Observe != nil {
		s.opts.Observe(ev)
	}
}

// input handles one frame p took in.
func (s *Switch) input(p *Port, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.rx++
	f, err := ParseFrame(b)
	ev := Event{Port: p.name, Frame: f}
	if err != nil {
		s.drop(p, ev, DropMalformed)
		return
	}
	if macEqual(f.Dst, SlowProtocolsMAC) && f.EtherType == EtherTypeSlow && !f.Tagged {
		switch pdu, err := ParseLACPDU(f.Payload); {
		case err != nil:
			s.drop(p, ev, DropBadLACPDU)
		case p.lacp == nil:
			s.drop(p, ev, DropLACPNotLAG)
		default:
			if s.opts.Observe != nil {
				s.opts.Observe(ev)
			}
			p.bp.lag.receive(p, pdu)
		}
		return
	}
	if isLinkLocal(f.Dst) {
		s.drop(p, ev, DropLinkLocal)
		return
	}
	if p.lacp != nil && !p.lacp.collecting() {
		s.drop(p, ev, DropNotCollecting)
		return
	}
	m := p.bp.mode
	vlan := 0
	switch {
	case f.Tagged && f.VID != 0 && !m.Trunk:
		s.drop(p, ev, DropTaggedOnAccess)
		return
	case !m.Trunk:
		vlan = m.VLAN
	case !f.Tagged || f.VID == 0: // a priority tag carries no VLAN
		s.drop(p, ev, DropUntaggedOnTrunk)
		return
	case !m.carries(f.VID):
		s.drop(p, ev, DropVLANNotAllowed)
		return
	default:
		vlan = f.VID
	}
	ev.VLAN = vlan
	p.rxVLAN[vlan]++
	if !isGroup(f.Src) {
		s.fdb[fdbKey{vlan, [6]byte(f.Src)}] = p.bp
	}
	if !isGroup(f.Dst) {
		if to := s.fdb[fdbKey{vlan, [6]byte(f.Dst)}]; to != nil {
			if to == p.bp {
				s.drop(p, ev, DropSameSegment)
				return
			}
			if s.opts.Observe != nil {
				s.opts.Observe(ev)
			}
			s.output(to, vlan, f)
			return
		}
	}
	if s.opts.Observe != nil {
		s.opts.Observe(ev)
	}
	for _, to := range s.bports {
		if to != p.bp && to.mode.carries(vlan) {
			s.output(to, vlan, f)
		}
	}
}

// output sends f out of b in vlan, tagged on a trunk, untagged on an access port; on a LAG,
// out of one distributing member chosen by a hash of the addresses (so a conversation stays
// on one link and in order, as 802.1AX requires).
func (s *Switch) output(b *bport, vlan int, f Frame) {
	f.Tagged, f.VID = b.mode.Trunk, 0
	if b.mode.Trunk {
		f.VID = vlan
	}
	p := b.ports[0]
	if b.lag != nil {
		var up []*Port
		for _, m := range b.ports {
			if m.lacp.distributing() {
				up = append(up, m)
			}
		}
		if len(up) == 0 {
			b.ports[0].drops[DropNoDistributing]++
			return
		}
		h := fnv.New32a()
		h.Write(f.Src)
		h.Write(f.Dst)
		p = up[h.Sum32()%uint32(len(up))]
	}
	s.send(p, f.Marshal())
}

// send writes a frame out of p; errors (a QEMU not yet or no longer there) are not the
// switch's concern, as a cable without a host at its end.
func (s *Switch) send(p *Port, b []byte) {
	p.tx++
	p.link.WriteFrame(b)
}

// notify wakes whoever waits for a state change. Called with s.mu held.
func (s *Switch) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitFor waits until cond (called with s.mu held) holds, or ctx ends.
func (s *Switch) waitFor(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		if cond() {
			s.mu.Unlock()
			return nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second): // expiry of partner information changes no frame
		}
	}
}
