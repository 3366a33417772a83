package cmdline

import (
	"errors"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxSeconds bounds every duration on the command line (about 11 days): larger values are
// typos, and the bound keeps the float conversion far from overflowing.
const maxSeconds = 1e6

// parseSeconds reads what operators type for a duration: a number of seconds ("10", "2.5",
// "-1") or a Go duration ("10s", "1m30s", "500ms"; units in any case). ok is false for
// anything else, NaN, infinities and magnitudes over about 11 days.
func parseSeconds(v string) (d time.Duration, ok bool) {
	v = strings.ToLower(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if math.IsNaN(secs) || math.Abs(secs) > maxSeconds {
			return 0, false
		}
		return time.Duration(secs * float64(time.Second)), true
	}
	d, err := time.ParseDuration(v)
	if err != nil || d > maxSeconds*time.Second || d < -maxSeconds*time.Second {
		return 0, false
	}
	return d, true
}

// CheckSize accepts what tmpfs's size= accepts: a number with an optional k/m/g/t suffix, or a
// percentage of RAM.
func CheckSize(v string) error {
	bad := errors.New("want a size like 2G, 512M or 75%")
	if n, ok := strings.CutSuffix(v, "%"); ok {
		p, err := strconv.Atoi(n)
		if err != nil || p <= 0 || p > 100 {
			return bad
		}
		return nil
	}
	n := strings.TrimRight(v, "kKmMgGtT")
	if len(v)-len(n) > 1 {
		return bad
	}
	if x, err := strconv.ParseUint(n, 10, 64); err != nil || x == 0 {
		return bad
	}
	return nil
}

// ParseBootIF parses pxelinux's BOOTIF=01-aa-bb-cc-dd-ee-ff (01 is the ARP type, Ethernet).
// The bare MAC (aa:bb:.. or aa-bb-..) is accepted too.
func ParseBootIF(v string) (net.HardwareAddr, error) {
	s := strings.ToLower(v)
	if len(s) == 20 && strings.HasPrefix(s, "01-") {
		s = s[3:]
	}
	mac, err := net.ParseMAC(strings.ReplaceAll(s, "-", ":"))
	if err != nil || len(mac) != 6 {
		return nil, errors.New("want 01-aa-bb-cc-dd-ee-ff")
	}
	return mac, nil
}

// IsHTTPURL reports whether v is an http:// or https:// URL with a host: what a boot report
// may be sent to (ramboot.report=, a menu's report:, the reporter itself).
func IsHTTPURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// checkReportURL accepts where boot events go.
func checkReportURL(v string) error {
	if !IsHTTPURL(v) {
		return errors.New("want an http:// or https:// URL")
	}
	return nil
}
