package kvc

// #include "bridge.h"
import "C"

import (
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// View is a zero-copy, read-only view of a pinned block shard. Its bytes
// stay valid and unchanged until Release, the pin's deadline or the cache's
// Close, whichever comes first; the slice Bytes returned must not be used
// after that. One goroutine at a time.
type View struct {
	ns   *Namespace
	mu   sync.Mutex
	v    C.kvc_view // zero once released; GUARDED_BY(mu)
	data []byte     // GUARDED_BY(mu)
}

// View pins (key, shard) and returns a view of its bytes. pinTimeout 0 is
// the cache's PinTimeout. A miss is an error matching ErrNotFound.
func (n *Namespace) View(key Key, shard uint32, pinTimeout time.Duration) (*View, error) {
	ms, err := millis32("pinTimeout", pinTimeout)
	if err != nil {
		return nil, err
	}
	h, err := n.enter()
	if err != nil {
		return nil, err
	}
	defer n.leave()
	v := &View{ns: n}
	var e C.kvc_error
	if err := check(C.kvc_view_acquire(h, &v.v, keyPtr(&key), C.uint32_t(shard), ms, &e), &e); err != nil {
		return nil, err
	}
	v.data = unsafe.Slice((*byte)(v.v.data), int(v.v.len))
	runtime.SetFinalizer(v, (*View).Release)
	return v, nil
}

// Bytes is the view's bytes, over the cache's memory (no copy); nil after
// Release. Read-only: do not write to it.
func (v *View) Bytes() []byte {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.data
}

// Len is the number of bytes viewed (0 after Release).
func (v *View) Len() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.data)
}

// Release releases the pin; the bytes must not be used afterwards.
// Releasing twice, or after the pin's deadline, is an error of code
// CodeInvalidArgument, as in C.
func (v *View) Release() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.v.id == 0 {
		return errorf(CodeInvalidArgument, "the view was already released")
	}
	runtime.SetFinalizer(v, nil)
	v.data = nil
	h, err := v.ns.enter()
	if err != nil {
		v.v = C.kvc_view{}
		return err
	}
	defer v.ns.leave()
	var e C.kvc_error
	return check(C.kvc_view_release(h, &v.v, &e), &e)
}
