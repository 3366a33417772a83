package initramfs

import (
	"bytes"
	"slices"
)

// appletNames returns the applets a busybox binary b carries, read from its applet_names
// table: the names, NUL-terminated and sorted, from "[" and "[[" on, ending at an empty name.
// It is how applets are found for a busybox of another architecture than the host's (an
// arm64 one, for an arm64 initramfs built on x86-64), which `busybox --list` cannot run.
// It returns nil when b holds no such table.
func appletNames(b []byte) []string {
	start := bytes.Index(b, []byte("\x00[\x00[[\x00"))
	if start < 0 {
		return nil
	}
	var names []string
	for rest := b[start+1:]; ; {
		end := bytes.IndexByte(rest, 0)
		if end < 0 {
			return nil // the table runs off the end: not one
		}
		if end == 0 {
			break
		}
		name := string(rest[:end])
		if !appletName(name) || len(names) > 0 && name <= names[len(names)-1] {
			return nil
		}
		names = append(names, name)
		rest = rest[end+1:]
	}
	if len(names) < 3 || !slices.Contains(names, "sh") {
		return nil // "[", "[[" and a shell at least: the recovery shell is why it is packed
	}
	return names
}

// appletName reports whether s can be an applet's name (and a file name in /bin).
func appletName(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == '[':
		default:
			return false
		}
	}
	return s != "." && s != ".."
}
