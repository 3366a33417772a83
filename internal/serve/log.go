package serve

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// logWriter records the status and the body bytes of a response for the request log.
type logWriter struct {
	http.ResponseWriter
	code int // 0 until WriteHeader (or the first Write)
	n    int64
}

func (w *logWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *logWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

// ReadFrom keeps the underlying writer's sendfile path for file bodies.
func (w *logWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
	}
	w.n += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *logWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *logWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// logLine formats the request log line documented on Handler.ServeHTTP.
func logLine(r *http.Request, status int, n int64, d time.Duration) string {
	line := fmt.Sprintf("%s %s %s %d %d %s", r.RemoteAddr, r.Method, r.URL.RequestURI(), status, n, d.Round(time.Microsecond))
	if rng := r.Header.Get("Range"); rng != "" {
		line += " range=" + strings.Join(strings.Fields(rng), "")
	}
	return line
}
