package kvc_test

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"kvc.dev/kvc"
	"kvc.dev/kvc/internal/cbench"
)

// The load benchmark: 1 MiB block shards (fp16, 8 layers, 8 KV heads, head
// dim 128, 32 tokens per block), 64 blocks cycled into 64 distinct
// destination buffers so that the working set (64 MiB each side) is not
// cache resident. BenchmarkLoad1MiB goes through this package;
// BenchmarkLoad1MiBC is the same loop written in C against kvc.h.
const (
	benchLayers, benchHeads, benchDim, benchTokens = 8, 8, 128, 32
	benchBlocks                                    = 64
	benchCapacity                                  = 160 << 20
)

func BenchmarkLoad1MiB(b *testing.B) {
	c, err := kvc.Open(&kvc.CacheOptions{HostCapacityBytes: benchCapacity, Prefault: kvc.PrefaultYes})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ns, err := c.OpenNamespace(&kvc.NamespaceOptions{Model: "bench", Revision: "r1", DType: "fp16",
		Layers: benchLayers, KVHeads: benchHeads, HeadDim: benchDim, BlockTokens: benchTokens, Shards: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer ns.Close()
	sb := ns.ShardBytes()
	if sb != 1<<20 {
		b.Fatalf("shard is %d bytes", sb)
	}
	keys := make([]kvc.Key, benchBlocks)
	dsts := make([][]byte, benchBlocks)
	for i := range keys {
		keys[i][0], keys[i][1], keys[i][15] = byte(i), byte(i>>8), 0xcb
		dsts[i] = make([]byte, sb)
		for j := range dsts[i] {
			dsts[i][j] = byte(i)
		}
		if err := ns.Store(keys[i], 0, dsts[i], nil); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(sb))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % benchBlocks
		if err := ns.Load(keys[k], 0, dsts[k]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoad1MiBC(b *testing.B) {
	cb, err := cbench.Open(benchCapacity, benchLayers, benchHeads, benchDim, benchTokens, benchBlocks)
	if err != nil {
		b.Fatal(err)
	}
	defer cb.Close()
	b.SetBytes(int64(cb.ShardBytes()))
	b.ResetTimer()
	if err := cb.Load(b.N); err != nil {
		b.Fatal(err)
	}
}

// TestLoadThroughput compares the two loops in alternating rounds, which is
// fairer than two benchmarks run one after the other on a busy machine. It
// runs with KVC_BENCH=1 (loads per round: KVC_BENCH_ITERS, rounds:
// KVC_BENCH_ROUNDS) and prints the median GB/s of each and their ratio.
func TestLoadThroughput(t *testing.T) {
	if os.Getenv("KVC_BENCH") == "" {
		t.Skip("set KVC_BENCH=1 to run the load throughput comparison")
	}
	iters, rounds := envInt("KVC_BENCH_ITERS", 2000), envInt("KVC_BENCH_ROUNDS", 7)
	var goRuns, cRuns []float64
	gb := func(d time.Duration) float64 { return float64(iters) * float64(1<<20) / d.Seconds() / 1e9 }
	c, err := kvc.Open(&kvc.CacheOptions{HostCapacityBytes: benchCapacity, Prefault: kvc.PrefaultYes})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ns, err := c.OpenNamespace(&kvc.NamespaceOptions{Model: "bench", Revision: "r1", DType: "fp16",
		Layers: benchLayers, KVHeads: benchHeads, HeadDim: benchDim, BlockTokens: benchTokens, Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	keys := make([]kvc.Key, benchBlocks)
	dsts := make([][]byte, benchBlocks)
	for i := range keys {
		keys[i][0], keys[i][1], keys[i][15] = byte(i), byte(i>>8), 0xcb
		dsts[i] = bytes.Repeat([]byte{byte(i)}, ns.ShardBytes())
		if err := ns.Store(keys[i], 0, dsts[i], nil); err != nil {
			t.Fatal(err)
		}
	}
	cb, err := cbench.Open(benchCapacity, benchLayers, benchHeads, benchDim, benchTokens, benchBlocks)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	for r := 0; r <= rounds; r++ { // round 0 warms up
		start := time.Now()
		if err := cb.Load(iters); err != nil {
			t.Fatal(err)
		}
		cd := time.Since(start)
		start = time.Now()
		for i := 0; i < iters; i++ {
			k := i % benchBlocks
			if err := ns.Load(keys[k], 0, dsts[k]); err != nil {
				t.Fatal(err)
			}
		}
		gd := time.Since(start)
		if r > 0 {
			cRuns, goRuns = append(cRuns, gb(cd)), append(goRuns, gb(gd))
		}
	}
	for i, d := range dsts {
		if d[0] != byte(i) || d[len(d)-1] != byte(i) {
			t.Fatalf("block %d loaded wrong bytes", i)
		}
	}
	cm, gm := median(cRuns), median(goRuns)
	fmt.Printf("load 1 MiB blocks, %d loads x %d rounds (median GB/s, 1 GB = 1e9 bytes)\n", iters, rounds)
	fmt.Printf("  C loop (cgo helper)    %8.2f GB/s   runs %.2f\n", cm, cRuns)
	fmt.Printf("  Go kvc.Namespace.Load  %8.2f GB/s   runs %.2f\n", gm, goRuns)
	fmt.Printf("  Go / C = %.1f%%\n", 100*gm/cm)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}
