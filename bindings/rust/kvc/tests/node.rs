//! The node client ([`kvc::Node`]) against in-process nodes
//! ([`kvc::NodeServer`] on a free loopback port and a unix socket), over
//! gRPC and over the same-host path: byte-exact blocks, misses, matches,
//! batches with per-item statuses, deletes, revisions, tenants and their
//! credentials, errors with their status and message, closed handles.
//! Without gRPC in libkvc every test checks that the calls answer
//! `Code::Unsupported` and says SKIPPED on stderr.
mod common;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{fill, small_ns, tokens, want_err, BT};
use kvc::{
    Code, GetItem, Json, Key, NamespaceOptions, Node, NodeOptions, NodeServer, NodeServerOptions, PutItem, QuotaChange,
    StoreOptions, TenantOptions, Tier,
};

/// False (after a loud SKIPPED line, and a check that the node calls say
/// why) when libkvc was built without gRPC.
fn have_grpc(test: &str) -> bool {
    if kvc::features().contains(kvc::Features::GRPC) {
        return true;
    }
    // Straight to stderr, past the test harness's capture, so that CTest
    // sees it ("rust: node client" skips on this line).
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: libkvc was built without gRPC (kvc_features() lacks KVC_FEATURE_GRPC)"
    );
    let o = NodeServerOptions { listen: "127.0.0.1:0".into(), ..Default::default() };
    want_err("server", NodeServer::start(&o).map(|_| ()), Code::Unsupported, &["built without gRPC"]);
    want_err("connect", Node::connect("127.0.0.1:1", &NodeOptions::default()).map(|_| ()), Code::Unsupported, &[]);
    false
}

/// A fresh folder under /tmp (short: a unix socket path has at most 107 bytes).
fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d =
        std::env::temp_dir().join(format!("kvc-rs-{name}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A node on 127.0.0.1:0 and a unix socket in `dir`.
fn start(dir: &std::path::Path, tenants_path: &str, admin_token: &str) -> NodeServer {
    let mut o = NodeServerOptions {
        listen: "127.0.0.1:0".into(),
        unix_path: dir.join("node.sock").to_str().unwrap().into(),
        admin_token: admin_token.into(),
        ..Default::default()
    };
    o.cache.host_capacity_bytes = 8 << 20;
    o.cache.prefault = kvc::Prefault::No;
    o.cache.tenants_path = tenants_path.into();
    let s = NodeServer::start(&o).expect("start node");
    assert!(s.address().starts_with("127.0.0.1:") && s.address() != "127.0.0.1:0", "{}", s.address());
    s
}

fn connect(addr: &str, o: &NodeOptions) -> Node {
    Node::connect(addr, o).unwrap_or_else(|e| panic!("connect {addr}: {e}"))
}

/// The namespace of one scenario (its own model, so transports' blocks stay apart).
fn ns(model: &str) -> NamespaceOptions {
    NamespaceOptions { model: model.into(), ..small_ns() }
}

/// The namespace's shard size, as an embedded cache has it.
fn shard_bytes(o: &NamespaceOptions) -> usize {
    common::open_cache(4 << 20).namespace(o).unwrap().shard_bytes()
}

/// Everything a client does, through `addr`.
fn scenario(addr: &str, model: &str) {
    let node = connect(addr, &NodeOptions { timeout: Duration::from_secs(10), ..Default::default() });
    assert_eq!(node.address(), addr);
    let o = ns(model);
    let sb = shard_bytes(&o);
    let toks = tokens(4 * BT + 3, 7);

    // The node's keys are the ones kvc::hash_keys computes here.
    let (hit, keys) = node.match_tokens(&o, &toks).unwrap();
    assert_eq!(hit, 0, "{addr}: an empty node matched");
    let (_, want_keys) = kvc::hash_keys(&o, &toks).unwrap();
    assert_eq!(keys, want_keys);
    assert_eq!(keys.len(), 4);

    // put then get, byte-exact; a second put is Exists.
    let blocks: Vec<Vec<u8>> = (0..4).map(|i| fill(sb, i + 1)).collect();
    for i in 0..2 {
        let so = StoreOptions { parent: if i > 0 { Some(keys[i - 1]) } else { None }, ..Default::default() };
        node.put(&o, &keys[i], 0, &blocks[i], Some(&so)).unwrap();
    }
    want_err("put again", node.put(&o, &keys[0], 0, &blocks[0], None), Code::Exists, &[]);
    let mut dst = vec![0xEEu8; sb + 10];
    assert_eq!(node.get(&o, &keys[1], 0, &mut dst).unwrap(), sb);
    assert_eq!(&dst[..sb], &blocks[1][..]);
    assert!(dst[sb..].iter().all(|&b| b == 0xEE), "get wrote past the block");
    assert_eq!(node.get_vec(&o, &keys[0], 0).unwrap(), blocks[0]);
    assert_eq!(node.get_len(&o, &keys[0], 0).unwrap(), sb);

    // A miss, a too-small buffer.
    let mut small = vec![0u8; sb - 1];
    let e = want_err("small", node.get(&o, &keys[0], 0, &mut small), Code::Layout, &[]);
    assert!(e.to_string().contains("KVC_ERR_LAYOUT"), "{e}");
    let mut back = vec![0xAAu8; sb];
    want_err("miss", node.get(&o, &keys[3], 0, &mut back), Code::NotFound, &["not found"]);
    assert!(back.iter().all(|&b| b == 0xAA), "a miss wrote the buffer");
    want_err("miss vec", node.get_vec(&o, &keys[3], 0), Code::NotFound, &[]);

    // Match: the leading blocks and their tiers.
    assert_eq!(node.match_keys(&o, &keys).unwrap(), 2);
    assert_eq!(node.match_tiers(&o, &keys).unwrap(), vec![Tier::Host, Tier::Host]);
    assert_eq!(node.match_tokens(&o, &toks).unwrap().0, 2);
    assert_eq!(node.match_tokens_tiers(&o, &toks).unwrap().0, vec![Tier::Host, Tier::Host]);
    assert_eq!(node.match_keys(&o, &keys[2..]).unwrap(), 0);

    // put_batch: an existing block and two new ones (a chain); Ok per item.
    let srcs: Vec<&[u8]> = blocks[1..4].iter().map(|b| &b[..]).collect();
    let mut items = PutItem::chain(&keys[1..4], &srcs, Some(keys[0]));
    assert_eq!(items[0].parent, Some(keys[0]));
    assert_eq!(items[2].parent, Some(keys[2]));
    node.put_batch(&o, 0, &mut items, None).unwrap();
    let st: Vec<_> = items.iter().map(|it| it.status).collect();
    assert_eq!(st, vec![Err(Code::Exists), Ok(()), Ok(())]);
    assert_eq!(node.match_keys(&o, &keys).unwrap(), 4);

    // get_batch: hits, a miss, a too-small buffer, a size-only item.
    let missing = Key([0x5a; 16]);
    let mut bufs: Vec<Vec<u8>> = (0..4).map(|_| vec![0xEEu8; sb]).collect();
    let mut miss_buf = vec![0xEEu8; sb];
    let mut small_buf = vec![0xEEu8; 100];
    let mut none: [u8; 0] = [];
    {
        let mut items: Vec<GetItem> = bufs.iter_mut().zip(&keys).map(|(b, k)| GetItem::new(*k, b)).collect();
        items.push(GetItem::new(missing, &mut miss_buf));
        items.push(GetItem::new(keys[2], &mut small_buf));
        items.push(GetItem::new(keys[3], &mut none));
        let leading = node.get_batch(&o, 0, &mut items).unwrap();
        assert_eq!(leading, 4);
        let st: Vec<_> = items.iter().map(|it| (it.status, it.len)).collect();
        assert_eq!(
            st,
            vec![
                (Ok(()), sb),
                (Ok(()), sb),
                (Ok(()), sb),
                (Ok(()), sb),
                (Err(Code::NotFound), 0),
                (Err(Code::Layout), sb),
                (Ok(()), sb)
            ]
        );
    }
    for (b, want) in bufs.iter().zip(&blocks) {
        assert_eq!(b, want, "a batch get's bytes");
    }
    assert!(miss_buf.iter().all(|&b| b == 0xEE), "a miss's buffer was written");
    let empty: &mut [GetItem] = &mut [];
    assert_eq!(node.get_batch(&o, 0, empty).unwrap(), 0);
    node.put_batch(&o, 0, &mut [], None).unwrap();

    // A batch the node refuses as a whole: every item carries the code.
    let short = &blocks[0][..sb - 1];
    let mut bad = vec![PutItem::new(Key([1; 16]), &blocks[0], None), PutItem::new(Key([2; 16]), short, None)];
    want_err(
        "short item",
        node.put_batch(&o, 0, &mut bad, None),
        Code::InvalidArgument,
        &["items[1].buf", "shard_bytes"],
    );
    assert!(bad.iter().all(|it| it.status == Err(Code::InvalidArgument)), "{bad:?}");
    want_err("nothing stored", node.get_len(&o, &Key([1; 16]), 0), Code::NotFound, &[]);
    let mut many: Vec<PutItem> =
        (0..kvc::MAX_BATCH + 1).map(|_| PutItem::new(Key([3; 16]), &blocks[0], None)).collect();
    want_err("too many", node.put_batch(&o, 0, &mut many, None), Code::InvalidArgument, &["KVC_NODE_MAX_BATCH"]);
    assert!(many.iter().all(|it| it.status == Err(Code::InvalidArgument)));

    // Errors carry the status and the library's message.
    let salted = NamespaceOptions { salt: vec![1, 2], ..o.clone() };
    want_err("salt", node.match_keys(&salted, &keys), Code::InvalidArgument, &["salt"]);
    let tenant_ns = NamespaceOptions { tenant: "t".into(), ..o.clone() };
    want_err("ns tenant", node.get_len(&tenant_ns, &keys[0], 0), Code::InvalidArgument, &["ns.tenant"]);
    let fp7 = NamespaceOptions { dtype: "fp7".into(), ..o.clone() };
    want_err("dtype", node.match_keys(&fp7, &keys), Code::Layout, &[]);
    want_err("short put", node.put(&o, &Key([4; 16]), 0, short, None), Code::Layout, &[]);
    let nul = NamespaceOptions { model: "a\0b".into(), ..o.clone() };
    want_err("nul", node.delete(&nul, &keys[0]), Code::InvalidArgument, &["NUL"]);

    // Stats, parsed.
    let stats = node.stats().unwrap();
    assert_eq!(stats.get("scope").and_then(Json::as_str), Some("node"), "{stats}");
    let stores = stats.get("stores").and_then(Json::as_u64).expect("stores");
    assert!(stores >= 4, "stores {stores}: {stats}");
    assert!(node.stats_json().unwrap().contains("\"stores\""));

    // Delete.
    node.delete(&o, &keys[3]).unwrap();
    want_err("delete again", node.delete(&o, &keys[3]), Code::NotFound, &[]);
    want_err("deleted", node.get_len(&o, &keys[3], 0), Code::NotFound, &[]);
    assert_eq!(node.match_keys(&o, &keys).unwrap(), 3);

    // A revision bump hides every block at once.
    let e1 = node.bump_revision(&o).unwrap();
    assert_eq!(node.match_keys(&o, &keys).unwrap(), 0);
    want_err("after bump", node.get(&o, &keys[0], 0, &mut back), Code::NotFound, &[]);
    let e2 = node.bump_revision(&o).unwrap();
    assert!(e2 > e1, "epochs {e1} then {e2}");
    node.put(&o, &keys[0], 0, &blocks[0], None).unwrap(); // stored again under the new epoch
    assert_eq!(node.get_vec(&o, &keys[0], 0).unwrap(), blocks[0]);

    // Closing: twice is fine; a closed connection says so, items included.
    node.close().unwrap();
    node.close().unwrap();
    let e = want_err("closed", node.get(&o, &keys[0], 0, &mut back), Code::Closed, &["closed"]);
    assert!(e.to_string().contains("KVC_ERR_CLOSED"), "{e}");
    want_err("closed stats", node.stats(), Code::Closed, &[]);
    let mut items = vec![GetItem::new(keys[0], &mut back)];
    want_err("closed batch", node.get_batch(&o, 0, &mut items), Code::Closed, &[]);
    assert_eq!(items[0].status, Err(Code::Closed));
}

#[test]
fn tcp_and_same_host_path() {
    if !have_grpc("tcp_and_same_host_path") {
        return;
    }
    let dir = temp_dir("node");
    let server = start(&dir, "", "");
    scenario(server.address(), "rs-node-tcp");
    let unix = server.unix_address().expect("a unix path");
    assert!(unix.starts_with("unix:/"));
    scenario(&unix, "rs-node-unix");

    // A block put over one transport is the same block over the other.
    let o = ns("rs-node-both");
    let sb = shard_bytes(&o);
    let (tcp, shm) = (connect(server.address(), &NodeOptions::default()), connect(&unix, &NodeOptions::default()));
    let k = Key([9; 16]);
    tcp.put(&o, &k, 0, &fill(sb, 99), None).unwrap();
    assert_eq!(shm.get_vec(&o, &k, 0).unwrap(), fill(sb, 99));
    drop((tcp, shm));

    server.stop(Duration::from_secs(1)).unwrap();
    server.stop(Duration::from_secs(1)).unwrap(); // again: Ok
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stopped_node_is_unavailable_quickly() {
    if !have_grpc("stopped_node_is_unavailable_quickly") {
        return;
    }
    let dir = temp_dir("stopped");
    let server = start(&dir, "", "");
    let addr = server.address().to_string();
    drop(server); // stops it
    let t = Instant::now();
    let o = NodeOptions { connect_timeout: Duration::from_millis(300), max_retries: Some(0), ..Default::default() };
    want_err("connect", Node::connect(&addr, &o).map(|_| ()), Code::Unavailable, &[&addr]);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_options_refused() {
    if !have_grpc("bad_options_refused") {
        return;
    }
    let o = NodeOptions { timeout: Duration::from_secs(60 * 86400), ..Default::default() };
    want_err("timeout", Node::connect("127.0.0.1:1", &o).map(|_| ()), Code::InvalidArgument, &["timeout"]);
    let o = NodeOptions { tenant: "a\0".into(), ..Default::default() };
    want_err("nul", Node::connect("127.0.0.1:1", &o).map(|_| ()), Code::InvalidArgument, &["tenant"]);
    let o = NodeServerOptions {
        listen: "127.0.0.1:0".into(),
        tls_cert_path: "/nonexistent.pem".into(),
        ..Default::default()
    };
    let e = NodeServer::start(&o).map(|_| ()).unwrap_err();
    assert!(!e.message().is_empty(), "{e}");
}

#[test]
fn tenants_and_credentials() {
    if !have_grpc("tenants_and_credentials") {
        return;
    }
    let dir = temp_dir("tenants");
    let file = dir.join("tenants.json");
    let file = file.to_str().unwrap();
    let acme_cred = kvc::create_tenant(file, &TenantOptions { name: "acme".into(), ..Default::default() }).unwrap();
    let server = start(&dir, file, "admin-secret");
    let o = small_ns();
    let sb = shard_bytes(&o);
    let k = Key([7; 16]);

    // The admin creates a tenant, which works at once.
    let admin = connect(server.address(), &NodeOptions { admin_token: "admin-secret".into(), ..Default::default() });
    let carol_cred = admin.create_tenant(&TenantOptions { name: "carol".into(), ..Default::default() }).unwrap();
    assert!(carol_cred.len() > 16);
    want_err(
        "taken",
        admin.create_tenant(&TenantOptions { name: "carol".into(), ..Default::default() }),
        Code::Exists,
        &[],
    );
    want_err(
        "bad name",
        admin.create_tenant(&TenantOptions { name: "bad name!".into(), ..Default::default() }),
        Code::InvalidArgument,
        &[],
    );
    let carol = connect(
        server.address(),
        &NodeOptions { tenant: "carol".into(), credential: carol_cred.clone(), ..Default::default() },
    );
    carol.put(&o, &k, 0, &fill(sb, 5), None).unwrap();
    assert_eq!(carol.get_vec(&o, &k, 0).unwrap(), fill(sb, 5));
    let st = carol.stats().unwrap();
    assert_eq!(st.get("scope").and_then(Json::as_str), Some("tenant"), "{st}");
    assert_eq!(st.get("tenant").and_then(Json::as_str), Some("carol"), "{st}");

    // Isolated tenants do not see each other's blocks.
    let unix = server.unix_address().unwrap();
    let acme = connect(&unix, &NodeOptions { tenant: "acme".into(), credential: acme_cred, ..Default::default() });
    want_err("isolated", acme.get_len(&o, &k, 0), Code::NotFound, &[]);
    acme.put(&o, &k, 0, &fill(sb, 6), None).unwrap();
    assert_eq!(acme.get_vec(&o, &k, 0).unwrap(), fill(sb, 6));
    assert_eq!(carol.get_vec(&o, &k, 0).unwrap(), fill(sb, 5));

    // Quotas and the list (no secrets).
    let q = QuotaChange { host_quota_bytes: Some(1 << 20), ..Default::default() };
    admin.set_tenant_quota("carol", &q).unwrap();
    want_err("nobody", admin.set_tenant_quota("nobody", &q), Code::NotFound, &[]);
    let list = admin.tenants().unwrap();
    let names: Vec<&str> =
        list.as_array().expect("an array").iter().filter_map(|t| t.get("name").and_then(Json::as_str)).collect();
    assert!(names.contains(&"acme") && names.contains(&"carol"), "{list}");
    let text = admin.tenants_json().unwrap();
    assert!(text.contains("1048576") && !text.contains(&carol_cred), "{text}");

    // Wrong credentials, over both transports, and admin calls without the token.
    for addr in [server.address().to_string(), unix.clone()] {
        let wrong = NodeOptions { tenant: "carol".into(), credential: "kvc_wrong".into(), ..Default::default() };
        match Node::connect(&addr, &wrong) {
            Err(e) => assert_eq!(e.code(), Code::Permission, "{addr}: {e}"),
            Ok(n) => {
                want_err("wrong credential", n.get_len(&o, &k, 0), Code::Permission, &[]);
                want_err(
                    "wrong credential put",
                    n.put(&o, &Key([8; 16]), 0, &fill(sb, 1), None),
                    Code::Permission,
                    &[],
                );
            }
        }
        let no_tenant = connect(&addr, &NodeOptions::default());
        want_err("no tenant", no_tenant.match_keys(&o, &[k]), Code::Permission, &[]);
    }
    want_err(
        "not admin",
        carol.create_tenant(&TenantOptions { name: "mallory".into(), ..Default::default() }),
        Code::Permission,
        &[],
    );
    let bad_admin = connect(server.address(), &NodeOptions { admin_token: "wrong".into(), ..Default::default() });
    want_err("wrong admin token", bad_admin.tenants_json(), Code::Permission, &[]);

    // A deleted tenant is refused from then on.
    admin.delete_tenant("carol").unwrap();
    want_err("deleted tenant", carol.get_len(&o, &k, 0), Code::Permission, &[]);
    want_err("delete again", admin.delete_tenant("carol"), Code::NotFound, &[]);
    assert_eq!(acme.get_vec(&o, &k, 0).unwrap(), fill(sb, 6));

    drop((admin, carol, acme, bad_admin));
    server.stop(Duration::from_secs(1)).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn node_without_tenants_refuses_tenant_admin() {
    if !have_grpc("node_without_tenants_refuses_tenant_admin") {
        return;
    }
    let dir = temp_dir("notenants");
    let server = start(&dir, "", "admin-secret");
    let admin = connect(server.address(), &NodeOptions { admin_token: "admin-secret".into(), ..Default::default() });
    want_err("no file", admin.tenants_json(), Code::Unsupported, &["tenants file"]);
    drop(admin);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn threads_share_one_connection() {
    assert_send_sync::<Node>();
    assert_send_sync::<NodeServer>();
    if !have_grpc("threads_share_one_connection") {
        return;
    }
    let dir = temp_dir("threads");
    let server = start(&dir, "", "");
    for addr in [server.address().to_string(), server.unix_address().unwrap()] {
        let node = Arc::new(connect(&addr, &NodeOptions::default()));
        let o = ns(&format!("rs-threads-{}", addr.len()));
        let sb = shard_bytes(&o);
        let handles: Vec<_> = (0..4u8)
            .map(|t| {
                let (node, o) = (Arc::clone(&node), o.clone());
                std::thread::spawn(move || {
                    let mut dst = vec![0u8; sb];
                    for i in 0..16u8 {
                        let k = Key([t, i, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
                        let src = fill(sb, (t as usize) * 100 + i as usize);
                        node.put(&o, &k, 0, &src, None).unwrap();
                        assert_eq!(node.get(&o, &k, 0, &mut dst).unwrap(), sb);
                        assert_eq!(dst, src);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        // Closing under no call, then every thread's view of it is Closed.
        node.close().unwrap();
        want_err("closed", node.match_keys(&o, &[Key::default()]), Code::Closed, &[]);
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
