package kvc_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kvc.dev/kvc"
)

const bt = 16

func smallNS() *kvc.NamespaceOptions {
	return &kvc.NamespaceOptions{
		Model: "test-model", Revision: "r1", DType: "fp16",
		Layers: 2, KVHeads: 2, HeadDim: 16, BlockTokens: bt, Shards: 1,
	}
}

func openCache(t testing.TB, capacity uint64) *kvc.Cache {
	t.Helper()
	c, err := kvc.Open(&kvc.CacheOptions{HostCapacityBytes: capacity, Prefault: kvc.PrefaultNo})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func openNS(t testing.TB, c *kvc.Cache, o *kvc.NamespaceOptions) *kvc.Namespace {
	t.Helper()
	ns, err := c.OpenNamespace(o)
	if err != nil {
		t.Fatalf("OpenNamespace: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

func fill(n int, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + seed*17)
	}
	return b
}

func tokens(n int, seed uint32) []uint32 {
	t := make([]uint32, n)
	for i := range t {
		t[i] = uint32(i)*7 + 1 + seed*1000003
	}
	return t
}

// wantCode fails unless err is a *kvc.Error matching sentinel whose message
// contains every one of words.
func wantCode(t *testing.T, what string, err error, sentinel *kvc.Error, words ...string) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Errorf("%s: got %v, want %s", what, err, sentinel.Code)
		return
	}
	var ke *kvc.Error
	if !errors.As(err, &ke) {
		t.Errorf("%s: %T is not a *kvc.Error", what, err)
		return
	}
	for _, w := range words {
		if !strings.Contains(ke.Message, w) {
			t.Errorf("%s: message %q lacks %q", what, ke.Message, w)
		}
	}
}

func mustEqual(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: bytes differ", what)
	}
}

func sourceDir(t *testing.T) string {
	if d := os.Getenv("KVC_SOURCE_DIR"); d != "" {
		return d
	}
	d, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return d
}
