package vswitch

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	macA   = net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0x0a}
	macB   = net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0x0b}
	bcast  = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	guest  = net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56} // the fake bond's system MAC
	silent = 300 * time.Millisecond                            // how long "nothing arrives" is watched
)

func newSwitch(t *testing.T) *Switch {
	t.Helper()
	s := New(Options{Logf: t.Logf})
	t.Cleanup(func() { s.Close() })
	return s
}

func port(t *testing.T, s *Switch, name string, m Mode) (*Port, *Peer) {
	t.Helper()
	p, err := s.AddPort(name, m)
	if err != nil {
		t.Fatal(err)
	}
	return p, connect(t, p)
}

func connect(t *testing.T, p *Port) *Peer {
	t.Helper()
	peer, err := p.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	return peer
}

// data is a test frame: an IPv4 EtherType and a payload that says what it is.
func data(dst, src net.HardwareAddr, vid int, what string) []byte {
	return Frame{Dst: dst, Src: src, Tagged: vid != 0, VID: vid, EtherType: EtherTypeIPv4, Payload: []byte(what)}.Marshal()
}

func isData(f Frame) bool { return f.EtherType == EtherTypeIPv4 }

// expect waits for the next data frame on peer and checks its tag and payload.
func expect(t *testing.T, peer *Peer, vid int, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f, err := peer.Recv(ctx, isData)
	if err != nil {
		t.Fatalf("waiting for %q: %v", what, err)
	}
	if f.Tagged != (vid != 0) || f.VID != vid || string(f.Payload) != what {
		t.Fatalf("got tagged=%v VID %d %q, want VID %d %q", f.Tagged, f.VID, f.Payload, vid, what)
	}
}

// nothing checks that no data frame arrives on peer for a while.
func nothing(t *testing.T, peer *Peer, why string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), silent)
	defer cancel()
	if f, err := peer.Recv(ctx, isData); err == nil {
		t.Fatalf("%s: got %q (VID %d)", why, f.Payload, f.VID)
	}
}

// waitDrops waits until p has dropped n frames for reason (frames cross the switch
// asynchronously).
func waitDrops(t *testing.T, p *Port, reason DropReason, n uint64) {
	t.Helper()
	for i := 0; p.Drops(reason) < n; i++ {
		if i == 500 {
			t.Fatalf("port %s: %d drops for %q, want %d; counters %+v", p.Name(), p.Drops(reason), reason, n, p.Counters())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAccessVLANs(t *testing.T) {
	t.Parallel()
	s := newSwitch(t)
	_, a := port(t, s, "a", Access(10))
	_, b := port(t, s, "b", Access(10))
	_, c := port(t, s, "c", Access(20))
	a.Send(data(bcast, macA, 0, "hello 10"))
	expect(t, b, 0, "hello 10")
	nothing(t, c, "VLAN 20 got VLAN 10's broadcast")
	// b's reply is unicast to a, learnt; c does not see it either.
	b.Send(data(macA, macB, 0, "reply"))
	expect(t, a, 0, "reply")
	nothing(t, c, "VLAN 20 got a unicast of VLAN 10")
}

func TestTrunk(t *testing.T) {
	t.Parallel()
	s := newSwitch(t)
	ap, a := port(t, s, "a", Access(42))
	tp, tr := port(t, s, "t", Trunk(42, 43))
	a.Send(data(bcast, macA, 0, "untagged in 42"))
	expect(t, tr, 42, "untagged in 42")
	tr.Send(data(macA, macB, 42, "tagged 42"))
	expect(t, a, 0, "tagged 42")

	tr.Send(data(bcast, macB, 0, "untagged on trunk"))
	waitDrops(t, tp, DropUntaggedOnTrunk, 1)
	tr.Send(data(bcast, macB, 44, "VLAN 44"))
	waitDrops(t, tp, DropVLANNotAllowed, 1)
	tr.Send(Frame{Dst: bcast, Src: macB, Tagged: true, VID: 0, EtherType: EtherTypeIPv4, Payload: []byte("priority tag")}.Marshal())
	waitDrops(t, tp, DropUntaggedOnTrunk, 2)
	a.Send(data(bcast, macA, 42, "tagged on access"))
	waitDrops(t, ap, DropTaggedOnAccess, 1)
	nothing(t, a, "a dropped frame reached the access port")
	nothing(t, tr, "a dropped frame reached the trunk")
	if got := tp.Counters().RxVLAN; !cmp.Equal(got, map[int]uint64{42: 1}) {
		t.Errorf("trunk RxVLAN %v, want 42:1", got)
	}
}

func TestBadModes(t *testing.T) {
	s := newSwitch(t)
	for _, m := range []Mode{Access(0), Access(4095), Trunk(), Trunk(1, 5000)} {
		if _, err := s.AddPort("x", m); err == nil {
			t.Errorf("AddPort(%v) accepted", m)
		}
	}
}

// fakeBond is an LACP actor on a LAG member: what Linux's 802.3ad bonding does, by hand.
type fakeBond struct {
	peer    *Peer
	system  net.HardwareAddr
	key     uint16
	port    uint16
	state   State
	partner Info // the switch, as last heard
}

// recvLACP returns the switch's next LACPDU.
func (b *fakeBond) recvLACP(ctx context.Context) (LACPDU, error) {
	f, err := b.peer.Recv(ctx, func(f Frame) bool { return f.EtherType == EtherTypeSlow })
	if err != nil {
		return LACPDU{}, err
	}
	if !bytes.Equal(f.Dst, SlowProtocolsMAC) {
		return LACPDU{}, errors.New("LACPDU to " + f.Dst.String())
	}
	return ParseLACPDU(f.Payload)
}

func (b *fakeBond) send() error {
	return b.peer.Send(LACPFrame(b.system, LACPDU{
		Actor:   Info{SystemPriority: 65535, System: b.system, Key: b.key, PortPriority: 255, Port: b.port, State: b.state},
		Partner: b.partner,
	}))
}

// handshake runs LACP with the switch until the switch says it collects and distributes.
func (b *fakeBond) handshake(ctx context.Context) error {
	b.state = StateActivity | StateTimeout | StateAggregation
	for {
		pdu, err := b.recvLACP(ctx)
		if err != nil {
			return err
		}
		b.partner = pdu.Actor
		if pdu.Actor.State&StateSync != 0 && pdu.Partner.sameParty(b.info()) {
			b.state |= StateSync | StateCollecting | StateDistributing
		}
		if err := b.send(); err != nil {
			return err
		}
		if pdu.Actor.State&(StateCollecting|StateDistributing) == StateCollecting|StateDistributing && b.state&StateSync != 0 {
			return nil
		}
	}
}

func (b *fakeBond) info() Info {
	return Info{SystemPriority: 65535, System: b.system, Key: b.key, PortPriority: 255, Port: b.port}
}

func TestLAG(t *testing.T) {
	t.Parallel()
	s := newSwitch(t)
	sysMAC := net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 1}
	lag, err := s.AddLAG("bond", Trunk(42), 2, LACPConfig{SystemMAC: sysMAC, Key: 7, Interval: 100 * time.Millisecond, Expiry: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, host := port(t, s, "host", Access(42))
	m0, m1 := lag.Ports()[0], lag.Ports()[1]
	b0 := &fakeBond{peer: connect(t, m0), system: guest, key: 9, port: 1}
	b1 := &fakeBond{peer: connect(t, m1), system: guest, key: 9, port: 2}

	// Before LACP: nothing in, nothing out.
	b0.peer.Send(data(bcast, guest, 42, "before LACP"))
	waitDrops(t, m0, DropNotCollecting, 1)
	host.Send(data(bcast, macA, 0, "to the LAG before LACP"))
	waitDrops(t, m0, DropNoDistributing, 1)
	nothing(t, host, "a member passed data before LACP")
	nothing(t, b0.peer, "the LAG sent data before LACP")
	if st := lag.State(); st.Aggregated != 0 || st.Members[0].PartnerValid {
		t.Fatalf("before LACP: %+v", st)
	}

	// The switch is an active partner: it speaks first, defaulted, with its identity.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first, err := b0.recvLACP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Info{SystemPriority: 32768, System: sysMAC, Key: 7, PortPriority: 32768, Port: 1,
		State: StateActivity | StateTimeout | StateAggregation | StateDefaulted}); !cmp.Equal(first.Actor, want) {
		t.Errorf("first LACPDU actor %+v, want %+v", first.Actor, want)
	}

	errs := make(chan error, 2)
	for _, b := range []*fakeBond{b0, b1} {
		go func() { errs <- b.handshake(ctx) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("handshake: %v", err)
		}
	}
	if err := lag.WaitAggregated(ctx, 2); err != nil {
		t.Fatal(err)
	}
	st := lag.State()
	for i, m := range st.Members {
		if !m.Aggregated || !bytes.Equal(m.Partner.System, guest) || m.Partner.Key != 9 || m.Partner.Port != uint16(i+1) {
			t.Errorf("member %d: %+v", i, m)
		}
	}

	// Aggregated: the host's broadcast goes out of exactly one member, tagged; the bond's
	// tagged frame comes in.
	host.Send(data(bcast, macA, 0, "to the LAG"))
	got := 0
	for _, b := range []*fakeBond{b0, b1} {
		ctx, cancel := context.WithTimeout(context.Background(), silent)
		f, err := b.peer.Recv(ctx, isData)
		cancel()
		if err == nil {
			got++
			if !f.Tagged || f.VID != 42 || string(f.Payload) != "to the LAG" {
				t.Errorf("LAG got %+v", f)
			}
		}
	}
	if got != 1 {
		t.Errorf("broadcast went out of %d members, want 1", got)
	}
	b1.peer.Send(data(bcast, guest, 42, "from the bond"))
	expect(t, host, 0, "from the bond")
	b1.peer.Send(data(bcast, guest, 0, "untagged from the bond"))
	waitDrops(t, m1, DropUntaggedOnTrunk, 1)

	// The bond goes silent: the partner expires, the member stops passing data.
	for i := 0; lag.State().Aggregated != 0; i++ {
		if i == 1000 {
			t.Fatal("partner never expired")
		}
		time.Sleep(10 * time.Millisecond)
	}
	n := m1.Drops(DropNotCollecting)
	b1.peer.Send(data(bcast, guest, 42, "after expiry"))
	waitDrops(t, m1, DropNotCollecting, n+1)
}

// TestLAGMismatch: a partner that gets the switch's identity wrong (a stale or foreign view)
// never reaches collecting, and neither does a partner that is not aggregatable.
func TestLAGMismatch(t *testing.T) {
	t.Parallel()
	s := newSwitch(t)
	lag, err := s.AddLAG("bond", Access(1), 2, LACPConfig{Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	wrong := &fakeBond{peer: connect(t, lag.Ports()[0]), system: guest, key: 9, port: 1}
	indiv := &fakeBond{peer: connect(t, lag.Ports()[1]), system: guest, key: 9, port: 2}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for ctx.Err() == nil {
		pdu, err := wrong.recvLACP(ctx)
		if err != nil {
			break
		}
		wrong.partner = pdu.Actor
		wrong.partner.Key++ // the switch's key, wrong
		wrong.state = StateActivity | StateAggregation | StateSync | StateCollecting | StateDistributing
		wrong.send()
		if pdu, err = indiv.recvLACP(ctx); err == nil {
			indiv.partner = pdu.Actor
			indiv.state = StateActivity | StateSync | StateCollecting | StateDistributing // no Aggregation
			indiv.send()
		}
	}
	st := lag.State()
	if st.Aggregated != 0 {
		t.Fatalf("aggregated: %+v", st)
	}
	if a := st.Members[0].Actor.State; a&StateCollecting != 0 || a&StateSync == 0 {
		t.Errorf("member with a wrong view of the switch: state %v, want in sync (selected) but not collecting", a)
	}
	if a := st.Members[1].Actor.State; a&(StateSync|StateCollecting) != 0 {
		t.Errorf("member with an individual partner: state %v, want neither sync nor collecting", a)
	}
}

// TestLACPDUOnPlainPort: a LACPDU on a port without LACP is dropped and answered by nothing.
func TestLACPDUOnPlainPort(t *testing.T) {
	t.Parallel()
	s := newSwitch(t)
	p, peer := port(t, s, "p", Access(1))
	b := &fakeBond{peer: peer, system: guest, key: 1, port: 1, state: StateActivity | StateAggregation}
	b.send()
	waitDrops(t, p, DropLACPNotLAG, 1)
	ctx, cancel := context.WithTimeout(context.Background(), silent)
	defer cancel()
	if _, err := b.recvLACP(ctx); err == nil {
		t.Error("a plain port answered a LACPDU")
	}
}
