// Package report is /init's boot report: an event at every stage of a boot (started, network
// up, menu shown, entry chosen, fetch start, progress and done, extracted, switch_root or kexec,
// failure), each carrying the boot's random id and the machine's identity (MAC, DMI serial and
// UUID). A Reporter POSTs them as JSON to the URL of ramboot.report= (or a menu's report:) and
// keeps the whole report for /run/ramboot/boot.json in the booted system.
//
// Reporting never slows or stops a boot: events go into a bounded queue that a goroutine
// drains with short timeouts; an event that finds the queue full, or whose POST fails, is
// dropped and counted, and the count rides on the events sent after it. The only wait is
// Flush's, bounded, before the irreversible step.
//
// The JSON field names are a contract (Schema; the README documents them): fields are added,
// never renamed or given another meaning, without a new Schema number. Only the standard
// library: /init links this package.
package report

import "time"

// Schema is the version of the event format, the "schema" field of every event.
const Schema = 1

// The event types, the "type" field.
const (
	Started       = "started"        // /init runs: kernel release, command line
	NetworkUp     = "network"        // the boot NIC has an address: iface, ip, lease, dhcp_ms
	MenuShown     = "menu"           // a menu was found and shown (or acted on at once): menu, entries
	EntryChosen   = "chosen"         // an entry was chosen: entry, by (key, countdown, default, cmdline)
	FetchStart    = "fetch_start"    // a download starts: url
	FetchProgress = "fetch_progress" // every few seconds while it runs: bytes, total, rate
	FetchDone     = "fetch_done"     // it finished: url, bytes, rate, sha256, verified
	Extracted     = "extracted"      // the image is in the new root: entries, unpacked
	SwitchRoot    = "switch_root"    // the switch into the new root starts
	Kexec         = "kexec"          // the kexec into the loaded kernel starts
	Failure       = "failure"        // a boot attempt failed: step, error, attempt
	Healthy       = "healthy"        // not sent by /init: the booted system confirmed (the server's API)
)

// Event is one boot event. Fields other than Schema, Type, Time, BootID and Seq are omitted
// when empty; which ones an event carries depends on its Type (see the constants).
type Event struct {
	Schema int       `json:"schema"`
	Type   string    `json:"type"`
	Time   time.Time `json:"time"`
	// BootID is random per boot of /init (16 hex digits); Seq numbers its events from 1.
	BootID string `json:"boot_id"`
	Seq    int    `json:"seq"`

	// The machine: the boot NIC's MAC (BOOTIF= before the network is up), its address and
	// host name once known, the DMI serial number and UUID when the firmware has them.
	MAC      string `json:"mac,omitempty"`
	IP       string `json:"ip,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	Serial   string `json:"serial,omitempty"`
	UUID     string `json:"uuid,omitempty"`

	// started
	Kernel  string `json:"kernel,omitempty"`
	Cmdline string `json:"cmdline,omitempty"`
	// network
	Iface   string `json:"iface,omitempty"`
	Gateway string `json:"gateway,omitempty"`
	Server  string `json:"server,omitempty"` // the DHCP server
	Lease   string `json:"lease,omitempty"`  // one-line summary of the lease
	DHCPms  int64  `json:"dhcp_ms,omitempty"`
	// Race: when several NICs raced for a lease, which won and why each other one lost.
	Race []string `json:"race,omitempty"`
	// menu, chosen
	Menu    string `json:"menu,omitempty"` // where the menu came from
	Entries int    `json:"entries,omitempty"`
	Entry   string `json:"entry,omitempty"`
	By      string `json:"by,omitempty"` // key, countdown, default or cmdline
	// fetch_*, extracted
	URL      string  `json:"url,omitempty"`
	Bytes    int64   `json:"bytes,omitempty"` // received so far (fetch_progress) or in all
	Total    int64   `json:"total,omitempty"` // the size when known
	Rate     float64 `json:"rate,omitempty"`  // bytes per second
	SHA256   string  `json:"sha256,omitempty"`
	Verified bool    `json:"verified,omitempty"`
	Unpacked int64   `json:"unpacked,omitempty"` // bytes of the tar stream
	// failure
	Step    string `json:"step,omitempty"` // the last stage reached
	Error   string `json:"error,omitempty"`
	Attempt int    `json:"attempt,omitempty"`

	// Dropped is how many events of this boot were lost before this one was sent (a full
	// queue, a failed POST): a report with gaps says so.
	Dropped int `json:"dropped,omitempty"`
}
