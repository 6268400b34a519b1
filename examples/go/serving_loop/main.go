// serving_loop is the shape of an inference engine's use of kvc, in Go:
// for each request, match the prompt against the cache, load the cached
// prefix's KV, compute the rest, and store the new blocks so that the next
// request sharing the prefix skips their prefill.
//
// "Compute" here is a deterministic stand-in for prefill: a block's bytes
// are derived from its key, so every load can be checked.
//
// Run it from this folder with `go run .` (libkvc found by pkg-config).
package main

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"os"

	"kvc.dev/kvc"
)

// prefill stands in for the model: the KV of one block, a function of the
// whole prefix it ends (which its key names).
func prefill(key kvc.Key, dst []byte) {
	for i := range dst {
		dst[i] = key[i%kvc.KeyBytes] ^ byte(i*7)
	}
}

type engine struct {
	ns *kvc.Namespace
}

// serve handles one prompt and returns how many blocks came from the cache.
func (e *engine) serve(prompt []uint32) (hit, total int, err error) {
	sb := e.ns.ShardBytes()
	hit, keys, err := e.ns.MatchTokens(prompt)
	if err != nil {
		return 0, 0, fmt.Errorf("match: %w", err)
	}
	total = len(keys)
	kv := make([]byte, total*sb) // the engine's KV staging for this request

	// Load the cached prefix straight into the engine's buffer.
	if hit > 0 {
		loaded, _, err := e.ns.LoadBatch(keys[:hit], 0, kv[:hit*sb])
		if err != nil {
			return 0, 0, fmt.Errorf("load: %w", err)
		}
		hit = loaded // a block evicted since the match is recomputed
	}
	want := make([]byte, sb)
	for i := 0; i < hit; i++ {
		prefill(keys[i], want)
		if !bytes.Equal(kv[i*sb:(i+1)*sb], want) {
			return 0, 0, fmt.Errorf("block %d loaded from the cache differs from its prefill", i)
		}
	}

	// Compute the rest, then store the new blocks as one chain.
	for i := hit; i < total; i++ {
		prefill(keys[i], kv[i*sb:(i+1)*sb])
	}
	if hit < total {
		opts := &kvc.StoreOptions{}
		if hit > 0 {
			opts.Parent = &keys[hit-1] // the chain continues the cached prefix
		}
		if _, err := e.ns.StoreBatch(keys[hit:], 0, kv[hit*sb:], opts); err != nil {
			return 0, 0, fmt.Errorf("store: %w", err)
		}
	}
	return hit, total, nil
}

func run() error {
	fmt.Printf("kvc %s\n", kvc.Version())
	cache, err := kvc.Open(&kvc.CacheOptions{HostCapacityBytes: 64 << 20})
	if err != nil {
		return err
	}
	defer cache.Close()
	ns, err := cache.OpenNamespace(&kvc.NamespaceOptions{
		Model: "example/tiny-llm", Revision: "v1", DType: "bf16",
		Layers: 4, KVHeads: 4, HeadDim: 64, BlockTokens: 16,
	})
	if err != nil {
		return err
	}
	defer ns.Close()
	e := &engine{ns: ns}

	system := make([]uint32, 64) // a shared system prompt: 4 blocks
	for i := range system {
		system[i] = uint32(1000 + i)
	}
	turn1 := append(append([]uint32{}, system...), 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25)
	turn2 := append(append([]uint32{}, turn1...), 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43)
	other := []uint32{5, 4, 3, 2, 1, 5, 4, 3, 2, 1, 5, 4, 3, 2, 1, 5, 4, 3}

	for i, prompt := range [][]uint32{turn1, turn2, other} {
		hit, total, err := e.serve(prompt)
		if err != nil {
			return fmt.Errorf("request %d: %w", i+1, err)
		}
		fmt.Printf("request %d: %d of %d blocks from the cache, %d computed (%d tokens)\n",
			i+1, hit, total, total-hit, len(prompt))
		if i == 1 && hit < 5 {
			return fmt.Errorf("request 2 shares request 1's 5 blocks but found %d in the cache", hit)
		}
	}

	// A miss is an error value to test, not an exception.
	var nowhere kvc.Key
	if err := ns.Load(nowhere, 0, make([]byte, ns.ShardBytes())); !errors.Is(err, kvc.ErrNotFound) {
		return fmt.Errorf("loading an absent block: %v", err)
	}
	st, err := cache.Stats()
	if err != nil {
		return err
	}
	fmt.Printf("cache: %d blocks, %d hits, %d misses, %d stores, %d KiB loaded\n",
		st.Blocks, st.Hits, st.Misses, st.Stores, st.BytesLoaded>>10)
	return nil
}

func main() {
	if err := run(); err != nil {
		log.SetFlags(0)
		log.Print("serving_loop: ", err)
		os.Exit(1)
	}
}
