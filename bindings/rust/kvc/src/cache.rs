//! The cache handle.
use std::ffi::{CStr, CString};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;

use crate::codes::{Code, MissReason, MISS_REASONS};
use crate::error::{check, new_err, Error, Result};
use crate::namespace::{Namespace, NamespaceOptions};

/// Whether a cache touches its arena's pages at open.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Prefault {
    /// The library's default.
    #[default]
    Default,
    Yes,
    No,
}

/// Options of [`Cache::open`]. A zero field (`Default::default()`) means the
/// library's default; kvc.h documents each.
#[derive(Clone, Debug, Default)]
pub struct CacheOptions {
    /// Bytes of host DRAM for blocks, allocated once at open.
    pub host_capacity_bytes: u64,
    /// The host tier's eviction policy ([`crate::policy_names`]); "" for the default.
    pub host_policy: String,
    /// Index shards (lock stripes).
    pub index_shards: u32,
    /// Touch every page of the arena at open.
    pub prefault: Prefault,
    /// How long an uncommitted reservation lives.
    pub reservation_timeout: Duration,
    /// How long a view's pin lives unless released (views of this crate pin
    /// for as long as they live; see [`Namespace::view`]).
    pub pin_timeout: Duration,
    /// Period of the maintenance thread.
    pub maintenance_interval: Duration,
    /// A tenants file ([`crate::create_tenant`]) or a directory holding
    /// tenants.json; "" for none. When it names tenants, every namespace is
    /// opened as one of them.
    pub tenants_path: String,
    /// The SSD tier's directory of segment files; "" for no SSD tier.
    pub ssd_dir: String,
    /// The SSD tier's capacity; required with `ssd_dir`.
    pub ssd_capacity_bytes: u64,
    /// The SSD tier's eviction policy; "" for the default.
    pub ssd_policy: String,
}

/// C cache options and the strings they point into.
pub(crate) struct CCacheOptions {
    pub(crate) opts: kvc_sys::kvc_cache_options,
    _strings: [Option<CString>; 4],
}

impl CacheOptions {
    /// The C options; they point into the returned strings (whose buffers
    /// do not move when the struct does).
    pub(crate) fn to_c(&self) -> Result<CCacheOptions> {
        let policy = opt_cstr("host_policy", &self.host_policy)?;
        let tenants = opt_cstr("tenants_path", &self.tenants_path)?;
        let ssd_dir = opt_cstr("ssd_dir", &self.ssd_dir)?;
        let ssd_policy = opt_cstr("ssd_policy", &self.ssd_policy)?;
        let ptr_of = |s: &Option<CString>| s.as_ref().map_or(ptr::null(), |p| p.as_ptr());
        let o = kvc_sys::kvc_cache_options {
            host_capacity_bytes: self.host_capacity_bytes,
            host_policy: ptr_of(&policy),
            index_shards: self.index_shards,
            prefault: match self.prefault {
                Prefault::Default => 0,
                Prefault::Yes => 1,
                Prefault::No => 2,
            },
            reservation_timeout_ms: millis32("reservation_timeout", self.reservation_timeout)?,
            pin_timeout_ms: millis32("pin_timeout", self.pin_timeout)?,
            maintenance_interval_ms: millis32("maintenance_interval", self.maintenance_interval)?,
            tenants_path: ptr_of(&tenants),
            ssd_dir: ptr_of(&ssd_dir),
            ssd_capacity_bytes: self.ssd_capacity_bytes,
            ssd_policy: ptr_of(&ssd_policy),
            ..Default::default()
        };
        Ok(CCacheOptions { opts: o, _strings: [policy, tenants, ssd_dir, ssd_policy] })
    }
}

/// `s` as a C string, or `None` for "" (the library's default).
pub(crate) fn opt_cstr(name: &str, s: &str) -> Result<Option<CString>> {
    if s.is_empty() {
        return Ok(None);
    }
    CString::new(s).map(Some).map_err(|_| Error::new(Code::InvalidArgument, format!("{name} contains a NUL byte")))
}

/// Whole milliseconds of an option for C: zero stays zero (the default),
/// anything else rounds up so that it never becomes the default.
pub(crate) fn millis(name: &str, d: Duration, max: u64) -> Result<u64> {
    let ms = (d.as_nanos() + 999_999) / 1_000_000;
    if ms > max as u128 {
        return Err(Error::new(
            Code::InvalidArgument,
            format!("{name} {d:?} is longer than the {max} ms kvc.h allows"),
        ));
    }
    Ok(ms as u64)
}

pub(crate) fn millis32(name: &str, d: Duration) -> Result<u32> {
    millis(name, d, u32::MAX as u64).map(|v| v as u32)
}

/// The C cache pointer, null once closed.
pub(crate) struct RawCache(pub(crate) *mut kvc_sys::kvc_cache);

// SAFETY: kvc.h documents kvc_cache as thread-safe ("any number of threads
// may use one kvc_cache at once"); closing is excluded from other calls by
// the RwLock that holds this pointer.
unsafe impl Send for RawCache {}
// SAFETY: as above.
unsafe impl Sync for RawCache {}

/// State shared by a cache and its namespaces.
pub(crate) struct CacheInner {
    /// Held shared by every call into the C cache and exclusively to close
    /// it, so the C cache is never closed under a running call.
    pub(crate) raw: RwLock<RawCache>,
    /// Views and reservations alive: their bytes are the cache's memory, so
    /// the cache refuses to close under them.
    pub(crate) borrowed: AtomicUsize,
}

impl CacheInner {
    /// The live C handle, held shared until the guard drops.
    pub(crate) fn enter(&self) -> Result<RwLockReadGuard<'_, RawCache>> {
        let g = self.raw.read().unwrap_or_else(|e| e.into_inner());
        if g.0.is_null() {
            return Err(Error::closed("cache"));
        }
        Ok(g)
    }

    fn close(&self) -> Result<()> {
        let mut g = self.raw.write().unwrap_or_else(|e| e.into_inner());
        if g.0.is_null() {
            return Ok(());
        }
        let n = self.borrowed.load(Ordering::SeqCst);
        if n > 0 {
            return Err(Error::new(
                Code::InvalidArgument,
                format!("cannot close the cache: {n} views or reservations of it are alive; drop them first"),
            ));
        }
        // SAFETY: a live handle; no call runs on it (exclusive lock).
        let rc = unsafe { kvc_sys::kvc_cache_close(g.0) };
        g.0 = ptr::null_mut();
        if rc != kvc_sys::KVC_OK {
            return Err(Error::new(Code::from_raw(rc), "closing the cache"));
        }
        Ok(())
    }
}

impl Drop for CacheInner {
    fn drop(&mut self) {
        let raw = self.raw.get_mut().unwrap_or_else(|e| e.into_inner());
        if !raw.0.is_null() {
            // SAFETY: the last reference; nothing else can use the handle.
            unsafe { kvc_sys::kvc_cache_close(raw.0) };
            raw.0 = ptr::null_mut();
        }
    }
}

/// An embedded cache: namespaces, an index and a host-DRAM tier.
///
/// `Send` and `Sync`: share it between threads by reference or in an `Arc`.
/// The C cache is closed when the `Cache` and every [`Namespace`] opened
/// from it are dropped, or earlier by [`Cache::close`].
pub struct Cache {
    pub(crate) inner: Arc<CacheInner>,
}

impl Cache {
    /// Opens a cache.
    pub fn open(opts: &CacheOptions) -> Result<Cache> {
        let co = opts.to_c()?;
        let o = co.opts;
        let mut raw = ptr::null_mut();
        let mut err = new_err();
        // SAFETY: valid out-pointer, options and error struct; the strings
        // the options point to outlive the call.
        check(unsafe { kvc_sys::kvc_cache_open(&mut raw, &o, &mut err) }, &err)?;
        Ok(Cache {
            inner: Arc::new(CacheInner { raw: RwLock::new(RawCache(raw)), borrowed: AtomicUsize::new(0) }),
        })
    }

    /// Closes the cache now and frees its memory: calls in flight finish
    /// first, later calls on it and its namespaces return [`Code::Closed`]
    /// errors. Refused (an [`Code::InvalidArgument`] error, nothing closed)
    /// while views or reservations of it are alive. Closing again is `Ok`.
    pub fn close(&self) -> Result<()> {
        self.inner.close()
    }

    /// Opens (or joins) a namespace. Opening equal options twice gives two
    /// handles on one namespace.
    pub fn namespace(&self, opts: &NamespaceOptions) -> Result<Namespace> {
        Namespace::open(&self.inner, opts)
    }

    /// The cache's counters.
    pub fn stats(&self) -> Result<Stats> {
        let g = self.inner.enter()?;
        let mut s = kvc_sys::kvc_stats::default();
        let mut err = new_err();
        // SAFETY: live handle (held shared), valid out-pointers.
        check(unsafe { kvc_sys::kvc_cache_stats(g.0, &mut s, &mut err) }, &err)?;
        Ok(Stats {
            capacity_bytes: s.capacity_bytes,
            used_bytes: s.used_bytes,
            blocks: s.blocks,
            pending: s.pending,
            pins: s.pins,
            namespaces: s.namespaces,
            hits: s.hits,
            misses: s.misses,
            misses_by_reason: s.misses_by_reason,
            stores: s.stores,
            store_exists: s.store_exists,
            store_pending: s.store_pending,
            aborts: s.aborts,
            reservations_expired: s.reservations_expired,
            pins_expired: s.pins_expired,
            evictions: s.evictions,
            expirations: s.expirations,
            deletes: s.deletes,
            bytes_stored: s.bytes_stored,
            bytes_loaded: s.bytes_loaded,
            promotions: s.promotions,
            demotions: s.demotions,
            demotions_dropped: s.demotions_dropped,
            ssd_capacity_bytes: s.ssd_capacity_bytes,
            ssd_used_bytes: s.ssd_used_bytes,
            ssd_blocks: s.ssd_blocks,
            ssd_hits: s.ssd_hits,
            checksum_failures: s.checksum_failures,
        })
    }

    /// Makes every block the cache owes its SSD tier durable (staged
    /// write-back demotions, earlier write-through stores); `Ok` at once
    /// without an SSD tier. Closing flushes too.
    pub fn flush(&self) -> Result<()> {
        let g = self.inner.enter()?;
        let mut err = new_err();
        // SAFETY: live handle (held shared), valid error struct.
        check(unsafe { kvc_sys::kvc_cache_flush(g.0, &mut err) }, &err)
    }

    /// The cache's counters, and more (per policy), as a JSON object.
    pub fn stats_json(&self) -> Result<String> {
        let g = self.inner.enter()?;
        let mut out = ptr::null_mut();
        let mut err = new_err();
        // SAFETY: live handle (held shared), valid out-pointers.
        check(unsafe { kvc_sys::kvc_cache_stats_json(g.0, &mut out, &mut err) }, &err)?;
        // SAFETY: on success `out` is a NUL-terminated string we own.
        let s = unsafe { CStr::from_ptr(out) }.to_string_lossy().into_owned();
        // SAFETY: returned by the library, freed once.
        unsafe { kvc_sys::kvc_string_free(out) };
        Ok(s)
    }
}

/// The cache's counters (`kvc_stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Host tier capacity.
    pub capacity_bytes: u64,
    /// Host tier bytes allocated to blocks.
    pub used_bytes: u64,
    /// Committed block shards resident.
    pub blocks: u64,
    /// Reservations outstanding.
    pub pending: u64,
    /// View pins outstanding.
    pub pins: u64,
    pub namespaces: u64,
    /// Lookups (load, view, match per block) that hit.
    pub hits: u64,
    /// Sum of `misses_by_reason`.
    pub misses: u64,
    /// Misses by [`MissReason`] (index with [`Stats::misses_for`]).
    pub misses_by_reason: [u64; MISS_REASONS],
    /// Commits.
    pub stores: u64,
    /// Begins answered "exists".
    pub store_exists: u64,
    /// Begins answered "pending".
    pub store_pending: u64,
    /// Explicit aborts.
    pub aborts: u64,
    pub reservations_expired: u64,
    pub pins_expired: u64,
    pub evictions: u64,
    /// Blocks reclaimed after their TTL.
    pub expirations: u64,
    pub deletes: u64,
    pub bytes_stored: u64,
    pub bytes_loaded: u64,
    /// SSD hits copied up into host DRAM.
    pub promotions: u64,
    /// Host evictions written to the SSD tier.
    pub demotions: u64,
    /// Evictions not demoted (staging full).
    pub demotions_dropped: u64,
    pub ssd_capacity_bytes: u64,
    pub ssd_used_bytes: u64,
    pub ssd_blocks: u64,
    pub ssd_hits: u64,
    /// Reads below host memory that failed their checksum.
    pub checksum_failures: u64,
}

impl Stats {
    /// The misses counted for `reason` (0 for an unknown reason).
    pub fn misses_for(&self, reason: MissReason) -> u64 {
        usize::try_from(reason.raw()).ok().and_then(|i| self.misses_by_reason.get(i)).copied().unwrap_or(0)
    }
}
