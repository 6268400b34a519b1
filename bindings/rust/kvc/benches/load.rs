//! Load throughput of 1 MiB block shards: through the safe API
//! (`Namespace::load`) against the C API called directly (`kvc_load` in a
//! loop through kvc-sys, no wrapper: the calls a C program makes), in one
//! process, alternating rounds.
//!
//! Layout: fp16, 8 layers, 8 KV heads, head dim 128, 32 tokens per block =
//! 1 MiB per shard; 64 blocks cycled into 64 distinct destination buffers so
//! the working set (64 MiB each side) is not cache resident.
//!
//! `cargo bench --bench load`; KVC_BENCH_ITERS (loads per round, default
//! 2000) and KVC_BENCH_ROUNDS (default 7) tune it.
use std::ptr;
use std::time::Instant;

use kvc::{Cache, CacheOptions, Key, NamespaceOptions, Prefault};

const BLOCKS: usize = 64;
const CAPACITY: u64 = 160 << 20;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn ns_options() -> NamespaceOptions {
    NamespaceOptions {
        model: "bench".into(),
        revision: "r1".into(),
        dtype: "fp16".into(),
        layers: 8,
        kv_heads: 8,
        head_dim: 128,
        block_tokens: 32,
        shards: 1,
        ..Default::default()
    }
}

fn key(i: usize) -> Key {
    let mut k = Key::default();
    k.0[..8].copy_from_slice(&(i as u64).to_le_bytes());
    k.0[15] = 0xcb;
    k
}

/// The C API alone: its own cache and namespace, loads in a plain loop.
struct Raw {
    cache: *mut kvc_sys::kvc_cache,
    ns: *mut kvc_sys::kvc_namespace,
    shard: usize,
}

impl Raw {
    fn open(dsts: &mut [Vec<u8>]) -> Raw {
        let co = kvc_sys::kvc_cache_options { host_capacity_bytes: CAPACITY, prefault: 1, ..Default::default() };
        let mut err = kvc_sys::kvc_error::default();
        let mut cache = ptr::null_mut();
        let mut ns = ptr::null_mut();
        let strs: Vec<std::ffi::CString> =
            ["bench", "r1", "fp16"].iter().map(|s| std::ffi::CString::new(*s).unwrap()).collect();
        let no = kvc_sys::kvc_namespace_options {
            model: strs[0].as_ptr(),
            revision: strs[1].as_ptr(),
            dtype: strs[2].as_ptr(),
            layers: 8,
            kv_heads: 8,
            head_dim: 128,
            block_tokens: 32,
            shards: 1,
            ..Default::default()
        };
        let mut info = kvc_sys::kvc_namespace_info::default();
        // SAFETY: valid pointers for each call; checked statuses.
        unsafe {
            assert_eq!(kvc_sys::kvc_cache_open(&mut cache, &co, &mut err), 0);
            assert_eq!(kvc_sys::kvc_namespace_open(&mut ns, cache, &no, &mut err), 0);
            assert_eq!(kvc_sys::kvc_namespace_info_get(ns, &mut info, &mut err), 0);
        }
        let shard = info.shard_bytes as usize;
        for (i, d) in dsts.iter_mut().enumerate() {
            let src = kvc_sys::kvc_buf { data: d.as_mut_ptr().cast(), len: shard, mem: 0, device: 0 };
            let k = key(i);
            // SAFETY: `d` holds shard bytes; the key is 16 bytes.
            let rc = unsafe { kvc_sys::kvc_store(ns, (&k as *const Key).cast(), 0, &src, ptr::null(), &mut err) };
            assert_eq!(rc, 0);
        }
        Raw { cache, ns, shard }
    }

    fn load(&self, iters: usize, keys: &[Key], dsts: &mut [Vec<u8>]) {
        let mut err = kvc_sys::kvc_error::default();
        for i in 0..iters {
            let k = i % BLOCKS;
            let dst = kvc_sys::kvc_buf { data: dsts[k].as_mut_ptr().cast(), len: self.shard, mem: 0, device: 0 };
            // SAFETY: `dst` holds shard bytes; the key is 16 bytes.
            let rc = unsafe { kvc_sys::kvc_load(self.ns, (&keys[k] as *const Key).cast(), 0, &dst, &mut err) };
            assert_eq!(rc, 0);
        }
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        // SAFETY: opened by Raw::open, closed once.
        unsafe { kvc_sys::kvc_cache_close(self.cache) };
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let iters = env_usize("KVC_BENCH_ITERS", 2000);
    let rounds = env_usize("KVC_BENCH_ROUNDS", 7).max(1);

    let cache = Cache::open(&CacheOptions { host_capacity_bytes: CAPACITY, prefault: Prefault::Yes, ..Default::default() })
        .expect("open");
    let ns = cache.namespace(&ns_options()).expect("namespace");
    let sb = ns.shard_bytes();
    assert_eq!(sb, 1 << 20, "the layout is not 1 MiB per shard");
    let keys: Vec<Key> = (0..BLOCKS).map(key).collect();
    let mut safe_dsts: Vec<Vec<u8>> = (0..BLOCKS).map(|i| vec![i as u8; sb]).collect();
    for (k, d) in keys.iter().zip(&safe_dsts) {
        ns.store(k, 0, d, None).expect("store");
    }
    let mut raw_dsts: Vec<Vec<u8>> = (0..BLOCKS).map(|i| vec![i as u8; sb]).collect();
    let raw = Raw::open(&mut raw_dsts);

    let gbps = |secs: f64| (iters * sb) as f64 / secs / 1e9;
    let (mut c_runs, mut rust_runs) = (Vec::new(), Vec::new());
    // One warm-up round of each, not counted.
    raw.load(iters.min(BLOCKS * 2), &keys, &mut raw_dsts);
    for i in 0..iters.min(BLOCKS * 2) {
        ns.load(&keys[i % BLOCKS], 0, &mut safe_dsts[i % BLOCKS]).unwrap();
    }
    for _ in 0..rounds {
        let t = Instant::now();
        raw.load(iters, &keys, &mut raw_dsts);
        c_runs.push(gbps(t.elapsed().as_secs_f64()));

        let t = Instant::now();
        for i in 0..iters {
            let k = i % BLOCKS;
            ns.load(&keys[k], 0, &mut safe_dsts[k]).expect("load");
        }
        rust_runs.push(gbps(t.elapsed().as_secs_f64()));
    }
    for (i, d) in safe_dsts.iter().enumerate() {
        assert!(d.iter().all(|&b| b == i as u8), "block {i} loaded wrong bytes");
    }
    let (c_med, rust_med) = (median(&mut c_runs), median(&mut rust_runs));
    println!("load 1 MiB blocks, {iters} loads x {rounds} rounds (median GB/s, 1 GB = 1e9 bytes)");
    println!("  C API (kvc_load via kvc-sys) {c_med:8.2} GB/s   runs {c_runs:.2?}");
    println!("  Rust kvc::Namespace::load    {rust_med:8.2} GB/s   runs {rust_runs:.2?}");
    println!("  Rust / C = {:.1}%", 100.0 * rust_med / c_med);
}
