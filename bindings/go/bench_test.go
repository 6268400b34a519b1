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
)

// The load benchmark: 1 MiB block shards (fp16, 8 layers, 8 KV heads, head
// dim 128, 32 tokens per block), 64 blocks cycled into a 64 MiB destination
// (one slot per block), so the working set is not cache resident.
// BenchmarkLoad1MiB goes through Namespace.Load; BenchmarkLoad1MiBC is the
// same loop written in C against kvc.h (a cgo helper), on the same
// namespace and into the same memory.
const (
	benchLayers, benchHeads, benchDim, benchTokens = 8, 8, 128, 32
	benchBlocks                                    = 64
	benchCapacity                                  = 160 << 20
)

type loadBench struct {
	c    *kvc.Cache
	ns   *kvc.Namespace
	keys []kvc.Key
	dst  []byte
	sb   int
}

func newLoadBench(tb testing.TB) *loadBench {
	c, err := kvc.Open(&kvc.CacheOptions{HostCapacityBytes: benchCapacity, Prefault: kvc.PrefaultYes})
	if err != nil {
		tb.Fatal(err)
	}
	ns, err := c.OpenNamespace(&kvc.NamespaceOptions{Model: "bench", Revision: "r1", DType: "fp16",
		Layers: benchLayers, KVHeads: benchHeads, HeadDim: benchDim, BlockTokens: benchTokens, Shards: 1})
	if err != nil {
		tb.Fatal(err)
	}
	b := &loadBench{c: c, ns: ns, sb: ns.ShardBytes(), keys: make([]kvc.Key, benchBlocks)}
	if b.sb != 1<<20 {
		tb.Fatalf("shard is %d bytes", b.sb)
	}
	b.dst = make([]byte, benchBlocks*b.sb)
	for i := range b.keys {
		b.keys[i][0], b.keys[i][1], b.keys[i][15] = byte(i), byte(i>>8), 0xcb
		if err := ns.Store(b.keys[i], 0, bytes.Repeat([]byte{byte(i)}, b.sb), nil); err != nil {
			tb.Fatal(err)
		}
	}
	tb.Cleanup(func() { c.Close() })
	return b
}

func (b *loadBench) goLoop(tb testing.TB, iters int) {
	for i := 0; i < iters; i++ {
		k := i % benchBlocks
		if err := b.ns.Load(b.keys[k], 0, b.dst[k*b.sb:(k+1)*b.sb]); err != nil {
			tb.Fatal(err)
		}
	}
}

// batchLoop loads the same blocks with LoadBatch, len(keys) per call.
func (b *loadBench) batchLoop(tb testing.TB, iters int) {
	for done := 0; done < iters; done += benchBlocks {
		if _, _, err := b.ns.LoadBatch(b.keys, 0, b.dst); err != nil {
			tb.Fatal(err)
		}
	}
}

func (b *loadBench) cLoop(tb testing.TB, iters int) {
	if err := kvc.CLoadLoop(b.ns, b.keys, 0, b.dst, iters); err != nil {
		tb.Fatal(err)
	}
}

// check verifies the blocks the first `loads` loads wrote.
func (b *loadBench) check(tb testing.TB, loads int) {
	for k := 0; k < benchBlocks && k < loads; k++ {
		if b.dst[k*b.sb] != byte(k) || b.dst[(k+1)*b.sb-1] != byte(k) {
			tb.Fatalf("block %d loaded wrong bytes", k)
		}
	}
}

func BenchmarkLoad1MiB(b *testing.B) {
	lb := newLoadBench(b)
	b.SetBytes(int64(lb.sb))
	b.ResetTimer()
	lb.goLoop(b, b.N)
	b.StopTimer()
	lb.check(b, b.N)
}

func BenchmarkLoad1MiBC(b *testing.B) {
	lb := newLoadBench(b)
	b.SetBytes(int64(lb.sb))
	b.ResetTimer()
	lb.cLoop(b, b.N)
	b.StopTimer()
	lb.check(b, b.N)
}

// TestLoadThroughput runs the two loops in alternating rounds, which is
// fairer than two benchmarks one after the other on a busy machine: rounds
// next to each other see the same load, so the median of the per-round
// ratios is the robust figure. LoadBatch (64 blocks a call) is measured
// too. It runs with KVC_BENCH=1 (loads per round:
// KVC_BENCH_ITERS, rounds: KVC_BENCH_ROUNDS) and prints with go test -v.
func TestLoadThroughput(t *testing.T) {
	if os.Getenv("KVC_BENCH") == "" {
		t.Skip("set KVC_BENCH=1 to run the load throughput comparison")
	}
	iters, rounds := envInt("KVC_BENCH_ITERS", 256), envInt("KVC_BENCH_ROUNDS", 41)
	lb := newLoadBench(t)
	timed := func(f func(testing.TB, int)) float64 {
		start := time.Now()
		f(t, iters)
		return float64(iters) * float64(lb.sb) / time.Since(start).Seconds() / 1e9
	}
	iters -= iters % benchBlocks // whole batches
	if iters == 0 {
		iters = benchBlocks
	}
	timed(lb.cLoop) // warm-up
	timed(lb.goLoop)
	timed(lb.batchLoop)
	var cRuns, goRuns, batchRuns, ratios, batchRatios []float64
	for r := 0; r < rounds; r++ {
		var c, g, bt float64
		if r%2 == 0 { // the order within a round alternates
			c, g, bt = timed(lb.cLoop), timed(lb.goLoop), timed(lb.batchLoop)
		} else {
			bt, g, c = timed(lb.batchLoop), timed(lb.goLoop), timed(lb.cLoop)
		}
		cRuns, goRuns, batchRuns = append(cRuns, c), append(goRuns, g), append(batchRuns, bt)
		ratios, batchRatios = append(ratios, g/c), append(batchRatios, bt/c)
	}
	lb.check(t, iters)
	fmt.Printf("load 1 MiB blocks, %d loads x %d rounds (GB/s, 1 GB = 1e9 bytes)\n", iters, rounds)
	fmt.Printf("  C loop (cgo helper)          median %6.2f  best %6.2f\n", median(cRuns), maxOf(cRuns))
	fmt.Printf("  Go Namespace.Load            median %6.2f  best %6.2f\n", median(goRuns), maxOf(goRuns))
	fmt.Printf("  Go Namespace.LoadBatch (64)  median %6.2f  best %6.2f\n", median(batchRuns), maxOf(batchRuns))
	fmt.Printf("  Load / C: median of per-round ratios %.1f%%, ratio of bests %.1f%%\n",
		100*median(ratios), 100*maxOf(goRuns)/maxOf(cRuns))
	fmt.Printf("  LoadBatch / C: median of per-round ratios %.1f%%, ratio of bests %.1f%%\n",
		100*median(batchRatios), 100*maxOf(batchRuns)/maxOf(cRuns))
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

func maxOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		if x > m {
			m = x
		}
	}
	return m
}
