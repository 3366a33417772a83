package netup

import (
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// TestMessageXID: messages are BOOTREQUESTs with transaction IDs that differ, drawn without
// the kernel's random pool.
func TestMessageXID(t *testing.T) {
	seen := map[dhcpv4.TransactionID]bool{}
	for range 100 {
		m := message(dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover))
		if m.OpCode != dhcpv4.OpcodeBootRequest || m.MessageType() != dhcpv4.MessageTypeDiscover {
			t.Fatalf("message %v", m)
		}
		seen[m.TransactionID] = true
	}
	if len(seen) < 99 {
		t.Errorf("%d distinct transaction IDs in 100 messages", len(seen))
	}
}
