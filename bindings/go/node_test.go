package kvc_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"kvc.dev/kvc"
)

// The node client against an in-process node (StartNodeServer on a free
// loopback port and a unix socket in a temp dir), over TCP and over the
// same-host path, compared where it matters with the embedded cache.

func needGRPC(t *testing.T) {
	t.Helper()
	if !kvc.Features().Has(kvc.FeatureGRPC) {
		// Without gRPC every node call must say so, not crash.
		_, err := kvc.StartNodeServer(&kvc.NodeServerOptions{Listen: "127.0.0.1:0"})
		wantCode(t, "StartNodeServer without gRPC", err, kvc.ErrUnsupported)
		_, err = kvc.ConnectNode("127.0.0.1:1", nil)
		wantCode(t, "ConnectNode without gRPC", err, kvc.ErrUnsupported)
		t.Skip("SKIP: libkvc was built without gRPC (kvc_features() lacks KVC_FEATURE_GRPC): no node to test")
	}
}

// startNode starts an in-process node on 127.0.0.1:0 and a unix socket and
// returns it with its "unix:" address. It stops at the test's end.
func startNode(t *testing.T, o *kvc.NodeServerOptions) (*kvc.NodeServer, string) {
	t.Helper()
	// A short directory: a socket path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "kvcgo")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if o == nil {
		o = &kvc.NodeServerOptions{}
	}
	o.Listen = "127.0.0.1:0"
	o.UnixPath = filepath.Join(dir, "node.sock")
	if o.Cache == nil {
		o.Cache = &kvc.CacheOptions{HostCapacityBytes: 8 << 20, Prefault: kvc.PrefaultNo}
	}
	s, err := kvc.StartNodeServer(o)
	if err != nil {
		t.Fatalf("StartNodeServer: %v", err)
	}
	t.Cleanup(func() { s.Stop(0) })
	if !strings.HasPrefix(s.Address(), "127.0.0.1:") || strings.HasSuffix(s.Address(), ":0") {
		t.Fatalf("Address %q has no picked port", s.Address())
	}
	return s, "unix:" + o.UnixPath
}

func connect(t *testing.T, addr string, o *kvc.NodeOptions) *kvc.Node {
	t.Helper()
	if o == nil {
		o = &kvc.NodeOptions{}
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	n, err := kvc.ConnectNode(addr, o)
	if err != nil {
		t.Fatalf("ConnectNode %s: %v", addr, err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func nodeKey(tag, i int) kvc.Key {
	var k kvc.Key
	k[0], k[1], k[15] = byte(tag), byte(i), 0x5a
	return k
}

func TestNodeBlocks(t *testing.T) {
	needGRPC(t)
	s, unixAddr := startNode(t, nil)
	for tag, addr := range map[int]string{1: s.Address(), 2: unixAddr} {
		addr := addr
		tag := tag
		name := "tcp"
		if tag == 2 {
			name = "unix"
		}
		t.Run(name, func(t *testing.T) { nodeScenario(t, addr, tag) })
	}
}

func nodeScenario(t *testing.T, addr string, tag int) {
	n := connect(t, addr, nil)
	o := smallNS()
	o.Model = "go-node-" + addr // each transport its own blocks
	// The shard size, from an embedded namespace of equal options.
	local := openNS(t, openCache(t, 4<<20), o)
	sb := local.ShardBytes()

	// Put then get, byte-exact; a second put is ErrExists; GetBytes; size.
	k0 := nodeKey(tag, 0)
	src := fill(sb, tag)
	if err := n.Put(o, k0, 0, src, nil); err != nil {
		t.Fatalf("Put: %v", err)
	}
	wantCode(t, "Put again", n.Put(o, k0, 0, src, nil), kvc.ErrExists)
	dst := make([]byte, sb+10)
	got, err := n.Get(o, k0, 0, dst)
	if err != nil || got != sb {
		t.Fatalf("Get: %d %v", got, err)
	}
	mustEqual(t, "Get", dst[:sb], src)
	if b, err := n.GetBytes(o, k0, 0); err != nil {
		t.Fatalf("GetBytes: %v", err)
	} else {
		mustEqual(t, "GetBytes", b, src)
	}
	if size, err := n.GetSize(o, k0, 0); err != nil || size != sb {
		t.Fatalf("GetSize: %d %v", size, err)
	}
	// Too small: ErrLayout with the size; a miss: ErrNotFound, dst untouched.
	got, err = n.Get(o, k0, 0, make([]byte, sb-1))
	wantCode(t, "Get into a small buffer", err, kvc.ErrLayout)
	if got != sb {
		t.Errorf("Get into a small buffer: size %d, want %d", got, sb)
	}
	for i := range dst {
		dst[i] = 0xEE
	}
	_, err = n.Get(o, nodeKey(tag, 200), 0, dst)
	wantCode(t, "Get of a missing key", err, kvc.ErrNotFound)
	if dst[0] != 0xEE || dst[sb-1] != 0xEE {
		t.Error("a miss wrote into dst")
	}
	_, err = n.GetBytes(o, nodeKey(tag, 200), 0)
	wantCode(t, "GetBytes of a missing key", err, kvc.ErrNotFound)
	// A source of the wrong size is refused with a message, nothing stored.
	err = n.Put(o, nodeKey(tag, 201), 0, src[:sb-1], nil)
	if !errors.Is(err, kvc.ErrInvalidArgument) && !errors.Is(err, kvc.ErrLayout) {
		t.Errorf("Put of a short source: %v", err)
	}
	_, err = n.GetSize(o, nodeKey(tag, 201), 0)
	wantCode(t, "the short source's block", err, kvc.ErrNotFound)

	// A prompt's chain: the node's keys are the embedded cache's; match
	// finds the stored prefix, in the host tier.
	toks := tokens(5*bt, uint32(tag))
	keys, err := local.Keys(toks)
	if err != nil || len(keys) != 5 {
		t.Fatalf("Keys: %d %v", len(keys), err)
	}
	blocks, tiers, err := n.Match(o, keys)
	if err != nil || blocks != 0 || len(tiers) != 0 {
		t.Fatalf("Match before any store: %d %v %v", blocks, tiers, err)
	}
	for i := 0; i < 3; i++ {
		var parent *kvc.Key
		if i > 0 {
			parent = &keys[i-1]
		}
		if err := n.Put(o, keys[i], 0, fill(sb, 100+i), &kvc.StoreOptions{Parent: parent, TTL: time.Hour}); err != nil {
			t.Fatalf("Put chain %d: %v", i, err)
		}
	}
	blocks, tiers, err = n.Match(o, keys)
	if err != nil || blocks != 3 || len(tiers) != 3 {
		t.Fatalf("Match: %d %v %v", blocks, tiers, err)
	}
	for i, tr := range tiers {
		if tr != kvc.TierHost {
			t.Errorf("tier of block %d: %v, want host", i, tr)
		}
	}
	blocks, tiers, mkeys, err := n.MatchTokens(o, append(toks, 1, 2, 3)) // a partial block: no key
	if err != nil || blocks != 3 || len(tiers) != 3 || len(mkeys) != 5 {
		t.Fatalf("MatchTokens: %d %v %d %v", blocks, tiers, len(mkeys), err)
	}
	for i := range keys {
		if mkeys[i] != keys[i] {
			t.Fatalf("MatchTokens key %d differs from Namespace.Keys", i)
		}
	}

	// Batches: put keys[3], keys[4] and keys[0] again (ErrExists, not a
	// failure of the call) from one staging buffer.
	stage := make([]byte, 3*sb)
	copy(stage[0:], fill(sb, 103))
	copy(stage[sb:], fill(sb, 104))
	copy(stage[2*sb:], fill(sb, 100))
	puts := []kvc.NodeItem{
		{Key: keys[3], Buf: stage[0:sb], Parent: &keys[2]},
		{Key: keys[4], Buf: stage[sb : 2*sb], Parent: &keys[3]},
		{Key: keys[0], Buf: stage[2*sb:]},
	}
	if err := n.PutBatch(o, 0, stage, puts, nil); err != nil {
		t.Fatalf("PutBatch: %v", err)
	}
	if puts[0].Err != nil || puts[1].Err != nil {
		t.Fatalf("PutBatch statuses: %v %v", puts[0].Err, puts[1].Err)
	}
	wantCode(t, "PutBatch of a stored block", puts[2].Err, kvc.ErrExists)
	if blocks, _, err := n.Match(o, keys); err != nil || blocks != 5 {
		t.Fatalf("Match after PutBatch: %d %v", blocks, err)
	}
	// Get: every block, a miss, a too-small buffer and a size query.
	buf := make([]byte, 7*sb)
	for i := range buf {
		buf[i] = 0xEE
	}
	gets := make([]kvc.NodeItem, 0, 8)
	for i := range keys {
		gets = append(gets, kvc.NodeItem{Key: keys[i], Buf: buf[i*sb : (i+1)*sb]})
	}
	gets = append(gets,
		kvc.NodeItem{Key: nodeKey(tag, 99), Buf: buf[5*sb : 6*sb]}, // a miss
		kvc.NodeItem{Key: keys[1], Buf: buf[6*sb : 6*sb+100]},      // too small
		kvc.NodeItem{Key: keys[2]},                                 // size only
	)
	if err := n.GetBatch(o, 0, buf, gets); err != nil {
		t.Fatalf("GetBatch: %v", err)
	}
	for i := range keys {
		if gets[i].Err != nil || gets[i].Len != sb {
			t.Fatalf("GetBatch item %d: %v len %d", i, gets[i].Err, gets[i].Len)
		}
		mustEqual(t, "GetBatch item", gets[i].Buf, fill(sb, 100+i))
	}
	wantCode(t, "GetBatch miss", gets[5].Err, kvc.ErrNotFound)
	if buf[5*sb] != 0xEE || buf[6*sb-1] != 0xEE {
		t.Error("GetBatch wrote a miss's buffer")
	}
	wantCode(t, "GetBatch small buffer", gets[6].Err, kvc.ErrLayout)
	if gets[6].Len != sb {
		t.Errorf("GetBatch small buffer: len %d, want %d", gets[6].Len, sb)
	}
	if gets[7].Err != nil || gets[7].Len != sb {
		t.Errorf("GetBatch size only: %v len %d", gets[7].Err, gets[7].Len)
	}
	// An empty batch is a no-op; a buffer outside the batch's is refused
	// before anything is sent; too many items too.
	if err := n.GetBatch(o, 0, nil, nil); err != nil {
		t.Errorf("empty GetBatch: %v", err)
	}
	other := make([]byte, sb)
	err = n.PutBatch(o, 0, stage, []kvc.NodeItem{{Key: nodeKey(tag, 150), Buf: other}}, nil)
	wantCode(t, "PutBatch of a foreign buffer", err, kvc.ErrInvalidArgument, "items[0].Buf", "sub-slice")
	err = n.GetBatch(o, 0, buf, make([]kvc.NodeItem, kvc.MaxNodeBatch+1))
	wantCode(t, "GetBatch too long", err, kvc.ErrInvalidArgument, "MaxNodeBatch")
	// The node's own refusal of a bad item: a short source, named.
	err = n.PutBatch(o, 0, stage, []kvc.NodeItem{{Key: nodeKey(tag, 151), Buf: stage[:sb-1]}}, nil)
	wantCode(t, "PutBatch of a short source", err, kvc.ErrInvalidArgument, "items[0].buf")
	if _, err := n.GetSize(o, nodeKey(tag, 151), 0); !errors.Is(err, kvc.ErrNotFound) {
		t.Errorf("a refused batch stored its block: %v", err)
	}

	// Delete; then the chain matches up to the hole.
	if err := n.Delete(o, keys[1]); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantCode(t, "Delete again", n.Delete(o, keys[1]), kvc.ErrNotFound)
	if blocks, _, err := n.Match(o, keys); err != nil || blocks != 1 {
		t.Fatalf("Match after Delete: %d %v", blocks, err)
	}
	_, err = n.GetSize(o, keys[1], 0)
	wantCode(t, "Get of a deleted block", err, kvc.ErrNotFound)

	// BumpRevision hides every block stored so far.
	epoch, err := n.BumpRevision(o)
	if err != nil || epoch == 0 {
		t.Fatalf("BumpRevision: %d %v", epoch, err)
	}
	if blocks, _, err := n.Match(o, keys); err != nil || blocks != 0 {
		t.Fatalf("Match after BumpRevision: %d %v", blocks, err)
	}
	_, err = n.Get(o, k0, 0, dst)
	wantCode(t, "Get after BumpRevision", err, kvc.ErrNotFound)
	if err := n.Put(o, k0, 0, src, nil); err != nil {
		t.Fatalf("Put after BumpRevision: %v", err)
	}
	if e2, err := n.BumpRevision(o); err != nil || e2 <= epoch {
		t.Fatalf("BumpRevision again: %d after %d, %v", e2, epoch, err)
	}

	// Stats: parsed JSON of the whole node (no tenants).
	st, err := n.Stats()
	if err != nil || st["scope"] != "node" {
		t.Fatalf("Stats: %v %v", st, err)
	}
	// Errors carry the status and the call's message: a namespace without a
	// model, one with a tenant field set, nil options.
	bad := smallNS()
	bad.Model = ""
	err = n.Put(bad, k0, 0, src, nil)
	wantCode(t, "namespace without a model", err, kvc.ErrInvalidArgument, "model")
	bad = smallNS()
	bad.Salt = []byte("x")
	_, _, err = n.Match(bad, keys)
	wantCode(t, "namespace with a salt", err, kvc.ErrInvalidArgument, "salt")
	bad = smallNS()
	bad.DefaultTTL = time.Hour
	err = n.Put(bad, nodeKey(tag, 202), 0, src, nil)
	wantCode(t, "namespace with a default TTL", err, kvc.ErrInvalidArgument, "DefaultTTL")
	bad = smallNS()
	bad.Tenant, bad.Credential = "acme", "kvc_x"
	_, err = n.GetSize(bad, k0, 0)
	wantCode(t, "namespace with a tenant", err, kvc.ErrInvalidArgument, "kvc_node_options")
	_, err = n.GetSize(nil, k0, 0)
	wantCode(t, "nil namespace", err, kvc.ErrInvalidArgument, "nil")
}

func TestNodeTenants(t *testing.T) {
	needGRPC(t)
	file := filepath.Join(t.TempDir(), "tenants.json")
	if _, err := kvc.CreateTenant(file, &kvc.TenantOptions{Name: "seed"}); err != nil {
		t.Fatal(err)
	}
	s, unixAddr := startNode(t, &kvc.NodeServerOptions{
		AdminToken: "go-admin-token",
		Cache:      &kvc.CacheOptions{HostCapacityBytes: 8 << 20, Prefault: kvc.PrefaultNo, TenantsPath: file},
	})
	admin := connect(t, s.Address(), &kvc.NodeOptions{AdminToken: "go-admin-token"})
	cred, err := admin.CreateTenant(&kvc.TenantOptions{Name: "acme", HostQuotaBytes: 1 << 20})
	if err != nil || len(cred) < 16 {
		t.Fatalf("CreateTenant: %q %v", cred, err)
	}
	_, err = admin.CreateTenant(&kvc.TenantOptions{Name: "acme"})
	wantCode(t, "CreateTenant of a taken name", err, kvc.ErrExists)
	list, err := admin.Tenants()
	if err != nil || len(list) != 2 {
		t.Fatalf("Tenants: %v %v", list, err)
	}
	js, _ := admin.TenantsJSON()
	if !strings.Contains(js, `"acme"`) || strings.Contains(js, cred) {
		t.Fatalf("TenantsJSON: %s", js)
	}
	two := uint64(2 << 20)
	if err := admin.SetTenantQuota("acme", kvc.QuotaChange{HostQuotaBytes: &two}); err != nil {
		t.Fatalf("SetTenantQuota: %v", err)
	}
	wantCode(t, "SetTenantQuota of nobody", admin.SetTenantQuota("nobody", kvc.QuotaChange{HostQuotaBytes: &two}), kvc.ErrNotFound)
	if st, err := admin.Stats(); err != nil || st["scope"] != "node" {
		t.Fatalf("admin Stats: %v %v", st, err)
	}
	// A wrong admin token is refused.
	notAdmin := connect(t, s.Address(), &kvc.NodeOptions{AdminToken: "wrong"})
	_, err = notAdmin.CreateTenant(&kvc.TenantOptions{Name: "mallory"})
	wantCode(t, "CreateTenant with a wrong admin token", err, kvc.ErrPermission)

	o := smallNS()
	o.Model = "go-node-tenants"
	sb := openNS(t, openCache(t, 4<<20), o).ShardBytes()
	src := fill(sb, 7)
	for _, addr := range []string{s.Address(), unixAddr} {
		key := nodeKey(3, len(addr))
		// The right credential stores and reads back; the tenant's stats are
		// its own.
		acme := connect(t, addr, &kvc.NodeOptions{Tenant: "acme", Credential: cred})
		if err := acme.Put(o, key, 0, src, nil); err != nil {
			t.Fatalf("%s: Put as acme: %v", addr, err)
		}
		if b, err := acme.GetBytes(o, key, 0); err != nil {
			t.Fatalf("%s: GetBytes as acme: %v", addr, err)
		} else {
			mustEqual(t, "acme's block", b, src)
		}
		if st, err := acme.Stats(); err != nil || st["scope"] != "tenant" {
			t.Fatalf("%s: acme's Stats: %v %v", addr, st, err)
		}
		// A wrong credential, and none, are refused (at connect or at the
		// first call), with the status and a message.
		for _, no := range []*kvc.NodeOptions{{Tenant: "acme", Credential: "kvc_wrong"}, {}} {
			no.ConnectTimeout, no.Timeout = 5*time.Second, 5*time.Second
			bad, err := kvc.ConnectNode(addr, no)
			if err == nil {
				_, err = bad.GetSize(o, key, 0)
				bad.Close()
			}
			wantCode(t, addr+": a wrong or missing credential", err, kvc.ErrPermission)
			var ke *kvc.Error
			if errors.As(err, &ke) && ke.Message == "" {
				t.Errorf("%s: the refusal has no message", addr)
			}
		}
	}
	// A deleted tenant is refused from its next call on.
	acme := connect(t, s.Address(), &kvc.NodeOptions{Tenant: "acme", Credential: cred})
	if err := admin.DeleteTenant("acme"); err != nil {
		t.Fatalf("DeleteTenant: %v", err)
	}
	wantCode(t, "DeleteTenant again", admin.DeleteTenant("acme"), kvc.ErrNotFound)
	_, err = acme.GetSize(o, nodeKey(3, 0), 0)
	wantCode(t, "a deleted tenant's call", err, kvc.ErrPermission)
}

func TestNodeClosed(t *testing.T) {
	needGRPC(t)
	s, unixAddr := startNode(t, nil)
	o := smallNS()
	for _, addr := range []string{s.Address(), unixAddr} {
		n := connect(t, addr, nil)
		if err := n.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := n.Close(); err != nil {
			t.Fatalf("Close again: %v", err)
		}
		_, err := n.GetSize(o, nodeKey(4, 0), 0)
		wantCode(t, "GetSize on a closed node", err, kvc.ErrClosed, "closed")
		wantCode(t, "Put on a closed node", n.Put(o, nodeKey(4, 0), 0, nil, nil), kvc.ErrClosed)
		wantCode(t, "GetBatch on a closed node", n.GetBatch(o, 0, nil, nil), kvc.ErrClosed)
		_, err = n.StatsJSON()
		wantCode(t, "StatsJSON on a closed node", err, kvc.ErrClosed)
		_, err = n.CreateTenant(&kvc.TenantOptions{Name: "x"})
		wantCode(t, "CreateTenant on a closed node", err, kvc.ErrClosed)
	}
	// A stopped server: Stop again is a no-op, a connection to it is
	// refused with ErrUnavailable within its connect timeout, and a
	// connection made before fails its calls, not the process.
	live := connect(t, s.Address(), &kvc.NodeOptions{MaxRetries: kvc.NoRetries, Timeout: 2 * time.Second})
	addr := s.Address()
	if err := s.Stop(100 * time.Millisecond); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := s.Stop(0); err != nil {
		t.Fatalf("Stop again: %v", err)
	}
	if s.Address() != addr {
		t.Errorf("Address after Stop: %q", s.Address())
	}
	start := time.Now()
	_, err := kvc.ConnectNode(addr, &kvc.NodeOptions{ConnectTimeout: 300 * time.Millisecond})
	wantCode(t, "ConnectNode to a stopped node", err, kvc.ErrUnavailable)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("ConnectNode to a stopped node took %v", d)
	}
	_, err = live.GetSize(o, nodeKey(4, 0), 0)
	if !errors.Is(err, kvc.ErrUnavailable) && !errors.Is(err, kvc.ErrTimeout) {
		t.Errorf("a call to a stopped node: %v", err)
	}
	// Bad options are refused before C is called.
	_, err = kvc.ConnectNode(addr, &kvc.NodeOptions{Timeout: -time.Second})
	wantCode(t, "negative Timeout", err, kvc.ErrInvalidArgument, "Timeout")
	_, err = kvc.StartNodeServer(&kvc.NodeServerOptions{Listen: "127.0.0.1:0", StoreIdleTimeout: -1})
	wantCode(t, "negative StoreIdleTimeout", err, kvc.ErrInvalidArgument, "StoreIdleTimeout")
	// A listen address that cannot be bound.
	_, err = kvc.StartNodeServer(&kvc.NodeServerOptions{Listen: "203.0.113.1:1",
		Cache: &kvc.CacheOptions{HostCapacityBytes: 1 << 20, Prefault: kvc.PrefaultNo}})
	wantCode(t, "an address that cannot be bound", err, kvc.ErrUnavailable)
}

// One Node from many goroutines, closed while they run: each call either
// completes correctly or returns ErrClosed (run under -race by CTest).
func TestNodeConcurrent(t *testing.T) {
	needGRPC(t)
	s, unixAddr := startNode(t, nil)
	o := smallNS()
	o.Model = "go-node-concurrent"
	sb := openNS(t, openCache(t, 4<<20), o).ShardBytes()
	for _, addr := range []string{s.Address(), unixAddr} {
		n := connect(t, addr, nil)
		const workers, rounds = 4, 25
		errs := make(chan error, workers)
		var closing atomic.Bool
		for w := 0; w < workers; w++ {
			go func(w int) {
				dst := make([]byte, sb)
				for i := 0; i < rounds; i++ {
					key := nodeKey(100+w, i)
					key[2] = byte(len(addr))
					src := fill(sb, w*rounds+i)
					err := n.Put(o, key, 0, src, nil)
					if err == nil {
						_, err = n.Get(o, key, 0, dst)
						if err == nil && string(dst) != string(src) {
							err = errors.New("bytes differ")
						}
					}
					if err != nil && !(closing.Load() && errors.Is(err, kvc.ErrClosed)) {
						errs <- err
						return
					}
				}
				errs <- nil
			}(w)
		}
		time.Sleep(5 * time.Millisecond)
		// Close while the workers may still run; it waits for calls in flight.
		go func() {
			time.Sleep(20 * time.Millisecond)
			closing.Store(true)
			n.Close()
		}()
		for w := 0; w < workers; w++ {
			if err := <-errs; err != nil {
				t.Errorf("%s: worker: %v", addr, err)
			}
		}
	}
}
