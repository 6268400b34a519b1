package kvc

// #include "bridge.h"
import "C"

import (
	"context"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// Reservation is the right to write one block shard (two-phase store). It
// ends with exactly one of Commit or Abort. One goroutine at a time.
type Reservation struct {
	ns  *Namespace
	mu  sync.Mutex
	res *C.kvc_reservation // nil once committed or aborted; GUARDED_BY(mu)
}

// BeginStore reserves (key, shard) for writing. It returns an error matching
// ErrExists when the block is already committed (skip the write) and
// ErrPending when another writer holds it (StoreWait, or skip). When ctx has
// a deadline and opts sets no ReservationTimeout, the reservation lives
// until that deadline; a done ctx fails at once with ctx.Err().
func (n *Namespace) BeginStore(ctx context.Context, key Key, shard uint32, opts *StoreOptions) (*Reservation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var o StoreOptions
	if opts != nil {
		o = *opts
	}
	if dl, ok := ctx.Deadline(); ok && o.ReservationTimeout == 0 {
		o.ReservationTimeout = time.Until(dl)
		if o.ReservationTimeout <= 0 {
			<-ctx.Done()
			return nil, ctx.Err()
		}
	}
	a, err := o.args()
	if err != nil {
		return nil, err
	}
	if opts == nil && o.ReservationTimeout == 0 {
		a.c.has = 0
	}
	h, err := n.enter()
	if err != nil {
		return nil, err
	}
	defer n.leave()
	var res *C.kvc_reservation
	var e C.kvc_error
	rc := C.kvcgo_store_begin(h, &res, keyPtr(&key), C.uint32_t(shard), a.c, a.parent, &e)
	if err := check(rc, &e); err != nil {
		return nil, err
	}
	r := &Reservation{ns: n, res: res}
	// A reservation dropped without Commit or Abort is aborted when
	// collected (and by its deadline in the library, whichever is first).
	runtime.SetFinalizer(r, (*Reservation).Abort)
	return r, nil
}

// enter locks r and the cache (shared) and returns the live reservation.
func (r *Reservation) enter() (*C.kvc_reservation, error) {
	r.mu.Lock()
	if r.res == nil {
		r.mu.Unlock()
		return nil, errorf(CodeInvalidArgument, "the reservation was already committed or aborted")
	}
	if _, err := r.ns.cache.enter(); err != nil {
		r.mu.Unlock()
		return nil, err
	}
	return r.res, nil
}

func (r *Reservation) leave() {
	r.ns.cache.leave()
	r.mu.Unlock()
}

// Buffer returns the reservation's writable buffer (ShardBytes of the
// cache's memory): fill it, then Commit. The slice is valid until Commit or
// Abort and must not be used after either.
func (r *Reservation) Buffer() ([]byte, error) {
	h, err := r.enter()
	if err != nil {
		return nil, err
	}
	defer r.leave()
	var b C.kvc_buf
	var e C.kvc_error
	if err := check(C.kvc_reservation_buffer(h, &b, &e), &e); err != nil {
		return nil, err
	}
	return unsafe.Slice((*byte)(b.data), int(b.len)), nil
}

// Write copies src (exactly ShardBytes) into the reservation's buffer.
func (r *Reservation) Write(src []byte) error {
	h, err := r.enter()
	if err != nil {
		return err
	}
	defer r.leave()
	var e C.kvc_error
	return check(C.kvcgo_reservation_write(h, bytesPtr(src), C.size_t(len(src)), &e), &e)
}

// Commit makes the block visible. It ends the reservation whatever the
// outcome; an error matching ErrTimeout means its deadline had passed.
func (r *Reservation) Commit() error {
	h, err := r.enter()
	if err != nil {
		r.release()
		return err
	}
	defer r.leave()
	r.res = nil
	runtime.SetFinalizer(r, nil)
	var e C.kvc_error
	return check(C.kvc_store_commit(h, &e), &e)
}

// Abort drops the reservation. Aborting after Commit or Abort, or after the
// cache closed, does nothing and returns nil.
func (r *Reservation) Abort() error {
	h, err := r.enter()
	if err != nil {
		r.release()
		return nil
	}
	defer r.leave()
	r.res = nil
	runtime.SetFinalizer(r, nil)
	if rc := C.kvc_store_abort(h); rc != C.KVC_OK {
		return &Error{Code: Code(rc), Message: "aborting the reservation"}
	}
	return nil
}

// release forgets a reservation whose cache is closed: the library dropped
// its block with the cache, and its small handle is not touched again.
func (r *Reservation) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res = nil
	runtime.SetFinalizer(r, nil)
}
