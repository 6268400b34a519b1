// Package kvc is the Go binding of kvc, a tiered KV cache for LLM inference.
//
// It is built with cgo on the C ABI (kvc.h) and on nothing else; the library
// is found with pkg-config (`pkg-config kvc`). See docs/bindings-go.md.
//
// Handles (Cache, Namespace, Reservation, View, Node, NodeServer) are
// released explicitly: Close, Commit/Abort, Release and Stop. Finalizers
// exist as a safety net only.
// Using a closed handle returns an error whose code is CodeClosed, never a
// crash. Errors are *Error values carrying the C status code and the call's
// message; compare them with errors.Is against the sentinels (ErrNotFound,
// ErrPending, ...).
//
// Node is a client of a kvc node (`kvc serve`, over gRPC, over the
// same-host "unix:" path, or a cluster); NodeServer runs a node in this
// process.
//
// Thread safety: a Cache and its Namespaces, and a Node, may be used from any number of
// goroutines at once. A Reservation and a View are used by one goroutine at
// a time (their methods lock, so misuse is an error, not a race in C).
//
// Byte slices are passed to C without copies: Load writes straight into the
// caller's slice, Store reads from it. A View's Bytes and a Reservation's
// Buffer are slices over the cache's own memory, valid until Release or
// Commit/Abort (and until the cache closes).
package kvc

// #cgo pkg-config: kvc
// #include "bridge.h"
import "C"

import (
	"strings"
	"unsafe"
)

// Version is the library's version, "MAJOR.MINOR.PATCH".
func Version() string { return C.GoString(C.kvc_version()) }

// VersionNumber is MAJOR*10000 + MINOR*100 + PATCH of the library.
func VersionNumber() int { return int(C.kvc_version_number()) }

// HeaderVersionNumber is the version number of the kvc.h this package was
// built against.
const HeaderVersionNumber = C.KVC_VERSION_NUMBER

// Feature is a bit of Features: an optional part compiled into the library.
type Feature uint32

// Features returns the optional parts compiled into the library.
func Features() Feature { return Feature(C.kvc_features()) }

// Has reports whether every bit of x is set in f.
func (f Feature) Has(x Feature) bool { return f&x == x }

// PolicyNames lists the eviction policies a cache may use.
func PolicyNames() []string {
	return strings.Split(C.GoString(C.kvc_policy_names()), ",")
}

// DefaultPolicy is the policy a tier uses when CacheOptions names none.
func DefaultPolicy() string { return C.GoString(C.kvc_policy_default()) }

// KeyBytes is the size of a block key.
const KeyBytes = C.KVC_KEY_BYTES

// Key is a block key (docs/hash-spec.md): 16 bytes naming a whole prefix.
type Key [KeyBytes]byte

// String is the key's 32 lowercase hex digits.
func (k Key) String() string {
	var out [33]C.char
	C.kvc_key_to_hex(keyPtr(&k), &out[0])
	return C.GoString(&out[0])
}

// ParseKey parses 32 hex digits.
func ParseKey(s string) (Key, error) {
	var k Key
	var e C.kvc_error
	cs := C.CString(s)
	defer C.free(unsafe.Pointer(cs))
	return k, check(C.kvc_key_from_hex(keyPtr(&k), cs, &e), &e)
}

func keyPtr(k *Key) *C.kvc_key { return (*C.kvc_key)(unsafe.Pointer(k)) }

// keysPtr points at keys[0], or at a dummy key when keys is empty (the C
// side then reports the length, not a NULL).
func keysPtr(keys []Key) *C.kvc_key {
	if len(keys) == 0 {
		return keyPtr(&noKey)
	}
	return keyPtr(&keys[0])
}

var (
	noKey    Key
	noToken  [1]C.uint32_t
	noByte   [1]byte
	noStatus [1]C.int32_t
)

func tokensPtr(tokens []uint32) *C.uint32_t {
	if len(tokens) == 0 {
		return &noToken[0]
	}
	return (*C.uint32_t)(unsafe.Pointer(&tokens[0]))
}

func bytesPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return unsafe.Pointer(&noByte[0])
	}
	return unsafe.Pointer(&b[0])
}

// HashKeys computes, without a cache, the seed and the block keys of tokens
// exactly as a namespace opened with opts would (kvc_hash_keys). A trailing
// partial block has no key; fewer tokens than a block give no keys.
func HashKeys(opts *NamespaceOptions, tokens []uint32) (seed Key, keys []Key, err error) {
	co, free, err := opts.toC()
	if err != nil {
		return seed, nil, err
	}
	defer free()
	n := 0
	if opts.BlockTokens > 0 {
		n = len(tokens) / int(opts.BlockTokens)
	}
	keys = make([]Key, n)
	var got C.size_t
	var e C.kvc_error
	rc := C.kvc_hash_keys(keyPtr(&seed), keysPtr(keys), C.size_t(n), &got, co,
		tokensPtr(tokens), C.size_t(len(tokens)), &e)
	if err := check(rc, &e); err != nil {
		return Key{}, nil, err
	}
	return seed, keys[:int(got)], nil
}

// Simulate runs the trace simulation of docs/sim.md (kvc_sim_run) over a
// Mooncake-format JSONL trace for each of policies (nil: every policy and
// "opt") and each capacity in blocks, and returns the JSON array of rows.
func Simulate(tracePath string, policies []string, capacities []uint64) (string, error) {
	cpath := C.CString(tracePath)
	defer C.free(unsafe.Pointer(cpath))
	var cpol *C.char
	if policies != nil {
		cpol = C.CString(strings.Join(policies, ","))
		defer C.free(unsafe.Pointer(cpol))
	}
	var caps *C.uint64_t
	if len(capacities) > 0 {
		caps = (*C.uint64_t)(unsafe.Pointer(&capacities[0]))
	}
	var out *C.char
	var e C.kvc_error
	rc := C.kvc_sim_run(&out, cpath, cpol, caps, C.size_t(len(capacities)), &e)
	if err := check(rc, &e); err != nil {
		return "", err
	}
	defer C.kvc_string_free(out)
	return C.GoString(out), nil
}
