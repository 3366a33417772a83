package bootmenu

import (
	"strings"
	"testing"
)

// TestParseYAMLReport: report: is an http(s) URL, relative ones resolved against the menu's.
func TestParseYAMLReport(t *testing.T) {
	for _, tt := range []struct{ report, src, want, err string }{
		{report: "http://fleet.example:8080/api/v1/events", src: "menu.yaml", want: "http://fleet.example:8080/api/v1/events"},
		{report: "api/v1/events", src: "http://boot.example:8080/menu.yaml", want: "http://boot.example:8080/api/v1/events"},
		{report: "/api/v1/events", src: "menu.yaml", err: `report: "/api/v1/events" is not an http:// or https:// URL`},
		{report: "ftp://x/y", src: "menu.yaml", err: "unsupported scheme"}, {report: "file:///x", src: "menu.yaml", err: "is not an http:// or https:// URL"},
	} {
		menu := "report: " + tt.report + "\nentries:\n  - name: a\n    ramroot: http://x/a.tar\n"
		m, err := ParseYAML([]byte(menu), tt.src)
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("report: %s: got %v, want an error containing %q", tt.report, err, tt.err)
			}
		case err != nil:
			t.Errorf("report: %s: %v", tt.report, err)
		case m.Report != tt.want:
			t.Errorf("report: %s: got %q, want %q", tt.report, m.Report, tt.want)
		}
	}
}
