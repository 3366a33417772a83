package vswitch

import (
	"context"
	"fmt"
	"net"
	"time"
)

// LACPConfig is the switch's side of a LAG: its LACP identity and timers.
type LACPConfig struct {
	SystemMAC      net.HardwareAddr // default 02:5e:00:00:00:00
	SystemPriority uint16           // default 32768
	Key            uint16           // default 1
	// Interval is how often each member sends a LACPDU; default one second (802.1AX's fast
	// rate, which the switch also asks of its partner by setting its LACP_Timeout bit).
	Interval time.Duration
	// Expiry is how long a partner's information stays valid without a LACPDU; default 10 s.
	// 802.1AX says 3 s at the fast rate, but a guest under software emulation on a busy host
	// stalls for seconds, and a test must not flap on that.
	Expiry time.Duration
}

// LAG is a link aggregation group of ports whose switch side runs LACP (active, fast).
// Selection is simple and strict: the members whose partner has the same system and key as
// the first member heard from form the one aggregator; a member with another partner, or a
// partner that is not aggregatable, stays out and passes nothing.
type LAG struct {
	sw  *Switch
	b   *bport
	cfg LACPConfig
	agg *Info // the aggregator's partner (system priority, system, key); nil before one
}

// member is the LACP state of one port of a LAG. Under sw.mu.
type member struct {
	partner   Info // the partner's actor information, as last received
	echo      Info // what the partner last said about the switch (its partner information)
	partnerOK bool // partner information received and not expired
	lastRx    time.Time
	since     time.Time // when partnerOK last became true
	state     State     // the switch's actor state on this port
	pdusIn    uint64
	pdusOut   uint64
}

func (m *member) collecting() bool { return m.state&StateCollecting != 0 }

// distributing says whether data may go out: the switch distributes and the partner collects.
func (m *member) distributing() bool {
	return m.state&StateDistributing != 0 && m.partnerOK && m.partner.State&StateCollecting != 0
}

// AddLAG adds a LAG of n ports (named NAME.0 … NAME.n-1), each joined by a QEMU NIC over UDP
// (Port.Netdev), with VLAN membership m.
func (s *Switch) AddLAG(name string, m Mode, n int, c LACPConfig) (*LAG, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, fmt.Errorf("vswitch: LAG %s with %d ports", name, n)
	}
	if c.SystemMAC == nil {
		c.SystemMAC = net.HardwareAddr{0x02, 0x5e, 0, 0, 0, 0}
	}
	if c.SystemPriority == 0 {
		c.SystemPriority = 32768
	}
	if c.Key == 0 {
		c.Key = 1
	}
	if c.Interval == 0 {
		c.Interval = time.Second
	}
	if c.Expiry == 0 {
		c.Expiry = 10 * time.Second
	}
	var links []link
	var names []string
	for i := range n {
		l, err := newUDPLink()
		if err != nil {
			for _, l := range links {
				l.Close()
			}
			return nil, fmt.Errorf("vswitch: LAG %s: %w", name, err)
		}
		links = append(links, l)
		names = append(names, fmt.Sprintf("%s.%d", name, i))
	}
	b := &bport{name: name, mode: m}
	lag := &LAG{sw: s, b: b, cfg: c}
	b.lag = lag
	s.add(b, links, names)
	s.wg.Add(1)
	go lag.run()
	return lag, nil
}

// Ports are the LAG's members.
func (l *LAG) Ports() []*Port { return l.b.ports }

// run sends the periodic LACPDUs and expires partners, until the switch closes.
func (l *LAG) run() {
	defer l.sw.wg.Done()
	t := time.NewTicker(l.cfg.Interval)
	defer t.Stop()
	l.sw.mu.Lock()
	l.update()
	for _, p := range l.b.ports {
		l.transmit(p)
	}
	l.sw.mu.Unlock()
	for {
		select {
		case <-l.sw.stop:
			return
		case now := <-t.C:
			l.sw.mu.Lock()
			for _, p := range l.b.ports {
				if m := p.lacp; m.partnerOK && now.Sub(m.lastRx) > l.cfg.Expiry {
					m.partnerOK = false
					l.sw.logf("LAG %s: port %s: partner %s expired (no LACPDU for %v)", l.b.name, p.name, m.partner.System, now.Sub(m.lastRx).Round(time.Millisecond))
				}
			}
			l.update()
			for _, p := range l.b.ports {
				l.transmit(p)
			}
			l.sw.mu.Unlock()
		}
	}
}

// actor is the switch's actor information on p.
func (l *LAG) actor(p *Port) Info {
	return Info{SystemPriority: l.cfg.SystemPriority, System: l.cfg.SystemMAC, Key: l.cfg.Key,
		PortPriority: 32768, Port: p.num, State: p.lacp.state}
}

// receive takes a LACPDU in on p. Called with sw.mu held.
func (l *LAG) receive(p *Port, pdu LACPDU) {
	m := p.lacp
	m.pdusIn++
	before := m.partner
	was := m.partnerOK
	m.partner, m.echo, m.partnerOK, m.lastRx = pdu.Actor, pdu.Partner, true, time.Now()
	if !was {
		m.since = m.lastRx
	}
	if !was || !before.sameParty(pdu.Actor) {
		l.sw.logf("LAG %s: port %s: partner system %s priority %d key %d port %d", l.b.name, p.name,
			pdu.Actor.System, pdu.Actor.SystemPriority, pdu.Actor.Key, pdu.Actor.Port)
	}
	changed := l.update()
	l.sw.notify() // the partner's state counts in Aggregated, even when the switch's is unchanged
	// Answer at once when the partner's view of the switch is out of date, or the switch's
	// state changed: as 802.1AX's need-to-transmit, it saves a periodic interval per step.
	me := l.actor(p)
	if !pdu.Partner.sameParty(me) || pdu.Partner.State != me.State || changed[p] {
		l.transmit(p)
	}
	for q := range changed {
		if q != p {
			l.transmit(q)
		}
	}
}

// update reruns selection and the mux of every member, and returns the members whose actor
// state changed. Called with sw.mu held.
func (l *LAG) update() map[*Port]bool {
	candidate := func(m *member) bool { return m.partnerOK && m.partner.State&StateAggregation != 0 }
	sameAgg := func(a, b Info) bool {
		return a.SystemPriority == b.SystemPriority && macEqual(a.System, b.System) && a.Key == b.Key
	}
	keep := false
	for _, p := range l.b.ports {
		keep = keep || (l.agg != nil && candidate(p.lacp) && sameAgg(*l.agg, p.lacp.partner))
	}
	if !keep {
		l.agg = nil
		for _, p := range l.b.ports {
			if candidate(p.lacp) {
				a := p.lacp.partner
				l.agg = &a
				break
			}
		}
	}
	changed := map[*Port]bool{}
	aggregated := 0
	for _, p := range l.b.ports {
		m := p.lacp
		selected := candidate(m) && l.agg != nil && sameAgg(*l.agg, m.partner)
		// The partner is in sync when it says so about the switch as the switch is: its
		// partner information must be the switch's actor information (the partner's
		// Aggregation bit checked too), as Linux's bonding checks it the other way.
		me := l.actor(p)
		inSync := selected && m.partner.State&StateSync != 0 && m.echo.sameParty(me) && m.echo.State&StateAggregation != 0
		st := l.actorState(m, selected)
		if inSync {
			st |= StateCollecting | StateDistributing // coupled control: both at once
		}
		if st != m.state {
			changed[p] = true
			l.sw.logf("LAG %s: port %s: state %s -> %s (partner %s)", l.b.name, p.name, m.state, st, m.partner.State)
			m.state = st
		}
		if aggregatedMember(m) {
			aggregated++
		}
	}
	if len(changed) > 0 {
		l.sw.notify()
	}
	return changed
}

// actorState is the switch's state on a member: active, fast, aggregatable, in sync once
// selected, defaulted without a partner.
func (l *LAG) actorState(m *member, selected bool) State {
	st := StateActivity | StateTimeout | StateAggregation
	if !m.partnerOK {
		st |= StateDefaulted
	}
	if selected {
		st |= StateSync
	}
	return st
}

// transmit sends a LACPDU on p. Called with sw.mu held.
func (l *LAG) transmit(p *Port) {
	m := p.lacp
	pdu := LACPDU{Actor: l.actor(p)}
	if m.partnerOK {
		pdu.Partner = m.partner
	} else {
		pdu.Partner = Info{System: make(net.HardwareAddr, 6)}
	}
	m.pdusOut++
	l.sw.send(p, LACPFrame(p.mac, pdu))
}

// aggregatedMember says whether a member carries data both ways: the switch collecting and
// distributing, the partner in sync, collecting and distributing.
func aggregatedMember(m *member) bool {
	const all = StateSync | StateCollecting | StateDistributing
	return m.partnerOK && m.state&all == all && m.partner.State&all == all
}

// MemberState is one LAG member's LACP state.
type MemberState struct {
	Port string
	// Partner is the partner's actor information as last received (System nil before any);
	// PartnerValid says it was received and has not expired.
	Partner      Info
	PartnerValid bool
	// PartnerSince is when the partner's information last became valid (its first LACPDU,
	// or the first after an expiry).
	PartnerSince time.Time
	Actor        Info // the switch's actor information on the port, as it sends it
	// Aggregated: the switch collects and distributes on the port and the partner says it is
	// in sync, collecting and distributing.
	Aggregated            bool
	LACPDUsIn, LACPDUsOut uint64
}

// LAGState is a LAG's state.
type LAGState struct {
	Members    []MemberState
	Aggregated int // members aggregated
}

// State returns the LAG's state now.
func (l *LAG) State() LAGState {
	l.sw.mu.Lock()
	defer l.sw.mu.Unlock()
	var st LAGState
	for _, p := range l.b.ports {
		m := p.lacp
		ms := MemberState{Port: p.name, Partner: m.partner, PartnerValid: m.partnerOK, PartnerSince: m.since, Actor: l.actor(p),
			Aggregated: aggregatedMember(m), LACPDUsIn: m.pdusIn, LACPDUsOut: m.pdusOut}
		ms.Partner.System = append(net.HardwareAddr(nil), m.partner.System...)
		if ms.Aggregated {
			st.Aggregated++
		}
		st.Members = append(st.Members, ms)
	}
	return st
}

// WaitAggregated waits until at least n members are aggregated, or ctx ends.
func (l *LAG) WaitAggregated(ctx context.Context, n int) error {
	err := l.sw.waitFor(ctx, func() bool {
		c := 0
		for _, p := range l.b.ports {
			if aggregatedMember(p.lacp) {
				c++
			}
		}
		return c >= n
	})
	if err != nil {
		return fmt.Errorf("vswitch: LAG %s: waiting for %d aggregated members: %w", l.b.name, n, err)
	}
	return nil
}
