//! Block keys.
use std::ffi::{CStr, CString};
use std::fmt;
use std::str::FromStr;

use crate::codes::Code;
use crate::error::{check, new_err, Error};

/// A block key (docs/hash-spec.md): 16 bytes naming a whole token prefix.
#[derive(Copy, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(transparent)]
pub struct Key(pub [u8; 16]);

// Key and kvc_key are the same 16 bytes, so slices of one are slices of the other.
const _: () = assert!(std::mem::size_of::<Key>() == std::mem::size_of::<kvc_sys::kvc_key>());
const _: () = assert!(std::mem::align_of::<Key>() == std::mem::align_of::<kvc_sys::kvc_key>());

impl Key {
    pub(crate) fn as_c(&self) -> *const kvc_sys::kvc_key {
        (self as *const Key).cast()
    }

    pub(crate) fn slice_as_c(keys: &[Key]) -> *const kvc_sys::kvc_key {
        keys.as_ptr().cast()
    }

    pub(crate) fn slice_as_c_mut(keys: &mut [Key]) -> *mut kvc_sys::kvc_key {
        keys.as_mut_ptr().cast()
    }
}

impl fmt::Display for Key {
    /// The 32 lowercase hex digits of the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0 as std::os::raw::c_char; 33];
        // SAFETY: `out` holds the 33 bytes kvc_key_to_hex writes.
        unsafe { kvc_sys::kvc_key_to_hex(self.as_c(), out.as_mut_ptr()) };
        // SAFETY: NUL-terminated by kvc_key_to_hex.
        f.write_str(&unsafe { CStr::from_ptr(out.as_ptr()) }.to_string_lossy())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({self})")
    }
}

impl FromStr for Key {
    type Err = Error;

    /// Parses 32 hex digits.
    fn from_str(s: &str) -> Result<Key, Error> {
        let cs = CString::new(s).map_err(|_| Error::new(Code::InvalidArgument, "a key has no NUL byte"))?;
        let mut k = Key::default();
        let mut err = new_err();
        // SAFETY: valid out-pointer, NUL-terminated string, error struct.
        let rc = unsafe { kvc_sys::kvc_key_from_hex((&mut k as *mut Key).cast(), cs.as_ptr(), &mut err) };
        check(rc, &err).map(|_| k)
    }
}
