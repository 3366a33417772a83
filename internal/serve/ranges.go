package serve

import (
	"net/http"
	"strconv"
	"strings"
)

// unsatisfiable is a Range that no representation satisfies: net/http answers it 416 with
// Content-Range: bytes */SIZE, whatever the size (it is the largest int64).
const unsatisfiable = "bytes=9223372036854775807-"

// withRange returns r, a request for a file of size bytes, with its Range header put in a form net/http's ServeContent answers as
// RFC 9110 section 14 asks; r itself when it needs no change. ServeContent is right about most
// forms, not about these:
//
//   - A suffix range of length 0 ("bytes=-0") is unsatisfiable (14.1.1), but ServeContent
//     answers 206 with "Content-Range: bytes SIZE-(SIZE-1)/SIZE". Such ranges are dropped;
//     when none is left, the answer is 416.
//   - An invalid byte range ("bytes=5-2", "bytes=x", "bytes=") gets 416 without the
//     Content-Range: bytes */SIZE the 416 should carry (15.5.17); made unsatisfiable, it has it.
//   - A range unit other than bytes must be ignored (14.2), not answered 416; units are
//     case-insensitive (14.1), so "Bytes=0-9" is a byte range.
//   - Positions too large for an int64 are positions past the end, not errors: a first-pos
//     is then unsatisfiable, a last-pos the end of the representation.
//   - An empty file (size 0) has no bytes to send in a 206: ServeContent answers a suffix
//     range of it 206 with "Content-Range: bytes 0--1/0". Its Range is ignored (200 and no
//     body, as ServeContent answers the other ranges of an empty file).
//
// Multiple ranges are left to ServeContent (multipart/byteranges; ranges that add up to more
// than the representation get the whole of it, as 14.2 allows). The Range header is read
// after the preconditions (If-Range, If-None-Match...), which are left as they are.
func withRange(r *http.Request, size int64) *http.Request {
	vals := r.Header.Values("Range")
	if len(vals) == 0 {
		return r
	}
	fixed := ""
	switch {
	case size == 0:
	case len(vals) == 1:
		fixed = fixRange(vals[0])
	default:
		// Range is a singleton field; several of them are not one valid range.
		fixed = unsatisfiable
	}
	if len(vals) == 1 && fixed == vals[0] {
		return r
	}
	r2 := r.Clone(r.Context())
	if fixed == "" {
		r2.Header.Del("Range")
	} else {
		r2.Header.Set("Range", fixed)
	}
	return r2
}

// fixRange returns the Range header value v as net/http should see it (see withRange): ""
// to ignore it, unsatisfiable, or the byte ranges of v that can be satisfied by some size.
func fixRange(v string) string {
	unit, set, hasSet := strings.Cut(v, "=")
	if !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return "" // another unit (or none): ignored
	}
	if !hasSet {
		return unsatisfiable
	}
	var kept []string
	specs := 0
	for spec := range strings.SplitSeq(set, ",") {
		spec = strings.Trim(spec, " \t")
		if spec == "" {
			continue // empty list elements are allowed (RFC 9110 5.6.1)
		}
		specs++
		first, last, ok := strings.Cut(spec, "-")
		if !ok || !digits(last) || (first != "" && !digits(first)) || (first == "" && last == "") {
			return unsatisfiable
		}
		if first == "" {
			// A suffix range: the last n bytes.
			n, err := strconv.ParseInt(last, 10, 64)
			switch {
			case err != nil: // more than an int64: all of it
				kept = append(kept, "0-")
			case n > 0:
				kept = append(kept, "-"+strconv.FormatInt(n, 10))
			}
			continue
		}
		f, err := strconv.ParseInt(first, 10, 64)
		if err != nil {
			continue // past the end of anything
		}
		if last == "" {
			kept = append(kept, strconv.FormatInt(f, 10)+"-")
			continue
		}
		l, err := strconv.ParseInt(last, 10, 64)
		if err != nil {
			kept = append(kept, strconv.FormatInt(f, 10)+"-")
			continue
		}
		if l < f {
			return unsatisfiable // invalid (14.1.1)
		}
		kept = append(kept, strconv.FormatInt(f, 10)+"-"+strconv.FormatInt(l, 10))
	}
	if specs == 0 || len(kept) == 0 {
		return unsatisfiable
	}
	return "bytes=" + strings.Join(kept, ",")
}

// digits reports whether s is all ASCII digits ("" is).
func digits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
