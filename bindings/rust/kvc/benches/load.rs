//! Load throughput of 1 MiB block shards through the safe API
//! (`Namespace::load`) against the C API called directly (`kvc_load` in a
//! plain loop through kvc-sys: the calls a C program makes, no wrapper), on
//! the same namespace and into the same memory, so that only the call path
//! differs.
//!
//! Layout: fp16, 8 layers, 8 KV heads, head dim 128, 32 tokens per block =
//! 1 MiB per shard; 64 blocks cycled into a 64 MiB destination (one slot
//! per block), so the working set is not cache resident. The two loops run
//! in alternating rounds; rounds next to each other see the same machine
//! load, so the median of the per-round ratios is the robust figure.
//!
//! `cargo bench --bench load`; KVC_BENCH_ITERS (loads per round, default
//! 256) and KVC_BENCH_ROUNDS (default 41) tune it.
use std::time::Instant;

use kvc::{Cache, CacheOptions, Key, Namespace, NamespaceOptions, Prefault};

const BLOCKS: usize = 64;
const CAPACITY: u64 = 160 << 20;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).filter(|&v| v > 0).unwrap_or(default)
}

fn key(i: usize) -> Key {
    let mut k = Key::default();
    k.0[..8].copy_from_slice(&(i as u64).to_le_bytes());
    k.0[15] = 0xcb;
    k
}

/// The C API alone: kvc_load in a loop, as a C program would write it.
fn c_loop(ns: &Namespace, keys: &[Key], dst: &mut [u8], iters: usize) {
    let sb = ns.shard_bytes();
    let raw = ns.as_raw();
    let mut err = kvc_sys::kvc_error::default();
    for i in 0..iters {
        let k = i % BLOCKS;
        let buf = kvc_sys::kvc_buf {
            data: dst[k * sb..].as_mut_ptr().cast(),
            len: sb,
            mem: kvc_sys::KVC_MEM_HOST,
            device: 0,
        };
        // SAFETY: the namespace is open; `buf` spans sb bytes of `dst`.
        let rc = unsafe { kvc_sys::kvc_load(raw, (&keys[k] as *const Key).cast(), 0, &buf, &mut err) };
        assert_eq!(rc, kvc_sys::KVC_OK);
    }
}

fn rust_loop(ns: &Namespace, keys: &[Key], dst: &mut [u8], iters: usize) {
    let sb = ns.shard_bytes();
    for i in 0..iters {
        let k = i % BLOCKS;
        ns.load(&keys[k], 0, &mut dst[k * sb..(k + 1) * sb]).expect("load");
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s[s.len() / 2]
}

fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::MIN, f64::max)
}

fn main() {
    let iters = env_usize("KVC_BENCH_ITERS", 256);
    let rounds = env_usize("KVC_BENCH_ROUNDS", 41);

    let cache = Cache::open(&CacheOptions { host_capacity_bytes: CAPACITY, prefault: Prefault::Yes, ..Default::default() })
        .expect("open");
    let ns = cache
        .namespace(&NamespaceOptions {
            model: "bench".into(),
            revision: "r1".into(),
            dtype: "fp16".into(),
            layers: 8,
            kv_heads: 8,
            head_dim: 128,
            block_tokens: 32,
            shards: 1,
            ..Default::default()
        })
        .expect("namespace");
    let sb = ns.shard_bytes();
    assert_eq!(sb, 1 << 20, "the layout is not 1 MiB per shard");
    let keys: Vec<Key> = (0..BLOCKS).map(key).collect();
    for (i, k) in keys.iter().enumerate() {
        ns.store(k, 0, &vec![i as u8; sb], None).expect("store");
    }
    let mut dst = vec![0u8; BLOCKS * sb];

    let mut timed = |f: fn(&Namespace, &[Key], &mut [u8], usize)| {
        let t = Instant::now();
        f(&ns, &keys, &mut dst, iters);
        (iters * sb) as f64 / t.elapsed().as_secs_f64() / 1e9
    };
    timed(c_loop); // warm-up
    timed(rust_loop);
    let (mut c_runs, mut rust_runs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..rounds {
        let (c, rs) = if r % 2 == 0 {
            let c = timed(c_loop);
            (c, timed(rust_loop))
        } else {
            let rs = timed(rust_loop);
            (timed(c_loop), rs)
        };
        c_runs.push(c);
        rust_runs.push(rs);
        ratios.push(rs / c);
    }
    for k in 0..BLOCKS {
        assert!(dst[k * sb] == k as u8 && dst[(k + 1) * sb - 1] == k as u8, "block {k} loaded wrong bytes");
    }
    println!("load 1 MiB blocks, {iters} loads x {rounds} rounds (GB/s, 1 GB = 1e9 bytes)");
    println!("  C API (kvc_load via kvc-sys)  median {:6.2}  best {:6.2}", median(&c_runs), best(&c_runs));
    println!("  Rust kvc::Namespace::load     median {:6.2}  best {:6.2}", median(&rust_runs), best(&rust_runs));
    println!(
        "  Rust / C: median of per-round ratios {:.1}%, ratio of bests {:.1}%",
        100.0 * median(&ratios),
        100.0 * best(&rust_runs) / best(&c_runs)
    );
}
