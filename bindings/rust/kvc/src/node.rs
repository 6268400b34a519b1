//! Node clients (`kvc_node_*`) and in-process nodes (`kvc_node_server_*`).
//!
//! A [`Node`] is a connection to a kvc node (`kvc serve`, or a
//! [`NodeServer`] in this process): "host:port" over gRPC, "unix:PATH" over
//! the same-host path, or a cluster ("peers:..." / "etcd://...",
//! docs/cluster.md). Every call names its namespace with the same
//! [`NamespaceOptions`] a [`Cache`](crate::Cache) takes, less the fields a
//! node supplies itself (tenant, credential, salt, default TTL, write mode:
//! they must be left empty; the connection carries the tenant).
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};
use std::ptr;
use std::sync::{Mutex, RwLock, RwLockReadGuard};
use std::time::Duration;

use crate::cache::{millis32, opt_cstr, CacheOptions};
use crate::codes::{Code, Tier, WriteMode};
use crate::error::{block_status, check, new_err, Error, Result};
use crate::json::Json;
use crate::key::Key;
use crate::namespace::{data_ptr, host_buf, keys_out, tokens_ptr, BlockStatus, NamespaceOptions, StoreOptions};
use crate::tenant::{cstr, take_string, QuotaChange, TenantOptions};

/// The most items one [`Node::get_batch`] or [`Node::put_batch`] carries
/// (`KVC_NODE_MAX_BATCH`); more is a [`Code::InvalidArgument`] error.
pub const MAX_BATCH: usize = kvc_sys::KVC_NODE_MAX_BATCH as usize;

/// Options of [`Node::connect`]. Empty strings, zero durations and `None`
/// mean the library's defaults (kvc.h documents each).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeOptions {
    /// The tenant to act as and its credential; "" on a node without tenants.
    pub tenant: String,
    pub credential: String,
    /// How long [`Node::connect`] waits for the node (default 2 s).
    pub connect_timeout: Duration,
    /// The deadline of every call (default 10 s).
    pub timeout: Duration,
    /// TLS: PEM file of the CA that signed the node's certificate ("":
    /// plaintext), and this client's certificate and key when the node asks
    /// for one (both or neither). Not used over "unix:".
    pub tls_ca_path: String,
    pub tls_cert_path: String,
    pub tls_key_path: String,
    /// The node's admin token, for the tenant administration calls.
    pub admin_token: String,
    /// How many times an idempotent call (stats, match, get, delete) is
    /// retried after [`Code::Unavailable`] within its deadline; stores are
    /// never retried. `None`: the library's default (2); `Some(0)`: none.
    pub max_retries: Option<u32>,
}

/// The C options and the strings they point into.
struct CNodeOptions {
    opts: kvc_sys::kvc_node_options,
    _strings: Vec<CString>,
}

/// Collects C strings for an options struct: "" becomes NULL (the default).
#[derive(Default)]
struct Strings(Vec<CString>);

impl Strings {
    fn opt(&mut self, name: &str, s: &str) -> Result<*const c_char> {
        Ok(match opt_cstr(name, s)? {
            None => ptr::null(),
            Some(c) => {
                let p = c.as_ptr();
                self.0.push(c); // the buffer does not move with the CString
                p
            }
        })
    }
}

impl NodeOptions {
    fn to_c(&self) -> Result<CNodeOptions> {
        let mut s = Strings::default();
        let o = kvc_sys::kvc_node_options {
            tenant: s.opt("tenant", &self.tenant)?,
            credential: s.opt("credential", &self.credential)?,
            connect_timeout_ms: millis32("connect_timeout", self.connect_timeout)?,
            timeout_ms: millis32("timeout", self.timeout)?,
            tls_ca_path: s.opt("tls_ca_path", &self.tls_ca_path)?,
            tls_cert_path: s.opt("tls_cert_path", &self.tls_cert_path)?,
            tls_key_path: s.opt("tls_key_path", &self.tls_key_path)?,
            admin_token: s.opt("admin_token", &self.admin_token)?,
            max_retries: match self.max_retries {
                None => 0,
                Some(0) => kvc_sys::KVC_NODE_NO_RETRIES,
                Some(n) if n == kvc_sys::KVC_NODE_NO_RETRIES => {
                    return Err(Error::new(Code::InvalidArgument, format!("max_retries {n} is too large")))
                }
                Some(n) => n,
            },
            ..Default::default()
        };
        Ok(CNodeOptions { opts: o, _strings: s.0 })
    }
}

/// The C connection pointer, null once closed.
struct RawNode(*mut kvc_sys::kvc_node);

// SAFETY: kvc.h documents kvc_node as thread-safe ("A connection to a node.
// Thread-safe."); closing is excluded from other calls by the RwLock that
// holds this pointer.
unsafe impl Send for RawNode {}
// SAFETY: as above.
unsafe impl Sync for RawNode {}

/// One block shard of [`Node::get_batch`]: the key and the caller's
/// destination in, the size and the outcome out.
#[derive(Debug)]
pub struct GetItem<'a> {
    pub key: Key,
    /// Where the bytes go (written whole when found, left as it was
    /// otherwise). An empty slice asks for the size only.
    pub dst: &'a mut [u8],
    /// Out: the block shard's size (also when `dst` was too small); 0 for a miss.
    pub len: usize,
    /// Out: `Ok`, or this item's code: [`Code::NotFound`] (a miss),
    /// [`Code::Layout`] (`dst` too small), or the call's own code when the
    /// call failed before the node answered for it.
    pub status: BlockStatus,
}

impl<'a> GetItem<'a> {
    pub fn new(key: Key, dst: &'a mut [u8]) -> GetItem<'a> {
        GetItem { key, dst, len: 0, status: Ok(()) }
    }
}

/// One block shard of [`Node::put_batch`]: the key, the caller's bytes
/// (exactly the namespace's shard size) and the block's parent in, the
/// outcome out.
#[derive(Debug)]
pub struct PutItem<'a> {
    pub key: Key,
    pub src: &'a [u8],
    /// The key of the block before this one in its chain (prefix-aware
    /// eviction), or `None`.
    pub parent: Option<Key>,
    /// Out: `Ok` (stored, or stored before the call failed), or this item's
    /// code: [`Code::Exists`], [`Code::Pending`], [`Code::Quota`], ..., or
    /// the call's own code when it failed before the node answered for it.
    pub status: BlockStatus,
}

impl<'a> PutItem<'a> {
    pub fn new(key: Key, src: &'a [u8], parent: Option<Key>) -> PutItem<'a> {
        PutItem { key, src, parent, status: Ok(()) }
    }

    /// The items of a chain: `keys[i]` from `srcs[i]`, each block's parent
    /// the key before it (`first_parent` for the first). Stops at the
    /// shorter of the two.
    pub fn chain(keys: &[Key], srcs: &[&'a [u8]], first_parent: Option<Key>) -> Vec<PutItem<'a>> {
        keys.iter()
            .zip(srcs)
            .enumerate()
            .map(|(i, (k, s))| PutItem::new(*k, s, if i == 0 { first_parent } else { Some(keys[i - 1]) }))
            .collect()
    }
}

/// A status the library never writes: marks an item it left untouched.
const UNTOUCHED: i32 = i32::MIN;

/// The outcome of an item the library left as it was: the call's failure.
fn item_status(s: i32, call: &Result<()>) -> BlockStatus {
    match (s, call) {
        (UNTOUCHED, Err(e)) => Err(e.code()),
        (UNTOUCHED, Ok(())) => Err(Code::Internal),
        (s, _) => block_status(s),
    }
}

/// A connection to a kvc node. `Send` and `Sync`: share it between threads
/// by reference or in an `Arc`; calls run concurrently.
///
/// Closed on drop, or earlier by [`Node::close`].
///
/// ```no_run
/// use kvc::{GetItem, NamespaceOptions, Node, NodeOptions, NodeServer, NodeServerOptions, PutItem};
///
/// let mut so = NodeServerOptions { listen: "127.0.0.1:0".into(), unix_path: "/tmp/kvc.sock".into(), ..Default::default() };
/// so.cache.host_capacity_bytes = 64 << 20;
/// let server = NodeServer::start(&so)?;
/// let node = Node::connect(&server.unix_address().unwrap(), &NodeOptions::default())?;
/// let ns = NamespaceOptions {
///     model: "my-model".into(), revision: "r1".into(), dtype: "fp16".into(),
///     layers: 2, kv_heads: 2, head_dim: 16, block_tokens: 16, ..Default::default()
/// };
/// let sb = 4096; // the namespace's shard size (Namespace::shard_bytes, or Node::get_len)
/// let prompt: Vec<u32> = (0..40).collect();
/// let (hit, keys) = node.match_tokens(&ns, &prompt)?;
/// let mut kv = vec![0u8; keys.len() * sb];
/// let mut items: Vec<GetItem> = kv.chunks_mut(sb).zip(&keys[..hit]).map(|(d, k)| GetItem::new(*k, d)).collect();
/// node.get_batch(&ns, 0, &mut items)?; // the cached prefix, straight into `kv`
/// // ... compute blocks hit.. into kv ...
/// let srcs: Vec<&[u8]> = kv[hit * sb..].chunks(sb).collect();
/// let mut puts = PutItem::chain(&keys[hit..], &srcs, hit.checked_sub(1).map(|i| keys[i]));
/// node.put_batch(&ns, 0, &mut puts, None)?; // puts[i].status: Ok(()), Err(Code::Exists), ...
/// # Ok::<(), kvc::Error>(())
/// ```
pub struct Node {
    /// Held shared by every call and exclusively to close, so the C
    /// connection is never closed under a running call.
    raw: RwLock<RawNode>,
    address: String,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("address", &self.address).finish()
    }
}

impl Node {
    /// Connects to the node at `address`: "host:port" (gRPC over TCP),
    /// "unix:PATH" (the same-host path: block bytes move with one memcpy
    /// between the node's shared memory and the caller's buffer), or a
    /// cluster ("peers:HOST:PORT,..." or "etcd://HOST:PORT/CLUSTER").
    /// [`Code::Unavailable`] when it cannot be reached within
    /// `connect_timeout`; [`Code::Unsupported`] in a library built without
    /// gRPC ([`crate::features`] says).
    pub fn connect(address: &str, opts: &NodeOptions) -> Result<Node> {
        let caddr = cstr("address", address)?;
        let co = opts.to_c()?;
        let mut raw = ptr::null_mut();
        let mut err = new_err();
        // SAFETY: valid out-pointer, address, options and error struct; the
        // strings the options point to outlive the call.
        check(unsafe { kvc_sys::kvc_node_connect(&mut raw, caddr.as_ptr(), &co.opts, &mut err) }, &err)?;
        Ok(Node { raw: RwLock::new(RawNode(raw)), address: address.to_string() })
    }

    /// The address this connection was made to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The live C handle, held shared until the guard drops.
    fn enter(&self) -> Result<RwLockReadGuard<'_, RawNode>> {
        let g = self.raw.read().unwrap_or_else(|e| e.into_inner());
        if g.0.is_null() {
            return Err(Error::closed("node connection"));
        }
        Ok(g)
    }

    /// Calls `f` with the live handle and out-pointers for a string the
    /// library allocates; that string, or `f`'s error.
    fn string_out(
        &self,
        f: impl FnOnce(*mut kvc_sys::kvc_node, *mut *mut c_char, *mut kvc_sys::kvc_error) -> c_int,
    ) -> Result<String> {
        let g = self.enter()?;
        let mut out = ptr::null_mut();
        let mut err = new_err();
        check(f(g.0, &mut out, &mut err), &err)?;
        Ok(take_string(out))
    }

    /// Closes the connection now: calls in flight finish first, later calls
    /// return [`Code::Closed`] errors. Closing again is `Ok`.
    pub fn close(&self) -> Result<()> {
        let mut g = self.raw.write().unwrap_or_else(|e| e.into_inner());
        if g.0.is_null() {
            return Ok(());
        }
        // SAFETY: a live handle; no call runs on it (exclusive lock).
        let rc = unsafe { kvc_sys::kvc_node_close(g.0) };
        g.0 = ptr::null_mut();
        if rc != kvc_sys::KVC_OK {
            return Err(Error::new(Code::from_raw(rc), "closing the node connection"));
        }
        Ok(())
    }

    /// The C handle, for C code in the same process. Valid while this
    /// connection is open; calls through it bypass [`close`](Self::close)'s
    /// coordination, so the caller must not close it meanwhile.
    pub fn as_raw(&self) -> *mut kvc_sys::kvc_node {
        self.raw.read().unwrap_or_else(|e| e.into_inner()).0
    }

    /// The node's stats as JSON text: the counters of `Cache::stats_json`
    /// with "scope": "node" (admin token, or a node without tenants), or a
    /// tenant's own counters with "scope": "tenant".
    pub fn stats_json(&self) -> Result<String> {
        // SAFETY: live handle (held shared), valid out-pointers.
        self.string_out(|n, out, err| unsafe { kvc_sys::kvc_node_stats_json(n, out, err) })
    }

    /// [`stats_json`](Self::stats_json), parsed:
    /// `node.stats()?.get("stores").and_then(Json::as_u64)`.
    pub fn stats(&self) -> Result<Json> {
        Json::parse(&self.stats_json()?)
    }

    /// How many leading blocks of the chain `keys` the node holds. A miss
    /// is `Ok(0)`.
    pub fn match_keys(&self, ns: &NamespaceOptions, keys: &[Key]) -> Result<usize> {
        self.match_raw(ns, keys, ptr::null_mut())
    }

    /// The tier holding each leading block of `keys` the node holds (its
    /// length is the match length).
    pub fn match_tiers(&self, ns: &NamespaceOptions, keys: &[Key]) -> Result<Vec<Tier>> {
        let mut tiers = vec![0u8; keys.len()];
        let n = self.match_raw(ns, keys, tiers.as_mut_ptr())?;
        Ok(tiers[..n].iter().map(|&t| Tier::from_raw(t as i32)).collect())
    }

    fn match_raw(&self, ns: &NamespaceOptions, keys: &[Key], tiers: *mut u8) -> Result<usize> {
        let co = ns.to_c()?;
        let g = self.enter()?;
        let mut n = 0usize;
        let mut err = new_err();
        // SAFETY: live handle; keys valid for keys.len(); `tiers` NULL or
        // holding keys.len() entries.
        let rc = unsafe {
            kvc_sys::kvc_node_match(g.0, &mut n, tiers, &co.opts, Key::slice_as_c(keys), keys.len(), &mut err)
        };
        check(rc, &err)?;
        Ok(n)
    }

    /// The node hashes `tokens` and matches their full blocks: the match
    /// length in blocks and the keys (for [`get`](Self::get) and
    /// [`put`](Self::put) without hashing again).
    pub fn match_tokens(&self, ns: &NamespaceOptions, tokens: &[u32]) -> Result<(usize, Vec<Key>)> {
        let (n, _, keys) = self.match_tokens_raw(ns, tokens, false)?;
        Ok((n, keys))
    }

    /// As [`match_tokens`](Self::match_tokens), with the tier of each
    /// matched block.
    pub fn match_tokens_tiers(&self, ns: &NamespaceOptions, tokens: &[u32]) -> Result<(Vec<Tier>, Vec<Key>)> {
        let (_, tiers, keys) = self.match_tokens_raw(ns, tokens, true)?;
        Ok((tiers, keys))
    }

    fn match_tokens_raw(
        &self,
        ns: &NamespaceOptions,
        tokens: &[u32],
        want_tiers: bool,
    ) -> Result<(usize, Vec<Tier>, Vec<Key>)> {
        let co = ns.to_c()?;
        let per = ns.block_tokens as usize;
        let mut keys = vec![Key::default(); tokens.len().checked_div(per).unwrap_or(0)];
        let mut tiers = vec![0u8; if want_tiers { keys.len() } else { 0 }];
        let (cap, mut scratch) = (keys.len(), Key::default());
        let tiers_ptr = if want_tiers && cap > 0 { tiers.as_mut_ptr() } else { ptr::null_mut() };
        let g = self.enter()?;
        let mut n = 0usize;
        let mut err = new_err();
        // SAFETY: live handle; the keys pointer holds `cap` keys, `tiers`
        // NULL or `cap` entries; tokens valid.
        let rc = unsafe {
            kvc_sys::kvc_node_match_tokens(
                g.0,
                &mut n,
                tiers_ptr,
                keys_out(&mut keys, &mut scratch),
                cap,
                &co.opts,
                tokens_ptr(tokens),
                tokens.len(),
                &mut err,
            )
        };
        check(rc, &err)?;
        let n = n.min(cap);
        let tiers =
            if want_tiers { tiers[..n].iter().map(|&t| Tier::from_raw(t as i32)).collect() } else { Vec::new() };
        Ok((n, tiers, keys))
    }

    /// Copies the block shard `(key, shard)` into `dst` and returns its
    /// size; `dst` must be at least that big ([`Code::Layout`] otherwise).
    /// A miss is a [`Code::NotFound`] error.
    pub fn get(&self, ns: &NamespaceOptions, key: &Key, shard: u32, dst: &mut [u8]) -> Result<usize> {
        self.get_raw(ns, key, shard, Some(dst))
    }

    /// The size of the block shard `(key, shard)` without its bytes. A miss
    /// is a [`Code::NotFound`] error.
    pub fn get_len(&self, ns: &NamespaceOptions, key: &Key, shard: u32) -> Result<usize> {
        self.get_raw(ns, key, shard, None)
    }

    /// The block shard `(key, shard)` in a new `Vec` (two requests: its size,
    /// then its bytes). [`get`](Self::get) into a buffer of your own saves
    /// the allocation and a round trip.
    pub fn get_vec(&self, ns: &NamespaceOptions, key: &Key, shard: u32) -> Result<Vec<u8>> {
        let len = self.get_len(ns, key, shard)?;
        let mut v = vec![0u8; len];
        let got = self.get(ns, key, shard, &mut v)?;
        v.truncate(got);
        Ok(v)
    }

    fn get_raw(&self, ns: &NamespaceOptions, key: &Key, shard: u32, dst: Option<&mut [u8]>) -> Result<usize> {
        let co = ns.to_c()?;
        let buf = dst.map(|d| host_buf(data_ptr(d), d.len()));
        let g = self.enter()?;
        let mut len = 0usize;
        let mut err = new_err();
        // SAFETY: live handle; the library writes at most the buffer's
        // length into it during the call (the slice is borrowed mutably);
        // NULL asks for the size only.
        let rc = unsafe {
            kvc_sys::kvc_node_get(
                g.0,
                &mut len,
                &co.opts,
                key.as_c(),
                shard,
                buf.as_ref().map_or(ptr::null(), |b| b),
                &mut err,
            )
        };
        check(rc, &err)?;
        Ok(len)
    }

    /// Stores the block shard `(key, shard)` from `src` (exactly the
    /// namespace's shard size). `opts`' `ttl` and `parent` are used.
    /// [`Code::Exists`]: already stored; [`Code::Pending`]: another writer
    /// holds it; [`Code::NoSpace`], [`Code::Quota`].
    pub fn put(
        &self,
        ns: &NamespaceOptions,
        key: &Key,
        shard: u32,
        src: &[u8],
        opts: Option<&StoreOptions>,
    ) -> Result<()> {
        let co = ns.to_c()?;
        let so = opts.map(StoreOptions::to_c).transpose()?;
        let buf = host_buf(data_ptr(src), src.len());
        let g = self.enter()?;
        let mut err = new_err();
        // SAFETY: live handle; the library only reads `src` during the call.
        let rc = unsafe {
            kvc_sys::kvc_node_put(
                g.0,
                &co.opts,
                key.as_c(),
                shard,
                &buf,
                so.as_ref().map_or(ptr::null(), |o| o),
                &mut err,
            )
        };
        check(rc, &err)
    }

    /// Gets every item (at most [`MAX_BATCH`]) of namespace `ns`, shard
    /// `shard`, in one request, straight into each item's `dst`. `Ok` when
    /// the node answered for every item: each item's `status` and `len` then
    /// say what it got (a miss is an item's [`Code::NotFound`], not an error
    /// of the call); the value is the number of leading items found. `Err`
    /// is the call's own failure ([`Code::Permission`], [`Code::Unavailable`],
    /// [`Code::Timeout`], a bad namespace, ...), and every item the node did
    /// not answer has its code.
    pub fn get_batch(&self, ns: &NamespaceOptions, shard: u32, items: &mut [GetItem<'_>]) -> Result<usize> {
        let mut c: Vec<kvc_sys::kvc_node_item> = items
            .iter_mut()
            .map(|it| kvc_sys::kvc_node_item {
                key: kvc_sys::kvc_key { bytes: it.key.0 },
                // An empty destination: NULL asks for the size only.
                buf: host_buf(
                    if it.dst.is_empty() { ptr::null() } else { it.dst.as_mut_ptr() as *const u8 },
                    it.dst.len(),
                ),
                parent: ptr::null(),
                len: 0,
                status: UNTOUCHED,
            })
            .collect();
        let call = ns.to_c().and_then(|co| {
            let g = self.enter()?;
            let mut err = new_err();
            // SAFETY: live handle; `c` holds items.len() entries whose
            // buffers are the items' slices, borrowed mutably for the call.
            let rc = unsafe { kvc_sys::kvc_node_get_batch(g.0, &co.opts, shard, c.as_mut_ptr(), c.len(), &mut err) };
            check(rc, &err)
        });
        for (it, ci) in items.iter_mut().zip(&c) {
            it.status = item_status(ci.status, &call);
            it.len = if ci.status == UNTOUCHED { 0 } else { ci.len };
        }
        call?;
        Ok(items.iter().take_while(|it| it.status.is_ok()).count())
    }

    /// Stores every item (at most [`MAX_BATCH`]) of namespace `ns`, shard
    /// `shard`, in one request, each from its `src`, with its own parent;
    /// `opts` gives every item's `ttl` (its `parent` is not used). Each
    /// block is visible once all of its bytes arrived. `Ok` when the node
    /// answered for every item: each item's `status` says what happened
    /// ([`Code::Exists`] is an item's outcome, not an error of the call).
    /// `Err` is the call's own failure; items stored before it stay stored
    /// and have `Ok`. Stores are not retried.
    pub fn put_batch(
        &self,
        ns: &NamespaceOptions,
        shard: u32,
        items: &mut [PutItem<'_>],
        opts: Option<&StoreOptions>,
    ) -> Result<()> {
        let mut c: Vec<kvc_sys::kvc_node_item> = items
            .iter()
            .map(|it| kvc_sys::kvc_node_item {
                key: kvc_sys::kvc_key { bytes: it.key.0 },
                buf: host_buf(data_ptr(it.src), it.src.len()),
                // Points into `items`, which outlives the call unchanged.
                parent: it.parent.as_ref().map_or(ptr::null(), |p| p.as_c()),
                len: 0,
                status: UNTOUCHED,
            })
            .collect();
        let call = ns.to_c().and_then(|co| {
            let so = opts.map(StoreOptions::to_c).transpose()?;
            let g = self.enter()?;
            let mut err = new_err();
            // SAFETY: live handle; `c` holds items.len() entries whose
            // buffers and parents point into `items` (read only, for the call).
            let rc = unsafe {
                kvc_sys::kvc_node_put_batch(
                    g.0,
                    &co.opts,
                    shard,
                    c.as_mut_ptr(),
                    c.len(),
                    so.as_ref().map_or(ptr::null(), |o| o),
                    &mut err,
                )
            };
            check(rc, &err)
        });
        for (it, ci) in items.iter_mut().zip(&c) {
            it.status = item_status(ci.status, &call);
        }
        call
    }

    /// Removes every shard of the block `key`; [`Code::NotFound`] if none was there.
    pub fn delete(&self, ns: &NamespaceOptions, key: &Key) -> Result<()> {
        let co = ns.to_c()?;
        let g = self.enter()?;
        let mut err = new_err();
        // SAFETY: live handle, valid options and key.
        check(unsafe { kvc_sys::kvc_node_delete(g.0, &co.opts, key.as_c(), &mut err) }, &err)
    }

    /// Makes every block of the namespace stored so far invisible at once;
    /// returns the namespace's new epoch.
    pub fn bump_revision(&self, ns: &NamespaceOptions) -> Result<u64> {
        let co = ns.to_c()?;
        let g = self.enter()?;
        let mut epoch = 0u64;
        let mut err = new_err();
        // SAFETY: live handle, valid options and out-pointer.
        check(unsafe { kvc_sys::kvc_node_bump_revision(g.0, &co.opts, &mut epoch, &mut err) }, &err)?;
        Ok(epoch)
    }

    /// Adds a tenant to the node's tenants file (applied at once) and
    /// returns its new credential, shown this once. Needs
    /// [`NodeOptions::admin_token`] ([`Code::Permission`] otherwise);
    /// [`Code::Exists`] if the name is taken; [`Code::Unsupported`] on a
    /// node without a tenants file.
    pub fn create_tenant(&self, opts: &TenantOptions) -> Result<String> {
        let co = opts.to_c()?;
        // SAFETY: live handle, valid options and out-pointers.
        self.string_out(|n, out, err| unsafe { kvc_sys::kvc_node_tenant_create(n, out, &co.opts, err) })
    }

    /// The node's tenants as a JSON array (no secrets). Admin.
    pub fn tenants_json(&self) -> Result<String> {
        // SAFETY: live handle, valid out-pointers.
        self.string_out(|n, out, err| unsafe { kvc_sys::kvc_node_tenant_list_json(n, out, err) })
    }

    /// [`tenants_json`](Self::tenants_json), parsed.
    pub fn tenants(&self) -> Result<Json> {
        Json::parse(&self.tenants_json()?)
    }

    /// Changes tenant `name`'s quotas. Admin; [`Code::NotFound`] for an
    /// unknown name.
    pub fn set_tenant_quota(&self, name: &str, change: &QuotaChange) -> Result<()> {
        let (host, ssd, borrow) = change.to_c()?;
        let cname = cstr("name", name)?;
        let g = self.enter()?;
        let mut err = new_err();
        // SAFETY: live handle, valid string.
        check(unsafe { kvc_sys::kvc_node_tenant_set_quota(g.0, cname.as_ptr(), host, ssd, borrow, &mut err) }, &err)
    }

    /// Removes tenant `name`: its requests are refused from then on and its
    /// blocks reclaimed. Admin; [`Code::NotFound`] for an unknown name.
    pub fn delete_tenant(&self, name: &str) -> Result<()> {
        let cname = cstr("name", name)?;
        let g = self.enter()?;
        let mut err = new_err();
        // SAFETY: live handle, valid string.
        check(unsafe { kvc_sys::kvc_node_tenant_delete(g.0, cname.as_ptr(), &mut err) }, &err)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let raw = self.raw.get_mut().unwrap_or_else(|e| e.into_inner());
        if !raw.0.is_null() {
            // SAFETY: the last reference; nothing else can use the handle.
            unsafe { kvc_sys::kvc_node_close(raw.0) };
            raw.0 = ptr::null_mut();
        }
    }
}

/// Options of [`NodeServer::start`]. Empty strings, zero durations and
/// `None` mean the library's defaults (kvc.h documents each).
#[derive(Clone, Debug, Default)]
pub struct NodeServerOptions {
    /// "host:port" to listen on; port 0 picks a free port ("127.0.0.1:0"
    /// for tests). Default: "127.0.0.1:7070".
    pub listen: String,
    /// The cache the node serves: its capacity, tiers and tenants file
    /// (`tenants_path`).
    pub cache: CacheOptions,
    /// How the node's stores reach its SSD tier; `None`: write-back.
    pub write_mode: Option<WriteMode>,
    /// The same-host path: a Unix socket created at this path (mode 0600);
    /// clients connect to "unix:PATH" ([`NodeServer::unix_address`]).
    /// "": none.
    pub unix_path: String,
    /// TLS on `listen`: the node's certificate chain and key (PEM), both or
    /// neither; `tls_client_ca_path` also requires client certificates.
    pub tls_cert_path: String,
    pub tls_key_path: String,
    pub tls_client_ca_path: String,
    /// The credential of admin calls (tenant administration); "": admin
    /// calls are refused.
    pub admin_token: String,
    /// "host:port" serving GET /metrics; "": none.
    pub metrics_listen: String,
    /// The bearer token GET /metrics requires; "": none.
    pub metrics_token: String,
    /// Cluster membership ("etcd://HOST:PORT/CLUSTER"); "": standalone.
    pub cluster: String,
    /// This node's id, zone and advertised address in the cluster.
    pub node_id: String,
    pub zone: String,
    pub advertise: String,
    /// A store stream that sends nothing for this long is cancelled; zero: 10 s.
    pub store_idle_timeout: Duration,
}

/// The C server pointer, null once stopped.
struct RawServer(*mut kvc_sys::kvc_node_server);

// SAFETY: kvc.h: kvc_node_server_stop may be called from any thread, once;
// the other calls one thread at a time. This crate calls only the address
// getters (once, at start) and stop (under a Mutex, once).
unsafe impl Send for RawServer {}
// SAFETY: as above.
unsafe impl Sync for RawServer {}

/// A kvc node running in this process (`kvc serve` without the process),
/// for tests and embedders. `Send` and `Sync`. Stopped on drop (calls in
/// flight get one second to finish), or earlier by [`NodeServer::stop`].
pub struct NodeServer {
    raw: Mutex<RawServer>,
    address: String,
    unix_path: String,
    metrics_address: String,
}

impl std::fmt::Debug for NodeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeServer").field("address", &self.address).field("unix_path", &self.unix_path).finish()
    }
}

fn borrowed_str(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: a NUL-terminated string borrowed from the live server.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

impl NodeServer {
    /// Opens the node's cache and starts serving. [`Code::Unavailable`] when
    /// the address cannot be bound; [`Code::Unsupported`] in a library
    /// built without gRPC.
    pub fn start(opts: &NodeServerOptions) -> Result<NodeServer> {
        let cache = opts.cache.to_c()?;
        let mut s = Strings::default();
        let o = kvc_sys::kvc_node_server_options {
            listen: s.opt("listen", &opts.listen)?,
            cache: &cache.opts,
            write_mode: opts.write_mode.map_or(0, |m| m.raw() as u32),
            unix_path: s.opt("unix_path", &opts.unix_path)?,
            tls_cert_path: s.opt("tls_cert_path", &opts.tls_cert_path)?,
            tls_key_path: s.opt("tls_key_path", &opts.tls_key_path)?,
            tls_client_ca_path: s.opt("tls_client_ca_path", &opts.tls_client_ca_path)?,
            admin_token: s.opt("admin_token", &opts.admin_token)?,
            metrics_listen: s.opt("metrics_listen", &opts.metrics_listen)?,
            cluster: s.opt("cluster", &opts.cluster)?,
            node_id: s.opt("node_id", &opts.node_id)?,
            zone: s.opt("zone", &opts.zone)?,
            advertise: s.opt("advertise", &opts.advertise)?,
            store_idle_timeout_ms: millis32("store_idle_timeout", opts.store_idle_timeout)?,
            metrics_token: s.opt("metrics_token", &opts.metrics_token)?,
            ..Default::default()
        };
        let mut raw = ptr::null_mut();
        let mut err = new_err();
        // SAFETY: valid out-pointer, options and error struct; everything
        // the options point to outlives the call.
        check(unsafe { kvc_sys::kvc_node_server_start(&mut raw, &o, &mut err) }, &err)?;
        // SAFETY: the live server; the strings are copied at once.
        let address = borrowed_str(unsafe { kvc_sys::kvc_node_server_address(raw) });
        // SAFETY: as above.
        let metrics_address = borrowed_str(unsafe { kvc_sys::kvc_node_server_metrics_address(raw) });
        Ok(NodeServer { raw: Mutex::new(RawServer(raw)), address, unix_path: opts.unix_path.clone(), metrics_address })
    }

    /// The address the node listens on ("127.0.0.1:PORT", with the port it
    /// picked for port 0): [`Node::connect`]'s argument for gRPC.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// "unix:PATH", [`Node::connect`]'s argument for the same-host path, when
    /// the node has one.
    pub fn unix_address(&self) -> Option<String> {
        if self.unix_path.is_empty() {
            None
        } else {
            Some(format!("unix:{}", self.unix_path))
        }
    }

    /// The metrics endpoint's "host:port"; "" when there is none.
    pub fn metrics_address(&self) -> &str {
        &self.metrics_address
    }

    /// Stops accepting calls, lets calls in flight finish for up to `grace`
    /// (then cancels them), and closes the node's cache (flushing
    /// write-back blocks to its SSD tier). Stopping again is `Ok`.
    pub fn stop(&self, grace: Duration) -> Result<()> {
        let ms = millis32("grace", grace)?;
        let mut g = self.raw.lock().unwrap_or_else(|e| e.into_inner());
        if g.0.is_null() {
            return Ok(());
        }
        // SAFETY: the live server, stopped once (null afterwards, under the lock).
        let rc = unsafe { kvc_sys::kvc_node_server_stop(g.0, ms) };
        g.0 = ptr::null_mut();
        if rc != kvc_sys::KVC_OK {
            return Err(Error::new(Code::from_raw(rc), "stopping the node"));
        }
        Ok(())
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.stop(Duration::from_secs(1));
    }
}
