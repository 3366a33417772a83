package netup

import (
	"errors"
	"testing"

	"github.com/vishvananda/netlink"
)

// TestRedump: an interrupted dump is taken again (CI once failed a boot with "listing
// addresses: results may be incomplete or inconsistent" while an IPv6 address left DAD); one
// interrupted every time gives up after dumpTries; other errors are returned at once.
func TestRedump(t *testing.T) {
	calls := 0
	got, err := redump(func() ([]int, error) {
		calls++
		if calls < 3 {
			return []int{1}, netlink.ErrDumpInterrupted
		}
		return []int{1, 2}, nil
	})
	if err != nil || len(got) != 2 || calls != 3 {
		t.Errorf("redump = %v, %v after %d calls, want [1 2] after 3", got, err, calls)
	}
	calls = 0
	_, err = redump(func() ([]int, error) { calls++; return nil, netlink.ErrDumpInterrupted })
	if !errors.Is(err, netlink.ErrDumpInterrupted) || calls != dumpTries {
		t.Errorf("always interrupted: %v after %d calls, want ErrDumpInterrupted after %d", err, calls, dumpTries)
	}
	calls = 0
	other := errors.New("no such device")
	if _, err = redump(func() ([]int, error) { calls++; return nil, other }); err != other || calls != 1 {
		t.Errorf("other error: %v after %d calls", err, calls)
	}
}
