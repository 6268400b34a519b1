package kvc_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"kvc.dev/kvc"
)

func TestVersionAndFeatures(t *testing.T) {
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(kvc.Version()) {
		t.Errorf("Version %q", kvc.Version())
	}
	if kvc.VersionNumber() != kvc.HeaderVersionNumber {
		t.Errorf("library %d, header %d", kvc.VersionNumber(), kvc.HeaderVersionNumber)
	}
	if !kvc.Features().Has(kvc.FeatureSHA256 | kvc.FeatureXXH3) {
		t.Errorf("features %b", kvc.Features())
	}
	found := false
	for _, p := range kvc.PolicyNames() {
		found = found || p == kvc.DefaultPolicy()
	}
	if !found {
		t.Errorf("default policy %q not in %v", kvc.DefaultPolicy(), kvc.PolicyNames())
	}
}

func TestKeyHex(t *testing.T) {
	k, err := kvc.ParseKey("93e47c6bfe4c84ee2dfac17c37e30458")
	if err != nil || k.String() != "93e47c6bfe4c84ee2dfac17c37e30458" || k[0] != 0x93 {
		t.Fatalf("ParseKey: %v %v", k, err)
	}
	_, err = kvc.ParseKey("93e4")
	wantCode(t, "short hex", err, kvc.ErrInvalidArgument)
	_, err = kvc.ParseKey("zz" + strings.Repeat("0", 30))
	wantCode(t, "bad hex", err, kvc.ErrInvalidArgument)
}

type vectorFile struct {
	Spec  string `json:"spec"`
	Cases []struct {
		Name     string `json:"name"`
		Hash     string `json:"hash"`
		Model    string `json:"model"`
		Revision string `json:"revision"`
		Adapter  string `json:"adapter"`
		Layout   struct {
			DType       string `json:"dtype"`
			Layers      uint32 `json:"layers"`
			KVHeads     uint32 `json:"kv_heads"`
			HeadDim     uint32 `json:"head_dim"`
			BlockTokens uint32 `json:"block_tokens"`
			Shards      uint32 `json:"shards"`
		} `json:"layout"`
		SaltHex string   `json:"salt_hex"`
		Tokens  []uint32 `json:"tokens"`
		Seed    string   `json:"seed"`
		Keys    []string `json:"keys"`
	} `json:"cases"`
}

// Every case of every tests/vectors/*.json file, through kvc_hash_keys and
// through a namespace of a cache.
func TestHashVectors(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(sourceDir(t), "tests", "vectors", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no vector files (%v)", err)
	}
	c := openCache(t, 1<<20)
	checked := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var vf vectorFile
		if err := json.Unmarshal(raw, &vf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if vf.Spec != "kvc-hash-v1" {
			t.Fatalf("%s: spec %q", f, vf.Spec)
		}
		for _, tc := range vf.Cases {
			salt, err := hex.DecodeString(tc.SaltHex)
			if err != nil {
				t.Fatalf("%s: salt: %v", tc.Name, err)
			}
			o := &kvc.NamespaceOptions{
				Hash: tc.Hash, Model: tc.Model, Revision: tc.Revision, Adapter: tc.Adapter,
				DType: tc.Layout.DType, Layers: tc.Layout.Layers, KVHeads: tc.Layout.KVHeads,
				HeadDim: tc.Layout.HeadDim, BlockTokens: tc.Layout.BlockTokens,
				Shards: tc.Layout.Shards, Salt: salt,
			}
			seed, keys, err := kvc.HashKeys(o, tc.Tokens)
			if err != nil {
				t.Errorf("%s: HashKeys: %v", tc.Name, err)
				continue
			}
			if seed.String() != tc.Seed {
				t.Errorf("%s: seed %s, want %s", tc.Name, seed, tc.Seed)
			}
			if len(keys) != len(tc.Keys) {
				t.Errorf("%s: %d keys, want %d", tc.Name, len(keys), len(tc.Keys))
				continue
			}
			for i := range keys {
				if keys[i].String() != tc.Keys[i] {
					t.Errorf("%s: key %d %s, want %s", tc.Name, i, keys[i], tc.Keys[i])
				}
			}
			// The same through a namespace.
			ns, err := c.OpenNamespace(o)
			if err != nil {
				t.Errorf("%s: OpenNamespace: %v", tc.Name, err)
				continue
			}
			info, err := ns.Info()
			if err != nil || info.Seed.String() != tc.Seed {
				t.Errorf("%s: namespace seed %s (%v), want %s", tc.Name, info.Seed, err, tc.Seed)
			}
			if len(tc.Keys) > 0 {
				nk, err := ns.Keys(tc.Tokens)
				if err != nil || len(nk) != len(tc.Keys) {
					t.Errorf("%s: namespace Keys: %d keys, %v", tc.Name, len(nk), err)
				} else {
					for i := range nk {
						if nk[i].String() != tc.Keys[i] {
							t.Errorf("%s: namespace key %d %s, want %s", tc.Name, i, nk[i], tc.Keys[i])
						}
					}
				}
			}
			ns.Close()
			checked++
		}
	}
	t.Logf("%d vector cases checked", checked)
}

func TestStoreMatchLoadDeleteRevision(t *testing.T) {
	c := openCache(t, 8<<20)
	ns := openNS(t, c, smallNS())
	info, err := ns.Info()
	if err != nil {
		t.Fatal(err)
	}
	sb := int(info.ShardBytes)
	if sb != 2*2*2*16*bt*2 || ns.ShardBytes() != sb || info.Epoch < 1 || ns.BlockTokens() != bt {
		t.Fatalf("info %+v", info)
	}
	toks := tokens(4*bt+5, 0)
	keys, err := ns.Keys(toks)
	if err != nil || len(keys) != 4 {
		t.Fatalf("Keys: %d %v", len(keys), err)
	}

	// Nothing stored: match 0, load misses.
	if n, err := ns.Match(keys); n != 0 || err != nil {
		t.Fatalf("Match on empty: %d %v", n, err)
	}
	dst := make([]byte, sb)
	wantCode(t, "load miss", ns.Load(keys[0], 0, dst), kvc.ErrNotFound)

	blk := fill(sb, 1)
	if err := ns.Store(keys[0], 0, blk, nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "second store", ns.Store(keys[0], 0, blk, nil), kvc.ErrExists)
	if err := ns.Load(keys[0], 0, dst); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "load", dst, blk)
	n, tiers, err := ns.MatchTiers(keys)
	if n != 1 || err != nil || len(tiers) != 1 || tiers[0] != kvc.TierHost {
		t.Fatalf("MatchTiers: %d %v %v", n, tiers, err)
	}

	// A batch: the whole chain from one contiguous buffer.
	src := make([]byte, 4*sb)
	for i := 0; i < 4; i++ {
		copy(src[i*sb:], fill(sb, 10+i))
	}
	st, err := ns.StoreBatch(keys, 0, src, &kvc.StoreOptions{TTL: time.Hour})
	if err != nil || len(st) != 4 {
		t.Fatalf("StoreBatch: %v", err)
	}
	if !errors.Is(st[0], kvc.ErrExists) || st[1] != nil || st[3] != nil {
		t.Fatalf("StoreBatch statuses %v", st)
	}
	n, got, err := ns.MatchTokens(toks)
	if n != 4 || err != nil || len(got) != 4 || got[3] != keys[3] {
		t.Fatalf("MatchTokens: %d %v", n, err)
	}
	all := make([]byte, 4*sb)
	loaded, lst, err := ns.LoadBatch(keys, 0, all)
	if loaded != 4 || err != nil || lst[2] != nil {
		t.Fatalf("LoadBatch: %d %v %v", loaded, lst, err)
	}
	mustEqual(t, "block 0", all[:sb], blk) // stored first, kept
	mustEqual(t, "blocks 1..3", all[sb:], src[sb:])
	ml, err := ns.MatchBatch([][]kvc.Key{keys[:2], keys[2:], nil})
	if err != nil || len(ml) != 3 || ml[0] != 2 || ml[1] != 2 || ml[2] != 0 {
		t.Fatalf("MatchBatch: %v %v", ml, err)
	}

	// Delete stops the match at the hole; a second delete misses.
	if err := ns.Delete(keys[1]); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "delete twice", ns.Delete(keys[1]), kvc.ErrNotFound)
	if n, _ := ns.Match(keys); n != 1 {
		t.Fatalf("match after delete: %d", n)
	}
	loaded, lst, err = ns.LoadBatch(keys, 0, all)
	if err != nil || loaded != 1 || !errors.Is(lst[1], kvc.ErrNotFound) || lst[2] != nil {
		t.Fatalf("LoadBatch with a hole: %d %v %v", loaded, lst, err)
	}

	// Revision bump: everything is invisible at once, then storable again.
	epoch, err := ns.BumpRevision()
	if err != nil || epoch != info.Epoch+1 {
		t.Fatalf("BumpRevision: %d %v", epoch, err)
	}
	if n, _ := ns.Match(keys); n != 0 {
		t.Fatalf("match after bump: %d", n)
	}
	wantCode(t, "load after bump", ns.Load(keys[0], 0, dst), kvc.ErrNotFound)
	if err := ns.Store(keys[0], 0, blk, nil); err != nil {
		t.Fatalf("store after bump: %v", err)
	}
	stats, err := c.Stats()
	if err != nil || stats.MissesByReason[kvc.MissStale] < 1 || stats.Stores < 5 || stats.Deletes != 1 {
		t.Fatalf("Stats: %+v %v", stats, err)
	}
	js, err := c.StatsJSON()
	if err != nil || !strings.Contains(js, `"misses_by_reason"`) {
		t.Fatalf("StatsJSON: %q %v", js, err)
	}
}

func TestTwoPhaseStore(t *testing.T) {
	c := openCache(t, 4<<20)
	ns := openNS(t, c, smallNS())
	sb := ns.ShardBytes()
	keys, _ := ns.Keys(tokens(2*bt, 1))
	ctx := context.Background()

	r, err := ns.BeginStore(ctx, keys[0], 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ns.BeginStore(ctx, keys[0], 0, nil)
	wantCode(t, "second writer", err, kvc.ErrPending)
	wantCode(t, "not visible", ns.Load(keys[0], 0, make([]byte, sb)), kvc.ErrNotFound)

	// A deadline on the context bounds the wait.
	tctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	start := time.Now()
	err = ns.StoreWait(tctx, keys[0], 0)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("StoreWait with deadline: %v after %v", err, time.Since(start))
	}
	if err := r.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := r.Abort(); err != nil {
		t.Fatalf("second Abort: %v", err)
	}
	wantCode(t, "commit after abort", r.Commit(), kvc.ErrInvalidArgument)
	wantCode(t, "wait after abort", ns.StoreWait(ctx, keys[0], 0), kvc.ErrNotFound)

	// Write through the zero-copy buffer; a waiter sees the commit.
	r, err = ns.BeginStore(ctx, keys[0], 0, &kvc.StoreOptions{ReservationTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	buf, err := r.Buffer()
	if err != nil || len(buf) != sb {
		t.Fatalf("Buffer: %d %v", len(buf), err)
	}
	want := fill(sb, 7)
	copy(buf, want)
	wantCode(t, "short write", r.Write(want[:5]), kvc.ErrLayout, "bytes")
	waited := make(chan error, 1)
	go func() { waited <- ns.StoreWait(ctx, keys[0], 0) }()
	time.Sleep(20 * time.Millisecond)
	if err := r.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err != nil {
		t.Fatalf("StoreWait across commit: %v", err)
	}
	wantCode(t, "commit twice", r.Commit(), kvc.ErrInvalidArgument)
	if err := r.Abort(); err != nil {
		t.Fatalf("Abort after Commit: %v", err)
	}
	got := make([]byte, sb)
	if err := ns.Load(keys[0], 0, got); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "two-phase", got, want)
	_, err = ns.BeginStore(ctx, keys[0], 0, nil)
	wantCode(t, "begin on committed", err, kvc.ErrExists)

	// Write() copies from a Go slice; the parent option is accepted.
	r, err = ns.BeginStore(ctx, keys[1], 0, &kvc.StoreOptions{Parent: &keys[0], TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Write(fill(sb, 8)); err != nil {
		t.Fatal(err)
	}
	if err := r.Commit(); err != nil {
		t.Fatal(err)
	}
	if n, _ := ns.Match(keys); n != 2 {
		t.Fatalf("match %d", n)
	}

	// A done context fails at once.
	dctx, dcancel := context.WithCancel(ctx)
	dcancel()
	if _, err := ns.BeginStore(dctx, keys[1], 0, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("BeginStore on cancelled ctx: %v", err)
	}
	if err := ns.StoreWait(dctx, keys[1], 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("StoreWait on cancelled ctx: %v", err)
	}
}

func TestStoreWaitCancel(t *testing.T) {
	c := openCache(t, 4<<20)
	ns := openNS(t, c, smallNS())
	keys, _ := ns.Keys(tokens(bt, 2))
	r, err := ns.BeginStore(context.Background(), keys[0], 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Abort()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(30 * time.Millisecond); cancel() }()
	start := time.Now()
	err = ns.StoreWait(ctx, keys[0], 0)
	if !errors.Is(err, context.Canceled) || time.Since(start) > 2*time.Second {
		t.Fatalf("StoreWait: %v after %v", err, time.Since(start))
	}
}

// A reservation bounded by the context's deadline expires with it.
func TestReservationDeadlineFromContext(t *testing.T) {
	c, err := kvc.Open(&kvc.CacheOptions{HostCapacityBytes: 4 << 20, Prefault: kvc.PrefaultNo,
		MaintenanceInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ns := openNS(t, c, smallNS())
	keys, _ := ns.Keys(tokens(bt, 3))
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Millisecond)
	defer cancel()
	r, err := ns.BeginStore(ctx, keys[0], 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Write(fill(ns.ShardBytes(), 1)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	wantCode(t, "commit after deadline", r.Commit(), kvc.ErrTimeout)
}

func TestViews(t *testing.T) {
	c := openCache(t, 4<<20)
	ns := openNS(t, c, smallNS())
	sb := ns.ShardBytes()
	keys, _ := ns.Keys(tokens(bt, 4))
	blk := fill(sb, 3)
	if err := ns.Store(keys[0], 0, blk, nil); err != nil {
		t.Fatal(err)
	}
	v, err := ns.View(keys[0], 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v.Len() != sb {
		t.Fatalf("view len %d", v.Len())
	}
	mustEqual(t, "view", v.Bytes(), blk)
	// Deleting hides the block at once; the view's bytes stay.
	if err := ns.Delete(keys[0]); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "load deleted", ns.Load(keys[0], 0, make([]byte, sb)), kvc.ErrNotFound)
	mustEqual(t, "view after delete", v.Bytes(), blk)
	if err := v.Release(); err != nil {
		t.Fatal(err)
	}
	if v.Bytes() != nil || v.Len() != 0 {
		t.Fatal("bytes after Release")
	}
	wantCode(t, "double release", v.Release(), kvc.ErrInvalidArgument, "released")
	_, err = ns.View(keys[0], 0, 0)
	wantCode(t, "view of deleted", err, kvc.ErrNotFound)
	_, err = ns.View(keys[0], 0, -time.Second)
	wantCode(t, "negative pin timeout", err, kvc.ErrInvalidArgument, "negative")
}

// A view dropped without Release is released by its finalizer.
func TestViewFinalizer(t *testing.T) {
	c := openCache(t, 4<<20)
	ns := openNS(t, c, smallNS())
	keys, _ := ns.Keys(tokens(bt, 5))
	if err := ns.Store(keys[0], 0, fill(ns.ShardBytes(), 1), nil); err != nil {
		t.Fatal(err)
	}
	func() {
		v, err := ns.View(keys[0], 0, 0)
		if err != nil || v.Len() == 0 {
			t.Fatal(err)
		}
	}()
	for i := 0; i < 100; i++ {
		runtime.GC()
		s, _ := c.Stats()
		if s.Pins == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the dropped view's pin was not released")
}

func TestBadInputs(t *testing.T) {
	_, err := kvc.Open(&kvc.CacheOptions{HostCapacityBytes: 1000})
	wantCode(t, "capacity below minimum", err, kvc.ErrInvalidArgument, "minimum")
	_, err = kvc.Open(&kvc.CacheOptions{HostCapacityBytes: 1 << 20, HostPolicy: "no-such-policy"})
	wantCode(t, "unknown policy", err, kvc.ErrInvalidArgument, kvc.DefaultPolicy())
	_, err = kvc.Open(&kvc.CacheOptions{Prefault: 7})
	wantCode(t, "prefault 7", err, kvc.ErrInvalidArgument, "prefault")
	_, err = kvc.Open(&kvc.CacheOptions{PinTimeout: -time.Millisecond})
	wantCode(t, "negative pin timeout", err, kvc.ErrInvalidArgument, "PinTimeout")
	_, err = kvc.Open(&kvc.CacheOptions{ReservationTimeout: 60 * 24 * time.Hour})
	wantCode(t, "huge timeout", err, kvc.ErrInvalidArgument, "ReservationTimeout")

	c := openCache(t, 4<<20)
	o := smallNS()
	o.Model = ""
	_, err = c.OpenNamespace(o)
	wantCode(t, "no model", err, kvc.ErrInvalidArgument, "model")
	o = smallNS()
	o.DType = "fp13"
	_, err = c.OpenNamespace(o)
	wantCode(t, "bad dtype", err, kvc.ErrLayout, "dtype")
	o = smallNS()
	o.Shards = 3
	_, err = c.OpenNamespace(o)
	wantCode(t, "shards", err, kvc.ErrLayout)
	o = smallNS()
	o.Hash = "md5"
	_, err = c.OpenNamespace(o)
	wantCode(t, "hash md5", err, kvc.ErrInvalidArgument)
	_, err = c.OpenNamespace(nil)
	wantCode(t, "nil options", err, kvc.ErrInvalidArgument)
	o = smallNS()
	o.DefaultTTL = -time.Second
	_, err = c.OpenNamespace(o)
	wantCode(t, "negative ttl", err, kvc.ErrInvalidArgument, "DefaultTTL")

	ns := openNS(t, c, smallNS())
	sb := ns.ShardBytes()
	keys, _ := ns.Keys(tokens(2*bt, 6))
	// Short and empty token lists.
	_, err = ns.Keys(tokens(bt-1, 0))
	wantCode(t, "short tokens", err, kvc.ErrInvalidArgument, "16")
	_, err = ns.Keys(nil)
	wantCode(t, "no tokens", err, kvc.ErrInvalidArgument, "got 0")
	_, _, err = ns.MatchTokens(tokens(3, 0))
	wantCode(t, "short match", err, kvc.ErrInvalidArgument, "16")
	if _, _, err := kvc.HashKeys(smallNS(), nil); err != nil {
		t.Errorf("HashKeys with no tokens: %v", err) // the seed alone
	}
	// Wrong buffer sizes; the block stays unchanged.
	blk := fill(sb, 1)
	wantCode(t, "short src", ns.Store(keys[0], 0, blk[:sb-1], nil), kvc.ErrLayout, "bytes")
	wantCode(t, "empty src", ns.Store(keys[0], 0, nil, nil), kvc.ErrLayout)
	wantCode(t, "long src", ns.Store(keys[0], 0, append(blk, 0), nil), kvc.ErrLayout)
	wantCode(t, "shard out of range", ns.Store(keys[0], 5, blk, nil), kvc.ErrInvalidArgument)
	wantCode(t, "negative ttl", ns.Store(keys[0], 0, blk, &kvc.StoreOptions{TTL: -1}), kvc.ErrInvalidArgument)
	if err := ns.Store(keys[0], 0, blk, nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "short dst", ns.Load(keys[0], 0, make([]byte, 3)), kvc.ErrLayout)
	wantCode(t, "nil dst", ns.Load(keys[0], 0, nil), kvc.ErrLayout)
	_, err = ns.StoreBatch(keys, 0, make([]byte, sb), nil)
	wantCode(t, "batch src size", err, kvc.ErrLayout, "2 blocks")
	_, _, err = ns.LoadBatch(keys, 0, make([]byte, 2*sb+1))
	wantCode(t, "batch dst size", err, kvc.ErrLayout)
	_, _, err = ns.LoadBatch(keys, 9, make([]byte, 2*sb))
	wantCode(t, "batch shard", err, kvc.ErrInvalidArgument, "shard")
	if n, err := ns.Match(nil); n != 0 || err != nil {
		t.Errorf("Match(nil): %d %v", n, err)
	}
	if l, st, err := ns.LoadBatch(nil, 0, nil); l != 0 || len(st) != 0 || err != nil {
		t.Errorf("LoadBatch(nil): %d %v", l, err)
	}
	got := make([]byte, sb)
	if err := ns.Load(keys[0], 0, got); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "after bad inputs", got, blk)
	_, err = kvc.Simulate(filepath.Join(t.TempDir(), "missing.jsonl"), nil, []uint64{10})
	if err == nil {
		t.Error("Simulate on a missing trace succeeded")
	}
}

func TestUseAfterClose(t *testing.T) {
	c, err := kvc.Open(&kvc.CacheOptions{HostCapacityBytes: 4 << 20, Prefault: kvc.PrefaultNo})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := c.OpenNamespace(smallNS())
	if err != nil {
		t.Fatal(err)
	}
	ns2, err := c.OpenNamespace(smallNS())
	if err != nil {
		t.Fatal(err)
	}
	sb := ns.ShardBytes()
	keys, _ := ns.Keys(tokens(2*bt, 7))
	if err := ns.Store(keys[0], 0, fill(sb, 1), nil); err != nil {
		t.Fatal(err)
	}
	// Two handles, one namespace: closing one leaves the other working.
	if err := ns.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ns.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	wantCode(t, "load on closed ns", ns.Load(keys[0], 0, make([]byte, sb)), kvc.ErrClosed, "closed")
	_, err = ns.Match(keys)
	wantCode(t, "match on closed ns", err, kvc.ErrClosed)
	_, err = ns.Info()
	wantCode(t, "info on closed ns", err, kvc.ErrClosed)
	if n, err := ns2.Match(keys); n != 1 || err != nil {
		t.Fatalf("other handle: %d %v", n, err)
	}

	v, err := ns2.View(keys[0], 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ns2.BeginStore(context.Background(), keys[1], 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second cache Close: %v", err)
	}
	wantCode(t, "load after cache close", ns2.Load(keys[0], 0, make([]byte, sb)), kvc.ErrClosed, "cache")
	wantCode(t, "store after cache close", ns2.Store(keys[1], 0, fill(sb, 1), nil), kvc.ErrClosed)
	_, err = c.Stats()
	wantCode(t, "stats after close", err, kvc.ErrClosed)
	_, err = c.OpenNamespace(smallNS())
	wantCode(t, "open after close", err, kvc.ErrClosed)
	wantCode(t, "release after close", v.Release(), kvc.ErrClosed)
	wantCode(t, "commit after close", r.Commit(), kvc.ErrClosed)
	if err := r.Abort(); err != nil {
		t.Fatalf("Abort after close: %v", err)
	}
	if err := ns2.Close(); err != nil {
		t.Fatalf("namespace Close after cache Close: %v", err)
	}
	wantCode(t, "wait after close", ns2.StoreWait(context.Background(), keys[0], 0), kvc.ErrClosed)
}
