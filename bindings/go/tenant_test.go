package kvc_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"kvc.dev/kvc"
)

func TestTenants(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tenants.json")
	credA, err := kvc.CreateTenant(file, &kvc.TenantOptions{Name: "alpha", HostQuotaBytes: 64 * 8192})
	if err != nil || len(credA) < 16 {
		t.Fatalf("CreateTenant: %q %v", credA, err)
	}
	_, err = kvc.CreateTenant(file, &kvc.TenantOptions{Name: "alpha"})
	wantCode(t, "taken name", err, kvc.ErrExists)
	_, err = kvc.CreateTenant(file, &kvc.TenantOptions{Name: "bad name!"})
	wantCode(t, "bad name", err, kvc.ErrInvalidArgument)
	_, err = kvc.CreateTenant(file, &kvc.TenantOptions{Name: "gamma", Isolation: "sideways"})
	wantCode(t, "bad isolation", err, kvc.ErrInvalidArgument)
	credB, err := kvc.CreateTenant(file, &kvc.TenantOptions{Name: "beta"})
	if err != nil {
		t.Fatal(err)
	}
	js, err := kvc.TenantsJSON(file)
	if err != nil || !strings.Contains(js, `"alpha"`) || !strings.Contains(js, `"beta"`) || strings.Contains(js, credA) {
		t.Fatalf("TenantsJSON: %s %v", js, err)
	}
	one, yes := uint64(1<<20), true
	wantCode(t, "quota of nobody", kvc.SetTenantQuota(file, "nobody", kvc.QuotaChange{HostQuotaBytes: &one}), kvc.ErrNotFound)
	if err := kvc.SetTenantQuota(file, "alpha", kvc.QuotaChange{HostQuotaBytes: &one, Borrow: &yes}); err != nil {
		t.Fatal(err)
	}

	c, err := kvc.Open(&kvc.CacheOptions{HostCapacityBytes: 4 << 20, Prefault: kvc.PrefaultNo, TenantsPath: file})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	o := smallNS()
	_, err = c.OpenNamespace(o)
	wantCode(t, "no tenant", err, kvc.ErrPermission)
	o.Tenant, o.Credential = "alpha", "kvc_wrong"
	_, err = c.OpenNamespace(o)
	wantCode(t, "wrong credential", err, kvc.ErrPermission)
	o.Credential, o.Salt = credA, []byte("x")
	_, err = c.OpenNamespace(o)
	wantCode(t, "salt of an isolated tenant", err, kvc.ErrInvalidArgument)
	o.Salt = nil
	a := openNS(t, c, o)
	o.Tenant, o.Credential = "beta", credB
	b := openNS(t, c, o)
	toks := tokens(4*bt, 9)
	ka, _ := a.Keys(toks)
	kb, _ := b.Keys(toks)
	if ka[0] == kb[0] {
		t.Fatal("isolated tenants share keys for equal prompts")
	}
	if _, err := a.StoreBatch(ka, 0, make([]byte, 4*a.ShardBytes()), nil); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := b.MatchTokens(toks); n != 0 {
		t.Fatalf("beta matched %d of alpha's blocks", n)
	}
	if n, _, _ := a.MatchTokens(toks); n != 4 {
		t.Fatalf("alpha matched %d of its own 4 blocks", n)
	}
	if err := kvc.DeleteTenant(file, "beta"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "delete twice", kvc.DeleteTenant(file, "beta"), kvc.ErrNotFound)
}

// A write-through namespace's durable blocks survive the cache: a new cache
// on the same SSD directory serves them.
func TestSSDTier(t *testing.T) {
	dir := t.TempDir()
	open := func() *kvc.Cache {
		c, err := kvc.Open(&kvc.CacheOptions{HostCapacityBytes: 1 << 20, Prefault: kvc.PrefaultNo,
			SSDDir: dir, SSDCapacityBytes: 64 << 20})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	o := smallNS()
	o.WriteMode = kvc.WriteThrough
	c := open()
	ns, err := c.OpenNamespace(o)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := ns.Keys(tokens(2*bt, 11))
	blk := fill(ns.ShardBytes(), 4)
	if err := ns.Store(keys[0], 0, blk, &kvc.StoreOptions{Durable: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	st, err := c.Stats()
	if err != nil || st.SSDBlocks < 1 || st.SSDCapacityBytes != 64<<20 {
		t.Fatalf("Stats: %+v %v", st, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	js, err := kvc.SSDInspectJSON(dir)
	if err != nil || len(js) < 2 {
		t.Fatalf("SSDInspectJSON: %q %v", js, err)
	}

	c = open()
	defer c.Close()
	ns = openNS(t, c, o)
	got := make([]byte, ns.ShardBytes())
	if err := ns.Load(keys[0], 0, got); err != nil {
		t.Fatalf("load after restart: %v", err)
	}
	if !bytes.Equal(got, blk) {
		t.Fatal("bytes differ after restart")
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	_, err = kvc.Open(&kvc.CacheOptions{HostCapacityBytes: 1 << 20, SSDDir: dir})
	if err == nil {
		t.Fatal("an SSD directory without a capacity, or in use, was accepted")
	}
}
