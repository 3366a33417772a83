package netup

import "time"

// What keeping a DHCPv4 lease alive decides (RFC 2131 4.4.5), as pure functions of the lease
// and the time: Keeper (keep_linux.go) only carries the decisions out.
//
// A lease is bound until T1; from T1 the client renews (REQUEST unicast to its server), from T2
// it rebinds (REQUEST broadcast to any server), and at the end of the lease time the address
// is gone: the client drops it and starts over with DISCOVER.

// leasePhase is where a lease stands at a given time.
type leasePhase int

const (
	phaseForever   leasePhase = iota // static or infinite: nothing to renew
	phaseBound                       // before T1
	phaseRenewing                    // T1 to T2: unicast REQUEST to the server
	phaseRebinding                   // T2 to expiry: broadcast REQUEST
	phaseExpired                     // the address is no longer valid
)

func (p leasePhase) String() string {
	return [...]string{"forever", "bound", "renewing", "rebinding", "expired"}[p]
}

// Expires is when the lease's address stops being valid; zero for a static address or an
// infinite lease.
func (l *Lease) Expires() time.Time {
	if l == nil || l.Obtained.IsZero() || l.LeaseTime <= 0 {
		return time.Time{}
	}
	return l.Obtained.Add(l.LeaseTime)
}

// schedule says where l stands at now and when the keeper acts next: at T1 while bound; while
// renewing or rebinding, now (a REQUEST) and then again at the returned time (the
// retransmission); never (zero time) for phaseForever and phaseExpired, which the keeper acts
// on at once.
//
// RFC 2131 4.4.5: retransmit after half the time remaining until T2 (renewing) or until the
// end of the lease (rebinding), but not sooner than 60 seconds. The 60 seconds are scaled
// down for short leases (minRetransmit), and a retransmission never goes past T2 (the client
// then rebinds at once) or the expiry.
func schedule(l *Lease, now time.Time) (leasePhase, time.Time) {
	exp := l.Expires()
	if exp.IsZero() {
		return phaseForever, time.Time{}
	}
	t1, t2 := l.Obtained.Add(l.T1), l.Obtained.Add(l.T2)
	next := func(until time.Time) time.Time {
		wait := max(until.Sub(now)/2, minRetransmit(l.LeaseTime))
		return minTime(now.Add(wait), until)
	}
	switch {
	case now.Before(t1):
		return phaseBound, t1
	case now.Before(t2):
		return phaseRenewing, next(t2)
	case now.Before(exp):
		return phaseRebinding, next(exp)
	}
	return phaseExpired, time.Time{}
}

// minRetransmit is RFC 2131's 60-second floor between retransmissions, scaled down to a
// sixteenth of the lease for leases under 16 minutes (so a 60-second lease still gets several
// tries between T1 and its expiry), and never under a second.
func minRetransmit(lease time.Duration) time.Duration {
	return min(60*time.Second, max(time.Second, lease/16))
}

// lapsing reports whether the address must not be relied on for a download without trying
// to extend it first: it is past T2 (renewing with its own server has failed) or expired.
// A static address or an infinite lease never lapses.
func lapsing(l *Lease, now time.Time) bool {
	ph, _ := schedule(l, now)
	return ph == phaseRebinding || ph == phaseExpired
}

// lifetimes are the address's valid and preferred lifetimes for the kernel, in whole
// seconds (IFA_CACHEINFO), at now: the lease's remaining time, rounded down so that the kernel
// drops the address no later than the lease ends, and at least 1 (0 would mean forever).
// A static address or an infinite lease gets 0, 0: forever.
func lifetimes(l *Lease, now time.Time) (valid, preferred int) {
	exp := l.Expires()
	if exp.IsZero() {
		return 0, 0
	}
	s := max(int(exp.Sub(now)/time.Second), 1)
	return s, s
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// times6 is when the IPv6 configuration v6 is solicited again (refresh) and when the first of
// its addresses, or its default router, ends (end); zero times when nothing of it expires
// (static, link-local only). The keeper refreshes at half the shortest lifetime: an address's
// preferred lifetime (DHCPv6's T1 default, RFC 8415 21.4: 0.5 of it), its valid one when it
// has no preferred, the router's. /init has the kernel's own autoconfiguration off, so no
// later advertisement extends anything by itself: soliciting again is the keeper's job.
func times6(v6 *Lease6) (refresh, end time.Time) {
	if v6 == nil {
		return time.Time{}, time.Time{}
	}
	add := func(from time.Time, valid, preferred time.Duration) {
		if from.IsZero() || valid <= 0 {
			return
		}
		if preferred <= 0 || preferred > valid {
			preferred = valid
		}
		if r := from.Add(preferred / 2); refresh.IsZero() || r.Before(refresh) {
			refresh = r
		}
		if e := from.Add(valid); end.IsZero() || e.Before(end) {
			end = e
		}
	}
	for _, a := range v6.Addrs {
		add(a.Obtained, a.Valid, a.Preferred)
	}
	if v6.Gateway.IsValid() {
		add(v6.Obtained, v6.GatewayLifetime, 0)
	}
	return refresh, end
}

// retry6 is when to solicit again after a refresh failed at now: half the time left until
// end, not sooner than minRetransmit of the whole span (RFC 2131's rule, as DHCPv4 has it)
// and not after end; after end, minRetransmit on.
func retry6(now, end time.Time, span time.Duration) time.Time {
	floor := minRetransmit(span)
	if !now.Before(end) {
		return now.Add(floor)
	}
	return minTime(now.Add(max(end.Sub(now)/2, floor)), end)
}
