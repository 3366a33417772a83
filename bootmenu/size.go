package bootmenu

import (
	"fmt"
	"io"
)

// MaxMenuSize is the most a menu file may hold, in bytes: a YAML menu, a pxelinux config and
// each of its includes. Real menus are a few KiB; the limit is there so that a menu source
// that never ends (a server streaming without end, an include of /dev/zero) is refused before
// it fills the memory of whoever reads it. Parse refuses larger data, and whoever fetches a
// menu should stop reading at MaxMenuSize+1 bytes (ReadAll does).
const MaxMenuSize = 1 << 20

// ErrTooLarge is returned (wrapped, after the file's name) for a menu file larger than
// MaxMenuSize.
var ErrTooLarge = fmt.Errorf("larger than the %d KiB a menu file may have", MaxMenuSize>>10)

// ReadAll reads a menu file from r, stopping after MaxMenuSize+1 bytes: more is ErrTooLarge.
func ReadAll(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxMenuSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxMenuSize {
		return nil, ErrTooLarge
	}
	return data, nil
}
