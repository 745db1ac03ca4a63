package humanitec

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Running is a [Server] listening on a real (loopback by default) socket.
// Its methods Requests, ResetRequests and Update come from the embedded
// Server.
type Running struct {
	*Server
	url   string
	hs    *http.Server
	done  chan error // receives Serve's result once
	stop  func() bool
	once  sync.Once
	close error
}

// Start serves org on opts.Addr (127.0.0.1:0 when empty) until Close is
// called or ctx is done. The CLI's --demo mode uses it:
//
//	srv, err := humanitec.Start(ctx, humanitec.Generate(1, humanitec.Demo()), humanitec.Options{})
//	if err != nil { ... }
//	defer srv.Close()
//	baseURL := srv.URL() // token: humanitec.DefaultToken, org: humanitec.DemoOrgID
func Start(ctx context.Context, org *Org, opts Options) (*Running, error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	s := NewServer(org, opts)
	rn := &Running{
		Server: s,
		url:    "http://" + ln.Addr().String(),
		hs:     &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second},
		done:   make(chan error, 1),
	}
	go func() { rn.done <- rn.hs.Serve(ln) }()
	rn.stop = context.AfterFunc(ctx, func() { _ = rn.hs.Close() })
	return rn, nil
}

// URL is the base URL to give clients, e.g. http://127.0.0.1:38211; API
// paths start with /orgs/... below it.
func (rn *Running) URL() string { return rn.url }

// Close stops the listener and every open connection and waits for the
// serving goroutine. Later calls return the first call's result.
func (rn *Running) Close() error {
	rn.once.Do(func() {
		rn.stop()
		err := rn.hs.Close()
		if serr := <-rn.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = fmt.Errorf("serve: %w", serr)
		}
		rn.close = err
	})
	return rn.close
}
