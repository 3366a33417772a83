package netup

import (
	"encoding/binary"
	"testing"
)

// iaid6 (image.go, every OS) and iaid (the Linux DHCPv6 client) must agree.
func TestIAID6MatchesClient(t *testing.T) {
	id := iaid(testMAC)
	if got, want := iaid6(testMAC), binary.BigEndian.Uint32(id[:]); got != want {
		t.Errorf("iaid6 = %#x, the client sends %#x", got, want)
	}
}
