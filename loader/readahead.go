package loader

import (
	"errors"
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
	done   chan struct{} // closed by Close
	exited chan struct{} // closed when the goroutine has stopped
	once   sync.Once
	mu     sync.Mutex
	srcErr error // the reader's error, unless io.EOF

	buf []byte // the buffer being consumed
	off int
	err error
}

// errStopped is what a readahead's Read returns after Close stopped its goroutine.
var errStopped = errors.New("read ahead stopped")

// newReadahead starts reading r; h and m may be nil.
func newReadahead(r io.Reader, h hash.Hash, m *meter, n, size int) *readahead {
	return startReadahead(r, h, m, n, size, nil)
}

// startReadahead is newReadahead with a function the goroutine calls when it stops.
func startReadahead(r io.Reader, h hash.Hash, m *meter, n, size int, stopped func()) *readahead {
	ra := &readahead{
		full:   make(chan []byte, n),
		empty:  make(chan []byte, n),
		errc:   make(chan error, 1),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	for range n {
		ra.empty <- make([]byte, size)
	}
	go ra.run(r, h, m, stopped)
	return ra
}

// run is the goroutine. A panic in it (in r, in the hash, in the progress callback) is an
// error for the consumer like any other: in PID 1 a panic would be a kernel panic.
func (ra *readahead) run(r io.Reader, h hash.Hash, m *meter, stopped func()) {
	defer close(ra.exited)
	err := ra.fill(r, h, m)
	if stopped != nil {
		if perr := catch(stopped); perr != nil && (err == io.EOF || err == errStopped) {
			err = perr
		}
	}
	if err != io.EOF && err != errStopped {
		ra.mu.Lock()
		ra.srcErr = err
		ra.mu.Unlock()
	}
	ra.errc <- err
	// Closed whatever the reason, so that a consumer never waits for a goroutine that is gone.
	// It never blocks a send: there are as many buffers as full holds.
	close(ra.full)
}

// fill reads r into buffers until an error, io.EOF or Close.
func (ra *readahead) fill(r io.Reader, h hash.Hash, m *meter) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = panicError(p)
		}
	}()
	for {
		var b []byte
		select {
		case b = <-ra.empty:
		case <-ra.done:
			return errStopped
		}
		// Fill at least half a buffer, so that small network reads do not make the consumer
		// wake up for every packet; but count and hash every read as it comes, so that the
		// progress of a slow link shows byte by byte, not half a megabyte at a time.
		k := 0
		var err error
		for k < cap(b)/2 && err == nil {
			var n int
			n, err = r.Read(b[k:cap(b)])
			if n > 0 {
				if h != nil {
					h.Write(b[k : k+n])
				}
				if m != nil {
					m.arrived(n)
				}
			}
			k += n
		}
		if k > 0 {
			ra.full <- b[:k]
		}
		if err != nil {
			return err
		}
	}
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

// Close stops the goroutine once a pending read of the underlying reader returns; the caller
// closes that reader to make it return. Close does not wait (see wait) and may be called more
// than once, from any goroutine.
func (ra *readahead) Close() error {
	ra.once.Do(func() { close(ra.done) })
	return nil
}

// wait returns when the goroutine has stopped: after Close, and after the underlying reader
// was closed or returned.
func (ra *readahead) wait() {
	<-ra.exited
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
