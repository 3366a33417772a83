package kmod

import "unicode/utf8"

// matchGlob reports whether name matches pattern the way modprobe does: fnmatch(3) with no
// flags, so '*' and '?' also match '/', and a leading '.' is not special.
//
//   - any sequence of bytes, including none
//     ?        one character (a UTF-8 rune, or one byte of invalid UTF-8)
//     [...]    a class: [abc], [a-z], negated with [!...] or [^...]; a ']' first is literal
//     \c       the character c
//
// A '[' without its closing ']' is an ordinary character, and so is a trailing '\'. It never
// fails: every pattern is a pattern, because modules.alias comes from the kernel build and a
// bad line must not stop /init.
func matchGlob(pattern, name string) bool {
	px, nx := 0, 0
	// The last '*' seen and the name position it is currently assumed to stretch to. Every
	// other token consumes a length fixed by its position, so backtracking to the last star
	// alone is enough (the classic wildcard-matching argument).
	starPx, starNx := -1, 0
	for px < len(pattern) || nx < len(name) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				starPx, starNx = px, nx
				px++
				continue
			case '?':
				if nx < len(name) {
					_, w := utf8.DecodeRuneInString(name[nx:])
					px++
					nx += w
					continue
				}
			case '[':
				if nx < len(name) {
					r, w := utf8.DecodeRuneInString(name[nx:])
					if ok, n, valid := matchClass(pattern[px:], r); valid {
						if ok {
							px += n
							nx += w
							continue
						}
					} else if name[nx] == '[' {
						px++
						nx++
						continue
					}
				}
			default:
				lit := pattern[px:]
				if c == '\\' && px+1 < len(pattern) {
					lit = pattern[px+1:]
					px++
				}
				_, w := utf8.DecodeRuneInString(lit)
				if nx+w <= len(name) && name[nx:nx+w] == lit[:w] {
					px += w
					nx += w
					continue
				}
			}
		}
		// Mismatch: let the last star swallow one more byte and retry from just after it.
		if starPx >= 0 && starNx < len(name) {
			starNx++
			px, nx = starPx+1, starNx
			continue
		}
		return false
	}
	return true
}

// matchClass matches r against the bracket expression at the start of p (p[0] == '['). It
// returns whether r is in the class, the length of the expression, and whether the
// expression is complete (has its closing ']').
func matchClass(p string, r rune) (ok bool, n int, valid bool) {
	i := 1
	negate := false
	if i < len(p) && (p[i] == '!' || p[i] == '^') {
		negate = true
		i++
	}
	first := true
	for i < len(p) {
		if p[i] == ']' && !first {
			return ok != negate, i + 1, true
		}
		first = false
		lo, w, good := classChar(p[i:])
		if !good {
			return false, 0, false
		}
		i += w
		hi := lo
		if i+1 < len(p) && p[i] == '-' && p[i+1] != ']' {
			hi, w, good = classChar(p[i+1:])
			if !good {
				return false, 0, false
			}
			i += 1 + w
		}
		if lo <= r && r <= hi {
			ok = true
		}
	}
	return false, 0, false
}

// classChar decodes one, possibly backslash-escaped, character of a bracket expression.
func classChar(p string) (r rune, n int, ok bool) {
	if p[0] == '\\' {
		if len(p) < 2 {
			return 0, 0, false
		}
		r, w := utf8.DecodeRuneInString(p[1:])
		return r, 1 + w, true
	}
	r, w := utf8.DecodeRuneInString(p)
	return r, w, true
}

// literalPrefix is the part of pattern before its first special character. Match uses it to
// skip most patterns with one strings.HasPrefix (modalias patterns start with the bus name).
func literalPrefix(pattern string) string {
	for i := 0; i < len(pattern); i++ {
		switch pattern[i] {
		case '*', '?', '[', '\\':
			return pattern[:i]
		}
	}
	return pattern
}
