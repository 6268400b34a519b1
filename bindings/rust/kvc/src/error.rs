//! Errors: the C status code and the call's message.
use std::ffi::CStr;
use std::fmt;
use std::os::raw::c_int;

use crate::codes::Code;

/// A failed kvc call: its status code and one-line message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    code: Code,
    message: String,
}

/// `std::result::Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error raised by this crate (before or instead of a C call).
    pub fn new(code: Code, message: impl Into<String>) -> Error {
        Error { code, message: message.into() }
    }

    /// The status code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The call's message ("" when it had none).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether this error has code `code`.
    pub fn is(&self, code: Code) -> bool {
        self.code == code
    }

    pub(crate) fn closed(what: &str) -> Error {
        Error::new(Code::Closed, format!("the {what} is closed"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msg = if self.message.is_empty() { self.code.description() } else { self.message.clone() };
        write!(f, "kvc: {} ({})", msg, self.code.name())
    }
}

impl std::error::Error for Error {}

impl Code {
    /// The code's C name from the library ("KVC_ERR_NOT_FOUND").
    pub fn name(self) -> String {
        // SAFETY: any int is accepted; the result is static storage.
        let p = unsafe { kvc_sys::kvc_status_name(self.raw()) };
        // SAFETY: never NULL, NUL-terminated.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    /// The code's short fixed description from the library ("not found").
    pub fn description(self) -> String {
        // SAFETY: any int is accepted; the result is static storage.
        let p = unsafe { kvc_sys::kvc_status_str(self.raw()) };
        // SAFETY: never NULL, NUL-terminated.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A fresh `kvc_error` for one call.
pub(crate) fn new_err() -> kvc_sys::kvc_error {
    kvc_sys::kvc_error::default()
}

/// Turns a status and the call's `kvc_error` into a `Result`.
pub(crate) fn check(rc: c_int, err: &kvc_sys::kvc_error) -> Result<()> {
    if rc == kvc_sys::KVC_OK {
        return Ok(());
    }
    // SAFETY: the library NUL-terminates the message; a zeroed one is "".
    let msg = unsafe { CStr::from_ptr(err.message.as_ptr()) }.to_string_lossy().into_owned();
    Err(Error { code: Code::from_raw(rc), message: msg })
}

/// The `Result` of one entry of a batch's status array.
pub(crate) fn block_status(s: i32) -> std::result::Result<(), Code> {
    if s == kvc_sys::KVC_OK {
        Ok(())
    } else {
        Err(Code::from_raw(s))
    }
}
