package netup

import (
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

func TestLeaseTimes(t *testing.T) {
	secs := func(code dhcpv4.OptionCode, v uint32) dhcpv4.Modifier {
		return dhcpv4.WithOption(dhcpv4.OptGeneric(code, []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}))
	}
	lt := func(v uint32) dhcpv4.Modifier { return secs(dhcpv4.OptionIPAddressLeaseTime, v) }
	t1 := func(v uint32) dhcpv4.Modifier { return secs(dhcpv4.OptionRenewTimeValue, v) }
	t2 := func(v uint32) dhcpv4.Modifier { return secs(dhcpv4.OptionRebindingTimeValue, v) }
	s := time.Second
	for _, tt := range []struct {
		name               string
		mods               []dhcpv4.Modifier
		lease, wt1, wantT2 time.Duration
	}{
		{"no option 51: infinite", nil, 0, 0, 0},
		{"0xffffffff: infinite", []dhcpv4.Modifier{lt(0xffffffff), t1(10)}, 0, 0, 0},
		{"zero: infinite", []dhcpv4.Modifier{lt(0)}, 0, 0, 0},
		{"defaults 0.5 and 0.875", []dhcpv4.Modifier{lt(3600)}, 3600 * s, 1800 * s, 3150 * s},
		{"60 s", []dhcpv4.Modifier{lt(60)}, 60 * s, 30 * s, 52500 * time.Millisecond},
		{"server's T1 and T2", []dhcpv4.Modifier{lt(600), t1(100), t2(400)}, 600 * s, 100 * s, 400 * s},
		{"T2 at the lease's end: default", []dhcpv4.Modifier{lt(600), t1(100), t2(600)}, 600 * s, 100 * s, 525 * s},
		{"T1 after T2: default", []dhcpv4.Modifier{lt(600), t1(500), t2(400)}, 600 * s, 300 * s, 400 * s},
		{"early T2: T1 half of it", []dhcpv4.Modifier{lt(600), t2(200)}, 600 * s, 100 * s, 200 * s},
		{"short option ignored", []dhcpv4.Modifier{lt(600), dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionRenewTimeValue, []byte{1}))}, 600 * s, 300 * s, 525 * s},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l, a, b := leaseTimes(ack(t, tt.mods...))
			if l != tt.lease || a != tt.wt1 || b != tt.wantT2 {
				t.Errorf("leaseTimes = %v, %v, %v; want %v, %v, %v", l, a, b, tt.lease, tt.wt1, tt.wantT2)
			}
		})
	}
	before := time.Now()
	l, err := leaseFromACK("eth0", testMAC, ack(t, lt(60)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.Obtained.Before(before) || l.LeaseTime != 60*s || l.T1 != 30*s || l.T2 != 52500*time.Millisecond {
		t.Errorf("leaseFromACK times = %v %v %v %v", l.Obtained, l.LeaseTime, l.T1, l.T2)
	}
}

func TestSchedule(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 22, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	s := time.Second
	hour := &Lease{DHCP: true, Obtained: t0, LeaseTime: 3600 * s, T1: 1800 * s, T2: 3150 * s}
	minute := &Lease{DHCP: true, Obtained: t0, LeaseTime: 60 * s, T1: 30 * s, T2: 52500 * time.Millisecond}
	eight := &Lease{DHCP: true, Obtained: t0, LeaseTime: 8 * s, T1: 4 * s, T2: 7 * s}
	for _, tt := range []struct {
		name  string
		l     *Lease
		now   time.Duration
		phase leasePhase
		next  time.Time
	}{
		{"static", &Lease{}, 0, phaseForever, time.Time{}},
		{"infinite DHCP lease", &Lease{DHCP: true, Obtained: t0}, 99 * time.Hour, phaseForever, time.Time{}},
		{"just bound: wait for T1", hour, 0, phaseBound, at(1800 * s)},
		{"at T1: renew, again after half the time to T2", hour, 1800 * s, phaseRenewing, at(1800*s + 675*s)},
		{"renewing: 60 s floor", hour, 3100 * s, phaseRenewing, at(3150 * s)},
		{"renewing: floor, but not past T2", hour, 3000 * s, phaseRenewing, at(3075 * s)},
		{"at T2: rebind", hour, 3150 * s, phaseRebinding, at(3150*s + 225*s)},
		{"rebinding: floor, not past the end", hour, 3590 * s, phaseRebinding, at(3600 * s)},
		{"at the end: expired", hour, 3600 * s, phaseExpired, time.Time{}},
		{"60 s lease: T1", minute, 30 * s, phaseRenewing, at(30*s + 11250*time.Millisecond)},
		{"60 s lease: floor 3.75 s", minute, 50 * s, phaseRenewing, at(52500 * time.Millisecond)},
		{"60 s lease: rebinding", minute, 53 * s, phaseRebinding, at(56750 * time.Millisecond)},
		{"8 s lease: floor 1 s", eight, 6500 * time.Millisecond, phaseRenewing, at(7 * s)},
		{"8 s lease: renewing at T1", eight, 4 * s, phaseRenewing, at(5500 * time.Millisecond)},
		{"8 s lease: expired", eight, 9 * s, phaseExpired, time.Time{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ph, next := schedule(tt.l, at(tt.now))
			if ph != tt.phase || !next.Equal(tt.next) {
				t.Errorf("schedule at +%v = %v, %v; want %v, %v", tt.now, ph, next, tt.phase, tt.next)
			}
			wantLapsing := tt.phase == phaseRebinding || tt.phase == phaseExpired
			if got := lapsing(tt.l, at(tt.now)); got != wantLapsing {
				t.Errorf("lapsing = %v, want %v", got, wantLapsing)
			}
		})
	}
}

// TestScheduleRetransmissions walks a lease whose server never answers, the way Keeper does
// (act at each returned time), and checks the RFC's bounds on the whole timeline.
func TestScheduleRetransmissions(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 22, 0, 0, 0, time.UTC)
	for _, lt := range []time.Duration{8 * time.Second, 60 * time.Second, time.Hour, 24 * time.Hour} {
		l := &Lease{DHCP: true, Obtained: t0, LeaseTime: lt, T1: lt / 2, T2: lt * 7 / 8}
		now := t0
		var renews, rebinds int
		for i := 0; ; i++ {
			if i > 1000 {
				t.Fatalf("%v: no end after 1000 steps", lt)
			}
			ph, next := schedule(l, now)
			if ph == phaseExpired {
				if now.Before(l.Expires()) {
					t.Errorf("%v: expired at %v, before the end %v", lt, now, l.Expires())
				}
				break
			}
			switch ph {
			case phaseRenewing:
				renews++
				if next.After(t0.Add(l.T2)) {
					t.Errorf("%v: renewing retransmission at %v, after T2", lt, next)
				}
			case phaseRebinding:
				rebinds++
				if next.After(l.Expires()) {
					t.Errorf("%v: rebinding retransmission at %v, after the end", lt, next)
				}
			}
			if ph != phaseBound {
				if gap := next.Sub(now); gap < minRetransmit(lt) && !next.Equal(t0.Add(l.T2)) && !next.Equal(l.Expires()) {
					t.Errorf("%v: %v retransmission after %v, under the floor %v", lt, ph, gap, minRetransmit(lt))
				}
			}
			if !next.After(now) {
				t.Fatalf("%v: %v at %v: next %v does not advance", lt, ph, now, next)
			}
			now = next
		}
		if renews < 2 || rebinds < 1 {
			t.Errorf("%v: %d renewing and %d rebinding REQUESTs, want at least 2 and 1", lt, renews, rebinds)
		}
		t.Logf("%v lease: %d renewing, %d rebinding REQUESTs before the end", lt, renews, rebinds)
	}
}

func TestLifetimes(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 22, 0, 0, 0, time.UTC)
	l := &Lease{DHCP: true, Obtained: t0, LeaseTime: 60 * time.Second}
	for _, tt := range []struct {
		l     *Lease
		now   time.Duration
		valid int
	}{
		{&Lease{}, 0, 0},                         // static: forever
		{&Lease{DHCP: true, Obtained: t0}, 0, 0}, // infinite: forever
		{l, 0, 60},                               //
		{l, 1500 * time.Millisecond, 58},         // rounded down
		{l, 59900 * time.Millisecond, 1},         // at least 1 (0 would be forever)
		{l, 70 * time.Second, 1},                 //
	} {
		v, p := lifetimes(tt.l, t0.Add(tt.now))
		if v != tt.valid || p != tt.valid {
			t.Errorf("lifetimes(%v, +%v) = %d, %d; want %d, %d", tt.l.LeaseTime, tt.now, v, p, tt.valid, tt.valid)
		}
	}
}

func TestTimes6(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 22, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	s := time.Second
	slaac := Addr6{Prefix: pfx("fd00::1/64"), From: "slaac", Obtained: t0, Valid: 600 * s, Preferred: 300 * s}
	dhcp := Addr6{Prefix: pfx("fd00::100/128"), From: "dhcpv6", Obtained: t0.Add(10 * s), Valid: 120 * s, Preferred: 120 * s}
	static := Addr6{Prefix: pfx("fd00::5/64"), From: "static"}
	for _, tt := range []struct {
		name         string
		v6           *Lease6
		refresh, end time.Time
	}{
		{"none", nil, time.Time{}, time.Time{}},
		{"static", &Lease6{Addrs: []Addr6{static}, Gateway: ip("fe80::1")}, time.Time{}, time.Time{}},
		{"SLAAC: half the preferred", &Lease6{Addrs: []Addr6{slaac}}, at(150 * s), at(600 * s)},
		{"the shortest wins", &Lease6{Addrs: []Addr6{slaac, dhcp}}, at(70 * s), at(130 * s)},
		{"not preferred: half the valid", &Lease6{Addrs: []Addr6{{Obtained: t0, Valid: 100 * s}}}, at(50 * s), at(100 * s)},
		{"the router's lifetime", &Lease6{Addrs: []Addr6{slaac}, Gateway: ip("fe80::1"), Obtained: t0, GatewayLifetime: 180 * s}, at(90 * s), at(180 * s)},
		{"a static router", &Lease6{Addrs: []Addr6{slaac}, Gateway: ip("fe80::1")}, at(150 * s), at(600 * s)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, e := times6(tt.v6)
			if !r.Equal(tt.refresh) || !e.Equal(tt.end) {
				t.Errorf("times6 = %v, %v; want %v, %v", r, e, tt.refresh, tt.end)
			}
		})
	}
	end := at(120 * s)
	for _, tt := range []struct {
		now, want time.Duration
	}{
		{60 * s, 90 * s},                     // half of the 60 s left
		{110 * s, 117500 * time.Millisecond}, // the floor: 120 s / 16 = 7.5 s
		{118 * s, 120 * s},                   // not after the end
		{130 * s, 137500 * time.Millisecond}, // after it: the floor
	} {
		if got := retry6(at(tt.now), end, 120*s); !got.Equal(at(tt.want)) {
			t.Errorf("retry6 at +%v = +%v, want +%v", tt.now, got.Sub(t0), tt.want)
		}
	}
}
