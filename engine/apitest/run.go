package apitest

import "context"

// RunFromFile serves the fixture file at path (relative to the working
// directory, e.g. a testscript's $WORK) until ctx is done, then closes
// the server and returns nil. ready, if not nil, is called once with the
// base URL as soon as the server accepts requests. A fixture that does not
// load or validate is returned as an error before anything is served.
func RunFromFile(ctx context.Context, path string, ready func(url string), opts ...Option) error {
	s, err := StartFile(path, opts...)
	if err != nil {
		return err
	}
	defer s.Close()
	if ready != nil {
		ready(s.URL())
	}
	<-ctx.Done()
	return nil
}
