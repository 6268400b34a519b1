//! Zero-copy views of pinned blocks, and reservations (two-phase stores).
use std::ops::Deref;
use std::ptr;
use std::sync::atomic::Ordering;

use crate::codes::Code;
use crate::error::{check, new_err, Error, Result};
use crate::namespace::Namespace;

/// A zero-copy, read-only view of a pinned block shard: derefs to the
/// cache's own bytes. The pin is released on drop (or by
/// [`release`](View::release), which reports errors).
///
/// While a view is alive its namespace and cache refuse to close, so the
/// bytes stay valid for the view's whole life. `Send` and `Sync`.
pub struct View<'a> {
    ns: &'a Namespace,
    v: kvc_sys::kvc_view,
}

// SAFETY: the view's bytes are immutable while it lives and the pin may be
// released from any thread (kvc_view_release goes through the thread-safe
// namespace handle).
unsafe impl Send for View<'_> {}
// SAFETY: as above; `&View` only reads the bytes.
unsafe impl Sync for View<'_> {}

impl<'a> View<'a> {
    pub(crate) fn new(ns: &'a Namespace, v: kvc_sys::kvc_view) -> View<'a> {
        ns.view_count().fetch_add(1, Ordering::SeqCst);
        ns.cache_inner().borrowed.fetch_add(1, Ordering::SeqCst);
        View { ns, v }
    }

    /// Releases the pin now, reporting the library's answer.
    pub fn release(mut self) -> Result<()> {
        let r = self.release_inner();
        std::mem::forget(self);
        r
    }

    fn release_inner(&mut self) -> Result<()> {
        let r = match self.ns.enter() {
            Ok(h) => {
                let mut err = new_err();
                // SAFETY: live handle; the view was acquired and not released.
                check(unsafe { kvc_sys::kvc_view_release(h.ns, &mut self.v, &mut err) }, &err)
            }
            Err(e) => Err(e),
        };
        self.ns.view_count().fetch_sub(1, Ordering::SeqCst);
        self.ns.cache_inner().borrowed.fetch_sub(1, Ordering::SeqCst);
        r
    }
}

impl Deref for View<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        if self.v.len == 0 {
            return &[];
        }
        // SAFETY: the library guarantees `len` bytes at `data`, unchanged
        // until release or the pin's deadline; the view releases on drop,
        // its deadline outlives it (see Namespace::view), and neither its
        // namespace nor its cache can close while it lives.
        unsafe { std::slice::from_raw_parts(self.v.data as *const u8, self.v.len) }
    }
}

impl AsRef<[u8]> for View<'_> {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl Drop for View<'_> {
    fn drop(&mut self) {
        let _ = self.release_inner();
    }
}

impl std::fmt::Debug for View<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View").field("len", &self.v.len).field("id", &self.v.id).finish()
    }
}

/// The right to write one block shard (two-phase store). Ends with
/// [`commit`](Reservation::commit) or [`abort`](Reservation::abort); a
/// reservation dropped without either is aborted.
///
/// `Send` but not `Sync`: kvc.h allows one thread at a time.
pub struct Reservation<'a> {
    ns: &'a Namespace,
    res: *mut kvc_sys::kvc_reservation,
}

// SAFETY: kvc.h: a reservation is used by one thread at a time, which any
// thread may be; `&mut self` methods and !Sync keep it to one at a time.
unsafe impl Send for Reservation<'_> {}

impl<'a> Reservation<'a> {
    pub(crate) fn new(ns: &'a Namespace, res: *mut kvc_sys::kvc_reservation) -> Reservation<'a> {
        ns.cache_inner().borrowed.fetch_add(1, Ordering::SeqCst);
        Reservation { ns, res }
    }

    /// Copies `src` (exactly [`Namespace::shard_bytes`]) into the
    /// reservation's buffer.
    pub fn write(&mut self, src: &[u8]) -> Result<()> {
        let _g = self.ns.cache_inner().enter()?;
        let buf = kvc_sys::kvc_buf {
            data: if src.is_empty() { ptr::NonNull::<u8>::dangling().as_ptr().cast() } else { src.as_ptr() as *mut _ },
            len: src.len(),
            mem: kvc_sys::KVC_MEM_HOST,
            device: 0,
        };
        let mut err = new_err();
        // SAFETY: a live reservation (cache held shared); the library reads
        // exactly shard_bytes from `src`, or refuses a length mismatch.
        check(unsafe { kvc_sys::kvc_reservation_write(self.res, &buf, &mut err) }, &err)
    }

    /// The reservation's buffer (the cache's memory), to fill in place.
    ///
    /// # Safety
    ///
    /// The buffer is the library's until the reservation's deadline
    /// (`StoreOptions::reservation_timeout`, or the cache's): past it the
    /// library aborts the reservation and may reuse the memory. The caller
    /// must finish writing before then.
    pub unsafe fn buffer_mut(&mut self) -> Result<&mut [u8]> {
        let _g = self.ns.cache_inner().enter()?;
        let mut b = kvc_sys::kvc_buf::default();
        let mut err = new_err();
        // SAFETY: a live reservation (cache held shared).
        check(unsafe { kvc_sys::kvc_reservation_buffer(self.res, &mut b, &mut err) }, &err)?;
        // SAFETY: `len` bytes of host memory owned by the reservation, which
        // `&mut self` borrows exclusively; the cache cannot close while it
        // lives; the deadline is the caller's contract.
        Ok(unsafe { std::slice::from_raw_parts_mut(b.data as *mut u8, b.len) })
    }

    /// Records the checksum and makes the block visible. A
    /// [`Code::Timeout`] error means the reservation's deadline had passed.
    pub fn commit(self) -> Result<()> {
        self.finish(true)
    }

    /// Drops the reservation without writing the block.
    pub fn abort(self) -> Result<()> {
        self.finish(false)
    }

    fn finish(mut self, commit: bool) -> Result<()> {
        let r = self.end(commit);
        std::mem::forget(self);
        r
    }

    fn end(&mut self, commit: bool) -> Result<()> {
        let res = std::mem::replace(&mut self.res, ptr::null_mut());
        let inner = self.ns.cache_inner();
        let r = match inner.enter() {
            Ok(_g) => {
                let mut err = new_err();
                if commit {
                    // SAFETY: a live reservation, freed by this call.
                    check(unsafe { kvc_sys::kvc_store_commit(res, &mut err) }, &err)
                } else {
                    // SAFETY: a live reservation, freed by this call.
                    let rc = unsafe { kvc_sys::kvc_store_abort(res) };
                    if rc == kvc_sys::KVC_OK {
                        Ok(())
                    } else {
                        Err(Error::new(Code::from_raw(rc), "aborting the reservation"))
                    }
                }
            }
            // The cache cannot close while a reservation lives, so this is
            // unreachable in practice; the reservation is then left alone.
            Err(e) => Err(e),
        };
        inner.borrowed.fetch_sub(1, Ordering::SeqCst);
        r
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.res.is_null() {
            let _ = self.end(false);
        }
    }
}

impl std::fmt::Debug for Reservation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation").finish_non_exhaustive()
    }
}
