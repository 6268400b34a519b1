//! serving_loop: the shape of an inference engine's use of kvc, in Rust.
//!
//! For each request: match the prompt against the cache, load the cached
//! prefix's KV, compute the rest, and store the new blocks so that the next
//! request sharing the prefix skips their prefill. "Compute" is a
//! deterministic stand-in for prefill: a block's bytes are derived from its
//! key, so every load is checked.
//!
//! Run with `cargo run` from this folder (libkvc from $KVC_LIB_DIR or
//! pkg-config; LD_LIBRARY_PATH must reach it at run time).
use std::process::ExitCode;

use kvc::{Cache, CacheOptions, Code, Key, Namespace, NamespaceOptions, StoreOptions};

/// Stands in for the model: the KV of one block, a function of the whole
/// prefix it ends (which its key names).
fn prefill(key: &Key, dst: &mut [u8]) {
    for (i, b) in dst.iter_mut().enumerate() {
        *b = key.0[i % 16] ^ (i as u8).wrapping_mul(7);
    }
}

/// Handles one prompt; returns (blocks from the cache, blocks in the prompt).
fn serve(ns: &Namespace, prompt: &[u32]) -> kvc::Result<(usize, usize)> {
    let sb = ns.shard_bytes();
    let (mut hit, keys) = ns.match_tokens(prompt)?;
    let total = keys.len();
    let mut kv = vec![0u8; total * sb]; // the engine's KV staging for this request

    // Load the cached prefix straight into the engine's buffer.
    if hit > 0 {
        let mut dsts: Vec<&mut [u8]> = kv[..hit * sb].chunks_mut(sb).collect();
        let (loaded, _) = ns.load_batch(&keys[..hit], 0, &mut dsts)?;
        hit = loaded; // a block evicted since the match is recomputed
    }
    let mut want = vec![0u8; sb];
    for (i, got) in kv[..hit * sb].chunks(sb).enumerate() {
        prefill(&keys[i], &mut want);
        assert!(got == want.as_slice(), "block {i} loaded from the cache differs from its prefill");
    }

    // Compute the rest, then store the new blocks as one chain.
    for (i, dst) in kv.chunks_mut(sb).enumerate().skip(hit) {
        prefill(&keys[i], dst);
    }
    if hit < total {
        let opts = StoreOptions { parent: hit.checked_sub(1).map(|p| keys[p]), ..Default::default() };
        let srcs: Vec<&[u8]> = kv[hit * sb..].chunks(sb).collect();
        ns.store_batch(&keys[hit..], 0, &srcs, Some(&opts))?;
    }
    Ok((hit, total))
}

fn run() -> kvc::Result<()> {
    println!("kvc {}", kvc::version());
    let cache = Cache::open(&CacheOptions { host_capacity_bytes: 64 << 20, ..Default::default() })?;
    let ns = cache.namespace(&NamespaceOptions {
        model: "example/tiny-llm".into(),
        revision: "v1".into(),
        dtype: "bf16".into(),
        layers: 4,
        kv_heads: 4,
        head_dim: 64,
        block_tokens: 16,
        ..Default::default()
    })?;

    let system: Vec<u32> = (1000..1064).collect(); // a shared system prompt: 4 blocks
    let turn1: Vec<u32> = system.iter().copied().chain(7..26).collect();
    let turn2: Vec<u32> = turn1.iter().copied().chain(30..44).collect();
    let other: Vec<u32> = (0..18).map(|i| 5 - i % 5).collect();

    for (i, prompt) in [&turn1, &turn2, &other].iter().enumerate() {
        let (hit, total) = serve(&ns, prompt)?;
        println!(
            "request {}: {hit} of {total} blocks from the cache, {} computed ({} tokens)",
            i + 1,
            total - hit,
            prompt.len()
        );
        if i == 1 && hit < 5 {
            return Err(kvc::Error::new(
                Code::Internal,
                format!("request 2 shares request 1's 5 blocks but found {hit} in the cache"),
            ));
        }
    }

    // A miss is an error value to match on, not a panic.
    match ns.load(&Key::default(), 0, &mut vec![0u8; ns.shard_bytes()]) {
        Err(e) if e.is(Code::NotFound) => {}
        other => panic!("loading an absent block: {other:?}"),
    }
    let s = cache.stats()?;
    println!(
        "cache: {} blocks, {} hits, {} misses, {} stores, {} KiB loaded",
        s.blocks,
        s.hits,
        s.misses,
        s.stores,
        s.bytes_loaded >> 10
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("serving_loop: {e}");
            ExitCode::FAILURE
        }
    }
}
