"""The kill -9 test of fault_test.py with etcd membership: three nodes
registered in a real etcd (lease TTL 2 s, R=2, W=1), one killed with SIGKILL
and restarted 20 times under the load. Each kill and restart changes the
view: the lease of a killed node expires, its restart registers again at a
new epoch (stores sent under an older view are fenced, and the client
refreshes and places them again). Same checks as fault_test.py. Skips
loudly without etcd. The etcd cluster comes from test_cluster_etcd_faults.py
(helper "membership")."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from fault_harness import require_tools  # noqa: E402
from fault_test import kill_restart_under_load  # noqa: E402
import test_cluster_etcd_faults as etcd_faults  # noqa: E402


def test_kill9_one_node_of_three_under_load_with_etcd(tmp_path):
    require_tools()
    if not etcd_faults.ETCD:
        pytest.skip("SKIPPED LOUDLY: no etcd binary (Debian: etcd-server; or set KVC_ETCD_BIN)")
    cluster = etcd_faults.EtcdCluster(tmp_path)
    # Node ids n0..n2, all of one capacity: the checker's equal weights hold.
    kill_restart_under_load(cluster, tmp_path, cluster.address, cluster.ids)
