//! Tenants (a registry file a cache reads at open) and SSD directories.
use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::ptr;

use crate::cache::opt_cstr;
use crate::codes::Code;
use crate::error::{check, new_err, Error, Result};

/// A tenant's configuration (`kvc_tenant_options`). Zero fields mean the
/// library's defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantOptions {
    /// 1-64 of `[A-Za-z0-9_.-]`.
    pub name: String,
    /// "isolated" (the default: keys salted with a secret of the tenant) or
    /// "shared" (one pool with every other shared tenant).
    pub isolation: String,
    /// Hard limit in the host tier; 0: none.
    pub host_quota_bytes: u64,
    /// Hard limit in the SSD tier; 0: none.
    pub ssd_quota_bytes: u64,
    /// May exceed the quota while the tier has free room.
    pub borrow: bool,
}

/// Quota changes for [`set_tenant_quota`]; `None` leaves a field as is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuotaChange {
    pub host_quota_bytes: Option<u64>,
    pub ssd_quota_bytes: Option<u64>,
    pub borrow: Option<bool>,
}

impl QuotaChange {
    /// kvc_tenant_set_quota's arguments: -1 leaves a field as is.
    pub(crate) fn to_c(&self) -> Result<(i64, i64, i32)> {
        let quota = |what: &str, q: Option<u64>| -> Result<i64> {
            match q {
                None => Ok(-1),
                Some(v) => {
                    i64::try_from(v).map_err(|_| Error::new(Code::InvalidArgument, format!("{what} {v} is too large")))
                }
            }
        };
        Ok((
            quota("host_quota_bytes", self.host_quota_bytes)?,
            quota("ssd_quota_bytes", self.ssd_quota_bytes)?,
            self.borrow.map_or(-1, |b| b as i32),
        ))
    }
}

pub(crate) fn cstr(name: &str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::new(Code::InvalidArgument, format!("{name} contains a NUL byte")))
}

/// Takes a string the library returned in `out`.
pub(crate) fn take_string(out: *mut c_char) -> String {
    // SAFETY: a NUL-terminated string the library allocated for the caller.
    let s = unsafe { CStr::from_ptr(out) }.to_string_lossy().into_owned();
    // SAFETY: freed once, by the library's own function.
    unsafe { kvc_sys::kvc_string_free(out) };
    s
}

/// Adds a tenant to the tenants file `path` (or `path`/tenants.json for a
/// directory) and returns its new credential, shown this once.
/// [`Code::Exists`] if the name is taken.
pub fn create_tenant(path: &str, opts: &TenantOptions) -> Result<String> {
    let cpath = cstr("path", path)?;
    let co = opts.to_c()?;
    let mut out = ptr::null_mut();
    let mut err = new_err();
    // SAFETY: valid strings and out-pointers for the call.
    check(unsafe { kvc_sys::kvc_tenant_create(&mut out, cpath.as_ptr(), &co.opts, &mut err) }, &err)?;
    Ok(take_string(out))
}

/// C tenant options and the strings they point into.
pub(crate) struct CTenantOptions {
    pub(crate) opts: kvc_sys::kvc_tenant_options,
    _name: CString,
    _isolation: Option<CString>,
}

impl TenantOptions {
    pub(crate) fn to_c(&self) -> Result<CTenantOptions> {
        let name = cstr("name", &self.name)?;
        let isolation = opt_cstr("isolation", &self.isolation)?;
        let o = kvc_sys::kvc_tenant_options {
            name: name.as_ptr(),
            isolation: isolation.as_ref().map_or(ptr::null(), |s| s.as_ptr()),
            host_quota_bytes: self.host_quota_bytes,
            ssd_quota_bytes: self.ssd_quota_bytes,
            borrow: self.borrow as u32,
            ..Default::default()
        };
        // The CStrings' buffers do not move with the struct.
        Ok(CTenantOptions { opts: o, _name: name, _isolation: isolation })
    }
}

/// The tenants of `path` as a JSON array (no secrets).
pub fn tenants_json(path: &str) -> Result<String> {
    let cpath = cstr("path", path)?;
    let mut out = ptr::null_mut();
    let mut err = new_err();
    // SAFETY: valid string and out-pointers.
    check(unsafe { kvc_sys::kvc_tenant_list_json(&mut out, cpath.as_ptr(), &mut err) }, &err)?;
    Ok(take_string(out))
}

/// Changes tenant `name`'s quotas. [`Code::NotFound`] for an unknown name.
pub fn set_tenant_quota(path: &str, name: &str, change: &QuotaChange) -> Result<()> {
    let (host, ssd, borrow) = change.to_c()?;
    let (cpath, cname) = (cstr("path", path)?, cstr("name", name)?);
    let mut err = new_err();
    // SAFETY: valid strings and error struct.
    check(
        unsafe { kvc_sys::kvc_tenant_set_quota(cpath.as_ptr(), cname.as_ptr(), host, ssd, borrow, &mut err) },
        &err,
    )
}

/// Removes tenant `name`. [`Code::NotFound`] for an unknown name.
pub fn delete_tenant(path: &str, name: &str) -> Result<()> {
    let (cpath, cname) = (cstr("path", path)?, cstr("name", name)?);
    let mut err = new_err();
    // SAFETY: valid strings and error struct.
    check(unsafe { kvc_sys::kvc_tenant_delete(cpath.as_ptr(), cname.as_ptr(), &mut err) }, &err)
}

/// What an SSD cache directory holds (format, segments, blocks and bytes per
/// namespace and tenant, recovery counters) as JSON. The directory must not
/// be open in another process.
pub fn ssd_inspect_json(dir: &str) -> Result<String> {
    let cdir = cstr("dir", dir)?;
    let mut out = ptr::null_mut();
    let mut err = new_err();
    // SAFETY: valid string and out-pointers.
    check(unsafe { kvc_sys::kvc_ssd_inspect_json(&mut out, cdir.as_ptr(), &mut err) }, &err)?;
    Ok(take_string(out))
}
