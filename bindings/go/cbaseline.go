package kvc

// The C baseline of the load benchmark (bench_test.go): the same loads as
// Namespace.Load, on the same namespace and into the same memory, driven by
// a loop written in C against kvc.h. Test code reaches it through
// export_test.go; it is not part of the API.

// #include "bridge.h"
//
// /* `iters` loads of keys[i % n] into base + (i % n) * stride. */
// static int kvcgo_load_loop(kvc_namespace *ns, const kvc_key *keys, size_t n, uint32_t shard,
//                            unsigned char *base, size_t stride, size_t iters, kvc_error *err) {
//   size_t i;
//   for (i = 0; i < iters; ++i) {
//     size_t k = i % n;
//     kvc_buf dst = KVC_HOST_BUF(base + k * stride, stride);
//     int rc = kvc_load(ns, &keys[k], shard, &dst, err);
//     if (rc != KVC_OK) return rc;
//   }
//   return KVC_OK;
// }
import "C"

// cLoadLoop loads keys[i%len(keys)] into dst[k*ShardBytes:(k+1)*ShardBytes]
// for i < iters, in one C loop.
func (n *Namespace) cLoadLoop(keys []Key, shard uint32, dst []byte, iters int) error {
	if len(keys) == 0 || len(dst) != len(keys)*n.shardBytes {
		return errorf(CodeInvalidArgument, "cLoadLoop: %d keys, %d bytes", len(keys), len(dst))
	}
	h, err := n.enter()
	if err != nil {
		return err
	}
	defer n.leave()
	var e C.kvc_error
	rc := C.kvcgo_load_loop(h, keysPtr(keys), C.size_t(len(keys)), C.uint32_t(shard),
		(*C.uchar)(bytesPtr(dst)), C.size_t(n.shardBytes), C.size_t(iters), &e)
	return check(rc, &e)
}
