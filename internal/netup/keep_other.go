//go:build !linux

package netup

import (
	"context"
	"time"
)

// Keeper is Linux-only, as Up is: elsewhere it holds the lease and does nothing.
type Keeper struct{ lease *Lease }

// Keep returns a Keeper that does nothing.
func Keep(ctx context.Context, c Config, l *Lease) *Keeper { return &Keeper{lease: l} }

// Current is the lease given to Keep.
func (k *Keeper) Current() (*Lease, bool) { return k.lease, k.lease != nil }

// Fresh returns the lease given to Keep, or ErrNoLease once it has expired.
func (k *Keeper) Fresh(ctx context.Context) (*Lease, error) {
	if ph, _ := schedule(k.lease, time.Now()); k.lease != nil && ph == phaseExpired {
		return nil, ErrNoLease
	}
	return k.lease, nil
}

// Stop does nothing.
func (k *Keeper) Stop() {}

// End does nothing.
func (k *Keeper) End() {}
