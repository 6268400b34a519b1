package kvc

// #include "bridge.h"
import "C"

import (
	"math"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// Prefault says whether a cache touches its arena's pages at open.
type Prefault uint32

// Prefault values (kvc_cache_options.prefault).
const (
	PrefaultDefault Prefault = 0 // the library's default
	PrefaultYes     Prefault = 1
	PrefaultNo      Prefault = 2
)

// CacheOptions configure Open. A zero field means the library's default
// (kvc.h documents each); a nil *CacheOptions means all defaults.
type CacheOptions struct {
	// HostCapacityBytes of host DRAM for blocks, allocated once at open.
	HostCapacityBytes uint64
	// HostPolicy is the host tier's eviction policy (PolicyNames).
	HostPolicy string
	// IndexShards is the number of index lock stripes.
	IndexShards uint32
	// Prefault: touch every page of the arena at open.
	Prefault Prefault
	// ReservationTimeout is how long an uncommitted reservation lives.
	ReservationTimeout time.Duration
	// PinTimeout is how long a view's pin lives unless released.
	PinTimeout time.Duration
	// MaintenanceInterval is the period of the maintenance thread.
	MaintenanceInterval time.Duration
	// TenantsPath is a tenants file (CreateTenant) or a directory holding
	// tenants.json; "" for none. When it names tenants, every namespace is
	// opened as one of them.
	TenantsPath string
	// SSDDir is the SSD tier's directory of segment files ("" for no SSD
	// tier); SSDCapacityBytes is required with it. SSDPolicy is its
	// eviction policy.
	SSDDir           string
	SSDCapacityBytes uint64
	SSDPolicy        string
}

// Cache is an embedded cache: namespaces, an index and a host-DRAM tier.
// Safe for concurrent use by any number of goroutines. Close it when done.
type Cache struct {
	// mu is held shared by every call into the C cache and exclusively by
	// Close, so the C cache is never closed under a running call.
	mu sync.RWMutex
	c  *C.kvc_cache // nil once closed; GUARDED_BY(mu)
}

// millis converts a duration option to whole milliseconds for C: 0 stays 0
// (the default), anything else rounds up so it never becomes the default.
func millis(name string, d time.Duration, max uint64) (uint64, error) {
	if d < 0 {
		return 0, errorf(CodeInvalidArgument, "%s is negative (%v)", name, d)
	}
	ms := uint64((d + time.Millisecond - 1) / time.Millisecond)
	if ms > max {
		return 0, errorf(CodeInvalidArgument, "%s %v is longer than the %d ms kvc.h allows", name, d, max)
	}
	return ms, nil
}

func millis32(name string, d time.Duration) (C.uint32_t, error) {
	ms, err := millis(name, d, math.MaxUint32)
	return C.uint32_t(ms), err
}

// fill sets o (initialised with KVC_CACHE_OPTIONS_INIT) from opts (nil:
// the defaults); cstr allocates the strings in C memory.
func (opts *CacheOptions) fill(o *C.kvc_cache_options, cstr func(string) *C.char) error {
	if opts == nil {
		return nil
	}
	var err error
	if o.reservation_timeout_ms, err = millis32("ReservationTimeout", opts.ReservationTimeout); err != nil {
		return err
	}
	if o.pin_timeout_ms, err = millis32("PinTimeout", opts.PinTimeout); err != nil {
		return err
	}
	if o.maintenance_interval_ms, err = millis32("MaintenanceInterval", opts.MaintenanceInterval); err != nil {
		return err
	}
	o.host_capacity_bytes = C.uint64_t(opts.HostCapacityBytes)
	o.index_shards = C.uint32_t(opts.IndexShards)
	o.prefault = C.uint32_t(opts.Prefault)
	o.host_policy = cstr(opts.HostPolicy)
	o.tenants_path = cstr(opts.TenantsPath)
	o.ssd_dir = cstr(opts.SSDDir)
	o.ssd_capacity_bytes = C.uint64_t(opts.SSDCapacityBytes)
	o.ssd_policy = cstr(opts.SSDPolicy)
	return nil
}

// Open creates a cache. opts may be nil.
func Open(opts *CacheOptions) (*Cache, error) {
	var o C.kvc_cache_options
	C.kvcgo_cache_options_init(&o)
	// The options struct lives in Go memory: it holds only C pointers.
	var allocs []*C.char
	defer func() {
		for _, p := range allocs {
			C.free(unsafe.Pointer(p))
		}
	}()
	cstr := func(s string) *C.char {
		if s == "" {
			return nil
		}
		p := C.CString(s)
		allocs = append(allocs, p)
		return p
	}
	if err := opts.fill(&o, cstr); err != nil {
		return nil, err
	}
	var c *C.kvc_cache
	var e C.kvc_error
	if err := check(C.kvc_cache_open(&c, &o, &e), &e); err != nil {
		return nil, err
	}
	cache := &Cache{c: c}
	runtime.SetFinalizer(cache, (*Cache).Close)
	return cache, nil
}

// Close closes the cache and frees its memory. It waits for calls in flight
// on the cache and its namespaces; afterwards they return errors of code
// CodeClosed. Namespaces are closed with it; views' bytes and reservations'
// buffers become invalid. Closing again does nothing and returns nil.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.c == nil {
		return nil
	}
	rc := C.kvc_cache_close(c.c)
	c.c = nil
	runtime.SetFinalizer(c, nil)
	if rc != C.KVC_OK {
		return &Error{Code: Code(rc), Message: "closing the cache"}
	}
	return nil
}

// enter holds c.mu shared and returns the live C handle; leave releases it.
func (c *Cache) enter() (*C.kvc_cache, error) {
	c.mu.RLock()
	if c.c == nil {
		c.mu.RUnlock()
		return nil, errCacheClosed
	}
	return c.c, nil
}

func (c *Cache) leave() { c.mu.RUnlock() }

// Stats are the cache's counters (kvc_stats).
type Stats struct {
	CapacityBytes       uint64 // host tier
	UsedBytes           uint64 // host tier, allocated to blocks
	Blocks              uint64 // committed block shards resident
	Pending             uint64 // reservations outstanding
	Pins                uint64 // view pins outstanding
	Namespaces          uint64
	Hits                uint64 // lookups (load, view, match per block) that hit
	Misses              uint64 // sum of MissesByReason
	MissesByReason      [MissReasons]uint64
	Stores              uint64 // commits
	StoreExists         uint64 // begins answered EXISTS
	StorePending        uint64 // begins answered PENDING
	Aborts              uint64 // explicit aborts
	ReservationsExpired uint64
	PinsExpired         uint64
	Evictions           uint64
	Expirations         uint64 // blocks reclaimed after their TTL
	Deletes             uint64
	BytesStored         uint64
	BytesLoaded         uint64
	Promotions          uint64 // SSD hits copied up into host DRAM
	Demotions           uint64 // host evictions written to the SSD tier
	DemotionsDropped    uint64 // evictions not demoted (staging full)
	SSDCapacityBytes    uint64
	SSDUsedBytes        uint64
	SSDBlocks           uint64
	SSDHits             uint64
	ChecksumFailures    uint64 // reads below host memory that failed
}

// Stats returns the cache's counters.
func (c *Cache) Stats() (Stats, error) {
	h, err := c.enter()
	if err != nil {
		return Stats{}, err
	}
	defer c.leave()
	var s C.kvc_stats
	C.kvcgo_stats_init(&s)
	var e C.kvc_error
	if err := check(C.kvc_cache_stats(h, &s, &e), &e); err != nil {
		return Stats{}, err
	}
	out := Stats{
		CapacityBytes:       uint64(s.capacity_bytes),
		UsedBytes:           uint64(s.used_bytes),
		Blocks:              uint64(s.blocks),
		Pending:             uint64(s.pending),
		Pins:                uint64(s.pins),
		Namespaces:          uint64(s.namespaces),
		Hits:                uint64(s.hits),
		Misses:              uint64(s.misses),
		Stores:              uint64(s.stores),
		StoreExists:         uint64(s.store_exists),
		StorePending:        uint64(s.store_pending),
		Aborts:              uint64(s.aborts),
		ReservationsExpired: uint64(s.reservations_expired),
		PinsExpired:         uint64(s.pins_expired),
		Evictions:           uint64(s.evictions),
		Expirations:         uint64(s.expirations),
		Deletes:             uint64(s.deletes),
		BytesStored:         uint64(s.bytes_stored),
		BytesLoaded:         uint64(s.bytes_loaded),
		Promotions:          uint64(s.promotions),
		Demotions:           uint64(s.demotions),
		DemotionsDropped:    uint64(s.demotions_dropped),
		SSDCapacityBytes:    uint64(s.ssd_capacity_bytes),
		SSDUsedBytes:        uint64(s.ssd_used_bytes),
		SSDBlocks:           uint64(s.ssd_blocks),
		SSDHits:             uint64(s.ssd_hits),
		ChecksumFailures:    uint64(s.checksum_failures),
	}
	for i := range out.MissesByReason {
		out.MissesByReason[i] = uint64(s.misses_by_reason[i])
	}
	return out, nil
}

// StatsJSON returns the cache's counters, and more (per policy), as JSON.
func (c *Cache) StatsJSON() (string, error) {
	h, err := c.enter()
	if err != nil {
		return "", err
	}
	defer c.leave()
	var out *C.char
	var e C.kvc_error
	if err := check(C.kvc_cache_stats_json(h, &out, &e), &e); err != nil {
		return "", err
	}
	defer C.kvc_string_free(out)
	return C.GoString(out), nil
}

// Flush makes every block the cache owes its SSD tier durable (staged
// write-back demotions, earlier write-through stores). Without an SSD tier
// it returns at once. Close flushes too.
func (c *Cache) Flush() error {
	h, err := c.enter()
	if err != nil {
		return err
	}
	defer c.leave()
	var e C.kvc_error
	return check(C.kvc_cache_flush(h, &e), &e)
}

// SSDInspectJSON describes what an SSD cache directory holds (format,
// segments, blocks and bytes per namespace and tenant, recovery counters)
// as JSON. The directory must not be open in another process.
func SSDInspectJSON(dir string) (string, error) {
	cdir := C.CString(dir)
	defer C.free(unsafe.Pointer(cdir))
	var out *C.char
	var e C.kvc_error
	if err := check(C.kvc_ssd_inspect_json(&out, cdir, &e), &e); err != nil {
		return "", err
	}
	defer C.kvc_string_free(out)
	return C.GoString(out), nil
}
