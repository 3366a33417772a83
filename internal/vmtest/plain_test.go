package vmtest

import "testing"

func TestPlain(t *testing.T) {
	for in, want := range map[string]string{
		"\x1b[?1049h\x1b[1;1HDebian\x1b[2C12\r\n": "Debian  12\n",
		"\x1b[7m> rescue\x1b[m":                   "> rescue",
		"a\x1b[Cb":                                "a b",
		"\x1b]0;title\x07text":                    "text",
	} {
		if got := Plain(in); got != want {
			t.Errorf("Plain(%q) = %q, want %q", in, got, want)
		}
	}
}
