package kvc

// The C baselines of the load benchmark (bench_test.go: the same loads as
// Namespace.Load, on the same namespace and into the same memory, driven by
// a loop written in C against kvc.h) and of the node throughput test
// (node_bench_test.go: one kvc_node_get_batch built in C). Test code reaches
// them through export_test.go; they are not part of the API.

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
//
// /* The node throughput test's peer: keys[0..n) into base + i * stride, in
//  * one kvc_node_get_batch, its item array built in C. */
// static int kvcgo_node_get_batch_c(kvc_node *node, const kvc_namespace_options *ns,
//                                   const kvc_key *keys, size_t n, unsigned char *base,
//                                   size_t stride, kvc_error *err) {
//   size_t i;
//   int rc;
//   kvc_node_item *items = (kvc_node_item *)calloc(n ? n : 1, sizeof *items);
//   if (items == NULL) return KVC_ERR_NO_MEMORY;
//   for (i = 0; i < n; ++i) {
//     kvc_buf b = KVC_HOST_BUF(base + i * stride, stride);
//     items[i].key = keys[i];
//     items[i].buf = b;
//   }
//   rc = kvc_node_get_batch(node, ns, 0, items, n, err);
//   for (i = 0; rc == KVC_OK && i < n; ++i) {
//     if (items[i].status != KVC_OK) rc = items[i].status;
//   }
//   free(items);
//   return rc;
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

// cNodeGetBatch gets keys[i] into dst[i*stride:(i+1)*stride] with one
// kvc_node_get_batch whose items a C loop builds.
func (n *Node) cNodeGetBatch(ns *NamespaceOptions, keys []Key, dst []byte, stride int) error {
	if stride <= 0 || len(dst) != len(keys)*stride {
		return errorf(CodeInvalidArgument, "cNodeGetBatch: %d keys, %d bytes", len(keys), len(dst))
	}
	return n.nsCall(ns, func(h *C.kvc_node, co *C.kvc_namespace_options) error {
		var e C.kvc_error
		rc := C.kvcgo_node_get_batch_c(h, co, keysPtr(keys), C.size_t(len(keys)),
			(*C.uchar)(bytesPtr(dst)), C.size_t(stride), &e)
		return check(rc, &e)
	})
}
