//go:build !unix

package eval

import "time"

// cpuTime is not measured on this platform; the benchmark omits cpu-ns/op.
func cpuTime() time.Duration { return 0 }
