package xzpar

import (
	"encoding/binary"
	"hash/crc64"
	"math/rand/v2"
	"testing"
)

// TestCRC64 holds updateCRC64 to hash/crc64 on every length around the folding's edges, from
// unaligned starts and from registers that are not zero, and fold64 to what it is for.
func TestCRC64(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 5000)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	for n := 0; n <= 1100; n++ {
		for _, off := range []int{0, 1, 7, 13} {
			p := buf[off : off+n]
			for _, crc := range []uint64{0, 0x0123456789abcdef, ^uint64(0)} {
				if got, want := updateCRC64(crc, p), crc64.Update(crc, crc64Table, p); got != want {
					t.Fatalf("len %d, offset %d, crc %#x: %#x, want %#x", n, off, crc, got, want)
				}
			}
		}
	}
	// Written in pieces, as the decoder commits its chunks.
	h := newCRC64()
	for p := buf; len(p) > 0; {
		k := min(len(p), 1+rng.IntN(700))
		h.Write(p[:k])
		p = p[k:]
	}
	if got, want := h.Sum64(), crc64.Checksum(buf, crc64Table); got != want {
		t.Fatalf("in pieces: %#x, want %#x", got, want)
	}
	ref := crc64.New(crc64Table)
	ref.Write(buf)
	if got, want := string(h.Sum([]byte("x"))), string(ref.Sum([]byte("x"))); got != want {
		t.Fatalf("Sum: % x, want % x", got, want)
	}
	if !haveCLMUL {
		t.Logf("no carry-less multiplication on this CPU: the tables only")
		return
	}
	// fold64 alone: its 16 bytes leave p's remainder.
	for _, n := range []int{64, 128, 192, 4096} {
		lo, hi := fold64(0, buf[:n], &foldConsts)
		var v [16]byte
		binary.LittleEndian.PutUint64(v[:8], lo)
		binary.LittleEndian.PutUint64(v[8:], hi)
		if got, want := crc64.Update(^uint64(0), crc64Table, v[:]), crc64.Update(^uint64(0), crc64Table, buf[:n]); got != want {
			t.Fatalf("fold64 of %d bytes: remainder %#x, want %#x", n, ^got, ^want)
		}
	}
}

func BenchmarkCRC64(b *testing.B) {
	p := make([]byte, 2<<20)
	for i := range p {
		p[i] = byte(i * 7)
	}
	b.Run("tables", func(b *testing.B) {
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			crc64.Update(0, crc64Table, p)
		}
	})
	b.Run("updateCRC64", func(b *testing.B) {
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			updateCRC64(0, p)
		}
	})
}

// FuzzCRC64 holds updateCRC64 to hash/crc64 on any data, register and split.
func FuzzCRC64(f *testing.F) {
	f.Add(make([]byte, 300), uint64(0), 17)
	f.Add(make([]byte, 64), ^uint64(0), 0)
	f.Fuzz(func(t *testing.T, p []byte, crc uint64, split int) {
		if got, want := updateCRC64(crc, p), crc64.Update(crc, crc64Table, p); got != want {
			t.Fatalf("%d bytes, crc %#x: %#x, want %#x", len(p), crc, got, want)
		}
		if split < 0 || split > len(p) {
			return
		}
		if got, want := updateCRC64(updateCRC64(crc, p[:split]), p[split:]), crc64.Update(crc, crc64Table, p); got != want {
			t.Fatalf("%d bytes split at %d: %#x, want %#x", len(p), split, got, want)
		}
	})
}
