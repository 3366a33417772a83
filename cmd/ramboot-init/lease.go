package main

import (
	"context"

	"github.com/ramboot/ramboot/internal/boot"
	"github.com/ramboot/ramboot/internal/netup"
)

// The DHCP lease while /init waits (menu, shell, retries): netup.Keeper renews it, and each
// download starts from a valid address; the handover stops the keeper.

// freshLease makes sure the boot NIC's address is valid before a download (the menu, an
// image): at once while it is, else the lease is renewed or re-acquired first (bounded by
// ctx and the DHCP timeouts). An address past its lease is never used: that is an error.
func (s *state) freshLease(ctx context.Context) error {
	if s.keeper == nil {
		return nil
	}
	l, err := s.keeper.Fresh(ctx)
	if err != nil {
		return &networkError{err}
	}
	s.lease = l
	return nil
}

// currentLease is the lease as the keeper has it now (for the menu's status line, which runs
// beside the download's goroutine).
func (s *state) currentLease() *netup.Lease {
	if s.keeper == nil {
		return s.lease
	}
	l, _ := s.keeper.Current()
	return l
}

// handoff runs exec — switch_root or kexec, which return only on failure — with the keeper
// stopped: nothing of /init sends DHCP after the handover, and the address is left with a
// lifetime of forever for the booted system's own DHCP client to take over (see
// netup.Keeper.Stop). If exec fails, the keeper starts again.
func (s *state) handoff(exec boot.Exec) error {
	if s.keeper == nil {
		return exec()
	}
	s.keeper.Stop()
	err := exec()
	s.keepLease(s.netCfg)
	return err
}

// keepLease starts keeping s.lease, which Up brought up with c.
func (s *state) keepLease(c netup.Config) {
	s.netCfg = c
	if s.lease != nil {
		s.keeper = netup.Keep(context.Background(), c, s.lease)
	}
}

// endKeeper ends the keeping of the current lease (its address lasts as long as the lease).
func (s *state) endKeeper() {
	if s.keeper != nil {
		s.keeper.End()
		s.keeper = nil
	}
}
