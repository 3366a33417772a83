package bootmenu

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// zeros is an endless reader, /dev/zero without the device; it counts what was read.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	clear(p)
	z.n += int64(len(p))
	return len(p), nil
}

func TestReadAllStopsAtMaxMenuSize(t *testing.T) {
	z := &zeros{}
	_, err := ReadAll(z)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("error %v, want ErrTooLarge", err)
	}
	// io.ReadAll's buffer grows past the limit only by the last read.
	if z.n > 2*MaxMenuSize {
		t.Errorf("read %d bytes of an endless menu, want about %d", z.n, MaxMenuSize+1)
	}
	for _, n := range []int{0, 1, MaxMenuSize} {
		data, err := ReadAll(io.LimitReader(&zeros{}, int64(n)))
		if err != nil || len(data) != n {
			t.Errorf("ReadAll of %d bytes: %d bytes, error %v", n, len(data), err)
		}
	}
}

func TestParseRefusesLargeMenus(t *testing.T) {
	big := "DEFAULT a\nLABEL a\n KERNEL /k\n" + strings.Repeat("# padding\n", MaxMenuSize/10)
	_, err := Parse([]byte(big), "big.cfg")
	want := "big.cfg: larger than the 1024 KiB a menu file may have"
	if !errors.Is(err, ErrTooLarge) || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}

	// An include is one menu file too: INCLUDE /dev/zero must name the file and the limit.
	include := func(url string) ([]byte, error) {
		if url == "http://boot.example/tftp/zero" {
			return bytes.Repeat([]byte{0}, MaxMenuSize+1), nil
		}
		return []byte("label b\n kernel k\n"), nil
	}
	_, err = ParseWith([]byte("include zero\nlabel a\n kernel k\n"), pxeSource, Options{Include: include})
	want = pxeSource + ":1: include: zero: larger than the 1024 KiB a menu file may have"
	if !errors.Is(err, ErrTooLarge) || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
	if _, err := ParseWith([]byte("include small\nlabel a\n kernel k\n"), pxeSource, Options{Include: include}); err != nil {
		t.Errorf("a small include: %v", err)
	}
}
