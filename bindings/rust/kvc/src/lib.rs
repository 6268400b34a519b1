//! Safe Rust API of kvc, a tiered KV cache for LLM inference.
//!
//! Built on the C ABI (`capi/kvc.h`, through the `kvc-sys` crate) and on
//! nothing else. See `docs/bindings-rust.md`.
//!
//! - Every fallible call returns [`Result<T>`]; an [`Error`] carries the C
//!   status [`Code`] and the call's own message (from its `kvc_error`
//!   out-parameter, not from thread-local state).
//! - Handles are closed by `Drop`; [`Cache::close`] and [`Namespace::close`]
//!   close early, after which calls return [`Code::Closed`] errors.
//! - Bytes move without copies through the library: [`Namespace::load`]
//!   writes into the caller's `&mut [u8]`, [`Namespace::store`] reads the
//!   caller's `&[u8]`, and a [`View`] derefs to the cache's own memory.
//! - A [`Node`] is a client of a kvc node (`kvc serve`, or a [`NodeServer`]
//!   in this process) over gRPC or the same-host path: the same namespace
//!   options, keys and buffers, one request per call or per batch.
//! - Thread safety follows kvc.h: [`Cache`], [`Namespace`] and [`Node`] are
//!   `Send` and `Sync` (the C handles are thread-safe); a [`Reservation`] is `Send` but
//!   not `Sync` (one thread at a time); a [`View`] is `Send` and `Sync` (its
//!   bytes are read-only and its release is thread-safe).
//!
//! ```no_run
//! use kvc::{Cache, CacheOptions, NamespaceOptions};
//!
//! let cache = Cache::open(&CacheOptions { host_capacity_bytes: 64 << 20, ..Default::default() })?;
//! let ns = cache.namespace(&NamespaceOptions {
//!     model: "my-model".into(), revision: "r1".into(), dtype: "fp16".into(),
//!     layers: 2, kv_heads: 2, head_dim: 16, block_tokens: 16, ..Default::default()
//! })?;
//! let prompt: Vec<u32> = (0..40).collect();
//! let (hit, keys) = ns.match_tokens(&prompt)?;
//! let mut kv = vec![0u8; ns.shard_bytes()];
//! for key in &keys[..hit] {
//!     ns.load(key, 0, &mut kv)?;
//! }
//! # Ok::<(), kvc::Error>(())
//! ```
#![deny(unsafe_op_in_unsafe_fn)]

mod cache;
mod codes;
mod error;
mod json;
mod key;
mod namespace;
mod node;
mod tenant;
mod view;

pub use cache::{Cache, CacheOptions, Prefault, Stats};
pub use codes::{Code, Features, MissReason, Tier, WriteMode, MISS_REASONS};
pub use error::{Error, Result};
pub use json::Json;
pub use key::Key;
pub use namespace::{hash_keys, simulate, BlockStatus, Namespace, NamespaceInfo, NamespaceOptions, StoreOptions};
pub use node::{GetItem, Node, NodeOptions, NodeServer, NodeServerOptions, PutItem, MAX_BATCH};
pub use tenant::{create_tenant, delete_tenant, set_tenant_quota, ssd_inspect_json, tenants_json, QuotaChange, TenantOptions};
pub use view::{Reservation, View};

use std::ffi::CStr;
use std::os::raw::c_char;

fn static_str(p: *const c_char) -> &'static str {
    // SAFETY: the library returns NUL-terminated strings in static storage.
    unsafe { CStr::from_ptr(p) }.to_str().unwrap_or("")
}

/// The library's version, "MAJOR.MINOR.PATCH".
pub fn version() -> &'static str {
    // SAFETY: no arguments; returns static storage.
    static_str(unsafe { kvc_sys::kvc_version() })
}

/// The library's version number, MAJOR * 10000 + MINOR * 100 + PATCH.
pub fn version_number() -> i32 {
    // SAFETY: no arguments.
    unsafe { kvc_sys::kvc_version_number() }
}

/// The version number of the kvc.h this crate was generated from.
pub const HEADER_VERSION_NUMBER: i32 = kvc_sys::KVC_VERSION_NUMBER as i32;

/// The optional parts compiled into the library.
pub fn features() -> Features {
    // SAFETY: no arguments.
    Features(unsafe { kvc_sys::kvc_features() })
}

/// The eviction policies a cache may use.
pub fn policy_names() -> Vec<&'static str> {
    // SAFETY: no arguments; returns static storage.
    static_str(unsafe { kvc_sys::kvc_policy_names() }).split(',').collect()
}

/// The policy a tier uses when [`CacheOptions::host_policy`] is empty.
pub fn default_policy() -> &'static str {
    // SAFETY: no arguments; returns static storage.
    static_str(unsafe { kvc_sys::kvc_policy_default() })
}
