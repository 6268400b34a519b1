package kvc_test

import (
	"math/rand"
	"os"
	"sort"
	"testing"
	"time"

	"kvc.dev/kvc"
)

// TestNodeThroughput (KVC_BENCH=1) gets 1 MiB block shards from an
// in-process node through the binding, four ways, alternated in rounds so
// that neighbouring rounds see the same machine load: per-block Get and
// GetBatch (all blocks in one request) over "unix:" and over TCP (in a random
// order each round), and, as
// peers, Go's copy() of the same bytes between two slices (memcpy) and one
// kvc_node_get_batch built and called in C over "unix:" (the binding's own
// cost).
// It logs the median GB/s of each and the median of per-round ratios to the
// copy (figures: docs/bindings-go.md).
func TestNodeThroughput(t *testing.T) {
	if os.Getenv("KVC_BENCH") == "" {
		t.Skip("SKIP: set KVC_BENCH=1 to run the node throughput comparison")
	}
	needGRPC(t)
	const blocks, rounds = 32, 31
	s, unixAddr := startNode(t, &kvc.NodeServerOptions{
		Cache: &kvc.CacheOptions{HostCapacityBytes: 96 << 20, Prefault: kvc.PrefaultYes}})
	o := &kvc.NamespaceOptions{Model: "go-node-bench", Revision: "r1", DType: "fp16",
		Layers: 8, KVHeads: 8, HeadDim: 128, BlockTokens: 32, Shards: 1}
	sb := 2 * 2 * 8 * 8 * 128 * 32 // K and V, fp16: 1 MiB
	src := make([]byte, blocks*sb)
	items := make([]kvc.NodeItem, blocks)
	for i := range items {
		copy(src[i*sb:], fill(sb, i))
		items[i] = kvc.NodeItem{Key: nodeKey(7, i), Buf: src[i*sb : (i+1)*sb]}
	}
	tcp := connect(t, s.Address(), nil)
	unix := connect(t, unixAddr, nil)
	if err := tcp.PutBatch(o, 0, src, items, nil); err != nil {
		t.Fatal(err)
	}
	for i := range items {
		if items[i].Err != nil {
			t.Fatalf("put %d: %v", i, items[i].Err)
		}
	}
	dst := make([]byte, blocks*sb)
	for i := range dst {
		dst[i] = 1 // touch the pages
	}
	perBlock := func(n *kvc.Node) func() {
		return func() {
			for i := 0; i < blocks; i++ {
				if _, err := n.Get(o, items[i].Key, 0, dst[i*sb:(i+1)*sb]); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	batch := func(n *kvc.Node) func() {
		gets := make([]kvc.NodeItem, blocks)
		return func() {
			for i := range gets {
				gets[i] = kvc.NodeItem{Key: items[i].Key, Buf: dst[i*sb : (i+1)*sb]}
			}
			if err := n.GetBatch(o, 0, dst, gets); err != nil {
				t.Fatal(err)
			}
			for i := range gets {
				if gets[i].Err != nil {
					t.Fatal(gets[i].Err)
				}
			}
		}
	}
	keys := make([]kvc.Key, blocks)
	for i := range keys {
		keys[i] = items[i].Key
	}
	cBatch := func(n *kvc.Node) func() {
		return func() {
			if err := kvc.CNodeGetBatch(n, o, keys, dst, sb); err != nil {
				t.Fatal(err)
			}
		}
	}
	ways := []struct {
		name string
		run  func()
	}{
		{"copy() (memcpy)", func() { copy(dst, src) }},
		{"unix: GetBatch", batch(unix)},
		{"unix: C get_batch", cBatch(unix)},
		{"unix: Get per block", perBlock(unix)},
		{"tcp: GetBatch", batch(tcp)},
		{"tcp: C get_batch", cBatch(tcp)},
		{"tcp: Get per block", perBlock(tcp)},
	}
	gbps := make([][]float64, len(ways))
	ratios := make([][]float64, len(ways))
	rng := rand.New(rand.NewSource(1))
	for r := 0; r < rounds; r++ {
		var base float64
		// copy() first, then the others in a new random order each round: a
		// way runs faster or slower by what ran before it (caches).
		order := append([]int{0}, rng.Perm(len(ways)-1)...)
		for j := 1; j < len(order); j++ {
			order[j]++
		}
		for _, w := range order {
			start := time.Now()
			ways[w].run()
			g := float64(blocks*sb) / time.Since(start).Seconds() / 1e9
			if w == 0 {
				base = g
			}
			if r > 0 { // the first round warms up
				gbps[w] = append(gbps[w], g)
				ratios[w] = append(ratios[w], g/base)
			}
		}
		mustEqual(t, "the last block", dst[(blocks-1)*sb:], src[(blocks-1)*sb:])
	}
	median := func(v []float64) float64 {
		c := append([]float64(nil), v...)
		sort.Float64s(c)
		return c[len(c)/2]
	}
	// The binding against the same call made from C, per round.
	for _, p := range [][2]int{{1, 2}, {4, 5}} {
		var rs []float64
		for r := range gbps[p[0]] {
			rs = append(rs, gbps[p[0]][r]/gbps[p[1]][r])
		}
		t.Logf("%s / %s: %.1f%% (median of per-round ratios)", ways[p[0]].name, ways[p[1]].name, 100*median(rs))
	}
	for w, way := range ways {
		t.Logf("%-22s median %6.2f GB/s, %5.1f%% of copy() (median of per-round ratios)",
			way.name, median(gbps[w]), 100*median(ratios[w]))
	}
}
