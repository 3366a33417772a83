package xzpar

import (
	"encoding/binary"
	"hash"
	"hash/crc64"
	"math/bits"
)

// CRC-64 is the check of most .xz files (xz's default). hash/crc64 computes it with tables,
// eight bytes at a time: 1.3-1.8 GB/s here, 135 ms of CPU for a 175 MB root file system, 8% of
// the decoding's own time. Where the CPU multiplies without carries (PCLMULQDQ on amd64, PMULL
// on arm64), updateCRC64 folds the data 64 bytes at a time instead, the method of Intel's "Fast
// CRC Computation for Generic Polynomials Using PCLMULQDQ Instruction" (2009), and leaves only
// the last 16 folded bytes and the tail to the tables. Written here because no Go module the
// project can use does it: hash/crc64 has no such path, and the modules that have one are for
// other polynomials (NVMe's).

// crc64Poly is the ECMA-182 polynomial of xz's CRC-64, x^64 omitted, highest degree first.
const crc64Poly = 0x42F0E1EBA9EA3693

// xPowMod returns x^n mod the CRC-64 polynomial, bit-reflected: degree 63-j in bit j, the
// order in which the reflected CRC holds a 64-bit chunk of data loaded little-endian.
func xPowMod(n int) uint64 {
	r := uint64(1)
	for range n {
		carry := r >> 63
		r <<= 1
		if carry != 0 {
			r ^= crc64Poly
		}
	}
	return bits.Reverse64(r)
}

// foldConsts are the multipliers fold64 takes: for each distance D (512, 384, 256 and 128
// bits), x^(D+63) and x^(D-1) mod the polynomial. A 16-byte chunk V = (lo, hi) is worth
// lo(x)·x^(D+64) + hi(x)·x^D once D bits later, and a carry-less product of two reflected
// 64-bit values is the product of their polynomials times x.
var foldConsts = [8]uint64{
	xPowMod(512 + 63), xPowMod(512 - 1),
	xPowMod(384 + 63), xPowMod(384 - 1),
	xPowMod(256 + 63), xPowMod(256 - 1),
	xPowMod(128 + 63), xPowMod(128 - 1),
}

// minFold is the shortest input folded: below it the tables are as quick.
const minFold = 256

// updateCRC64 is crc64.Update(crc, crc64Table, p).
func updateCRC64(crc uint64, p []byte) uint64 {
	if !haveCLMUL || len(p) < minFold {
		return crc64.Update(crc, crc64Table, p)
	}
	n := len(p) &^ 63
	lo, hi := fold64(^crc, p[:n], &foldConsts)
	// The folded 16 bytes leave the same remainder as p[:n] from a zero register.
	var v [16]byte
	binary.LittleEndian.PutUint64(v[:8], lo)
	binary.LittleEndian.PutUint64(v[8:], hi)
	reg := ^crc64.Update(^uint64(0), crc64Table, v[:])
	return crc64.Update(^reg, crc64Table, p[n:])
}

// crc64Hash is hash/crc64's digest of the ECMA polynomial, computed by updateCRC64.
type crc64Hash struct{ crc uint64 }

func newCRC64() hash.Hash64 { return &crc64Hash{} }

func (d *crc64Hash) Write(p []byte) (int, error) {
	d.crc = updateCRC64(d.crc, p)
	return len(p), nil
}

func (d *crc64Hash) Sum64() uint64 { return d.crc }

func (d *crc64Hash) Sum(b []byte) []byte { return binary.BigEndian.AppendUint64(b, d.crc) }

func (d *crc64Hash) Reset()         { d.crc = 0 }
func (d *crc64Hash) Size() int      { return crc64.Size }
func (d *crc64Hash) BlockSize() int { return 1 }
