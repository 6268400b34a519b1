package kvc

// #include "bridge.h"
import "C"

import (
	"context"
	"errors"
	"math"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"
)

// NamespaceOptions name a namespace: the blocks that are interchangeable.
// Empty strings and zero numbers mean the library's default where kvc.h has
// one (Hash, Shards, DefaultTTL); the other fields are required.
type NamespaceOptions struct {
	Hash        string // "sha256" (the default) or "xxh3-128"
	Model       string // required
	Revision    string // weights revision; required
	Adapter     string // LoRA id and revision; "" for none
	DType       string // fp32 fp16 bf16 fp8_e4m3 fp8_e5m2 int8
	Layers      uint32
	KVHeads     uint32
	HeadDim     uint32
	BlockTokens uint32
	Shards      uint32 // tensor-parallel shards; KVHeads % Shards == 0
	Salt        []byte // may be empty; must be for an isolated tenant
	DefaultTTL  time.Duration
	// Tenant to act as, and its credential (CreateTenant); required in a
	// cache opened with TenantsPath, empty otherwise.
	Tenant     string
	Credential string
	// WriteMode: how stores reach the SSD tier (WriteBack by default).
	WriteMode WriteMode
}

// toC builds the options in C memory (they hold pointers to strings, which
// Go memory may not hand to C inside a struct); free releases everything.
func (o *NamespaceOptions) toC() (*C.kvc_namespace_options, func(), error) {
	if o == nil {
		return nil, func() {}, errorf(CodeInvalidArgument, "namespace options are nil")
	}
	ttl, err := millis("DefaultTTL", o.DefaultTTL, math.MaxUint64/uint64(time.Millisecond))
	if err != nil {
		return nil, func() {}, err
	}
	co := (*C.kvc_namespace_options)(C.calloc(1, C.sizeof_kvc_namespace_options))
	if co == nil {
		return nil, func() {}, errorf(CodeNoMemory, "out of memory for namespace options")
	}
	C.kvcgo_namespace_options_init(co)
	var allocs []unsafe.Pointer
	str := func(s string) *C.char {
		p := C.CString(s)
		allocs = append(allocs, unsafe.Pointer(p))
		return p
	}
	free := func() {
		for _, p := range allocs {
			C.free(p)
		}
		C.free(unsafe.Pointer(co))
	}
	if o.Hash != "" {
		co.hash = str(o.Hash)
	}
	co.model = str(o.Model)
	co.revision = str(o.Revision)
	co.adapter = str(o.Adapter)
	co.dtype = str(o.DType)
	co.layers = C.uint32_t(o.Layers)
	co.kv_heads = C.uint32_t(o.KVHeads)
	co.head_dim = C.uint32_t(o.HeadDim)
	co.block_tokens = C.uint32_t(o.BlockTokens)
	co.shards = C.uint32_t(o.Shards)
	if len(o.Salt) > 0 {
		p := C.CBytes(o.Salt)
		allocs = append(allocs, p)
		co.salt = (*C.uint8_t)(p)
		co.salt_len = C.size_t(len(o.Salt))
	}
	co.default_ttl_ms = C.uint64_t(ttl)
	if o.Tenant != "" {
		co.tenant = str(o.Tenant)
	}
	if o.Credential != "" {
		co.credential = str(o.Credential)
	}
	co.write_mode = C.uint32_t(o.WriteMode)
	return co, free, nil
}

// Namespace is an open namespace of a Cache. Safe for concurrent use.
type Namespace struct {
	cache  *Cache
	ns     *C.kvc_namespace
	closed atomic.Bool

	shardBytes  int // bytes of one block shard: what Load and Store move
	blockTokens int
}

// OpenNamespace opens (or joins) a namespace. Opening equal options twice
// gives two handles on one namespace.
func (c *Cache) OpenNamespace(opts *NamespaceOptions) (*Namespace, error) {
	co, free, err := opts.toC()
	if err != nil {
		return nil, err
	}
	defer free()
	h, err := c.enter()
	if err != nil {
		return nil, err
	}
	defer c.leave()
	var ns *C.kvc_namespace
	var e C.kvc_error
	if err := check(C.kvc_namespace_open(&ns, h, co, &e), &e); err != nil {
		return nil, err
	}
	var info C.kvc_namespace_info
	C.kvcgo_namespace_info_init(&info)
	if err := check(C.kvc_namespace_info_get(ns, &info, &e), &e); err != nil {
		C.kvc_namespace_close(ns)
		return nil, err
	}
	n := &Namespace{cache: c, ns: ns, shardBytes: int(info.shard_bytes), blockTokens: int(info.block_tokens)}
	runtime.SetFinalizer(n, (*Namespace).Close)
	return n, nil
}

// Close closes this handle; the namespace's blocks stay cached. Release
// views of it first: a view's pin cannot be released through a closed
// handle (it lapses at its deadline). Closing again does nothing.
func (n *Namespace) Close() error {
	n.cache.mu.RLock()
	defer n.cache.mu.RUnlock()
	if !n.closed.CompareAndSwap(false, true) {
		return nil
	}
	runtime.SetFinalizer(n, nil)
	if n.cache.c == nil {
		return nil // closed with its cache
	}
	if rc := C.kvc_namespace_close(n.ns); rc != C.KVC_OK {
		return &Error{Code: Code(rc), Message: "closing the namespace"}
	}
	return nil
}

// enter holds the cache shared and returns the live handle; leave after.
func (n *Namespace) enter() (*C.kvc_namespace, error) {
	if _, err := n.cache.enter(); err != nil {
		return nil, err
	}
	if n.closed.Load() {
		n.cache.leave()
		return nil, errNamespaceClosed
	}
	return n.ns, nil
}

func (n *Namespace) leave() { n.cache.leave() }

// Cache is the cache this namespace belongs to.
func (n *Namespace) Cache() *Cache { return n.cache }

// ShardBytes is the size of one block shard: what Load and Store move.
func (n *Namespace) ShardBytes() int { return n.shardBytes }

// BlockTokens is the number of tokens of one block.
func (n *Namespace) BlockTokens() int { return n.blockTokens }

// NamespaceInfo are facts about an open namespace.
type NamespaceInfo struct {
	Seed        Key    // hash of the namespace's canonical fields
	BlockBytes  uint64 // bytes of one block, all shards
	ShardBytes  uint64 // bytes of one shard of a block
	BlockTokens uint32
	Shards      uint32
	Epoch       uint64 // revision epoch, see BumpRevision
}

// Info returns facts about the namespace.
func (n *Namespace) Info() (NamespaceInfo, error) {
	h, err := n.enter()
	if err != nil {
		return NamespaceInfo{}, err
	}
	defer n.leave()
	var info C.kvc_namespace_info
	C.kvcgo_namespace_info_init(&info)
	var e C.kvc_error
	if err := check(C.kvc_namespace_info_get(h, &info, &e), &e); err != nil {
		return NamespaceInfo{}, err
	}
	out := NamespaceInfo{
		BlockBytes:  uint64(info.block_bytes),
		ShardBytes:  uint64(info.shard_bytes),
		BlockTokens: uint32(info.block_tokens),
		Shards:      uint32(info.shards),
		Epoch:       uint64(info.epoch),
	}
	copy(out.Seed[:], C.GoBytes(unsafe.Pointer(&info.seed), KeyBytes))
	return out, nil
}

// BumpRevision makes every block stored so far invisible at once and
// returns the new epoch.
func (n *Namespace) BumpRevision() (uint64, error) {
	h, err := n.enter()
	if err != nil {
		return 0, err
	}
	defer n.leave()
	var epoch C.uint64_t
	var e C.kvc_error
	if err := check(C.kvc_namespace_bump_revision(h, &epoch, &e), &e); err != nil {
		return 0, err
	}
	return uint64(epoch), nil
}

// Keys computes the keys of the full blocks of tokens. Fewer tokens than a
// block is an error of code CodeInvalidArgument.
func (n *Namespace) Keys(tokens []uint32) ([]Key, error) {
	h, err := n.enter()
	if err != nil {
		return nil, err
	}
	defer n.leave()
	keys := make([]Key, len(tokens)/n.blockTokens)
	var got C.size_t
	var e C.kvc_error
	rc := C.kvc_keys_compute(h, keysPtr(keys), C.size_t(len(keys)), &got, tokensPtr(tokens),
		C.size_t(len(tokens)), &e)
	if err := check(rc, &e); err != nil {
		return nil, err
	}
	return keys[:int(got)], nil
}

// Match returns how many leading blocks of the chain keys are present (all
// shards committed, not expired, current epoch). A miss is 0, not an error.
func (n *Namespace) Match(keys []Key) (int, error) {
	blocks, _, err := n.match(keys, false)
	return blocks, err
}

// MatchTiers is Match that also returns the tier holding each matched block.
func (n *Namespace) MatchTiers(keys []Key) (int, []Tier, error) {
	return n.match(keys, true)
}

func (n *Namespace) match(keys []Key, withTiers bool) (int, []Tier, error) {
	h, err := n.enter()
	if err != nil {
		return 0, nil, err
	}
	defer n.leave()
	var tiers []Tier
	var tp *C.uint8_t
	if withTiers && len(keys) > 0 {
		tiers = make([]Tier, len(keys))
		tp = (*C.uint8_t)(unsafe.Pointer(&tiers[0]))
	}
	var blocks C.size_t
	var e C.kvc_error
	if err := check(C.kvc_match(h, &blocks, tp, keysPtr(keys), C.size_t(len(keys)), &e), &e); err != nil {
		return 0, nil, err
	}
	if tiers != nil {
		tiers = tiers[:int(blocks)]
	}
	return int(blocks), tiers, nil
}

// MatchTokens hashes tokens and matches the keys of their full blocks. It
// returns the match length in blocks and the keys, so that the caller can
// load and store without hashing again.
func (n *Namespace) MatchTokens(tokens []uint32) (int, []Key, error) {
	h, err := n.enter()
	if err != nil {
		return 0, nil, err
	}
	defer n.leave()
	keys := make([]Key, len(tokens)/n.blockTokens)
	var blocks C.size_t
	var e C.kvc_error
	rc := C.kvc_match_tokens(h, &blocks, nil, keysPtr(keys), C.size_t(len(keys)), tokensPtr(tokens),
		C.size_t(len(tokens)), &e)
	if err := check(rc, &e); err != nil {
		return 0, nil, err
	}
	return int(blocks), keys, nil
}

// MatchBatch matches several chains at once and returns each match length.
func (n *Namespace) MatchBatch(lists [][]Key) ([]int, error) {
	total := 0
	for _, l := range lists {
		total += len(l)
	}
	flat := make([]Key, 0, total)
	offsets := make([]C.size_t, 0, len(lists)+1)
	offsets = append(offsets, 0)
	for _, l := range lists {
		flat = append(flat, l...)
		offsets = append(offsets, C.size_t(len(flat)))
	}
	out := make([]C.size_t, len(lists)+1)
	h, err := n.enter()
	if err != nil {
		return nil, err
	}
	defer n.leave()
	var e C.kvc_error
	if err := check(C.kvc_match_batch(h, &out[0], keysPtr(flat), &offsets[0], C.size_t(len(lists)), &e), &e); err != nil {
		return nil, err
	}
	res := make([]int, len(lists))
	for i := range res {
		res[i] = int(out[i])
	}
	return res, nil
}

// StoreOptions tune a store. A nil *StoreOptions means all defaults.
type StoreOptions struct {
	// TTL from commit; 0: the namespace's DefaultTTL.
	TTL time.Duration
	// ReservationTimeout is the reservation's deadline; 0: the cache's.
	ReservationTimeout time.Duration
	// Parent is the key of the block before this one in its chain, for
	// prefix-aware eviction; nil if unknown or first. In StoreBatch it is
	// the first block's parent (the batch links the others itself).
	Parent *Key
	// Durable (write-through namespaces): return only once the block is
	// durable on the SSD tier.
	Durable bool
}

// storeArgs are StoreOptions for C: scalars by value (the struct holds no
// pointer) and the parent key passed as its own argument.
type storeArgs struct {
	c      C.kvcgo_store_args
	parent *C.kvc_key
}

func (o *StoreOptions) args() (storeArgs, error) {
	if o == nil {
		return storeArgs{}, nil
	}
	ttl, err := millis("TTL", o.TTL, math.MaxUint64/uint64(time.Millisecond))
	if err != nil {
		return storeArgs{}, err
	}
	resv, err := millis32("ReservationTimeout", o.ReservationTimeout)
	if err != nil {
		return storeArgs{}, err
	}
	a := storeArgs{c: C.kvcgo_store_args{has: 1, ttl_ms: C.uint64_t(ttl), reservation_ms: resv}}
	if o.Durable {
		a.c.durable = 1
	}
	if o.Parent != nil {
		a.parent = keyPtr(o.Parent)
	}
	return a, nil
}

// Store stores one block shard: src must be exactly ShardBytes long. It
// returns an error matching ErrExists when the block is already committed
// and ErrPending when another writer holds it.
func (n *Namespace) Store(key Key, shard uint32, src []byte, opts *StoreOptions) error {
	a, err := opts.args()
	if err != nil {
		return err
	}
	h, err := n.enter()
	if err != nil {
		return err
	}
	defer n.leave()
	var e C.kvc_error
	rc := C.kvcgo_store(h, keyPtr(&key), C.uint32_t(shard), bytesPtr(src), C.size_t(len(src)),
		a.c, a.parent, &e)
	return check(rc, &e)
}

// split checks that buf holds len(keys) shards back to back.
func (n *Namespace) split(name string, keys []Key, buf []byte) error {
	if len(buf) != len(keys)*n.shardBytes {
		return errorf(CodeLayout, "%s is %d bytes but %d blocks of %d bytes need %d",
			name, len(buf), len(keys), n.shardBytes, len(keys)*n.shardBytes)
	}
	return nil
}

// StoreBatch stores the chain keys[i] from src[i*ShardBytes:(i+1)*ShardBytes]
// (src holds len(keys) shards back to back). Each block's parent is the key
// before it; opts.Parent is the first block's. statuses[i] is nil,
// ErrExists, ErrPending or the block's error; err is the first error other
// than those.
func (n *Namespace) StoreBatch(keys []Key, shard uint32, src []byte, opts *StoreOptions) (statuses []error, err error) {
	a, err := opts.args()
	if err != nil {
		return nil, err
	}
	if err := n.split("src", keys, src); err != nil {
		return nil, err
	}
	st := make([]C.int32_t, len(keys))
	sp := &noStatus[0]
	if len(st) > 0 {
		sp = &st[0]
	}
	h, err := n.enter()
	if err != nil {
		return nil, err
	}
	defer n.leave()
	var e C.kvc_error
	rc := C.kvcgo_store_batch(h, sp, keysPtr(keys), C.size_t(len(keys)), C.uint32_t(shard),
		(*C.uint8_t)(bytesPtr(src)), C.size_t(n.shardBytes), a.c, a.parent, &e)
	statuses = make([]error, len(keys))
	for i, s := range st {
		statuses[i] = statusError(s)
	}
	return statuses, check(rc, &e)
}

// Load copies a block shard into dst (exactly ShardBytes), pinning it for
// the copy. A miss is an error matching ErrNotFound.
func (n *Namespace) Load(key Key, shard uint32, dst []byte) error {
	h, err := n.enter()
	if err != nil {
		return err
	}
	defer n.leave()
	var e C.kvc_error
	rc := C.kvcgo_load(h, keyPtr(&key), C.uint32_t(shard), bytesPtr(dst), C.size_t(len(dst)), &e)
	return check(rc, &e)
}

// LoadBatch loads keys[i] into dst[i*ShardBytes:(i+1)*ShardBytes] (dst holds
// len(keys) shards back to back). loaded is the number of leading blocks
// loaded; statuses[i] is nil or the block's error (ErrNotFound on a miss).
// A miss is not an error of the call.
func (n *Namespace) LoadBatch(keys []Key, shard uint32, dst []byte) (loaded int, statuses []error, err error) {
	if err := n.split("dst", keys, dst); err != nil {
		return 0, nil, err
	}
	st := make([]C.int32_t, len(keys))
	sp := &noStatus[0]
	if len(st) > 0 {
		sp = &st[0]
	}
	h, err := n.enter()
	if err != nil {
		return 0, nil, err
	}
	defer n.leave()
	var got C.size_t
	var e C.kvc_error
	rc := C.kvcgo_load_batch(h, sp, &got, keysPtr(keys), C.size_t(len(keys)), C.uint32_t(shard),
		(*C.uint8_t)(bytesPtr(dst)), C.size_t(n.shardBytes), &e)
	if err := check(rc, &e); err != nil {
		return 0, nil, err
	}
	statuses = make([]error, len(keys))
	for i, s := range st {
		statuses[i] = statusError(s)
	}
	return int(got), statuses, nil
}

// Delete removes every shard of the block key. A block that was not there
// is an error matching ErrNotFound.
func (n *Namespace) Delete(key Key) error {
	h, err := n.enter()
	if err != nil {
		return err
	}
	defer n.leave()
	var e C.kvc_error
	return check(C.kvc_delete(h, keyPtr(&key), &e), &e)
}

// waitSlice bounds one wait in C, so that a cancelled context or a Close is
// noticed within it.
const waitSlice = 50 * time.Millisecond

// StoreWait waits until a pending (key, shard) is committed (nil) or aborted
// (ErrNotFound). It returns ctx.Err() once ctx is done: the context's
// deadline is passed down to C as the wait's timeout, and cancellation is
// noticed within 50 ms.
func (n *Namespace) StoreWait(ctx context.Context, key Key, shard uint32) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		wait := waitSlice
		if dl, ok := ctx.Deadline(); ok {
			if left := time.Until(dl); left < wait {
				wait = left
			}
		}
		if wait <= 0 {
			<-ctx.Done() // the deadline has passed; Done closes at once
			return ctx.Err()
		}
		ms, _ := millis32("wait", wait)
		err := n.storeWaitOnce(key, shard, ms)
		if !errors.Is(err, ErrTimeout) {
			return err
		}
	}
}

func (n *Namespace) storeWaitOnce(key Key, shard uint32, ms C.uint32_t) error {
	h, err := n.enter()
	if err != nil {
		return err
	}
	defer n.leave()
	var e C.kvc_error
	return check(C.kvc_store_wait(h, keyPtr(&key), C.uint32_t(shard), ms, &e), &e)
}

// Tier is where a matched block lives (kvc_tier).
type Tier uint8

// WriteMode is how a namespace's stores reach the SSD tier (kvc_write_mode).
type WriteMode uint32

// MissReason is why a lookup missed (kvc_miss_reason); Stats counts each.
type MissReason int
