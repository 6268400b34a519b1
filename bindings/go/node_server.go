package kvc

// #include "bridge.h"
import "C"

import (
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// NodeServerOptions configure StartNodeServer (kvc_node_server_options). A
// zero field means the library's default; a nil *NodeServerOptions means all
// defaults.
type NodeServerOptions struct {
	// Listen is the "host:port" to serve gRPC on; port 0 picks a free port
	// (Address tells which). Default "127.0.0.1:7070".
	Listen string
	// Cache is the cache the node serves: its tiers and tenants file (nil:
	// Open's defaults).
	Cache *CacheOptions
	// WriteMode is how the node's stores reach its SSD tier.
	WriteMode WriteMode
	// UnixPath is the same-host path's socket (created mode 0600; an
	// existing socket file is replaced); clients connect to "unix:" +
	// UnixPath. "": none.
	UnixPath string
	// TLS on Listen: the node's certificate chain and key (both or
	// neither); TLSClientCAPath also requires client certificates.
	TLSCertPath     string
	TLSKeyPath      string
	TLSClientCAPath string
	// AdminToken is the credential of the admin calls; "": refused.
	AdminToken string
	// MetricsListen is the "host:port" of GET /metrics (port 0: a free
	// one); "": none. MetricsToken, when set, is the bearer token it needs.
	MetricsListen string
	MetricsToken  string
	// Cluster membership ("etcd://HOST:PORT[,...]/CLUSTER"; "": a standalone
	// node), this node's id, zone, and the address clients reach it at.
	Cluster   string
	NodeID    string
	Zone      string
	Advertise string
	// StoreIdleTimeout cancels a store stream that sends nothing for this
	// long (0: 10 s).
	StoreIdleTimeout time.Duration
}

// NodeServer is a node running in this process: it serves one cache as
// `kvc serve` does, so that tests and embedders need no separate process.
type NodeServer struct {
	mu      sync.Mutex
	s       *C.kvc_node_server // nil once stopped; GUARDED_BY(mu)
	address string
	metrics string
}

// StartNodeServer opens the cache and starts serving. An address that
// cannot be bound is an error matching ErrUnavailable; a library built
// without gRPC answers ErrUnsupported.
func StartNodeServer(opts *NodeServerOptions) (*NodeServer, error) {
	var so C.kvc_node_server_options // Go memory holding only C pointers
	C.kvcgo_node_server_options_init(&so)
	var strs cstrings
	defer strs.free()
	if opts != nil {
		if opts.Cache != nil {
			// so.cache is a pointer inside a struct passed to C: C memory.
			co := (*C.kvc_cache_options)(C.calloc(1, C.sizeof_kvc_cache_options))
			if co == nil {
				return nil, errorf(CodeNoMemory, "out of memory for cache options")
			}
			strs = append(strs, unsafe.Pointer(co))
			C.kvcgo_cache_options_init(co)
			if err := opts.Cache.fill(co, strs.get); err != nil {
				return nil, err
			}
			so.cache = co
		}
		idle, err := millis32("StoreIdleTimeout", opts.StoreIdleTimeout)
		if err != nil {
			return nil, err
		}
		so.store_idle_timeout_ms = idle
		so.listen = strs.get(opts.Listen)
		so.write_mode = C.uint32_t(opts.WriteMode)
		so.unix_path = strs.get(opts.UnixPath)
		so.tls_cert_path = strs.get(opts.TLSCertPath)
		so.tls_key_path = strs.get(opts.TLSKeyPath)
		so.tls_client_ca_path = strs.get(opts.TLSClientCAPath)
		so.admin_token = strs.get(opts.AdminToken)
		so.metrics_listen = strs.get(opts.MetricsListen)
		so.metrics_token = strs.get(opts.MetricsToken)
		so.cluster = strs.get(opts.Cluster)
		so.node_id = strs.get(opts.NodeID)
		so.zone = strs.get(opts.Zone)
		so.advertise = strs.get(opts.Advertise)
	}
	var s *C.kvc_node_server
	var e C.kvc_error
	if err := check(C.kvc_node_server_start(&s, &so, &e), &e); err != nil {
		return nil, err
	}
	srv := &NodeServer{
		s:       s,
		address: C.GoString(C.kvc_node_server_address(s)),
		metrics: C.GoString(C.kvc_node_server_metrics_address(s)),
	}
	runtime.SetFinalizer(srv, (*NodeServer).Close)
	return srv, nil
}

// Address is the "host:port" the node listens on, with the port it picked
// for port 0 (still known after Stop).
func (s *NodeServer) Address() string { return s.address }

// MetricsAddress is the metrics endpoint's "host:port", "" when none.
func (s *NodeServer) MetricsAddress() string { return s.metrics }

// Stop stops accepting calls, lets calls in flight finish for up to grace
// (then cancels them), closes the cache (flushing write-back blocks to the
// SSD tier) and frees the server. Stopping again does nothing and returns
// nil; connections to it then fail with ErrUnavailable.
func (s *NodeServer) Stop(grace time.Duration) error {
	ms, err := millis32("grace", grace)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.s == nil {
		return nil
	}
	rc := C.kvc_node_server_stop(s.s, ms)
	s.s = nil
	runtime.SetFinalizer(s, nil)
	if rc != C.KVC_OK {
		return &Error{Code: Code(rc), Message: "stopping the node server"}
	}
	return nil
}

// Close is Stop with a grace of one second (io.Closer).
func (s *NodeServer) Close() error { return s.Stop(time.Second) }
