package xzpar

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMunmapFails: a failing munmap leaks the buffer and fails the decode; it does not panic.
func TestMunmapFails(t *testing.T) {
	in := xzc(t, testData(t), "-T2", "--block-size=100KiB")
	fail := func([]byte) error { return unix.EINVAL }
	munmapHook.Store(&fail)
	t.Cleanup(func() { munmapHook.Store(nil) })
	r, err := NewReader(bytes.NewReader(in), 2)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, r)
	cerr := r.Close()
	if !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "munmap") {
		t.Errorf("Read: %v, want the munmap error", err)
	}
	if !errors.Is(cerr, unix.EINVAL) {
		t.Errorf("Close: %v, want the munmap error", cerr)
	}
}
