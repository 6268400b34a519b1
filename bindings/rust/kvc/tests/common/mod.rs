//! Helpers shared by the integration tests.
#![allow(dead_code)]

use kvc::{Cache, CacheOptions, Code, Error, NamespaceOptions, Prefault};

pub const BT: usize = 16;

pub fn small_ns() -> NamespaceOptions {
    NamespaceOptions {
        model: "test-model".into(),
        revision: "r1".into(),
        dtype: "fp16".into(),
        layers: 2,
        kv_heads: 2,
        head_dim: 16,
        block_tokens: BT as u32,
        shards: 1,
        ..Default::default()
    }
}

pub fn open_cache(capacity: u64) -> Cache {
    Cache::open(&CacheOptions { host_capacity_bytes: capacity, prefault: Prefault::No, ..Default::default() })
        .expect("open cache")
}

pub fn fill(n: usize, seed: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + seed * 17) as u8).collect()
}

pub fn tokens(n: usize, seed: u32) -> Vec<u32> {
    (0..n as u32).map(|i| i * 7 + 1 + seed.wrapping_mul(1_000_003)).collect()
}

/// Asserts `r` failed with `code` and a message holding every one of `words`.
#[track_caller]
pub fn want_err<T: std::fmt::Debug>(what: &str, r: kvc::Result<T>, code: Code, words: &[&str]) -> Error {
    let e = match r {
        Ok(v) => panic!("{what}: succeeded ({v:?}), want {code}"),
        Err(e) => e,
    };
    assert_eq!(e.code(), code, "{what}: {e}");
    for w in words {
        assert!(e.message().contains(w), "{what}: message {:?} lacks {w:?}", e.message());
    }
    e
}

pub fn source_dir() -> std::path::PathBuf {
    match std::env::var_os("KVC_SOURCE_DIR") {
        Some(d) if !d.is_empty() => d.into(),
        _ => std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.."),
    }
}
