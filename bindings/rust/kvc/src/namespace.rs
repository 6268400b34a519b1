//! Namespaces: keys, match, store, load, delete, revisions.
use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLockReadGuard};
use std::time::Duration;

use crate::cache::{millis, millis32, CacheInner, RawCache};
use crate::codes::{Code, Tier, WriteMode};
use crate::error::{block_status, check, new_err, Error, Result};
use crate::key::Key;
use crate::view::{Reservation, View};

/// What names a namespace: the blocks that are interchangeable. Empty
/// strings and zeros mean the library's default where kvc.h has one
/// (`hash`, `shards`, `default_ttl`); the other fields are required.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NamespaceOptions {
    /// "sha256" (the default) or "xxh3-128".
    pub hash: String,
    pub model: String,
    /// The weights revision.
    pub revision: String,
    /// LoRA id and revision; "" for none.
    pub adapter: String,
    /// fp32 fp16 bf16 fp8_e4m3 fp8_e5m2 int8.
    pub dtype: String,
    pub layers: u32,
    pub kv_heads: u32,
    pub head_dim: u32,
    pub block_tokens: u32,
    /// Tensor-parallel shards; `kv_heads % shards == 0`.
    pub shards: u32,
    pub salt: Vec<u8>,
    /// TTL of a block stored without one; zero: no expiry.
    pub default_ttl: Duration,
    /// The tenant to act as and its credential ([`crate::create_tenant`]);
    /// required in a cache opened with `tenants_path`, "" otherwise.
    pub tenant: String,
    pub credential: String,
    /// How stores reach the SSD tier; `None`: the library's default (write-back).
    pub write_mode: Option<WriteMode>,
}

/// The C options and the strings they point into.
pub(crate) struct COptions {
    pub(crate) opts: kvc_sys::kvc_namespace_options,
    _strings: Vec<CString>,
}

impl NamespaceOptions {
    pub(crate) fn to_c(&self) -> Result<COptions> {
        let mut strings = Vec::new();
        let mut cstr = |name: &str, v: &str| -> Result<*const c_char> {
            let s = CString::new(v)
                .map_err(|_| Error::new(Code::InvalidArgument, format!("{name} contains a NUL byte")))?;
            let p = s.as_ptr();
            strings.push(s);
            Ok(p)
        };
        let o = kvc_sys::kvc_namespace_options {
            hash: if self.hash.is_empty() { ptr::null() } else { cstr("hash", &self.hash)? },
            model: cstr("model", &self.model)?,
            revision: cstr("revision", &self.revision)?,
            adapter: cstr("adapter", &self.adapter)?,
            dtype: cstr("dtype", &self.dtype)?,
            layers: self.layers,
            kv_heads: self.kv_heads,
            head_dim: self.head_dim,
            block_tokens: self.block_tokens,
            shards: self.shards,
            salt: if self.salt.is_empty() { ptr::null() } else { self.salt.as_ptr() },
            salt_len: self.salt.len(),
            default_ttl_ms: millis("default_ttl", self.default_ttl, u64::MAX)?,
            tenant: if self.tenant.is_empty() { ptr::null() } else { cstr("tenant", &self.tenant)? },
            credential: if self.credential.is_empty() { ptr::null() } else { cstr("credential", &self.credential)? },
            write_mode: self.write_mode.map_or(0, |m| m.raw() as u32),
            ..Default::default()
        };
        // The CStrings' buffers do not move when the Vec holding them does.
        Ok(COptions { opts: o, _strings: strings })
    }
}

/// The C namespace pointer.
struct RawNamespace(*mut kvc_sys::kvc_namespace);

// SAFETY: kvc.h documents kvc_namespace as thread-safe.
unsafe impl Send for RawNamespace {}
// SAFETY: as above.
unsafe impl Sync for RawNamespace {}

/// An open namespace of a [`Cache`](crate::Cache). `Send` and `Sync`.
///
/// It keeps the cache alive; dropping it closes the handle (the blocks stay
/// cached).
pub struct Namespace {
    cache: Arc<CacheInner>,
    raw: RawNamespace,
    closed: AtomicBool,
    /// Views alive: releasing one needs this handle open.
    views: AtomicUsize,
    shard_bytes: usize,
    block_tokens: usize,
}

/// A live namespace handle, with its cache held shared.
pub(crate) struct Entered<'a> {
    _cache: RwLockReadGuard<'a, RawCache>,
    pub(crate) ns: *mut kvc_sys::kvc_namespace,
}

/// Facts about an open namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceInfo {
    /// Hash of the namespace's canonical fields.
    pub seed: Key,
    /// Bytes of one block, all shards.
    pub block_bytes: u64,
    /// Bytes of one shard of a block: what load and store move.
    pub shard_bytes: u64,
    pub block_tokens: u32,
    pub shards: u32,
    /// Revision epoch, see [`Namespace::bump_revision`].
    pub epoch: u64,
}

/// Options of a store. `Default` is the library's defaults.
#[derive(Clone, Debug, Default)]
pub struct StoreOptions {
    /// Time to live from commit; zero: the namespace's `default_ttl`.
    pub ttl: Duration,
    /// The reservation's deadline; zero: the cache's.
    pub reservation_timeout: Duration,
    /// The key of the block before this one in its chain, for prefix-aware
    /// eviction. In [`Namespace::store_batch`] it is the first block's parent.
    pub parent: Option<Key>,
    /// Write-through namespaces: return only once the block is durable on
    /// the SSD tier.
    pub durable: bool,
}

impl StoreOptions {
    /// The C options; they point into `self` (the parent key).
    pub(crate) fn to_c(&self) -> Result<kvc_sys::kvc_store_options> {
        Ok(kvc_sys::kvc_store_options {
            ttl_ms: millis("ttl", self.ttl, u64::MAX)?,
            reservation_timeout_ms: millis32("reservation_timeout", self.reservation_timeout)?,
            parent: self.parent.as_ref().map_or(ptr::null(), |k| k.as_c()),
            durable: self.durable as u32,
            ..Default::default()
        })
    }
}

/// The outcome of one block of a batch: `Ok`, or its status code.
pub type BlockStatus = std::result::Result<(), Code>;

pub(crate) fn host_buf(data: *const u8, len: usize) -> kvc_sys::kvc_buf {
    kvc_sys::kvc_buf { data: data as *mut _, len, mem: kvc_sys::KVC_MEM_HOST, device: 0 }
}

/// Stands in for an empty slice's data, so that the C side gets a non-null
/// pointer and reports the length (the library never writes to it: a
/// zero-length buffer is refused before any copy).
static NO_BYTES: [u8; 1] = [0];
static NO_TOKENS: [u32; 1] = [0];

pub(crate) fn data_ptr(b: &[u8]) -> *const u8 {
    if b.is_empty() {
        NO_BYTES.as_ptr()
    } else {
        b.as_ptr()
    }
}

impl Namespace {
    pub(crate) fn open(cache: &Arc<CacheInner>, opts: &NamespaceOptions) -> Result<Namespace> {
        let co = opts.to_c()?;
        let g = cache.enter()?;
        let mut raw = ptr::null_mut();
        let mut err = new_err();
        // SAFETY: live cache (held shared); options valid for the call.
        check(unsafe { kvc_sys::kvc_namespace_open(&mut raw, g.0, &co.opts, &mut err) }, &err)?;
        let mut info = kvc_sys::kvc_namespace_info::default();
        // SAFETY: the handle just opened.
        let rc = unsafe { kvc_sys::kvc_namespace_info_get(raw, &mut info, &mut err) };
        if let Err(e) = check(rc, &err) {
            // SAFETY: the handle just opened, closed once.
            unsafe { kvc_sys::kvc_namespace_close(raw) };
            return Err(e);
        }
        drop(g);
        Ok(Namespace {
            cache: Arc::clone(cache),
            raw: RawNamespace(raw),
            closed: AtomicBool::new(false),
            views: AtomicUsize::new(0),
            shard_bytes: info.shard_bytes as usize,
            block_tokens: info.block_tokens as usize,
        })
    }

    /// The live handle with the cache held shared.
    pub(crate) fn enter(&self) -> Result<Entered<'_>> {
        let g = self.cache.enter()?;
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::closed("namespace"));
        }
        Ok(Entered { _cache: g, ns: self.raw.0 })
    }

    pub(crate) fn cache_inner(&self) -> &CacheInner {
        &self.cache
    }

    pub(crate) fn view_count(&self) -> &AtomicUsize {
        &self.views
    }

    /// Closes this handle now (the blocks stay cached); later calls on it
    /// return [`Code::Closed`] errors. Refused while views from it are alive
    /// (releasing one needs the handle). Closing again is `Ok`.
    pub fn close(&self) -> Result<()> {
        let g = self.cache.raw.read().unwrap_or_else(|e| e.into_inner());
        let n = self.views.load(Ordering::SeqCst);
        if n > 0 && !g.0.is_null() {
            return Err(Error::new(
                Code::InvalidArgument,
                format!("cannot close the namespace: {n} views of it are alive; drop them first"),
            ));
        }
        if self.closed.swap(true, Ordering::SeqCst) || g.0.is_null() {
            return Ok(()); // closed before, or with its cache
        }
        // SAFETY: a live handle, closed once (the swap above).
        let rc = unsafe { kvc_sys::kvc_namespace_close(self.raw.0) };
        if rc != kvc_sys::KVC_OK {
            return Err(Error::new(Code::from_raw(rc), "closing the namespace"));
        }
        Ok(())
    }

    /// The C handle, for C code in the same process (interop, and the load
    /// benchmark's C baseline). It is valid while this namespace is open
    /// and its cache is not closed; calls through it bypass this crate's
    /// close coordination, so the caller must not close either meanwhile.
    pub fn as_raw(&self) -> *mut kvc_sys::kvc_namespace {
        self.raw.0
    }

    /// Bytes of one block shard: what [`load`](Self::load) and
    /// [`store`](Self::store) move.
    pub fn shard_bytes(&self) -> usize {
        self.shard_bytes
    }

    /// Tokens per block.
    pub fn block_tokens(&self) -> usize {
        self.block_tokens
    }

    /// Facts about the namespace.
    pub fn info(&self) -> Result<NamespaceInfo> {
        let h = self.enter()?;
        let mut info = kvc_sys::kvc_namespace_info::default();
        let mut err = new_err();
        // SAFETY: live handle, valid out-pointers.
        check(unsafe { kvc_sys::kvc_namespace_info_get(h.ns, &mut info, &mut err) }, &err)?;
        Ok(NamespaceInfo {
            seed: Key(info.seed.bytes),
            block_bytes: info.block_bytes,
            shard_bytes: info.shard_bytes,
            block_tokens: info.block_tokens,
            shards: info.shards,
            epoch: info.epoch,
        })
    }

    /// Makes every block stored so far invisible at once; returns the new epoch.
    pub fn bump_revision(&self) -> Result<u64> {
        let h = self.enter()?;
        let mut epoch = 0u64;
        let mut err = new_err();
        // SAFETY: live handle, valid out-pointers.
        check(unsafe { kvc_sys::kvc_namespace_bump_revision(h.ns, &mut epoch, &mut err) }, &err)?;
        Ok(epoch)
    }

    /// The keys of the full blocks of `tokens`. Fewer tokens than a block is
    /// an [`Code::InvalidArgument`] error.
    pub fn keys(&self, tokens: &[u32]) -> Result<Vec<Key>> {
        let h = self.enter()?;
        let mut keys = vec![Key::default(); tokens.len() / self.block_tokens];
        let (cap, mut scratch) = (keys.len(), Key::default());
        let mut n = 0usize;
        let mut err = new_err();
        // SAFETY: live handle; the keys pointer holds `cap` keys; tokens valid.
        let rc = unsafe {
            kvc_sys::kvc_keys_compute(
                h.ns,
                keys_out(&mut keys, &mut scratch),
                cap,
                &mut n,
                tokens_ptr(tokens),
                tokens.len(),
                &mut err,
            )
        };
        check(rc, &err)?;
        keys.truncate(n);
        Ok(keys)
    }

    /// How many leading blocks of the chain `keys` are present (every shard
    /// committed, not expired, current epoch). A miss is `Ok(0)`.
    pub fn match_keys(&self, keys: &[Key]) -> Result<usize> {
        let h = self.enter()?;
        let mut n = 0usize;
        let mut err = new_err();
        // SAFETY: live handle; keys valid for keys.len().
        let rc = unsafe {
            kvc_sys::kvc_match(h.ns, &mut n, ptr::null_mut(), Key::slice_as_c(keys), keys.len(), &mut err)
        };
        check(rc, &err)?;
        Ok(n)
    }

    /// The tier holding each leading present block of `keys` (its length is
    /// the match length).
    pub fn match_tiers(&self, keys: &[Key]) -> Result<Vec<Tier>> {
        let h = self.enter()?;
        let mut tiers = vec![0u8; keys.len()];
        let mut n = 0usize;
        let mut err = new_err();
        // SAFETY: live handle; `tiers` holds keys.len() entries.
        let rc = unsafe {
            kvc_sys::kvc_match(h.ns, &mut n, tiers.as_mut_ptr(), Key::slice_as_c(keys), keys.len(), &mut err)
        };
        check(rc, &err)?;
        Ok(tiers[..n].iter().map(|&t| Tier::from_raw(t as i32)).collect())
    }

    /// Hashes `tokens` and matches their full blocks: the match length in
    /// blocks and the keys, so the caller can load and store without
    /// hashing again.
    pub fn match_tokens(&self, tokens: &[u32]) -> Result<(usize, Vec<Key>)> {
        let h = self.enter()?;
        let mut keys = vec![Key::default(); tokens.len() / self.block_tokens];
        let (cap, mut scratch) = (keys.len(), Key::default());
        let mut n = 0usize;
        let mut err = new_err();
        // SAFETY: live handle; the keys pointer holds `cap` keys; tokens valid.
        let rc = unsafe {
            kvc_sys::kvc_match_tokens(
                h.ns,
                &mut n,
                ptr::null_mut(),
                keys_out(&mut keys, &mut scratch),
                cap,
                tokens_ptr(tokens),
                tokens.len(),
                &mut err,
            )
        };
        check(rc, &err)?;
        Ok((n, keys))
    }

    /// Matches several chains at once; one match length per chain.
    pub fn match_batch(&self, lists: &[&[Key]]) -> Result<Vec<usize>> {
        let flat: Vec<Key> = lists.iter().flat_map(|l| l.iter().copied()).collect();
        let mut offsets = Vec::with_capacity(lists.len() + 1);
        offsets.push(0usize);
        for l in lists {
            offsets.push(offsets.last().unwrap() + l.len());
        }
        let mut out = vec![0usize; lists.len()];
        let h = self.enter()?;
        let mut err = new_err();
        // SAFETY: live handle; `offsets` has lists.len() + 1 entries within
        // `flat`; `out` has lists.len() entries.
        let rc = unsafe {
            kvc_sys::kvc_match_batch(
                h.ns,
                out.as_mut_ptr(),
                Key::slice_as_c(&flat),
                offsets.as_ptr(),
                lists.len(),
                &mut err,
            )
        };
        check(rc, &err)?;
        Ok(out)
    }

    /// Stores one block shard from `src` (exactly [`shard_bytes`](Self::shard_bytes)).
    /// [`Code::Exists`]: already committed; [`Code::Pending`]: another
    /// writer holds it.
    pub fn store(&self, key: &Key, shard: u32, src: &[u8], opts: Option<&StoreOptions>) -> Result<()> {
        let o = opts.map(StoreOptions::to_c).transpose()?;
        let h = self.enter()?;
        let buf = host_buf(data_ptr(src), src.len());
        let mut err = new_err();
        // SAFETY: live handle; the library only reads `src` for the call.
        let rc = unsafe {
            kvc_sys::kvc_store(h.ns, key.as_c(), shard, &buf, o.as_ref().map_or(ptr::null(), |o| o), &mut err)
        };
        check(rc, &err)
    }

    /// Stores the chain `keys[i]` from `srcs[i]`. Each block's parent is the
    /// key before it (`opts.parent` for the first). Per-block outcomes come
    /// back in order; the call fails on the first error other than
    /// [`Code::Exists`] and [`Code::Pending`].
    pub fn store_batch(
        &self,
        keys: &[Key],
        shard: u32,
        srcs: &[&[u8]],
        opts: Option<&StoreOptions>,
    ) -> Result<Vec<BlockStatus>> {
        if keys.len() != srcs.len() {
            return Err(Error::new(
                Code::InvalidArgument,
                format!("{} keys but {} source buffers", keys.len(), srcs.len()),
            ));
        }
        let o = opts.map(StoreOptions::to_c).transpose()?;
        let bufs: Vec<kvc_sys::kvc_buf> = srcs.iter().map(|s| host_buf(data_ptr(s), s.len())).collect();
        let mut st = vec![0i32; keys.len()];
        let h = self.enter()?;
        let mut err = new_err();
        // SAFETY: live handle; keys, bufs and st have keys.len() entries.
        let rc = unsafe {
            kvc_sys::kvc_store_batch(
                h.ns,
                st.as_mut_ptr(),
                Key::slice_as_c(keys),
                keys.len(),
                shard,
                bufs.as_ptr(),
                o.as_ref().map_or(ptr::null(), |o| o),
                &mut err,
            )
        };
        check(rc, &err)?;
        Ok(st.into_iter().map(block_status).collect())
    }

    /// Copies a block shard into `dst` (exactly [`shard_bytes`](Self::shard_bytes)),
    /// pinning it for the copy. A miss is a [`Code::NotFound`] error.
    pub fn load(&self, key: &Key, shard: u32, dst: &mut [u8]) -> Result<()> {
        let h = self.enter()?;
        let buf = host_buf(data_ptr(dst), dst.len());
        let mut err = new_err();
        // SAFETY: live handle; the library writes at most dst.len() bytes
        // (exactly, or it refuses) during the call; `dst` is borrowed mutably.
        let rc = unsafe { kvc_sys::kvc_load(h.ns, key.as_c(), shard, &buf, &mut err) };
        check(rc, &err)
    }

    /// Loads `keys[i]` into `dsts[i]`. Returns the number of leading blocks
    /// loaded and each block's outcome; a miss is not an error of the call.
    pub fn load_batch(
        &self,
        keys: &[Key],
        shard: u32,
        dsts: &mut [&mut [u8]],
    ) -> Result<(usize, Vec<BlockStatus>)> {
        if keys.len() != dsts.len() {
            return Err(Error::new(
                Code::InvalidArgument,
                format!("{} keys but {} destination buffers", keys.len(), dsts.len()),
            ));
        }
        let bufs: Vec<kvc_sys::kvc_buf> = dsts.iter_mut().map(|d| host_buf(data_ptr(d), d.len())).collect();
        let mut st = vec![0i32; keys.len()];
        let mut loaded = 0usize;
        let h = self.enter()?;
        let mut err = new_err();
        // SAFETY: live handle; the buffers are borrowed mutably for the call.
        let rc = unsafe {
            kvc_sys::kvc_load_batch(
                h.ns,
                st.as_mut_ptr(),
                &mut loaded,
                Key::slice_as_c(keys),
                keys.len(),
                shard,
                bufs.as_ptr(),
                &mut err,
            )
        };
        check(rc, &err)?;
        Ok((loaded, st.into_iter().map(block_status).collect()))
    }

    /// Removes every shard of the block `key`; [`Code::NotFound`] if none was there.
    pub fn delete(&self, key: &Key) -> Result<()> {
        let h = self.enter()?;
        let mut err = new_err();
        // SAFETY: live handle, valid key.
        check(unsafe { kvc_sys::kvc_delete(h.ns, key.as_c(), &mut err) }, &err)
    }

    /// Waits until a pending `(key, shard)` is committed (`Ok`) or aborted
    /// ([`Code::NotFound`]), at most `timeout` ([`Code::Timeout`]).
    pub fn store_wait(&self, key: &Key, shard: u32, timeout: Duration) -> Result<()> {
        let ms = millis32("timeout", timeout)?;
        let h = self.enter()?;
        let mut err = new_err();
        // SAFETY: live handle, valid key. The cache stays held shared while
        // waiting, so a close waits for this call (at most `timeout`).
        check(unsafe { kvc_sys::kvc_store_wait(h.ns, key.as_c(), shard, ms, &mut err) }, &err)
    }

    /// Reserves `(key, shard)` for writing (two-phase store).
    /// [`Code::Exists`]: already committed (skip the write);
    /// [`Code::Pending`]: another writer holds it
    /// ([`store_wait`](Self::store_wait), or skip).
    pub fn store_begin(&self, key: &Key, shard: u32, opts: Option<&StoreOptions>) -> Result<Reservation<'_>> {
        let o = opts.map(StoreOptions::to_c).transpose()?;
        let h = self.enter()?;
        let mut res = ptr::null_mut();
        let mut err = new_err();
        // SAFETY: live handle, valid out-pointer and options.
        let rc = unsafe {
            kvc_sys::kvc_store_begin(h.ns, &mut res, key.as_c(), shard, o.as_ref().map_or(ptr::null(), |o| o), &mut err)
        };
        check(rc, &err)?;
        Ok(Reservation::new(self, res))
    }

    /// Pins `(key, shard)` and returns a zero-copy view of its bytes, valid
    /// for as long as the view lives (its pin is requested with the longest
    /// deadline kvc.h allows, about 49 days, and released on drop). A miss
    /// is a [`Code::NotFound`] error.
    pub fn view(&self, key: &Key, shard: u32) -> Result<View<'_>> {
        self.view_raw(key, shard, u32::MAX)
    }

    /// As [`view`](Self::view) with the pin's deadline `pin_timeout` (zero:
    /// the cache's `pin_timeout`).
    ///
    /// # Safety
    ///
    /// The library may reuse the block's memory once the pin's deadline
    /// passes: the caller must drop the view (and stop reading its bytes)
    /// before then.
    pub unsafe fn view_with_pin_timeout(&self, key: &Key, shard: u32, pin_timeout: Duration) -> Result<View<'_>> {
        self.view_raw(key, shard, millis32("pin_timeout", pin_timeout)?)
    }

    fn view_raw(&self, key: &Key, shard: u32, pin_ms: u32) -> Result<View<'_>> {
        let h = self.enter()?;
        let mut v = kvc_sys::kvc_view::default();
        let mut err = new_err();
        // SAFETY: live handle, valid out-pointer and key.
        check(unsafe { kvc_sys::kvc_view_acquire(h.ns, &mut v, key.as_c(), shard, pin_ms, &mut err) }, &err)?;
        Ok(View::new(self, v))
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Views borrow the namespace, so none is alive here.
        let _ = self.close();
    }
}

/// `keys`' data, or `scratch` when `keys` is empty, so that the C side gets
/// a non-null pointer and reports the real problem (too few tokens).
pub(crate) fn keys_out(keys: &mut [Key], scratch: &mut Key) -> *mut kvc_sys::kvc_key {
    if keys.is_empty() {
        (scratch as *mut Key).cast()
    } else {
        Key::slice_as_c_mut(keys)
    }
}

pub(crate) fn tokens_ptr(tokens: &[u32]) -> *const u32 {
    if tokens.is_empty() {
        NO_TOKENS.as_ptr()
    } else {
        tokens.as_ptr()
    }
}

/// The seed and the block keys of `tokens` under `opts`, without a cache,
/// exactly as a namespace with those options computes them
/// (`kvc_hash_keys`). A trailing partial block has no key.
pub fn hash_keys(opts: &NamespaceOptions, tokens: &[u32]) -> Result<(Key, Vec<Key>)> {
    let co = opts.to_c()?;
    let n = if opts.block_tokens > 0 { tokens.len() / opts.block_tokens as usize } else { 0 };
    let mut keys = vec![Key::default(); n];
    let mut scratch = Key::default();
    let mut seed = Key::default();
    let mut got = 0usize;
    let mut err = new_err();
    // SAFETY: valid out-pointers; `keys` holds n keys; options valid.
    let rc = unsafe {
        kvc_sys::kvc_hash_keys(
            (&mut seed as *mut Key).cast(),
            keys_out(&mut keys, &mut scratch),
            n,
            &mut got,
            &co.opts,
            tokens_ptr(tokens),
            tokens.len(),
            &mut err,
        )
    };
    check(rc, &err)?;
    keys.truncate(got);
    Ok((seed, keys))
}

/// Runs the trace simulation of docs/sim.md (`kvc_sim_run`) over a
/// Mooncake-format JSONL trace, for each of `policies` (`None`: every
/// policy and "opt") and each capacity in blocks; returns the JSON rows.
pub fn simulate(trace_path: &str, policies: Option<&[&str]>, capacities: &[u64]) -> Result<String> {
    let nul = |what: &str| Error::new(Code::InvalidArgument, format!("{what} contains a NUL byte"));
    let path = CString::new(trace_path).map_err(|_| nul("trace_path"))?;
    let pol = policies.map(|p| CString::new(p.join(","))).transpose().map_err(|_| nul("policies"))?;
    let mut out = ptr::null_mut();
    let mut err = new_err();
    // SAFETY: valid strings, capacities and out-pointers for the call.
    let rc = unsafe {
        kvc_sys::kvc_sim_run(
            &mut out,
            path.as_ptr(),
            pol.as_ref().map_or(ptr::null(), |p| p.as_ptr()),
            capacities.as_ptr(),
            capacities.len(),
            &mut err,
        )
    };
    check(rc, &err)?;
    // SAFETY: on success a NUL-terminated string we own.
    let s = unsafe { CStr::from_ptr(out) }.to_string_lossy().into_owned();
    // SAFETY: returned by the library, freed once.
    unsafe { kvc_sys::kvc_string_free(out) };
    Ok(s)
}
