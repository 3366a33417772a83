package xzpar

// The LZMA decoder below is derived from github.com/xi2/xz (dec_lzma2.go),
// a Go translation of XZ Embedded by Lasse Collin, Igor Pavlov and Michael
// Cross, which its authors placed in the public domain. It is copied rather
// than imported because no maintained Go library exposes a fast raw LZMA2
// decoder: xi2/xz only decodes whole .xz streams, and ulikunitz/xz is an
// order of magnitude slower. The copy is restructured for speed:
//
//   - a whole LZMA chunk is decoded in one call from memory (the chunk's
//     compressed bytes are always buffered, padded by rcPad bytes), so the
//     range decoder needs no per-byte end-of-input checks and no temp buffer;
//   - output goes to a linear buffer (never a ring), so matches are plain
//     forward copies without wrap-around tests;
//   - the range decoder state lives in local variables, which the Go
//     compiler keeps in registers, instead of in a struct behind a pointer;
//   - probability arrays are sized to powers of two and indexes are masked,
//     which removes bounds checks in the bit-tree loops.

import "encoding/binary"

const (
	rcTop       = 1 << 24
	rcModelBits = 11
	rcModelMax  = 1 << rcModelBits
	rcMoveBits  = 5
	probInit    = rcModelMax / 2

	// rcPad is the number of readable bytes that must follow a chunk's
	// compressed data. One LZMA symbol consumes at most 20 input bytes, and
	// overrunning the chunk is only detected after the symbol, so the
	// decoder may read that far past the end of corrupt input.
	rcPad = 32

	litStates    = 7 // states below this follow a literal
	matchLenMin  = 2
	distModelEnd = 14
)

// lenDec holds the probabilities of a match length decoder.
type lenDec struct {
	choice  uint16
	choice2 uint16
	low     [16][8]uint16
	mid     [16][8]uint16
	high    [256]uint16
}

func (l *lenDec) reset() {
	l.choice, l.choice2 = probInit, probInit
	for i := range l.low {
		for j := range l.low[i] {
			l.low[i][j] = probInit
			l.mid[i][j] = probInit
		}
	}
	for i := range l.high {
		l.high[i] = probInit
	}
}

// lzmaDec is the LZMA state that persists between the chunks of an LZMA2
// stream: probabilities, recent distances and the properties lc/lp/pb.
type lzmaDec struct {
	state                  uint32
	rep0, rep1, rep2, rep3 uint32
	lc, lpMask, pbMask     uint32

	// Arrays indexed by state have 16 entries (only 12 states exist) so
	// that masking the index with 15 proves it in range.
	isMatch     [16][16]uint16
	isRep       [16]uint16
	isRep0      [16]uint16
	isRep1      [16]uint16
	isRep2      [16]uint16
	isRep0Long  [16][16]uint16
	distSlot    [4][64]uint16
	distSpecial [128]uint16
	distAlign   [16]uint16
	matchLen    lenDec
	repLen      lenDec
	// Each literal coder uses entries 0x001-0x2ff; 0x400 makes masking work.
	literal [16][0x400]uint16
}

// setProps decodes the lc/lp/pb properties byte and resets the state.
func (d *lzmaDec) setProps(props byte) bool {
	if props > (4*5+4)*9+8 {
		return false
	}
	pb := uint32(props) / 45
	props -= byte(pb * 45)
	lp := uint32(props) / 9
	lc := uint32(props) - lp*9
	if lc+lp > 4 {
		return false
	}
	d.lc = lc
	d.lpMask = 1<<lp - 1
	d.pbMask = 1<<pb - 1
	d.reset()
	return true
}

// reset resets the probabilities and state but keeps the properties.
func (d *lzmaDec) reset() {
	d.state = 0
	d.rep0, d.rep1, d.rep2, d.rep3 = 0, 0, 0, 0
	for i := range d.isMatch {
		for j := range d.isMatch[i] {
			d.isMatch[i][j] = probInit
			d.isRep0Long[i][j] = probInit
		}
		d.isRep[i] = probInit
		d.isRep0[i] = probInit
		d.isRep1[i] = probInit
		d.isRep2[i] = probInit
		d.distAlign[i] = probInit
	}
	for i := range d.distSlot {
		for j := range d.distSlot[i] {
			d.distSlot[i][j] = probInit
		}
	}
	for i := range d.distSpecial {
		d.distSpecial[i] = probInit
	}
	d.matchLen.reset()
	d.repLen.reset()
	// Only the literal coders selectable with the current lc+lp are used.
	n := 1 << (d.lc + uint32(bitsOf(d.lpMask)))
	for i := 0; i < n && i < len(d.literal); i++ {
		lit := &d.literal[i]
		for j := range lit[:0x300] {
			lit[j] = probInit
		}
	}
}

func bitsOf(mask uint32) int {
	n := 0
	for mask != 0 {
		mask >>= 1
		n++
	}
	return n
}

// decode decodes one LZMA chunk. in[:n] holds the chunk's compressed bytes
// and len(in) must be at least n+rcPad. The chunk produces exactly size
// bytes at out[pos:]; out[dictStart:pos] is the history that matches may
// refer to. posBase is the buffer position of the last dictionary reset,
// from which the position contexts (lp, pb bits) are counted; it may lie
// before the buffer once a sliding window has moved. It reports false if
// the data is corrupt.
func (d *lzmaDec) decode(in []byte, n int, out []byte, pos, size, dictStart, posBase int, dictSize uint32) bool {
	if n < 5 || len(in) < n+rcPad || in[0] != 0 || pos+size > len(out) || dictStart > pos {
		return false
	}
	code := binary.BigEndian.Uint32(in[1:5])
	rng := uint32(0xffffffff)
	ip := 5
	end := pos + size
	state := d.state
	rep0, rep1, rep2, rep3 := d.rep0, d.rep1, d.rep2, d.rep3
	lc, lpMask, pbMask := d.lc&15, d.lpMask, d.pbMask
	posAdj := uint32(-posBase)
	ok := false

	for pos < end {
		if ip > n {
			goto out
		}
		posState := (uint32(pos) + posAdj) & pbMask

		// Literal or match?
		p := &d.isMatch[state&15][posState&15]
		if rng < rcTop {
			rng <<= 8
			code = code<<8 | uint32(in[ip])
			ip++
		}
		bound := (rng >> rcModelBits) * uint32(*p)
		if code < bound {
			rng = bound
			*p += (rcModelMax - *p) >> rcMoveBits

			prev := uint32(0)
			if pos > dictStart {
				prev = uint32(out[pos-1])
			}
			probs := &d.literal[((prev>>(8-lc))+(((uint32(pos)+posAdj)&lpMask)<<lc))&15]
			var sym uint32
			if state < litStates {
				sym, rng, code, ip = decodeLiteral(probs, in, rng, code, ip)
				if state < 4 {
					state = 0
				} else {
					state -= 3
				}
			} else {
				matchByte := uint32(out[pos-int(rep0)-1])
				sym, rng, code, ip = decodeMatchedLiteral(probs, matchByte, in, rng, code, ip)
				if state < 10 {
					state -= 3
				} else {
					state -= 6
				}
			}
			out[pos] = byte(sym)
			pos++
			continue
		}
		rng -= bound
		code -= bound
		*p -= *p >> rcMoveBits

		var length uint32
		p = &d.isRep[state&15]
		if rng < rcTop {
			rng <<= 8
			code = code<<8 | uint32(in[ip])
			ip++
		}
		bound = (rng >> rcModelBits) * uint32(*p)
		if code < bound {
			// A match with a new distance.
			rng = bound
			*p += (rcModelMax - *p) >> rcMoveBits
			if state < litStates {
				state = 7
			} else {
				state = 10
			}
			rep3, rep2, rep1 = rep2, rep1, rep0
			length, rng, code, ip = decodeLen(&d.matchLen, posState, in, rng, code, ip)

			rep0, rng, code, ip = d.decodeDist(length, in, rng, code, ip)
		} else {
			// A repeated match: the distance is one of rep0..rep3.
			rng -= bound
			code -= bound
			*p -= *p >> rcMoveBits
			p = &d.isRep0[state&15]
			if rng < rcTop {
				rng <<= 8
				code = code<<8 | uint32(in[ip])
				ip++
			}
			bound = (rng >> rcModelBits) * uint32(*p)
			if code < bound {
				rng = bound
				*p += (rcModelMax - *p) >> rcMoveBits
				p = &d.isRep0Long[state&15][posState&15]
				if rng < rcTop {
					rng <<= 8
					code = code<<8 | uint32(in[ip])
					ip++
				}
				bound = (rng >> rcModelBits) * uint32(*p)
				if code < bound {
					// Short repeat: one byte at distance rep0.
					rng = bound
					*p += (rcModelMax - *p) >> rcMoveBits
					if state < litStates {
						state = 9
					} else {
						state = 11
					}
					if int(rep0) >= pos-dictStart || rep0 >= dictSize {
						goto out
					}
					out[pos] = out[pos-int(rep0)-1]
					pos++
					continue
				}
				rng -= bound
				code -= bound
				*p -= *p >> rcMoveBits
			} else {
				rng -= bound
				code -= bound
				*p -= *p >> rcMoveBits
				var dist uint32
				p = &d.isRep1[state&15]
				if rng < rcTop {
					rng <<= 8
					code = code<<8 | uint32(in[ip])
					ip++
				}
				bound = (rng >> rcModelBits) * uint32(*p)
				if code < bound {
					rng = bound
					*p += (rcModelMax - *p) >> rcMoveBits
					dist = rep1
				} else {
					rng -= bound
					code -= bound
					*p -= *p >> rcMoveBits
					p = &d.isRep2[state&15]
					if rng < rcTop {
						rng <<= 8
						code = code<<8 | uint32(in[ip])
						ip++
					}
					bound = (rng >> rcModelBits) * uint32(*p)
					if code < bound {
						rng = bound
						*p += (rcModelMax - *p) >> rcMoveBits
						dist = rep2
					} else {
						rng -= bound
						code -= bound
						*p -= *p >> rcMoveBits
						dist = rep3
						rep3 = rep2
					}
					rep2 = rep1
				}
				rep1 = rep0
				rep0 = dist
			}
			if state < litStates {
				state = 8
			} else {
				state = 11
			}
			length, rng, code, ip = decodeLen(&d.repLen, posState, in, rng, code, ip)
		}

		// Copy length bytes from distance rep0+1. A match must not reach
		// before the dictionary start nor past the end of the chunk.
		if int(rep0) >= pos-dictStart || rep0 >= dictSize || int(length) > end-pos {
			goto out
		}
		src := pos - int(rep0) - 1
		l := int(length)
		switch {
		case rep0 >= 15 && pos+l+16 <= len(out):
			// Copy sixteen bytes at a time, as below: most matches
			// take one round.
			for i := 0; i < l; i += 16 {
				s := out[src+i : src+i+16]
				d := out[pos+i : pos+i+16]
				a, b := binary.LittleEndian.Uint64(s), binary.LittleEndian.Uint64(s[8:])
				binary.LittleEndian.PutUint64(d, a)
				binary.LittleEndian.PutUint64(d[8:], b)
			}
		case rep0 >= 7 && pos+l+8 <= len(out):
			// Copy eight bytes at a time, which is right even when the
			// match overlaps its own output: every word read lies at
			// least eight bytes back, so it was written already. The
			// last word may write up to seven bytes past the match;
			// they are not yet output and will be overwritten.
			for i := 0; i < l; i += 8 {
				binary.LittleEndian.PutUint64(out[pos+i:], binary.LittleEndian.Uint64(out[src+i:]))
			}
		default:
			// Short distance: the match repeats its own output.
			dst := out[pos : pos+l]
			s := out[src : src+l]
			for i := range dst {
				dst[i] = s[i]
			}
		}
		pos += l
	}
	// The range decoder is normalised after the last symbol; the chunk must
	// then be consumed exactly and the code must be zero.
	if rng < rcTop {
		code = code<<8 | uint32(in[ip])
		ip++
	}
	ok = ip == n && code == 0
out:
	d.state = state
	d.rep0, d.rep1, d.rep2, d.rep3 = rep0, rep1, rep2, rep3
	return ok
}

// The helpers below take and return the range decoder state (rng, code,
// ip) by value. Keeping them out of the big loop in decode lets the
// compiler hold that state in registers; inside the loop it spills it.

// rcNorm reads the next input byte if the range has become too small.
func rcNorm(in []byte, rng, code uint32, ip int) (uint32, uint32, int) {
	if rng < rcTop {
		rng <<= 8
		code = code<<8 | uint32(in[ip])
		ip++
	}
	return rng, code, ip
}

// rcBit decodes one bit with probability *p; the range decoder must be
// normalised. It is written for conditional moves rather than branches,
// which pays in bit trees whose bits are hard to predict, and is small
// enough to be inlined.
func rcBit(p *uint16, rng, code uint32) (uint32, uint32, uint32) {
	v := uint32(*p)
	bound := (rng >> rcModelBits) * v
	v0 := v + (rcModelMax-v)>>rcMoveBits
	r1 := rng - bound
	c1 := code - bound
	bit := uint32(0)
	if code >= bound {
		bit = 1
	}
	if bit != 0 {
		v0 = v - v>>rcMoveBits
		bound = r1
		code = c1
	}
	*p = uint16(v0)
	return bit, bound, code
}

// rcTreeBit is rcBit for a node of a bit tree whose probability v was
// loaded before, with v0 and v1 those of its two children; it returns the
// bit, the range decoder state and the probability of the next node. Loading
// both children before the bit is known takes the load off the chain of
// dependent instructions from one bit to the next.
func rcTreeBit(p *uint16, v, v0, v1, rng, code uint32) (uint32, uint32, uint32, uint32) {
	bound := (rng >> rcModelBits) * v
	nv := v + (rcModelMax-v)>>rcMoveBits
	r1 := rng - bound
	c1 := code - bound
	bit := uint32(0)
	if code >= bound {
		bit = 1
	}
	if bit != 0 {
		nv = v - v>>rcMoveBits
		bound = r1
		code = c1
		v0 = v1
	}
	*p = uint16(nv)
	return bit, bound, code, v0
}

// decodeLen decodes a match length. It takes and returns the range decoder
// state by value so that it stays in registers.
func decodeLen(l *lenDec, posState uint32, in []byte, rng, code uint32, ip int) (uint32, uint32, uint32, int) {
	if rng < rcTop {
		rng <<= 8
		code = code<<8 | uint32(in[ip])
		ip++
	}
	bound := (rng >> rcModelBits) * uint32(l.choice)
	var probs []uint16
	var base, limit uint32
	if code < bound {
		rng = bound
		l.choice += (rcModelMax - l.choice) >> rcMoveBits
		probs = l.low[posState&15][:]
		base, limit = matchLenMin, 8
	} else {
		rng -= bound
		code -= bound
		l.choice -= l.choice >> rcMoveBits
		if rng < rcTop {
			rng <<= 8
			code = code<<8 | uint32(in[ip])
			ip++
		}
		bound = (rng >> rcModelBits) * uint32(l.choice2)
		if code < bound {
			rng = bound
			l.choice2 += (rcModelMax - l.choice2) >> rcMoveBits
			probs = l.mid[posState&15][:]
			base, limit = matchLenMin+8, 8
		} else {
			rng -= bound
			code -= bound
			l.choice2 -= l.choice2 >> rcMoveBits
			probs = l.high[:]
			base, limit = matchLenMin+16, 256
		}
	}
	// probs[sym-1]: the trees are stored without the unused entry 0. The
	// children of the last level, masked, are in range but unused.
	sym := uint32(1)
	v := uint32(probs[0])
	var bit uint32
	for sym < limit {
		rng, code, ip = rcNorm(in, rng, code, ip)
		c := sym << 1
		bit, rng, code, v = rcTreeBit(&probs[sym-1], v, uint32(probs[(c-1)&(limit-1)]), uint32(probs[c&(limit-1)]), rng, code)
		sym = c | bit
	}
	return base + sym - limit, rng, code, ip
}

// decodeLiteral decodes a literal byte with the bit tree probs.
func decodeLiteral(probs *[0x400]uint16, in []byte, rng, code uint32, ip int) (uint32, uint32, uint32, int) {
	sym := uint32(1)
	v := uint32(probs[1])
	var bit uint32
	for sym < 0x100 {
		rng, code, ip = rcNorm(in, rng, code, ip)
		// The children of the last level lie in probs[0x100:0x200],
		// unused but in range.
		c := sym << 1 & 0x3fe
		bit, rng, code, v = rcTreeBit(&probs[sym&0x3ff], v, uint32(probs[c]), uint32(probs[c|1]), rng, code)
		sym = c | bit
	}
	return sym & 0xff, rng, code, ip
}

// decodeMatchedLiteral decodes a literal after a match: the byte at the
// match distance predicts the literal's bits until they first differ.
func decodeMatchedLiteral(probs *[0x400]uint16, matchByte uint32, in []byte, rng, code uint32, ip int) (uint32, uint32, uint32, int) {
	sym := uint32(1)
	matchByte <<= 1
	offset := uint32(0x100)
	var bit uint32
	for sym < 0x100 {
		matchBit := matchByte & offset
		matchByte <<= 1
		rng, code, ip = rcNorm(in, rng, code, ip)
		bit, rng, code = rcBit(&probs[(offset+matchBit+sym)&0x3ff], rng, code)
		sym = sym<<1 | bit
		// Keep offset only while the bits agree with the match byte:
		// offset &= matchBit if bit is 1, offset &^= matchBit if 0.
		offset &= matchBit ^ (bit - 1)
	}
	return sym & 0xff, rng, code, ip
}

// decodeDist decodes the distance of a match of the given length.
func (d *lzmaDec) decodeDist(length uint32, in []byte, rng, code uint32, ip int) (uint32, uint32, uint32, int) {
	var rep0 uint32
	distState := length - matchLenMin
	if distState > 3 {
		distState = 3
	}
	slots := &d.distSlot[distState&3]
	// The slot bits are hard to predict: rcBit decodes them with
	// conditional moves instead of branches.
	// The children of the last level, masked, are in range but unused.
	sym := uint32(1)
	v := uint32(slots[1])
	var bit uint32
	for range 6 {
		rng, code, ip = rcNorm(in, rng, code, ip)
		c := sym << 1
		bit, rng, code, v = rcTreeBit(&slots[sym&63], v, uint32(slots[c&63]), uint32(slots[(c|1)&63]), rng, code)
		sym = c | bit
	}
	slot := sym - 64
	if slot < 4 {
		rep0 = slot
	} else {
		limit := slot>>1 - 1
		rep0 = 2 + slot&1
		if slot < distModelEnd {
			rep0 <<= limit
			base := rep0 - slot - 1
			sym := uint32(1)
			for i := uint32(0); i < limit; i++ {
				rng, code, ip = rcNorm(in, rng, code, ip)
				bit, rng, code = rcBit(&d.distSpecial[(base+sym)&127], rng, code)
				sym = sym<<1 | bit
				rep0 += bit << i
			}
		} else {
			// Direct bits with fixed probability one half.
			for k := limit - 4; k > 0; k-- {
				if rng < rcTop {
					rng <<= 8
					code = code<<8 | uint32(in[ip])
					ip++
				}
				rng >>= 1
				code -= rng
				mask := 0 - code>>31
				code += rng & mask
				rep0 = rep0<<1 + mask + 1
			}
			rep0 <<= 4
			sym := uint32(1)
			for i := uint32(0); i < 4; i++ {
				rng, code, ip = rcNorm(in, rng, code, ip)
				bit, rng, code = rcBit(&d.distAlign[sym&15], rng, code)
				sym = sym<<1 | bit
				rep0 += bit << i
			}
		}
	}
	return rep0, rng, code, ip
}
