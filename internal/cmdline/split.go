package cmdline

import (
	"errors"
	"strings"
)

// ErrUnterminatedQuote is Split's report of a double quote that is never closed. It is a
// warning: the kernel accepts such a line (the quote runs to its end) and so does Split.
var ErrUnterminatedQuote = errors.New("unterminated quote")

// Split splits a command line into parameters as the kernel does: whitespace separates them,
// double quotes group (and are removed), and "--" ends the kernel's part. The parameters are
// complete even when the error is ErrUnterminatedQuote (its only error): the open quote runs
// to the end of the line. Callers that boot treat that as a warning; a menu checker may refuse
// it.
func Split(s string) ([]Param, error) {
	var out []Param
	var err error
	i := 0
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i >= len(s) {
			return out, err
		}
		var b strings.Builder
		quoted := false
		for ; i < len(s) && (quoted || !isSpace(s[i])); i++ {
			if s[i] == '"' {
				quoted = !quoted
				continue
			}
			b.WriteByte(s[i])
		}
		if quoted {
			err = ErrUnterminatedQuote
		}
		w := b.String()
		if w == "--" {
			return out, err
		}
		k, v, has := strings.Cut(w, "=")
		out = append(out, Param{Key: k, Value: v, HasValue: has})
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
