package netup

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// DefaultQuietGrace is how long dual stack waits, from the start, on a family that has
// heard nothing from a server once the other family has its address (see dualStack). It
// covers the router-solicitation round (solicitations at 0, 1 and 2 s, and a router's answer
// delay of up to 0.5 s, RFC 4861 6.2.6) and two DHCPv4 DISCOVERs at the default timeouts.
const DefaultQuietGrace = 4 * time.Second

// QuietAfter is how long, at most, dual stack still waits on a quiet family once the other
// has its address: a router answers a solicitation within half a second (RFC 4861 6.2.6) and
// a DHCPv4 server its DISCOVER at once, so on a single-stack network the boot loses about a
// second, not the whole DefaultQuietGrace.
const QuietAfter = time.Second

// heardKey is the context key of the function a family's acquisition calls when a server
// answered (a DHCPv4 OFFER, a router advertisement, a DHCPv6 ADVERTISE).
type heardKey struct{}

// withHeard returns ctx carrying heard, called (possibly many times, from any goroutine)
// when a server answers.
func withHeard(ctx context.Context, heard func()) context.Context {
	return context.WithValue(ctx, heardKey{}, heard)
}

// noteHeard tells ctx's acquisition, if any, that a server answered.
func noteHeard(ctx context.Context) {
	if f, ok := ctx.Value(heardKey{}).(func()); ok {
		f()
	}
}

// errAbandoned is a family's result when dualStack stopped it for the other's sake.
var errAbandoned = errors.New("abandoned")

// dualStack runs DHCPv4 (v4) and IPv6 (v6) at once and returns what each got, without
// waiting on a family that has no server. The rule:
//
//   - Each family runs within its own timeouts; a family that fails does not stop the other.
//   - A family has "heard" once any server answered it (noteHeard on its context): a DHCPv4
//     OFFER, a router advertisement, a DHCPv6 ADVERTISE or REPLY.
//   - When one family has its lease, the other, if it has not heard by then, is abandoned
//     (cancelled, with errAbandoned) as soon as it has run for grace since the start or
//     QuietAfter has passed since that lease, whichever comes first; if it
//     hears before that, it is waited for to the end of its own timeouts, as a lone family
//     would be.
//   - While neither has a lease, both keep going: a router that is slow to advertise, or a
//     DHCPv4 server that answers late, is not given up on for the other family's silence.
//
// So a machine on an IPv6-only network boots grace after its router answered, not after
// DHCPv4's attempts × timeout, and one on an IPv4-only network grace after its ACK, not
// after the IPv6 timeout. logf says why a family was abandoned.
func dualStack(ctx context.Context, grace time.Duration, logf func(string, ...any),
	v4 func(context.Context) (*Lease, error), v6 func(context.Context) (*Lease6, error),
) (l4 *Lease, l6 *Lease6, err4, err6 error) {
	start := time.Now()
	type fam struct {
		name      string
		cancel    context.CancelFunc
		heard     chan struct{}
		once      sync.Once
		done      bool
		ok        bool
		okAt      time.Time
		abandoned bool
	}
	fams := [2]*fam{{name: "DHCPv4"}, {name: "IPv6"}}
	type result struct {
		i   int
		l4  *Lease
		l6  *Lease6
		err error
	}
	results := make(chan result, 2)
	for i, f := range fams {
		f.heard = make(chan struct{})
		var fctx context.Context
		fctx, f.cancel = context.WithCancel(ctx)
		defer f.cancel()
		fctx = withHeard(fctx, func() { f.once.Do(func() { close(f.heard) }) })
		go func() {
			r := result{i: i}
			if i == 0 {
				r.l4, r.err = v4(fctx)
			} else {
				r.l6, r.err = v6(fctx)
			}
			results <- r
		}()
	}
	heard := func(f *fam) bool {
		select {
		case <-f.heard:
			return true
		default:
			return false
		}
	}
	var timer <-chan time.Time
	for pending := 2; pending > 0; {
		// After a success: abandon the other family if it is quiet and its grace is over,
		// else look again when the grace ends or it hears.
		var wake <-chan struct{}
		timer = nil
		for i, f := range fams {
			o := fams[1-i]
			if !f.ok || o.done || o.abandoned || heard(o) {
				continue
			}
			if left := min(grace-time.Since(start), QuietAfter-time.Since(f.okAt)); left > 0 {
				timer, wake = time.After(left), o.heard
				continue
			}
			o.abandoned = true
			o.cancel()
			logf("%s abandoned: no server answered within %v, and %s has its address", o.name, time.Since(start).Round(10*time.Millisecond), f.name)
		}
		select {
		case r := <-results:
			pending--
			f := fams[r.i]
			f.done, f.ok, f.okAt = true, r.err == nil, time.Now()
			if f.abandoned && r.err != nil {
				r.err = fmt.Errorf("%s: %w", f.name, errAbandoned)
			}
			if r.i == 0 {
				l4, err4 = r.l4, r.err
			} else {
				l6, err6 = r.l6, r.err
			}
		case <-timer:
		case <-wake:
		}
	}
	return l4, l6, err4, err6
}
