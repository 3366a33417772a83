package xzpar

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// panicReader returns the first n bytes of r, then panics, as a buggy input reader would.
type panicReader struct {
	r io.Reader
	n int
}

func (p *panicReader) Read(b []byte) (int, error) {
	if p.n <= 0 {
		panic("input reader bug")
	}
	k, err := p.r.Read(b[:min(len(b), p.n)])
	p.n -= k
	return k, err
}

// TestInputPanic: a panic in the input reader, on the dispatching goroutine, is an error of
// Read, not a crash.
func TestInputPanic(t *testing.T) {
	d := testData(t)
	for name, in := range map[string][]byte{
		"blocks of known size": xzc(t, d, "-T2", "--block-size=100KiB"), // read by the dispatcher
		"one streamed block":   xzc(t, d, "-T1", "-0"),                  // read by the decoder
	} {
		for _, workers := range []int{1, 2} {
			r, err := NewReader(&panicReader{r: bytes.NewReader(in), n: len(in) / 2}, workers)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(io.Discard, r)
			r.Close()
			if !errors.Is(err, ErrPanic) || !strings.Contains(err.Error(), "input reader bug") || !strings.Contains(err.Error(), "goroutine ") {
				t.Errorf("%s, %d workers: error %v, want ErrPanic with the value and the stack", name, workers, err)
			}
		}
	}
}
