// Package statuswriter remembers the status code a handler wrote, for the
// request logs of ferry's simulators.
package statuswriter

import "net/http"

// Writer wraps a ResponseWriter; Status is 0 until something is written.
type Writer struct {
	http.ResponseWriter
	Status int
}

// WriteHeader records the first status.
func (w *Writer) WriteHeader(code int) {
	if w.Status == 0 {
		w.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200.
func (w *Writer) Write(b []byte) (int, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}
