package serve

import (
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"
)

// Timeouts bound how long a client can hold a connection (a file descriptor, and a goroutine)
// without making progress. A download as such has no time limit: a slow client on a 1 GB
// image is fine as long as it keeps reading.
type Timeouts struct {
	// Header is how long a client has to send a request's header (ReadHeaderTimeout).
	Header time.Duration
	// Idle is how long a keep-alive connection may wait for its next request (IdleTimeout).
	Idle time.Duration
	// Stall is how long a response may go without progress: the deadline of each write of at
	// most stallChunk bytes. A client that reads nothing for this long is dropped; one that
	// reads less than stallChunk per Stall (1 KiB/s for the defaults) is too. A request body
	// (the boot reports' POSTs) must arrive whole within Stall.
	Stall time.Duration
}

// DefaultTimeouts are the timeouts of a zero Options.Timeouts (each zero field takes its
// default).
var DefaultTimeouts = Timeouts{Header: 10 * time.Second, Idle: time.Minute, Stall: time.Minute}

// DefaultMaxConns is how many connections `ramboot serve` keeps open at most (LimitListener):
// with a regular file being served, each costs two file descriptors.
const DefaultMaxConns = 1024

// stallChunk is the most a response writes under one deadline: a write of more would need a
// faster client to finish within Timeouts.Stall.
const stallChunk = 64 << 10

func (t Timeouts) withDefaults() Timeouts {
	if t.Header <= 0 {
		t.Header = DefaultTimeouts.Header
	}
	if t.Idle <= 0 {
		t.Idle = DefaultTimeouts.Idle
	}
	if t.Stall <= 0 {
		t.Stall = DefaultTimeouts.Stall
	}
	return t
}

// Server returns an http.Server for h with the header and idle timeouts of its Options
// (Handler.ServeHTTP applies the stall timeout itself). There is no WriteTimeout, which would
// bound whole responses and so cut slow downloads of large images. errorLog may be nil.
func (h *Handler) Server(errorLog *log.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: h.timeouts.Header,
		IdleTimeout:       h.timeouts.Idle,
		ErrorLog:          errorLog,
	}
}

// stallWriter gives every write of a response a fresh write deadline, Timeouts.Stall from
// its start, so that a response ends (and its connection is closed) when the client stops
// reading, however long the whole download takes. Writes are split into stallChunk pieces.
type stallWriter struct {
	http.ResponseWriter
	rc    *http.ResponseController
	stall time.Duration
}

func newStallWriter(w http.ResponseWriter, stall time.Duration) *stallWriter {
	sw := &stallWriter{ResponseWriter: w, rc: http.NewResponseController(w), stall: stall}
	sw.extend()
	return sw
}

// extend moves the write deadline to stall from now. Where the connection has no deadlines
// (http.ErrNotSupported, a ResponseRecorder) there is nothing to do.
func (w *stallWriter) extend() {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.stall))
}

func (w *stallWriter) Write(p []byte) (int, error) {
	var n int
	for len(p) > 0 {
		c := p[:min(len(p), stallChunk)]
		w.extend()
		m, err := w.ResponseWriter.Write(c)
		n += m
		if err != nil {
			return n, err
		}
		p = p[m:]
	}
	return n, nil
}

// ReadFrom keeps the sendfile path of file bodies (ServeContent hands over an
// *io.LimitedReader of the *os.File, which net's sendfile unwraps one level of), a chunk at a
// time.
func (w *stallWriter) ReadFrom(r io.Reader) (int64, error) {
	rf, ok := w.ResponseWriter.(io.ReaderFrom)
	if !ok {
		return io.Copy(struct{ io.Writer }{w}, r)
	}
	src, lr := r, (*io.LimitedReader)(nil)
	if l, ok := r.(*io.LimitedReader); ok {
		src, lr = l.R, l
	}
	var total int64
	for {
		n := int64(stallChunk)
		if lr != nil {
			n = min(n, lr.N)
		}
		if n <= 0 {
			return total, nil
		}
		w.extend()
		m, err := rf.ReadFrom(&io.LimitedReader{R: src, N: n})
		total += m
		if lr != nil {
			lr.N -= m
		}
		if err != nil || m < n { // m < n without an error: src is at its end
			return total, err
		}
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *stallWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// LimitListener returns a listener that has at most n accepted connections open at once:
// Accept waits for one of them to close, and the clients beyond wait in the kernel's listen
// backlog. With the timeouts, it bounds the file descriptors a crowd of idle or stalled
// clients can hold.
func LimitListener(ln net.Listener, n int) net.Listener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), closed: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	slots     chan struct{} // one element per open connection
	closed    chan struct{}
	closeOnce sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.closed:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, l: l}, nil
}

// Close closes the listener and ends an Accept waiting for a slot.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// limitConn gives back its slot when closed (once, however often Close is called).
type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { <-c.l.slots })
	return err
}

// ReadFrom and CloseWrite pass through to a *net.TCPConn: net/http uses them for sendfile
// and for a graceful close, and an embedded net.Conn hides them.
func (c *limitConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
