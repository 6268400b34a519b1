package kvc

// CLoadLoop exposes the benchmark's C baseline to the external test package.
func CLoadLoop(n *Namespace, keys []Key, shard uint32, dst []byte, iters int) error {
	return n.cLoadLoop(keys, shard, dst, iters)
}
