package kvc_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"kvc.dev/kvc"
)

// Goroutines store and load shared and private chains at once; every byte
// loaded is the byte stored under that key.
func TestConcurrentStoreLoad(t *testing.T) {
	c := openCache(t, 64<<20)
	ns := openNS(t, c, smallNS())
	sb := ns.ShardBytes()
	const workers, rounds = 8, 200
	shared, _ := ns.Keys(tokens(8*bt, 99))
	content := func(k kvc.Key) []byte {
		b := make([]byte, sb)
		for i := range b {
			b[i] = k[i%16] ^ byte(i)
		}
		return b
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			// A second handle for half the workers: same namespace.
			h := ns
			if w%2 == 1 {
				var err error
				if h, err = c.OpenNamespace(smallNS()); err != nil {
					errs <- err
					return
				}
				defer h.Close()
			}
			own, _ := h.Keys(tokens(4*bt, uint32(w)))
			dst := make([]byte, sb)
			for r := 0; r < rounds; r++ {
				for _, set := range [][]kvc.Key{shared, own} {
					k := set[r%len(set)]
					if err := h.Store(k, 0, content(k), nil); err != nil &&
						!errors.Is(err, kvc.ErrExists) && !errors.Is(err, kvc.ErrPending) {
						errs <- fmt.Errorf("worker %d store: %w", w, err)
						return
					}
					err := h.Load(k, 0, dst)
					if errors.Is(err, kvc.ErrNotFound) {
						continue // another writer's reservation is pending
					}
					if err != nil {
						errs <- fmt.Errorf("worker %d load: %w", w, err)
						return
					}
					want := content(k)
					for i := range dst {
						if dst[i] != want[i] {
							errs <- fmt.Errorf("worker %d: key %s byte %d is %d, want %d", w, k, i, dst[i], want[i])
							return
						}
					}
				}
				if r%50 == 0 {
					if v, err := h.View(shared[0], 0, 0); err == nil {
						b := v.Bytes()
						if b[1] != content(shared[0])[1] {
							errs <- fmt.Errorf("worker %d: view bytes differ", w)
						}
						if err := v.Release(); err != nil {
							errs <- err
						}
					}
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n, err := ns.Match(shared); n != len(shared) || err != nil {
		t.Errorf("shared chain: %d of %d (%v)", n, len(shared), err)
	}
}

// Racing writers of one key: exactly one reserves it; the others see
// ErrPending (then wait for the commit) or ErrExists.
func TestConcurrentWritersOneKey(t *testing.T) {
	c := openCache(t, 8<<20)
	ns := openNS(t, c, smallNS())
	sb := ns.ShardBytes()
	keys, _ := ns.Keys(tokens(bt, 42))
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := ns.BeginStore(context.Background(), keys[0], 0, nil)
			switch {
			case err == nil:
				mu.Lock()
				won++
				mu.Unlock()
				if err := r.Write(fill(sb, 5)); err != nil {
					t.Error(err)
				}
				if err := r.Commit(); err != nil {
					t.Error(err)
				}
			case errors.Is(err, kvc.ErrPending):
				if err := ns.StoreWait(context.Background(), keys[0], 0); err != nil {
					t.Errorf("StoreWait: %v", err)
				}
			case errors.Is(err, kvc.ErrExists):
			default:
				t.Errorf("BeginStore: %v", err)
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Fatalf("%d writers reserved the key", won)
	}
	got := make([]byte, sb)
	if err := ns.Load(keys[0], 0, got); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "winner's bytes", got, fill(sb, 5))
}

// Close races calls in flight: every call either works or says the cache
// is closed; nothing crashes.
func TestCloseWhileInUse(t *testing.T) {
	for round := 0; round < 20; round++ {
		c, err := kvc.Open(&kvc.CacheOptions{HostCapacityBytes: 4 << 20, Prefault: kvc.PrefaultNo})
		if err != nil {
			t.Fatal(err)
		}
		ns, err := c.OpenNamespace(smallNS())
		if err != nil {
			t.Fatal(err)
		}
		sb := ns.ShardBytes()
		keys, _ := ns.Keys(tokens(4*bt, uint32(round)))
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				buf := fill(sb, w)
				for i := 0; i < 200; i++ {
					k := keys[(i+w)%len(keys)]
					err := ns.Store(k, 0, buf, nil)
					if err == nil || errors.Is(err, kvc.ErrExists) || errors.Is(err, kvc.ErrPending) {
						err = ns.Load(k, 0, buf)
					}
					if errors.Is(err, kvc.ErrClosed) {
						return
					}
					if err != nil && !errors.Is(err, kvc.ErrNotFound) {
						t.Errorf("worker %d: %v", w, err)
						return
					}
				}
			}(w)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if err := ns.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
