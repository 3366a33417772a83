package imageconv

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/ulikunitz/xz"

	"github.com/ramboot/ramboot/internal/xzpar"
)

func TestDictProp(t *testing.T) {
	for size, want := range map[int]byte{4096: 0, 6144: 1, 8192: 2, 1 << 20: 16, 3 << 19: 17, 8 << 20: 22, 8<<20 + 1: 23} {
		if got := dictProp(size); got != want {
			t.Errorf("dictProp(%d) = %d, want %d", size, got, want)
		}
	}
}

// TestXZWriter: small blocks in parallel, the last one short; decoded by two decoders.
func TestXZWriter(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, 64 << 10, 300<<10 + 17} {
		data := make([]byte, size)
		for i := range data {
			if i%3 == 0 {
				data[i] = byte(r.Uint32())
			} else {
				data[i] = "abc\n"[r.IntN(4)]
			}
		}
		var out bytes.Buffer
		w, err := newXZWriter(&out, 64<<10, 3)
		if err != nil {
			t.Fatal(err)
		}
		for p := data; len(p) > 0; {
			n := min(len(p), 1+r.IntN(100<<10))
			if _, err := w.Write(p[:n]); err != nil {
				t.Fatal(err)
			}
			p = p[n:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		var again bytes.Buffer
		w1, _ := newXZWriter(&again, 64<<10, 1)
		w1.Write(data)
		w1.Close()
		if !bytes.Equal(again.Bytes(), out.Bytes()) {
			t.Errorf("size %d: one worker writes other bytes than three", size)
		}
		if want := (size + 64<<10 - 1) / (64 << 10); len(w.index) != want {
			t.Errorf("size %d: %d blocks, want %d", size, len(w.index), want)
		}
		pr, err := xzpar.NewReader(bytes.NewReader(out.Bytes()), 2)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(pr)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("size %d: xzpar: %d bytes, %v", size, len(got), err)
		}
		xr, err := xz.NewReader(bytes.NewReader(out.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		got, err = io.ReadAll(xr)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("size %d: ulikunitz/xz: %d bytes, %v", size, len(got), err)
		}
	}
}
