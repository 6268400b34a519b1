package kvc

// CLoadLoop exposes the benchmark's C baseline to the external test package.
func CLoadLoop(n *Namespace, keys []Key, shard uint32, dst []byte, iters int) error {
	return n.cLoadLoop(keys, shard, dst, iters)
}

// CNodeGetBatch exposes the node throughput test's C peer.
func CNodeGetBatch(n *Node, ns *NamespaceOptions, keys []Key, dst []byte, stride int) error {
	return n.cNodeGetBatch(ns, keys, dst, stride)
}
