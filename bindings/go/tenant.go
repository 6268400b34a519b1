package kvc

// #include "bridge.h"
import "C"

import "unsafe"

// TenantOptions configure a tenant (kvc_tenant_options). Zero fields mean
// the library's defaults.
type TenantOptions struct {
	Name string // 1-64 of [A-Za-z0-9_.-]
	// Isolation is "isolated" (the default: keys salted with a secret of
	// the tenant) or "shared" (one pool with every other shared tenant).
	Isolation      string
	HostQuotaBytes uint64 // hard limit in the host tier; 0: none
	SSDQuotaBytes  uint64 // hard limit in the SSD tier; 0: none
	Borrow         bool   // may exceed the quota while the tier has free room
}

// CreateTenant adds a tenant to the tenants file at path (or path/
// tenants.json for a directory) and returns its new credential, shown this
// once. A taken name is an error matching ErrExists.
func CreateTenant(path string, opts *TenantOptions) (credential string, err error) {
	o, free, err := opts.toC()
	if err != nil {
		return "", err
	}
	defer free()
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var out *C.char
	var e C.kvc_error
	if err := check(C.kvc_tenant_create(&out, cpath, o, &e), &e); err != nil {
		return "", err
	}
	defer C.kvc_string_free(out)
	return C.GoString(out), nil
}

// toC builds the options in C memory; free releases them.
func (opts *TenantOptions) toC() (*C.kvc_tenant_options, func(), error) {
	if opts == nil {
		return nil, func() {}, errorf(CodeInvalidArgument, "tenant options are nil")
	}
	o := (*C.kvc_tenant_options)(C.calloc(1, C.sizeof_kvc_tenant_options))
	if o == nil {
		return nil, func() {}, errorf(CodeNoMemory, "out of memory for tenant options")
	}
	C.kvcgo_tenant_options_init(o)
	o.name = C.CString(opts.Name)
	if opts.Isolation != "" {
		o.isolation = C.CString(opts.Isolation)
	}
	o.host_quota_bytes = C.uint64_t(opts.HostQuotaBytes)
	o.ssd_quota_bytes = C.uint64_t(opts.SSDQuotaBytes)
	if opts.Borrow {
		o.borrow = 1
	}
	free := func() {
		C.free(unsafe.Pointer(o.name))
		C.free(unsafe.Pointer(o.isolation)) // free(NULL) is a no-op
		C.free(unsafe.Pointer(o))
	}
	return o, free, nil
}

// TenantsJSON lists the tenants of path as a JSON array (no secrets).
func TenantsJSON(path string) (string, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var out *C.char
	var e C.kvc_error
	if err := check(C.kvc_tenant_list_json(&out, cpath, &e), &e); err != nil {
		return "", err
	}
	defer C.kvc_string_free(out)
	return C.GoString(out), nil
}

// QuotaChange changes a tenant's quotas; a nil field is left as is.
type QuotaChange struct {
	HostQuotaBytes *uint64
	SSDQuotaBytes  *uint64
	Borrow         *bool
}

// SetTenantQuota changes the quotas of tenant name. An unknown name is an
// error matching ErrNotFound.
func SetTenantQuota(path, name string, q QuotaChange) error {
	host, ssd, borrow, err := q.args()
	if err != nil {
		return err
	}
	cpath, cname := C.CString(path), C.CString(name)
	defer C.free(unsafe.Pointer(cpath))
	defer C.free(unsafe.Pointer(cname))
	var e C.kvc_error
	return check(C.kvc_tenant_set_quota(cpath, cname, host, ssd, borrow, &e), &e)
}

// args are the change as kvc_tenant_set_quota takes it: -1 keeps a field.
func (q QuotaChange) args() (host, ssd C.int64_t, borrow C.int32_t, err error) {
	host, ssd, borrow = -1, -1, -1
	for _, f := range []struct {
		v   *uint64
		out *C.int64_t
		nm  string
	}{{q.HostQuotaBytes, &host, "HostQuotaBytes"}, {q.SSDQuotaBytes, &ssd, "SSDQuotaBytes"}} {
		if f.v != nil {
			if *f.v > 1<<63-1 {
				return 0, 0, 0, errorf(CodeInvalidArgument, "%s %d is too large", f.nm, *f.v)
			}
			*f.out = C.int64_t(*f.v)
		}
	}
	if q.Borrow != nil {
		borrow = 0
		if *q.Borrow {
			borrow = 1
		}
	}
	return host, ssd, borrow, nil
}

// DeleteTenant removes tenant name; an unknown name matches ErrNotFound.
func DeleteTenant(path, name string) error {
	cpath, cname := C.CString(path), C.CString(name)
	defer C.free(unsafe.Pointer(cpath))
	defer C.free(unsafe.Pointer(cname))
	var e C.kvc_error
	return check(C.kvc_tenant_delete(cpath, cname, &e), &e)
}
