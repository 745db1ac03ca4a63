// Package stack grows a new goroutine's stack ahead of a deep call.
package stack

// Ahead grows the calling goroutine's stack, while it is shallow, to what
// sending a request takes (ferry's, resty's and net/http's frames: between
// 8 and 16 KiB). Left to grow where the request is sent, the runtime
// copies every frame above that point, once per goroutine: 2-3% of the
// Port path's CPU for the runner's chains, about 1% for the Port sink's
// bulk requests. Here it copies one frame.
//
//go:noinline
func Ahead() byte {
	var frame [aheadBytes]byte
	return lastByte(frame[:])
}

// aheadBytes is a frame that takes a goroutine's stack to 16 KiB.
const aheadBytes = 12 << 10

//go:noinline
func lastByte(b []byte) byte { return b[len(b)-1] }
