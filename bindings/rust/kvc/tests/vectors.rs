//! Every case of every tests/vectors/*.json file, through kvc_hash_keys and
//! through a namespace of a cache.
mod common;

use kvc::{hash_keys, Json, NamespaceOptions};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// The field `k` of the object `j`; a missing one is a broken vector file.
fn field<'a>(j: &'a Json, k: &str) -> &'a Json {
    j.get(k).unwrap_or_else(|| panic!("no field {k:?} in {j}"))
}

fn str_of(j: &Json) -> &str {
    j.as_str().unwrap_or_else(|| panic!("not a string: {j}"))
}

fn text<'a>(j: &'a Json, k: &str) -> &'a str {
    str_of(field(j, k))
}

fn u32_of(j: &Json) -> u32 {
    j.as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or_else(|| panic!("not a u32: {j}"))
}

fn array<'a>(j: &'a Json, k: &str) -> &'a [Json] {
    field(j, k).as_array().unwrap_or_else(|| panic!("{k:?} is not an array in {j}"))
}

fn options(c: &Json) -> NamespaceOptions {
    let l = field(c, "layout");
    NamespaceOptions {
        hash: text(c, "hash").into(),
        model: text(c, "model").into(),
        revision: text(c, "revision").into(),
        adapter: text(c, "adapter").into(),
        dtype: text(l, "dtype").into(),
        layers: u32_of(field(l, "layers")),
        kv_heads: u32_of(field(l, "kv_heads")),
        head_dim: u32_of(field(l, "head_dim")),
        block_tokens: u32_of(field(l, "block_tokens")),
        shards: u32_of(field(l, "shards")),
        salt: unhex(text(c, "salt_hex")),
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
        let doc = Json::parse(&std::fs::read_to_string(&f).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert_eq!(text(&doc, "spec"), "kvc-hash-v1", "{}", f.display());
        for c in array(&doc, "cases") {
            let name = text(c, "name");
            let o = options(c);
            let tokens: Vec<u32> = array(c, "tokens").iter().map(u32_of).collect();
            let want: Vec<&str> = array(c, "keys").iter().map(str_of).collect();
            let (seed, keys) = hash_keys(&o, &tokens).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(seed.to_string(), text(c, "seed"), "{name}: seed");
            let got: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
            assert_eq!(got, want, "{name}: keys");

            let ns = cache.namespace(&o).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(ns.info().unwrap().seed.to_string(), text(c, "seed"), "{name}: namespace seed");
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
