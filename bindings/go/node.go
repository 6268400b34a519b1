package kvc

// #include "bridge.h"
import "C"

import (
	"encoding/json"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// NodeOptions configure ConnectNode. A zero field means the library's
// default (kvc_node_options in kvc.h); a nil *NodeOptions means all defaults.
type NodeOptions struct {
	// Tenant to act as and its credential; empty on a node without tenants.
	Tenant     string
	Credential string
	// ConnectTimeout bounds ConnectNode's wait for the node (default 2 s).
	ConnectTimeout time.Duration
	// Timeout is the deadline of every call (default 10 s).
	Timeout time.Duration
	// TLS over "host:port": the CA that signed the node's certificate (""
	// for plaintext), and this client's certificate and key when the node
	// asks for one (both or neither). Not used over "unix:".
	TLSCAPath   string
	TLSCertPath string
	TLSKeyPath  string
	// AdminToken is the node's admin token, for the tenant administration
	// calls and node-wide stats.
	AdminToken string
	// MaxRetries of an idempotent call (stats, match, get, delete) after
	// CodeUnavailable, within its deadline: 0 is the default (2), NoRetries
	// (or any negative number) none. Stores are never retried.
	MaxRetries int
}

// NoRetries as NodeOptions.MaxRetries retries nothing.
const NoRetries = -1

// Node is a connection to a kvc node (`kvc serve`, or a NodeServer): "host:
// port" over gRPC, "unix:PATH" over the same-host path, or a cluster
// ("peers:..." or "etcd://..."); docs/node.md and docs/cluster.md. Safe for
// concurrent use by any number of goroutines. Close it when done.
//
// Every block call names its namespace with a *NamespaceOptions, as
// OpenNamespace takes it; its Tenant, Credential, Salt, DefaultTTL and
// WriteMode must be unset (the connection's tenant applies; a TTL comes with
// each put), or the call fails with ErrInvalidArgument.
type Node struct {
	// mu is held shared by every call into C and exclusively by Close, so
	// the connection is never closed under a running call.
	mu sync.RWMutex
	n  *C.kvc_node // nil once closed; GUARDED_BY(mu)
}

var errNodeClosed = &Error{Code: CodeClosed, Message: "the node connection is closed"}

// cstrings allocates C strings and frees them all at once.
type cstrings []unsafe.Pointer

// get returns s in C memory, or NULL for "".
func (a *cstrings) get(s string) *C.char {
	if s == "" {
		return nil
	}
	p := C.CString(s)
	*a = append(*a, unsafe.Pointer(p))
	return p
}

func (a *cstrings) free() {
	for _, p := range *a {
		C.free(p)
	}
	*a = nil
}

// ConnectNode connects to the node at address. A node that cannot be
// reached within ConnectTimeout is an error matching ErrUnavailable; in a
// library built without gRPC every node call matches ErrUnsupported.
func ConnectNode(address string, opts *NodeOptions) (*Node, error) {
	var o C.kvc_node_options // Go memory holding only C pointers
	C.kvcgo_node_options_init(&o)
	var strs cstrings
	defer strs.free()
	if opts != nil {
		var err error
		if o.connect_timeout_ms, err = millis32("ConnectTimeout", opts.ConnectTimeout); err != nil {
			return nil, err
		}
		if o.timeout_ms, err = millis32("Timeout", opts.Timeout); err != nil {
			return nil, err
		}
		o.tenant = strs.get(opts.Tenant)
		o.credential = strs.get(opts.Credential)
		o.tls_ca_path = strs.get(opts.TLSCAPath)
		o.tls_cert_path = strs.get(opts.TLSCertPath)
		o.tls_key_path = strs.get(opts.TLSKeyPath)
		o.admin_token = strs.get(opts.AdminToken)
		switch {
		case opts.MaxRetries < 0:
			o.max_retries = C.KVC_NODE_NO_RETRIES
		case uint64(opts.MaxRetries) >= uint64(C.KVC_NODE_NO_RETRIES):
			return nil, errorf(CodeInvalidArgument, "MaxRetries %d is too large", opts.MaxRetries)
		default:
			o.max_retries = C.uint32_t(opts.MaxRetries)
		}
	}
	caddr := C.CString(address)
	defer C.free(unsafe.Pointer(caddr))
	var n *C.kvc_node
	var e C.kvc_error
	if err := check(C.kvc_node_connect(&n, caddr, &o, &e), &e); err != nil {
		return nil, err
	}
	node := &Node{n: n}
	runtime.SetFinalizer(node, (*Node).Close)
	return node, nil
}

// Close closes the connection; calls in flight finish first, later calls
// return errors of CodeClosed. Closing again does nothing and returns nil.
func (n *Node) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.n == nil {
		return nil
	}
	rc := C.kvc_node_close(n.n)
	n.n = nil
	runtime.SetFinalizer(n, nil)
	if rc != C.KVC_OK {
		return &Error{Code: Code(rc), Message: "closing the node connection"}
	}
	return nil
}

// enter holds n.mu shared and returns the live handle; leave releases it.
func (n *Node) enter() (*C.kvc_node, error) {
	n.mu.RLock()
	if n.n == nil {
		n.mu.RUnlock()
		return nil, errNodeClosed
	}
	return n.n, nil
}

func (n *Node) leave() { n.mu.RUnlock() }

// stringCall runs a C call that returns a string to free with
// kvc_string_free.
func (n *Node) stringCall(f func(h *C.kvc_node, out **C.char, e *C.kvc_error) C.int) (string, error) {
	h, err := n.enter()
	if err != nil {
		return "", err
	}
	defer n.leave()
	var out *C.char
	var e C.kvc_error
	if err := check(f(h, &out, &e), &e); err != nil {
		return "", err
	}
	defer C.kvc_string_free(out)
	return C.GoString(out), nil
}

// StatsJSON returns the node's stats as JSON (kvc_node_stats_json): with
// "scope": "tenant" (that tenant's own counters) when the connection acts
// as a tenant, "node" with the admin token or on a node without tenants.
func (n *Node) StatsJSON() (string, error) {
	return n.stringCall(func(h *C.kvc_node, out **C.char, e *C.kvc_error) C.int {
		return C.kvc_node_stats_json(h, out, e)
	})
}

// Stats is StatsJSON parsed.
func (n *Node) Stats() (map[string]interface{}, error) {
	js, err := n.StatsJSON()
	if err != nil {
		return nil, err
	}
	var out map[string]interface{}
	if err := json.Unmarshal([]byte(js), &out); err != nil {
		return nil, errorf(CodeInternal, "the node's stats are not a JSON object: %v", err)
	}
	return out, nil
}

// nsCall converts ns to C memory, holds the connection and runs f.
func (n *Node) nsCall(ns *NamespaceOptions, f func(h *C.kvc_node, co *C.kvc_namespace_options) error) error {
	// kvc.h: these must be unset on a node call; libkvc ignores them, so a
	// TTL or write mode that would silently not apply is refused here.
	if ns != nil && ns.DefaultTTL != 0 {
		return errorf(CodeInvalidArgument, "NamespaceOptions.DefaultTTL must be 0 on a node call: pass StoreOptions.TTL with each put")
	}
	if ns != nil && ns.WriteMode != 0 {
		return errorf(CodeInvalidArgument, "NamespaceOptions.WriteMode must be 0 on a node call: the node's write mode applies")
	}
	co, free, err := ns.toC()
	if err != nil {
		return err
	}
	defer free()
	h, err := n.enter()
	if err != nil {
		return err
	}
	defer n.leave()
	return f(h, co)
}

// Match returns how many leading blocks of the chain keys the node holds
// (all shards committed, not expired, current epoch) and the tier of each.
// A miss is 0, not an error.
func (n *Node) Match(ns *NamespaceOptions, keys []Key) (blocks int, tiers []Tier, err error) {
	tiers = make([]Tier, len(keys))
	var tp *C.uint8_t
	if len(keys) > 0 {
		tp = (*C.uint8_t)(unsafe.Pointer(&tiers[0]))
	}
	var got C.size_t
	err = n.nsCall(ns, func(h *C.kvc_node, co *C.kvc_namespace_options) error {
		var e C.kvc_error
		return check(C.kvc_node_match(h, &got, tp, co, keysPtr(keys), C.size_t(len(keys)), &e), &e)
	})
	if err != nil {
		return 0, nil, err
	}
	return int(got), tiers[:int(got)], nil
}

// MatchTokens has the node hash tokens and match the keys of their full
// blocks. It returns the match length in blocks, the tier of each matched
// block, and every full block's key (to get and put without hashing again).
func (n *Node) MatchTokens(ns *NamespaceOptions, tokens []uint32) (blocks int, tiers []Tier, keys []Key, err error) {
	if ns == nil {
		return 0, nil, nil, errorf(CodeInvalidArgument, "namespace options are nil")
	}
	nkeys := 0
	if ns.BlockTokens > 0 {
		nkeys = len(tokens) / int(ns.BlockTokens)
	}
	keys = make([]Key, nkeys)
	tiers = make([]Tier, nkeys)
	tp := (*C.uint8_t)(unsafe.Pointer(&noByte[0]))
	if nkeys > 0 {
		tp = (*C.uint8_t)(unsafe.Pointer(&tiers[0]))
	}
	var got C.size_t
	err = n.nsCall(ns, func(h *C.kvc_node, co *C.kvc_namespace_options) error {
		var e C.kvc_error
		return check(C.kvc_node_match_tokens(h, &got, tp, keysPtr(keys), C.size_t(nkeys), co,
			tokensPtr(tokens), C.size_t(len(tokens)), &e), &e)
	})
	if err != nil {
		return 0, nil, nil, err
	}
	return int(got), tiers[:int(got)], keys, nil
}

// Get copies the block shard (key, shard) into dst, which must hold at
// least its size, and returns that size. A miss is an error matching
// ErrNotFound; a dst too small is one matching ErrLayout, with the size
// returned. The bytes go straight into dst, without a copy in Go.
func (n *Node) Get(ns *NamespaceOptions, key Key, shard uint32, dst []byte) (int, error) {
	return n.get(ns, key, shard, bytesPtr(dst), len(dst))
}

// GetSize returns the size of the block shard (key, shard) without its
// bytes; a miss is an error matching ErrNotFound.
func (n *Node) GetSize(ns *NamespaceOptions, key Key, shard uint32) (int, error) {
	return n.get(ns, key, shard, nil, 0)
}

// GetBytes returns the block shard (key, shard) in a new slice. It asks the
// node twice (the size, then the bytes); an engine that knows its shard
// size passes its own buffer to Get.
func (n *Node) GetBytes(ns *NamespaceOptions, key Key, shard uint32) ([]byte, error) {
	size, err := n.GetSize(ns, key, shard)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	got, err := n.Get(ns, key, shard, buf)
	if err != nil {
		return nil, err
	}
	return buf[:got], nil
}

func (n *Node) get(ns *NamespaceOptions, key Key, shard uint32, data unsafe.Pointer, size int) (int, error) {
	var got C.size_t
	err := n.nsCall(ns, func(h *C.kvc_node, co *C.kvc_namespace_options) error {
		var e C.kvc_error
		return check(C.kvcgo_node_get(h, &got, co, keyPtr(&key), C.uint32_t(shard), data,
			C.size_t(size), &e), &e)
	})
	return int(got), err
}

// Put stores the block shard (key, shard) from src (exactly the namespace's
// shard bytes), two-phase on the node: it is visible once all of its bytes
// arrived. Of opts only TTL and Parent are used. A block already there is
// an error matching ErrExists; ErrPending, ErrNoSpace and ErrQuota as for
// Namespace.Store. Stores are not retried.
func (n *Node) Put(ns *NamespaceOptions, key Key, shard uint32, src []byte, opts *StoreOptions) error {
	a, err := opts.args()
	if err != nil {
		return err
	}
	return n.nsCall(ns, func(h *C.kvc_node, co *C.kvc_namespace_options) error {
		var e C.kvc_error
		return check(C.kvcgo_node_put(h, co, keyPtr(&key), C.uint32_t(shard), bytesPtr(src),
			C.size_t(len(src)), a.c, a.parent, &e), &e)
	})
}

// MaxNodeBatch is the most items one GetBatch or PutBatch may carry.
const MaxNodeBatch = C.KVC_NODE_MAX_BATCH

// NodeItem is one block shard of a GetBatch or PutBatch.
type NodeItem struct {
	Key Key
	// Buf is the item's bytes, a sub-slice of the batch's buffer: the
	// destination of a get (nil asks for the size only; a hit is written
	// whole, a miss leaves it as it was) or the source of a put (exactly
	// the namespace's shard bytes).
	Buf []byte
	// Parent is the block's parent (put; prefix-aware eviction), or nil.
	Parent *Key
	// Len is, after a get, the block shard's size (also when Buf was too
	// small).
	Len int
	// Err is, after the call, this item's outcome as Get or Put alone would
	// have given it: nil, ErrNotFound, ErrLayout (Buf too small), ErrExists,
	// ErrPending, ErrQuota, ... or the call's own failure for an item the
	// node did not answer.
	Err error
}

// GetBatch gets every item of namespace ns, shard shard, in one request
// (at most MaxNodeBatch items; over gRPC one stream, on the same-host path
// one round trip). Each item's Buf must be nil or a sub-slice of buf (the
// engine's staging memory), which goes to C without a copy. It returns nil
// when the node answered for every item, whose Err and Len then say what
// was found: a miss is not an error of the call. Any other return is the
// call's failure, which the items it did not reach carry too.
func (n *Node) GetBatch(ns *NamespaceOptions, shard uint32, buf []byte, items []NodeItem) error {
	return n.batch(false, ns, shard, buf, items, storeArgs{})
}

// PutBatch stores every item in one request, each two-phase on its own as
// Put: an item's Err is nil when stored, ErrExists when already there, ...
// (not an error of the call). opts gives every item's TTL; its Parent is not
// used (each item has its own). Each item's Buf must be a sub-slice of buf.
// On the call's failure the items stored before it are kept, with Err nil.
// Stores are not retried.
func (n *Node) PutBatch(ns *NamespaceOptions, shard uint32, buf []byte, items []NodeItem, opts *StoreOptions) error {
	a, err := opts.args()
	if err != nil {
		return err
	}
	return n.batch(true, ns, shard, buf, items, a)
}

// batch describes items to C with offsets into buf: a Go struct holding a
// pointer may not be passed to C, nor a Go pointer stored in C memory from
// Go, so bridge.h builds the kvc_node_item array in C memory from buf's
// first byte and the offsets, for the duration of the call.
func (n *Node) batch(put bool, ns *NamespaceOptions, shard uint32, buf []byte, items []NodeItem, a storeArgs) error {
	if len(items) > MaxNodeBatch {
		return errorf(CodeInvalidArgument, "a batch of %d items is more than MaxNodeBatch (%d)", len(items), MaxNodeBatch)
	}
	gi := make([]C.kvcgo_node_item, len(items)+1) // +1: never empty
	base := uintptr(bytesPtr(buf))
	for i := range items {
		it := &items[i]
		g := &gi[i]
		*(*Key)(unsafe.Pointer(&g.key)) = it.Key
		if it.Parent != nil {
			*(*Key)(unsafe.Pointer(&g.parent)) = *it.Parent
			g.has_parent = 1
		}
		if it.Buf != nil {
			if len(it.Buf) > 0 {
				p := uintptr(unsafe.Pointer(&it.Buf[0]))
				if len(buf) == 0 || p < base || p+uintptr(len(it.Buf)) > base+uintptr(len(buf)) {
					return errorf(CodeInvalidArgument, "items[%d].Buf is not a sub-slice of the batch buffer (%d bytes)", i, len(buf))
				}
				g.off = C.size_t(p - base)
			}
			g.cap = C.size_t(len(it.Buf))
			g.has_buf = 1
		}
		g.len = C.size_t(it.Len)
	}
	var putFlag C.int
	if put {
		putFlag = 1
	}
	err := n.nsCall(ns, func(h *C.kvc_node, co *C.kvc_namespace_options) error {
		var e C.kvc_error
		rc := C.kvcgo_node_batch(h, putFlag, co, C.uint32_t(shard), &gi[0], C.size_t(len(items)),
			(*C.uint8_t)(bytesPtr(buf)), a.c, &e)
		for i := range items {
			items[i].Len = int(gi[i].len)
			items[i].Err = statusError(gi[i].status)
		}
		return check(rc, &e)
	})
	runtime.KeepAlive(buf)
	return err
}

// Delete removes every shard of the block key on the node; a block that
// was not there is an error matching ErrNotFound.
func (n *Node) Delete(ns *NamespaceOptions, key Key) error {
	return n.nsCall(ns, func(h *C.kvc_node, co *C.kvc_namespace_options) error {
		var e C.kvc_error
		return check(C.kvc_node_delete(h, co, keyPtr(&key), &e), &e)
	})
}

// BumpRevision makes every block of ns stored so far invisible on the node
// and returns the namespace's new epoch.
func (n *Node) BumpRevision(ns *NamespaceOptions) (uint64, error) {
	var epoch C.uint64_t
	err := n.nsCall(ns, func(h *C.kvc_node, co *C.kvc_namespace_options) error {
		var e C.kvc_error
		return check(C.kvc_node_bump_revision(h, co, &epoch, &e), &e)
	})
	return uint64(epoch), err
}

// CreateTenant adds a tenant to the node's tenants file, applied at once,
// and returns its new credential, shown this once. Tenant administration
// needs NodeOptions.AdminToken (ErrPermission otherwise) and a node with a
// tenants file (ErrUnsupported otherwise); a taken name matches ErrExists.
func (n *Node) CreateTenant(opts *TenantOptions) (credential string, err error) {
	o, free, err := opts.toC()
	if err != nil {
		return "", err
	}
	defer free()
	return n.stringCall(func(h *C.kvc_node, out **C.char, e *C.kvc_error) C.int {
		return C.kvc_node_tenant_create(h, out, o, e)
	})
}

// TenantsJSON lists the node's tenants as a JSON array (no secrets).
func (n *Node) TenantsJSON() (string, error) {
	return n.stringCall(func(h *C.kvc_node, out **C.char, e *C.kvc_error) C.int {
		return C.kvc_node_tenant_list_json(h, out, e)
	})
}

// Tenants is TenantsJSON parsed.
func (n *Node) Tenants() ([]map[string]interface{}, error) {
	js, err := n.TenantsJSON()
	if err != nil {
		return nil, err
	}
	var out []map[string]interface{}
	if err := json.Unmarshal([]byte(js), &out); err != nil {
		return nil, errorf(CodeInternal, "the node's tenant list is not a JSON array: %v", err)
	}
	return out, nil
}

// SetTenantQuota changes the quotas of tenant name on the node, applied to
// its tiers at once; an unknown name matches ErrNotFound.
func (n *Node) SetTenantQuota(name string, q QuotaChange) error {
	host, ssd, borrow, err := q.args()
	if err != nil {
		return err
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	h, err := n.enter()
	if err != nil {
		return err
	}
	defer n.leave()
	var e C.kvc_error
	return check(C.kvc_node_tenant_set_quota(h, cname, host, ssd, borrow, &e), &e)
}

// DeleteTenant removes tenant name from the node: its requests are refused
// from then on and its blocks reclaimed. An unknown name matches
// ErrNotFound.
func (n *Node) DeleteTenant(name string) error {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	h, err := n.enter()
	if err != nil {
		return err
	}
	defer n.leave()
	var e C.kvc_error
	return check(C.kvc_node_tenant_delete(h, cname, &e), &e)
}
