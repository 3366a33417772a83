package loader

import (
	"hash"
	"io"
	"sync"
)

// readahead reads r in a goroutine of its own, hashing and counting what it reads, up to n
// buffers ahead, so that the network, the hash and decompression overlap.
//
// In front of a single-threaded decompressor it plays the part of the pipe in
// `zstd -d | tar -x`: the decompressor runs ahead of the extraction, and the two hand over
// large buffers rather than waking each other for every block.
type readahead struct {
	full   chan []byte
	empty  chan []byte
	errc   chan error
	done   chan struct{}
	mu     sync.Mutex
	srcErr error // the reader's error, unless io.EOF

	buf []byte // the buffer being consumed
	off int
	err error
}

// newReadahead starts reading r; h and m may be nil.
func newReadahead(r io.Reader, h hash.Hash, m *meter, n, size int) *readahead {
	return startReadahead(r, h, m, n, size, nil)
}

// startReadahead is newReadahead with a function the goroutine calls when it stops.
func startReadahead(r io.Reader, h hash.Hash, m *meter, n, size int, stopped func()) *readahead {
	ra := &readahead{
		full:  make(chan []byte, n),
		empty: make(chan []byte, n),
		errc:  make(chan error, 1),
		done:  make(chan struct{}),
	}
	for range n {
		ra.empty <- make([]byte, size)
	}
	go func() {
		if stopped != nil {
			defer stopped()
		}
		for {
			var b []byte
			select {
			case b = <-ra.empty:
			case <-ra.done:
				return
			}
			// Fill at least half a buffer, so that small network reads do not make the
			// consumer wake up for every packet.
			k := 0
			var err error
			for k < cap(b)/2 && err == nil {
				var n int
				n, err = r.Read(b[k:cap(b)])
				k += n
			}
			if k > 0 {
				if h != nil {
					h.Write(b[:k])
				}
				if m != nil {
					m.read.Add(int64(k))
					m.tick(false)
				}
				ra.full <- b[:k]
			}
			if err != nil {
				if err != io.EOF {
					ra.mu.Lock()
					ra.srcErr = err
					ra.mu.Unlock()
				}
				ra.errc <- err
				close(ra.full)
				return
			}
		}
	}()
	return ra
}

func (ra *readahead) Read(p []byte) (int, error) {
	for ra.off >= len(ra.buf) {
		if ra.buf != nil {
			ra.empty <- ra.buf[:cap(ra.buf)]
			ra.buf = nil
		}
		if ra.err != nil {
			return 0, ra.err
		}
		b, ok := <-ra.full
		if !ok {
			ra.err = <-ra.errc
			return 0, ra.err
		}
		ra.buf, ra.off = b, 0
	}
	n := copy(p, ra.buf[ra.off:])
	ra.off += n
	return n, nil
}

// Close stops the goroutine; the underlying reader must be closed by the caller to unblock a
// pending read.
func (ra *readahead) Close() error {
	close(ra.done)
	return nil
}

// goReader runs a decompressor in a goroutine of its own (see readahead). The goroutine closes
// the decompressor when it stops (at the end of the data, on an error, or after Close once a
// pending Read returns), so that Close never overlaps a Read of the decompressor.
func goReader(rc io.ReadCloser, n, size int) io.ReadCloser {
	return startReadahead(rc, nil, nil, n, size, func() { rc.Close() })
}

// sourceErr is the error of the underlying reader (the download), if it failed.
func (ra *readahead) sourceErr() error {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	return ra.srcErr
}
