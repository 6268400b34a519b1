//! Links libkvc: from $KVC_LIB_DIR (the build tree's library folder, set by
//! CMake), else from pkg-config's -L directories, else from the linker's
//! default path. pkg-config runs as a process: this crate has no
//! build-dependencies.
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn pkg_config_dirs() -> Vec<PathBuf> {
    let pkg_config = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_string());
    let out = match Command::new(&pkg_config).args(["--libs-only-L", "kvc"]).output() {
        Ok(out) => out,
        Err(e) => {
            println!("cargo:warning=kvc-sys: {pkg_config} not run ({e}); linking -lkvc from the default path");
            return Vec::new();
        }
    };
    if !out.status.success() {
        println!(
            "cargo:warning=kvc-sys: `{pkg_config} --libs-only-L kvc` failed ({}); set KVC_LIB_DIR",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return Vec::new();
    }
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|f| f.strip_prefix("-L"))
        .map(PathBuf::from)
        .collect()
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=KVC_LIB_DIR");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG");
    let dirs = match env::var_os("KVC_LIB_DIR") {
        Some(d) if !d.is_empty() => vec![PathBuf::from(d)],
        _ => pkg_config_dirs(),
    };
    for d in &dirs {
        println!("cargo:rustc-link-search=native={}", d.display());
    }
    println!("cargo:rustc-link-lib=dylib=kvc");
    // Dependents' build scripts see it as DEP_KVC_LIB_DIR.
    if let Some(d) = dirs.first() {
        println!("cargo:lib_dir={}", d.display());
    }
}
