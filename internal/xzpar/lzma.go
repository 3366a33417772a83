package xzpar

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// The LZMA decoder of LZMA2 chunks. The model is the one the format fixes: adaptive
// binary probabilities of 11 bits driven by a range decoder, a literal coder that
// conditions on the previous byte's high bits (lc) and the position's low bits (lp),
// a 12-state machine over the last few symbol kinds, four repeated distances, and
// length and distance coders built from bit trees.

const (
	probBits  = 11
	probInit  = 1 << (probBits - 1)
	probShift = 5       // adaptation speed
	rcTop     = 1 << 24 // the range is renormalised below this

	// rcPad is how many bytes past a chunk's end its buffer holds, so that the range
	// decoder checks for running off the chunk once per symbol instead of once per
	// byte. One symbol reads at most 48 bytes: is-match, is-rep, 10 length bits,
	// 6 slot bits, 26 direct bits and 4 align bits.
	rcPad = 64

	// chunkInSize is the size of the copy of a chunk the range decoder reads from: a power of
	// two above LZMA2's largest chunk (1<<16 bytes) plus rcPad, so that masking an input
	// index by it is what keeps it in bounds, and the decoding loops need not keep the
	// input's length in a register to check it for each byte.
	chunkInSize = 1 << 17

	states       = 12
	litStates    = 7 // states below this follow a literal
	posStatesMax = 1 << 4
	minMatch     = 2
	lenStates    = 4 // the length contexts of the distance slot
	slotBits     = 6
	alignBits    = 4
	firstModeled = 4                 // slots below this are the distance itself
	firstDirect  = 14                // slots from this on code their middle bits directly
	midBits      = firstDirect/2 - 2 // the most low bits of a slot below firstDirect
	litCoderSize = 0x300
	maxLcLp      = 4 // LZMA2's limit on lc+lp
)

// Next states after a literal, a match, a repeated match and a one-byte repeat.
var (
	afterLit      = [states]uint8{0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 4, 5}
	afterMatch    = [states]uint8{7, 7, 7, 7, 7, 7, 7, 10, 10, 10, 10, 10}
	afterRep      = [states]uint8{8, 8, 8, 8, 8, 8, 8, 11, 11, 11, 11, 11}
	afterShortRep = [states]uint8{9, 9, 9, 9, 9, 9, 9, 11, 11, 11, 11, 11}
)

// The range decoder's state is three values, rng, code and ip (the next input byte),
// passed and returned as they are rather than in a struct: so the helpers below are
// small enough for the compiler to inline, and the state stays in registers through
// the decoding loop.

// bit decodes one bit of probability *p (of being zero) and adapts *p.
func bit(p *uint16, in *chunkIn, rng, code uint32, ip int) (uint32, uint32, uint32, int) {
	bound := (rng >> probBits) * uint32(*p)
	b := uint32(0)
	if code < bound {
		rng = bound
		*p += (1<<probBits - *p) >> probShift
	} else {
		rng -= bound
		code -= bound
		*p -= *p >> probShift
		b = 1
	}
	if rng < rcTop {
		rng, code = rng<<8, code<<8|uint32(in[ip&(len(in)-1)])
		ip++
	}
	return b, rng, code, ip
}

// treeProbs are the bit trees' probability arrays: a tree of n bits uses [1<<n]uint16.
type treeProbs interface {
	[1 << 3]uint16 | [1 << alignBits]uint16 | [1 << slotBits]uint16 | [1 << 8]uint16
}

// tree decodes a number of log2(len(*probs)) bits, most significant bit first, with
// probs[1:]. Like litPlain, it loads both children's probabilities before a bit is
// known. It is generic over the array so that each size is compiled on its own, with
// the length a constant: the indices are masked by it instead of bounds-checked, and
// fewer values compete for registers.
func tree[P treeProbs](probs *P, in *chunkIn, rng, code uint32, ip int) (uint32, uint32, uint32, int) {
	top := uint32(len(*probs))
	last := top - 1
	m := uint32(1)
	v := uint32((*probs)[1&last])
	for m < top {
		c0, c1 := uint32((*probs)[(2*m)&last]), uint32((*probs)[(2*m+1)&last])
		bound := (rng >> probBits) * v
		// Both outcomes are computed before the bit is known, and the bit picks
		// one with conditional moves: the bits are too random to predict a branch,
		// and a compare and a move add less to the chain from one bit's range to
		// the next than computing a mask and selecting with it. The compiler emits
		// conditional moves for an if whose body assigns values and computes at
		// most two, none that addresses memory (like m). code-bound is computed in
		// the body: a variable for it before the if made the compiler keep code on
		// the stack, adding a store and a load to the chain.
		rng0, p0 := bound, v+(1<<probBits-v)>>probShift
		rng1, p1 := rng-bound, v-v>>probShift
		b := uint32(0)
		if code >= bound {
			b = 1
		}
		rng, v = rng0, c0
		if b != 0 {
			rng, code, p0, v = rng1, code-bound, p1, c1
		}
		(*probs)[m&last] = uint16(p0)
		m = m<<1 | b
		if rng < rcTop {
			rng, code = rng<<8, code<<8|uint32(in[ip&(len(in)-1)])
			ip++
		}
	}
	return m - top, rng, code, ip
}

// midTree decodes the n < 6 low bits of a distance of slot 4-13 with its reverse tree
// probs[1:1<<n]. A reverse tree walks its nodes as tree does, only its first bit is the
// least significant: midTree is tree with the number of bits a variable, the result
// reversed.
func midTree(probs *[1 << midBits]uint16, n uint32, in *chunkIn, rng, code uint32, ip int) (uint32, uint32, uint32, int) {
	const last = 1<<midBits - 1
	top := uint32(1) << n
	m := uint32(1)
	v := uint32(probs[1])
	for m < top {
		c0, c1 := uint32(probs[(2*m)&last]), uint32(probs[(2*m+1)&last])
		bound := (rng >> probBits) * v
		rng0, p0 := bound, v+(1<<probBits-v)>>probShift
		rng1, p1 := rng-bound, v-v>>probShift
		b := uint32(0)
		if code >= bound {
			b = 1
		}
		rng, v = rng0, c0
		if b != 0 {
			rng, code, p0, v = rng1, code-bound, p1, c1
		}
		probs[m&last] = uint16(p0)
		m = m<<1 | b
		if rng < rcTop {
			rng, code = rng<<8, code<<8|uint32(in[ip&(len(in)-1)])
			ip++
		}
	}
	return uint32(bits.Reverse8(uint8(m-top))) >> (8 - n), rng, code, ip
}

// direct decodes bits bits of even probability.
func direct(bits uint32, in *chunkIn, rng, code uint32, ip int) (uint32, uint32, uint32, int) {
	var v uint32
	for range bits {
		rng >>= 1
		var b uint32
		if code >= rng {
			code -= rng
			b = 1
		}
		v = v<<1 | b
		if rng < rcTop {
			rng, code = rng<<8, code<<8|uint32(in[ip&(len(in)-1)])
			ip++
		}
	}
	return v, rng, code, ip
}

// lenCoder codes match lengths minus minMatch: 0-7 with a 3-bit tree per position
// state, 8-15 with another, 16-271 with an 8-bit tree shared by all positions.
type lenCoder struct {
	choice, choice2 uint16
	low, mid        [posStatesMax][1 << 3]uint16
	high            [1 << 8]uint16
}

func (l *lenCoder) reset() {
	l.choice, l.choice2 = probInit, probInit
	for i := range l.low {
		fill(l.low[i][:])
		fill(l.mid[i][:])
	}
	fill(l.high[:])
}

// decodeLen decodes a length minus minMatch.
func decodeLen(l *lenCoder, posState int, in *chunkIn, rng, code uint32, ip int) (int, uint32, uint32, int) {
	var b, v uint32
	b, rng, code, ip = bit(&l.choice, in, rng, code, ip)
	if b == 0 {
		v, rng, code, ip = tree(&l.low[posState], in, rng, code, ip)
		return int(v), rng, code, ip
	}
	b, rng, code, ip = bit(&l.choice2, in, rng, code, ip)
	if b == 0 {
		v, rng, code, ip = tree(&l.mid[posState], in, rng, code, ip)
		return 8 + int(v), rng, code, ip
	}
	v, rng, code, ip = tree(&l.high, in, rng, code, ip)
	return 16 + int(v), rng, code, ip
}

func fill(p []uint16) {
	for i := range p {
		p[i] = probInit
	}
}

// chunkIn holds the chunk being decoded (see chunkInSize).
type chunkIn = [chunkInSize]byte

// litProbs are a literal coder's litCoderSize probabilities in an array of the next power
// of two: litMatched loads the probabilities of the next bit's two possible nodes before
// the bit is known, and after the last bit those indices run past litCoderSize.
type litProbs = [0x400]uint16

// lzmaDec is the LZMA state that LZMA2 carries from chunk to chunk until a chunk resets it.
type lzmaDec struct {
	lc, lp, pb uint

	state   uint8
	rep     [4]uint32 // the last four distances, minus one
	pending int       // bytes of the last match that did not fit in its chunk

	isMatch    [states][posStatesMax]uint16
	isRep      [states]uint16
	isRepG0    [states]uint16 // rep0 rather than rep1-3
	isRepG1    [states]uint16 // rep1 rather than rep2-3
	isRepG2    [states]uint16 // rep2 rather than rep3
	isRep0Long [states][posStatesMax]uint16
	slot       [lenStates][1 << slotBits]uint16
	mid        [firstDirect - firstModeled][1 << midBits]uint16 // reverse trees of slots 4-13
	align      [1 << alignBits]uint16
	matchLen   lenCoder
	repLen     lenCoder
	lit        [1 << maxLcLp]litProbs

	in *chunkIn // allocated by the first decode
}

// setProps sets lc, lp and pb from an LZMA2 properties byte and reports whether it is valid.
func (d *lzmaDec) setProps(props byte) bool {
	if props >= 9*5*5 {
		return false
	}
	lc, lp, pb := uint(props%9), uint(props/9%5), uint(props/45)
	if lc+lp > maxLcLp {
		return false
	}
	d.lc, d.lp, d.pb = lc, lp, pb
	return true
}

// reset returns the state and every probability to their initial values.
func (d *lzmaDec) reset() {
	d.state, d.rep, d.pending = 0, [4]uint32{}, 0
	for s := range states {
		fill(d.isMatch[s][:])
		fill(d.isRep0Long[s][:])
	}
	fill(d.isRep[:])
	fill(d.isRepG0[:])
	fill(d.isRepG1[:])
	fill(d.isRepG2[:])
	for i := range d.slot {
		fill(d.slot[i][:])
	}
	for i := range d.mid {
		fill(d.mid[i][:])
	}
	fill(d.align[:])
	d.matchLen.reset()
	d.repLen.reset()
	for i := range 1 << (d.lc + d.lp) {
		fill(d.lit[i][:litCoderSize])
	}
}

func corruptf(format string, a ...any) error {
	return fmt.Errorf("%w: lzma: "+format, append([]any{ErrCorrupt}, a...)...)
}

// decode decodes one LZMA chunk of n compressed bytes, chunk[:n], into the size bytes of
// w.buf at w.pos, for which the caller has made room. chunk holds rcPad more bytes.
func (d *lzmaDec) decode(chunk []byte, n int, w *window, size int) error {
	if n < 5 || len(chunk) < n+rcPad || chunk[0] != 0 {
		return corruptf("bad range coder start")
	}
	if n+rcPad > chunkInSize {
		return fmt.Errorf("xzpar: internal error: LZMA chunk of %d bytes", n)
	}
	rng, code, ip := uint32(0xffffffff), binary.BigEndian.Uint32(chunk[1:5]), 5
	if d.in == nil {
		d.in = new(chunkIn)
	}
	// The copy holds the rcPad bytes after the chunk too: the decoder reads the same bytes
	// as from in, up to 48 past the chunk before it finds that it overran.
	copy(d.in[:], chunk[:n+rcPad])
	in := d.in
	pos, end := w.pos, w.pos+size
	if end > len(w.buf) {
		return fmt.Errorf("xzpar: internal error: chunk does not fit its window")
	}
	buf := w.buf
	dictStart, posBase := w.dictStart, w.posBase
	dictSize := int64(w.dictSize)
	lc, lpMask, pbMask := d.lc, 1<<d.lp-1, 1<<d.pb-1
	state := d.state
	rep0, rep1, rep2, rep3 := d.rep[0], d.rep[1], d.rep[2], d.rep[3]

	if d.pending > 0 {
		pos, d.pending = copyMatch(buf, pos, end, rep0, d.pending)
	}
	for pos < end {
		if ip > n {
			return corruptf("chunk data overrun")
		}
		posState := (pos - posBase) & pbMask
		var b uint32
		b, rng, code, ip = bit(&d.isMatch[state][posState], in, rng, code, ip)
		if b == 0 {
			// A literal.
			var prev int
			if pos > dictStart {
				prev = int(buf[pos-1])
			}
			ctx := ((pos-posBase)&lpMask)<<lc + prev>>(8-lc)
			// ctx < 1<<(lc+lp) <= 1<<maxLcLp: the mask only spares a bounds check.
			probs := &d.lit[ctx&(1<<maxLcLp-1)]
			var sym uint32
			if state < litStates {
				sym, rng, code, ip = litPlain(probs, in, rng, code, ip)
			} else {
				// After a match, the byte at rep0 guides the model until the
				// first bit that differs from it.
				if int64(rep0) >= int64(pos-dictStart) {
					return corruptf("distance beyond the dictionary")
				}
				sym, rng, code, ip = litMatched(probs, uint32(buf[pos-int(rep0)-1]), in, rng, code, ip)
			}
			buf[pos] = byte(sym)
			pos++
			state = afterLit[state]
			continue
		}

		b, rng, code, ip = bit(&d.isRep[state], in, rng, code, ip)
		var length int
		if b == 0 {
			// A match with a new distance.
			length, rng, code, ip = decodeLen(&d.matchLen, posState, in, rng, code, ip)
			ls := min(length, lenStates-1)
			var slot uint32
			slot, rng, code, ip = tree(&d.slot[ls], in, rng, code, ip)
			dist := slot
			if slot >= firstModeled {
				low := slot>>1 - 1 // how many low bits follow
				dist = (2 | slot&1) << low
				var v uint32
				if slot < firstDirect {
					v, rng, code, ip = midTree(&d.mid[slot-firstModeled], low, in, rng, code, ip)
					dist += v
				} else {
					v, rng, code, ip = direct(low-alignBits, in, rng, code, ip)
					dist += v << alignBits
					// A reverse tree visits its nodes as tree does, only its
					// first bit is the least significant: tree's number reversed.
					v, rng, code, ip = tree(&d.align, in, rng, code, ip)
					dist += uint32(bits.Reverse8(uint8(v))) >> (8 - alignBits)
				}
			}
			// The end marker (distance 0xffffffff) is not allowed in LZMA2, and
			// fails this check too.
			if int64(dist) >= int64(pos-dictStart) || int64(dist) >= dictSize {
				return corruptf("distance beyond the dictionary")
			}
			rep0, rep1, rep2, rep3 = dist, rep0, rep1, rep2
			state = afterMatch[state]
		} else {
			b, rng, code, ip = bit(&d.isRepG0[state], in, rng, code, ip)
			if b == 0 {
				if int64(rep0) >= int64(pos-dictStart) {
					return corruptf("distance beyond the dictionary")
				}
				b, rng, code, ip = bit(&d.isRep0Long[state][posState], in, rng, code, ip)
				if b == 0 {
					// One byte from rep0.
					state = afterShortRep[state]
					buf[pos] = buf[pos-int(rep0)-1]
					pos++
					continue
				}
			} else {
				var dist uint32
				b, rng, code, ip = bit(&d.isRepG1[state], in, rng, code, ip)
				if b == 0 {
					dist = rep1
				} else {
					b, rng, code, ip = bit(&d.isRepG2[state], in, rng, code, ip)
					if b == 0 {
						dist = rep2
					} else {
						dist, rep3 = rep3, rep2
					}
					rep2 = rep1
				}
				rep0, rep1 = dist, rep0
				if int64(rep0) >= int64(pos-dictStart) {
					return corruptf("distance beyond the dictionary")
				}
			}
			length, rng, code, ip = decodeLen(&d.repLen, posState, in, rng, code, ip)
			state = afterRep[state]
		}
		pos, d.pending = copyMatch(buf, pos, end, rep0, length+minMatch)
	}
	d.state = state
	d.rep = [4]uint32{rep0, rep1, rep2, rep3}
	if ip != n || code != 0 {
		return corruptf("chunk does not end where its header says")
	}
	return nil
}

// copyMatch copies length bytes from dist+1 bytes back to buf[pos:], as many as fit before
// end, and returns the new position and how many bytes did not fit. It may write up to 15
// bytes past the match, within buf, where the decoder writes next.
func copyMatch(buf []byte, pos, end int, dist uint32, length int) (int, int) {
	pending := 0
	if length > end-pos {
		pending = length - (end - pos)
		length = end - pos
	}
	from := pos - int(dist) - 1
	if pos+length+8 > len(buf) || from < 0 {
		out, src := buf[pos:pos+length], buf[from:from+length]
		for i := range out {
			out[i] = src[i]
		}
		return pos + length, pending
	}
	period := int(dist) + 1
	if period >= length && length > 32 {
		copy(buf[pos:pos+length], buf[from:])
		return pos + length, pending
	}
	i := 0
	if period < 8 {
		// A short period: the first eight bytes one by one, then words from a
		// multiple of the period at least eight back, which repeats the same bytes.
		out, src := buf[pos:pos+8], buf[from:from+8]
		for j := range out {
			out[j] = src[j]
		}
		i = 8
		period *= (7 + period) / period
		from = pos - period
	}
	if period >= 16 && pos+length+16 <= len(buf) {
		// Sixteen bytes at a time, as long as each read was written before.
		for ; i < length; i += 16 {
			*(*[16]byte)(buf[pos+i:]) = *(*[16]byte)(buf[from+i:])
		}
		return pos + length, pending
	}
	// Eight bytes at a time: with period >= 8, each word read was written before.
	for ; i < length; i += 8 {
		binary.LittleEndian.PutUint64(buf[pos+i:], binary.LittleEndian.Uint64(buf[from+i:]))
	}
	return pos + length, pending
}

// litPlain decodes a literal's eight bits, most significant first, with the bit tree
// probs[1:0x100]. The probabilities of both children of a node are loaded before its
// bit is known, so that the next bit's multiplication need not wait for a load; the bit
// picks one with conditional moves, as in tree.
func litPlain(probs *litProbs, in *chunkIn, rng, code uint32, ip int) (uint32, uint32, uint32, int) {
	sym := uint32(1)
	v := uint32(probs[1])
	for sym < 0x100 {
		c0, c1 := uint32(probs[(2*sym)&0x1ff]), uint32(probs[(2*sym+1)&0x1ff])
		bound := (rng >> probBits) * v
		rng0, p0 := bound, v+(1<<probBits-v)>>probShift
		rng1, p1 := rng-bound, v-v>>probShift
		b := uint32(0)
		if code >= bound {
			b = 1
		}
		rng, v = rng0, c0
		if b != 0 {
			rng, code, p0, v = rng1, code-bound, p1, c1
		}
		probs[sym&0xff] = uint16(p0)
		sym = sym<<1 | b
		if rng < rcTop {
			rng, code = rng<<8, code<<8|uint32(in[ip&(len(in)-1)])
			ip++
		}
	}
	return sym, rng, code, ip
}

// litMatched decodes a literal that follows a match, whose model is guided by the
// byte match at the match distance as long as the bits decoded equal its bits: while
// they do, a bit's probability is in probs[0x100+m<<8+sym] where m is the match
// byte's bit; after the first difference, in probs[sym]. Like litPlain, it loads the
// probabilities of both possible next nodes before a bit is known.
func litMatched(probs *litProbs, match uint32, in *chunkIn, rng, code uint32, ip int) (uint32, uint32, uint32, int) {
	const last = uint32(len(probs) - 1)
	sym := uint32(1)
	offset := uint32(0x100) // 0x100 while the bits equal the match byte's, then 0
	match <<= 1
	mbit := match & offset // offset or 0
	v := uint32(probs[(offset+mbit+sym)&last])
	for sym < 0x100 {
		i := offset + mbit + sym
		// After a 0 bit, offset stays if the match bit was 0; after a 1 bit, if it was 1.
		next := match << 1
		off0, off1 := offset^mbit, mbit
		c0 := uint32(probs[(off0+next&off0+2*sym)&last])
		c1 := uint32(probs[(off1+next&off1+2*sym+1)&last])
		bound := (rng >> probBits) * v
		rng0, p0 := bound, v+(1<<probBits-v)>>probShift
		rng1, p1 := rng-bound, v-v>>probShift
		b := uint32(0)
		if code >= bound {
			b = 1
		}
		rng, v = rng0, c0
		if b != 0 {
			rng, code, p0, v = rng1, code-bound, p1, c1
		}
		probs[i&last] = uint16(p0)
		sym = sym<<1 | b
		// offset feeds the next loads' addresses, which the compiler does not
		// compute with conditional moves: it is selected by mask.
		ones := -b
		offset = off1&ones | off0&^ones
		match = next
		mbit = match & offset
		if rng < rcTop {
			rng, code = rng<<8, code<<8|uint32(in[ip&(len(in)-1)])
			ip++
		}
	}
	return sym, rng, code, ip
}
