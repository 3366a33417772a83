package xzpar

import "fmt"

// lzma2Dec decodes a block's LZMA2 data: a sequence of chunks, each announced by a
// control byte, ending with a 0x00 control byte. A chunk holds at most 64 KiB of
// compressed and 2 MiB of uncompressed data.
type lzma2Dec struct {
	lzma lzmaDec

	// The first chunk must reset the dictionary, and the first LZMA chunk after a
	// dictionary reset must set the properties.
	needDictReset bool
	needProps     bool
}

// LZMA2 control bytes.
const (
	ctlEnd           = 0x00
	ctlCopyDictReset = 0x01 // uncompressed chunk, resetting the dictionary
	ctlCopy          = 0x02 // uncompressed chunk
	ctlLZMA          = 0x80 // from here on: an LZMA chunk; bits 0-4 are bits 16-20 of its size - 1
	resetState       = 1    // what bits 5-6 of an LZMA chunk's control byte ask for
	resetStateProps  = 2
	resetAll         = 3
)

func chunkErr(format string, a ...any) error {
	return fmt.Errorf("%w: lzma2: "+format, append([]any{ErrCorrupt}, a...)...)
}

// run decodes one block's LZMA2 data from src into w.
func (d *lzma2Dec) run(src chunkSource, w *window) error {
	d.needDictReset, d.needProps = true, true
	for {
		b, err := src.next(1)
		if err != nil {
			return err
		}
		ctl := b[0]
		switch {
		case ctl == ctlEnd:
			return nil
		case ctl == ctlCopyDictReset || ctl == ctlCopy:
			if ctl == ctlCopyDictReset {
				w.resetDict()
				d.needDictReset, d.needProps = false, true
			} else if d.needDictReset {
				return chunkErr("first chunk does not reset the dictionary")
			}
			h, err := src.next(2)
			if err != nil {
				return err
			}
			size := (int(h[0])<<8 | int(h[1])) + 1
			data, err := src.next(size)
			if err != nil {
				return err
			}
			if err := w.reserve(size); err != nil {
				return err
			}
			copy(w.buf[w.pos:w.pos+size], data[:size])
			if err := w.commit(size); err != nil {
				return err
			}
		case ctl >= ctlLZMA:
			reset := ctl >> 5 & 3
			if reset == resetAll {
				w.resetDict()
				d.needDictReset = false
			} else if d.needDictReset {
				return chunkErr("first chunk does not reset the dictionary")
			}
			hlen := 4
			if reset >= resetStateProps {
				hlen = 5
			}
			h, err := src.next(hlen)
			if err != nil {
				return err
			}
			size := (int(ctl&0x1f)<<16 | int(h[0])<<8 | int(h[1])) + 1
			packed := (int(h[2])<<8 | int(h[3])) + 1
			if reset >= resetStateProps {
				if !d.lzma.setProps(h[4]) {
					return chunkErr("bad properties %#x", h[4])
				}
				d.needProps = false
			} else if d.needProps {
				return chunkErr("LZMA chunk without properties")
			}
			if reset >= resetState {
				d.lzma.reset()
			}
			in, err := src.next(packed)
			if err != nil {
				return err
			}
			if err := w.reserve(size); err != nil {
				return err
			}
			if err := d.lzma.decode(in, packed, w, size); err != nil {
				return err
			}
			if err := w.commit(size); err != nil {
				return err
			}
		default:
			return chunkErr("bad control byte %#x", ctl)
		}
	}
}
