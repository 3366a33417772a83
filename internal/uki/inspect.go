package uki

import (
	"strconv"
	"strings"

	"github.com/ramboot/ramboot/internal/peimage"
)

// Info is what a UKI says of itself, for ramboot uki --verify.
type Info struct {
	Sections []peimage.Section
	// From the sections of those names, when present (any PE image parses, UKI or not).
	Uname, Cmdline, PrettyName string
}

// Inspect reads the section table of a PE image and, when it is a UKI, its kernel release,
// command line and os-release name.
func Inspect(img []byte) (*Info, error) {
	l, err := peimage.Parse(img)
	if err != nil {
		return nil, err
	}
	info := &Info{Sections: l.Sections}
	for _, s := range l.Sections {
		data := string(img[s.PointerToRaw:][:min(s.VirtualSize, s.SizeOfRawData)])
		data = strings.TrimRight(data, "\x00")
		switch s.Name {
		case ".uname":
			info.Uname = data
		case ".cmdline":
			info.Cmdline = data
		case ".osrel":
			info.PrettyName = osReleaseValue(data, "PRETTY_NAME")
		}
	}
	return info, nil
}

// osReleaseValue is the value of key in os-release text, unquoted.
func osReleaseValue(text, key string) string {
	for _, line := range strings.Split(text, "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), key+"=")
		if !ok {
			continue
		}
		if u, err := strconv.Unquote(v); err == nil {
			return u
		}
		return strings.Trim(v, `"'`)
	}
	return ""
}
