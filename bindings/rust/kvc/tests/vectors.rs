//! Every case of every tests/vectors/*.json file, through kvc_hash_keys and
//! through a namespace of a cache.
mod common;

use common::json::{parse, Json};
use kvc::{hash_keys, NamespaceOptions};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn options(c: &Json) -> NamespaceOptions {
    let l = c.get("layout");
    NamespaceOptions {
        hash: c.get("hash").str().into(),
        model: c.get("model").str().into(),
        revision: c.get("revision").str().into(),
        adapter: c.get("adapter").str().into(),
        dtype: l.get("dtype").str().into(),
        layers: l.get("layers").u64() as u32,
        kv_heads: l.get("kv_heads").u64() as u32,
        head_dim: l.get("head_dim").u64() as u32,
        block_tokens: l.get("block_tokens").u64() as u32,
        shards: l.get("shards").u64() as u32,
        salt: unhex(c.get("salt_hex").str()),
        ..Default::default()
    }
}

#[test]
fn hash_vectors() {
    let dir = common::source_dir().join("tests/vectors");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().map_or(false, |x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no vector files in {}", dir.display());
    let cache = common::open_cache(1 << 20);
    let mut checked = 0;
    for f in files {
        let doc = parse(&std::fs::read_to_string(&f).unwrap());
        assert_eq!(doc.get("spec").str(), "kvc-hash-v1", "{}", f.display());
        for c in doc.get("cases").arr() {
            let name = c.get("name").str();
            let o = options(c);
            let tokens: Vec<u32> = c.get("tokens").arr().iter().map(|t| t.u64() as u32).collect();
            let want: Vec<&str> = c.get("keys").arr().iter().map(|k| k.str()).collect();
            let (seed, keys) = hash_keys(&o, &tokens).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(seed.to_string(), c.get("seed").str(), "{name}: seed");
            let got: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
            assert_eq!(got, want, "{name}: keys");

            let ns = cache.namespace(&o).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(ns.info().unwrap().seed.to_string(), c.get("seed").str(), "{name}: namespace seed");
            if !want.is_empty() {
                let nk: Vec<String> = ns.keys(&tokens).unwrap().iter().map(|k| k.to_string()).collect();
                assert_eq!(nk, want, "{name}: namespace keys");
            }
            checked += 1;
        }
    }
    assert!(checked > 0);
    eprintln!("{checked} vector cases checked");
}
