//! kvc-sys against the C compiler: builds the generated C program (sizes,
//! alignments, field offsets and constants as the compiler sees kvc.h) and
//! compares each line with what this crate declares.
//!
//! The header is found in $KVC_INCLUDE_DIR, else in this repository
//! (../../../capi); the compiler is $CC, else `cc`.
use std::collections::BTreeMap;
use std::env;
use std::path::PathBuf;
use std::process::Command;

#[path = "gen/layout_table.rs"]
mod layout_table;

fn include_dir() -> PathBuf {
    match env::var_os("KVC_INCLUDE_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../capi"),
    }
}

#[test]
fn layout_and_constants_match_the_c_compiler() {
    let inc = include_dir();
    assert!(inc.join("kvc.h").exists(), "kvc.h not found in {}", inc.display());
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let src = dir.join("kvc_layout.c");
    let exe = dir.join("kvc_layout");
    std::fs::write(&src, layout_table::C_PROGRAM).unwrap();
    let cc = env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let st = Command::new(&cc)
        .arg("-std=c11")
        .arg("-I")
        .arg(&inc)
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .status()
        .unwrap_or_else(|e| panic!("running {cc}: {e}"));
    assert!(st.success(), "{cc} failed on the layout program");
    let out = Command::new(&exe).output().unwrap();
    assert!(out.status.success());
    let c: BTreeMap<String, i128> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect();
    let rust = layout_table::rust_layout();
    assert_eq!(c.len(), rust.len(), "the C program and the table list different facts");
    let mut bad = Vec::new();
    for (fact, value) in &rust {
        match c.get(fact) {
            Some(cv) if cv == value => {}
            other => bad.push(format!("{fact}: C {other:?}, Rust {value}")),
        }
    }
    assert!(bad.is_empty(), "kvc-sys disagrees with kvc.h:\n{}", bad.join("\n"));
}
