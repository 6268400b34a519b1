//! Raw FFI bindings of libkvc's C ABI, `capi/kvc.h`.
//!
//! Everything in this crate is generated from kvc.h by
//! `scripts/gen_binding_enums.py` into `src/bindings.rs`, committed, and
//! checked for drift in CI (`scripts/check_drift.sh`); `tests/layout.rs`
//! compiles a C program against kvc.h and checks that every struct's size,
//! alignment and field offsets, and every constant, agree with this crate.
//!
//! The names and types are kvc.h's own: a C enum is a `c_int` type alias
//! with its values as constants; an options struct's `Default` is its
//! `_INIT` macro. Use the `kvc` crate for a safe API.
//!
//! Linking: `build.rs` links `libkvc` from `$KVC_LIB_DIR` when set, else
//! from the `-L` directories `pkg-config --libs kvc` names, else from the
//! linker's default path.
#![allow(non_camel_case_types, non_upper_case_globals, non_snake_case)]

#[rustfmt::skip]
mod bindings;

pub use bindings::*;
