// The etcd client, EtcdMembership and Registration against a real etcd,
// whose client address test_cluster.py passes in $KVC_TEST_ETCD (host:port).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>

#include "cluster/etcd_client.h"
#include "cluster/etcd_layout.h"
#include "cluster/membership.h"
#include "cluster/registration.h"

using namespace kvc;
using namespace kvc::cluster;

namespace {

std::string Endpoint() {
  const char* e = std::getenv("KVC_TEST_ETCD");
  REQUIRE_MESSAGE(e != nullptr, "KVC_TEST_ETCD is unset: run this through tests/cluster/test_cluster.py");
  return e;
}

// A fresh cluster name per test.
std::string Fresh(const char* stem) {
  static std::mt19937_64 rng(std::random_device{}());
  return std::string(stem) + "-" + std::to_string(rng() % 1000000000);
}

std::unique_ptr<EtcdClient> Client() {
  auto c = EtcdClient::Create({Endpoint()});
  REQUIRE(c.ok());
  return std::move(c).value();
}

// Polls `pred` for up to `ms`.
template <class P>
bool Eventually(P pred, int ms = 5000) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

RegistrationOptions NodeOpts(const std::string& cluster, const std::string& id, const std::string& addr) {
  RegistrationOptions o;
  o.cluster = "etcd://" + Endpoint() + "/" + cluster;
  o.node_id = id;
  o.address = addr;
  o.zone = "z1";
  o.capacity_bytes = 1 << 20;
  o.version = "test";
  o.ttl_s = 2;
  return o;
}

}  // namespace

TEST_CASE("etcd client: range, put, txn, delete, leases") {
  auto c = Client();
  const std::string p = "/kvc-test/" + Fresh("kv") + "/";
  auto r0 = c->Range(p, true, 2000);
  REQUIRE(r0.ok());
  CHECK(r0->kvs.empty());
  auto rev = c->Put({p + "a", "1", 0, false}, 2000);
  REQUIRE(rev.ok());
  CHECK(*rev > 0);
  // Register-if-absent: the second one must fail.
  auto t1 = c->Txn({{p + "b", EtcdCompare::Target::kCreateRevision, 0}}, {{p + "b", "x", 0, false}}, 2000);
  REQUIRE(t1.ok());
  CHECK(t1->succeeded);
  auto t2 = c->Txn({{p + "b", EtcdCompare::Target::kCreateRevision, 0}}, {{p + "b", "y", 0, false}}, 2000);
  REQUIRE(t2.ok());
  CHECK_FALSE(t2->succeeded);
  auto r1 = c->Range(p, true, 2000);
  REQUIRE(r1.ok());
  REQUIRE(r1->kvs.size() == 2);
  CHECK(r1->kvs[1].value == "x");
  CHECK(r1->kvs[1].create_revision == t1->revision);
  // DeleteIf only at the revision given.
  auto d0 = c->DeleteIf(p + "b", r1->kvs[1].mod_revision - 1, 2000);
  REQUIRE(d0.ok());
  CHECK_FALSE(*d0);
  auto d1 = c->DeleteIf(p + "b", r1->kvs[1].mod_revision, 2000);
  REQUIRE(d1.ok());
  CHECK(*d1);
  // A key under a lease goes with the lease.
  int64_t ttl = 0;
  auto lease = c->LeaseGrant(5, &ttl, 2000);
  REQUIRE(lease.ok());
  CHECK(ttl >= 5);
  REQUIRE(c->Put({p + "leased", "v", *lease, false}, 2000).ok());
  auto ka = c->LeaseKeepAlive(*lease, 2000);
  REQUIRE(ka.ok());
  CHECK(*ka >= 4);
  REQUIRE(c->LeaseRevoke(*lease, 2000).ok());
  auto gone = c->Range(p + "leased", false, 2000);
  REQUIRE(gone.ok());
  CHECK(gone->kvs.empty());
  auto dead = c->LeaseKeepAlive(*lease, 2000);
  CHECK(dead.status().code() == Code::kNotFound);
  auto n = c->Delete(p, true, 2000);
  REQUIRE(n.ok());
  CHECK(*n == 1);
}

TEST_CASE("etcd client: a watch sees puts and deletes; a compacted start revision is reported") {
  auto c = Client();
  const std::string p = "/kvc-test/" + Fresh("watch") + "/";
  auto start = c->Put({p + "k1", "v1", 0, false}, 2000);
  REQUIRE(start.ok());
  auto w = c->Watch(p, *start, 2000);
  REQUIRE(w.ok());
  std::vector<EtcdEvent> ev;
  int64_t rev = 0;
  REQUIRE((*w)->Next(&ev, &rev).ok());
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].kv.key == p + "k1");
  REQUIRE(c->Delete(p + "k1", false, 2000).ok());
  REQUIRE((*w)->Next(&ev, &rev).ok());
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].type == EtcdEvent::Type::kDelete);
  CHECK(ev[0].kv.mod_revision == rev);
  // Cancel ends a blocked Next from another thread.
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    (*w)->Cancel();
  });
  CHECK((*w)->Next(&ev, &rev).code() == Code::kClosed);
  t.join();
  // Compact past `start`: a watch from it must say so.
  auto now = c->Put({p + "k2", "v2", 0, false}, 2000);
  REQUIRE(now.ok());
  REQUIRE(c->Compact(*now, 5000).ok());
  // etcd may say so at creation or in the stream's first answer.
  auto w2 = c->Watch(p, *start, 2000);
  Status st = w2.ok() ? (*w2)->Next(&ev, &rev) : w2.status();
  CHECK(st.code() == Code::kNotFound);
  CHECK(st.message().rfind("compacted:", 0) == 0);
}

TEST_CASE("etcd client: bad endpoints and an unreachable etcd") {
  CHECK(EtcdClient::Create({}).status().code() == Code::kInvalidArgument);
  CHECK(EtcdClient::Create({"nohost"}).status().code() == Code::kInvalidArgument);
  // Port 1 on loopback: nothing listens; two endpoints, so no waiting for one.
  auto c = EtcdClient::Create({"127.0.0.1:1", "127.0.0.1:2"});
  REQUIRE(c.ok());
  const auto t0 = std::chrono::steady_clock::now();
  auto r = (*c)->Range("/x", false, 500);
  CHECK(r.status().code() != Code::kOk);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3));
  // Failover: a dead endpoint first, the live one second.
  auto f = EtcdClient::Create({"127.0.0.1:1", Endpoint()});
  REQUIRE(f.ok());
  CHECK((*f)->Range("/x", false, 3000).ok());
}

TEST_CASE("cluster addresses and node records parse strictly") {
  CHECK(ParseEtcdAddress("etcd://127.0.0.1:2379/c1").ok());
  auto two = ParseEtcdAddress("etcd://a:1,b:2/c");
  REQUIRE(two.ok());
  CHECK(two->endpoints.size() == 2);
  for (const char* bad : {"127.0.0.1:2379/c", "etcd://127.0.0.1:2379", "etcd://127.0.0.1:2379/", "etcd://h/c",
                          "etcd://h:99999/c", "etcd://h:1/bad/name", "etcd://:1/c", "etcd://h:1,/c"})
    CHECK_MESSAGE(ParseEtcdAddress(bad).status().code() == Code::kInvalidArgument, bad);
  CHECK(DecodeNode("n", "{\"address\":\"h:1\",\"state\":\"draining\"}")->state == NodeState::kDraining);
  CHECK(DecodeNode("n", "not json").status().code() == Code::kParse);
  CHECK(DecodeNode("n", "{\"zone\":\"z\"}").status().code() == Code::kParse);
  CHECK(DecodeNode("n", "{\"address\":\"h:1\",\"state\":\"gone\"}").status().code() == Code::kParse);
  CHECK(DecodeConfig("{\"replication\":3,\"write_quorum\":2}")->replication == 3);
  CHECK(DecodeConfig("{\"replication\":2,\"write_quorum\":3}").status().code() == Code::kParse);
  CHECK(DecodeConfig("{\"replication\":0}").status().code() == Code::kParse);
}

TEST_CASE("static peers") {
  auto s = StaticMembership("peers:127.0.0.1:7001,127.0.0.1:7000?replication=2&write_quorum=2");
  REQUIRE(s.ok());
  auto v = (*s)->Current();
  CHECK(v->epoch == 1);
  REQUIRE(v->nodes.size() == 2);
  CHECK(v->nodes[0].address == "127.0.0.1:7000");  // sorted by id
  CHECK(v->config.replication == 2);
  CHECK(v->config.write_quorum == 2);
  CHECK((*s)->Refresh(10)->epoch == 1);
  for (const char* bad : {"127.0.0.1:7000", "peers:", "peers:h", "peers:h:0", "peers:h:1,h:1", "peers:h:1,,h:2",
                          "peers:h:1?replication=2", "peers:h:1,h:2?write_quorum=3", "peers:h:1?foo=1",
                          "peers:h:1?replication=x"})
    CHECK_MESSAGE(StaticMembership(bad).status().code() == Code::kInvalidArgument, bad);
}

TEST_CASE("etcd membership: list, watch registrations, drains, config and departures; epochs grow") {
  const std::string cluster = Fresh("members");
  const std::string addr = "etcd://" + Endpoint() + "/" + cluster;
  // Declared before the source: its thread may call back until it is gone.
  std::mutex mu;
  std::vector<std::shared_ptr<const MembershipView>> seen;
  auto src = EtcdMembership(addr, 3000);
  REQUIRE(src.ok());
  CHECK((*src)->Current()->nodes.empty());
  (*src)->Subscribe([&](std::shared_ptr<const MembershipView> v) {
    std::lock_guard<std::mutex> lk(mu);
    seen.push_back(v);
  });
  auto size_is = [&](size_t n) { return (*src)->Current()->nodes.size() == n; };

  auto r1 = Registration::Start(NodeOpts(cluster, "n1", "127.0.0.1:9001"));
  REQUIRE(r1.ok());
  REQUIRE(Eventually([&] { return size_is(1); }));
  auto v1 = (*src)->Current();
  CHECK(v1->nodes[0].id == "n1");
  CHECK(v1->nodes[0].address == "127.0.0.1:9001");
  CHECK(v1->nodes[0].zone == "z1");
  CHECK(v1->nodes[0].capacity_bytes == (1u << 20));
  CHECK(v1->nodes[0].registered_epoch == (*r1)->registered_epoch());
  CHECK(v1->epoch == (*r1)->registered_epoch());

  auto r2 = Registration::Start(NodeOpts(cluster, "n2", "127.0.0.1:9002"));
  REQUIRE(r2.ok());
  REQUIRE(Eventually([&] { return size_is(2); }));
  CHECK((*src)->Current()->epoch == (*r2)->registered_epoch());
  CHECK((*r2)->registered_epoch() > (*r1)->registered_epoch());

  // The same id from another address is refused (stays fenced) while n1 lives.
  auto dup = Registration::Start(NodeOpts(cluster, "n1", "127.0.0.1:9009"));
  REQUIRE(dup.ok());
  CHECK((*dup)->Admit(0).code() == Code::kFenced);
  CHECK((*dup)->registered_epoch() == 0);
  (*dup)->Stop(1000);

  // The config, written by `kvc cluster init`, reaches the view.
  auto etcd = Client();
  REQUIRE(etcd->Put({ConfigKey(cluster), EncodeConfig({3, 2}), 0, false}, 2000).ok());
  REQUIRE(Eventually([&] { return (*src)->Current()->config.replication == 3; }));
  CHECK((*src)->Current()->config.write_quorum == 2);

  // A departure (lease revoked) is a change too: the epoch moves past it.
  const uint64_t before = (*src)->Current()->epoch;
  (*r1)->Stop(2000);
  REQUIRE(Eventually([&] { return size_is(1); }));
  CHECK((*src)->Current()->epoch > before);
  CHECK((*src)->Current()->nodes[0].id == "n2");
  {
    std::lock_guard<std::mutex> lk(mu);
    REQUIRE(seen.size() >= 4);
    for (size_t i = 1; i < seen.size(); ++i) CHECK(seen[i]->epoch >= seen[i - 1]->epoch);
  }
  // A fresh source lists the same thing; Refresh re-lists.
  auto again = EtcdMembership(addr, 3000);
  REQUIRE(again.ok());
  CHECK((*again)->Current()->nodes.size() == 1);
  CHECK((*src)->Refresh(3000)->nodes.size() == 1);
  CHECK(EtcdMembership("etcd://127.0.0.1:1/x", 300).status().code() == Code::kUnavailable);
}

TEST_CASE("registration: the fence admits by lease and epoch; a lost lease re-registers at a new epoch") {
  const std::string cluster = Fresh("fence");
  auto r = Registration::Start(NodeOpts(cluster, "n1", "127.0.0.1:9101"));
  REQUIRE(r.ok());
  const uint64_t e1 = (*r)->registered_epoch();
  REQUIRE(e1 > 0);
  CHECK((*r)->Admit(0).ok());
  CHECK((*r)->Admit(e1).ok());
  CHECK((*r)->Admit(e1 + 100).ok());
  Status stale = (*r)->Admit(e1 - 1);
  CHECK(stale.code() == Code::kFenced);
  CHECK(stale.message().find("epoch") != std::string::npos);

  // Revoke the node's lease behind its back: it must notice, fence, and
  // come back at a higher epoch.
  auto etcd = Client();
  auto rec = etcd->Range(NodeKey(cluster, "n1"), false, 2000);
  REQUIRE(rec.ok());
  REQUIRE(rec->kvs.size() == 1);
  REQUIRE(etcd->LeaseRevoke(rec->kvs[0].lease, 2000).ok());
  REQUIRE(Eventually([&] { return (*r)->registered_epoch() > e1; }, 5000));
  const uint64_t e2 = (*r)->registered_epoch();
  CHECK((*r)->Admit(e1).code() == Code::kFenced);
  CHECK((*r)->Admit(e2).ok());
  CHECK((*r)->Admit(0).ok());

  // A drain mark is kept across re-registration.
  REQUIRE(etcd->Put({DrainingKey(cluster, "n1"), "{}", 0, false}, 2000).ok());
  rec = etcd->Range(NodeKey(cluster, "n1"), false, 2000);
  REQUIRE(rec.ok());
  REQUIRE(etcd->LeaseRevoke(rec->kvs[0].lease, 2000).ok());
  REQUIRE(Eventually([&] { return (*r)->registered_epoch() > e2; }, 5000));
  rec = etcd->Range(NodeKey(cluster, "n1"), false, 2000);
  REQUIRE(rec.ok());
  REQUIRE(rec->kvs.size() == 1);
  CHECK(DecodeNode("n1", rec->kvs[0].value)->state == NodeState::kDraining);

  // Stop revokes: the record is gone and the fence closed.
  (*r)->Stop(2000);
  CHECK((*r)->Admit(0).code() == Code::kFenced);
  rec = etcd->Range(NodeKey(cluster, "n1"), false, 2000);
  REQUIRE(rec.ok());
  CHECK(rec->kvs.empty());

  CHECK(Registration::Start(NodeOpts(cluster, "bad id", "h:1")).status().code() == Code::kInvalidArgument);
  auto o = NodeOpts(cluster, "n1", "h:1");
  o.ttl_s = 1;
  CHECK(Registration::Start(o).status().code() == Code::kInvalidArgument);
}

TEST_CASE("registration waits until the node applied every delete hint written for it") {
  // A delete that found the node absent from the view leaves it a hint; if
  // the hint lands after the node read its hints, the node must not
  // register (and be served reads) before it applied it.
  const std::string cluster = Fresh("hints");
  auto etcd = Client();
  auto before = etcd->Range(HintsPrefix(cluster, "n1"), true, 2000);
  REQUIRE(before.ok());
  std::atomic<int64_t> applied{before->revision};  // what the node has read
  REQUIRE(etcd->Put({HintsPrefix(cluster, "n1") + "h1", "{}", 0, false}, 2000).ok());  // lands after
  REQUIRE(etcd->Put({HintsPrefix(cluster, "n2") + "h1", "{}", 0, false}, 2000).ok());  // another node's
  auto o = NodeOpts(cluster, "n1", "127.0.0.1:9102");
  o.hints_applied_revision = [&] { return applied.load(); };
  auto r = Registration::Start(o);
  REQUIRE(r.ok());  // started, fenced, retrying
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  CHECK((*r)->registered_epoch() == 0);
  CHECK((*r)->Admit(0).code() == Code::kFenced);
  auto rec = etcd->Range(NodeKey(cluster, "n1"), false, 2000);
  REQUIRE(rec.ok());
  CHECK(rec->kvs.empty());
  // The node applies it (its ConfigSync's revision passes the hint's).
  auto now = etcd->Range(HintsPrefix(cluster, "n1"), true, 2000);
  REQUIRE(now.ok());
  applied = now->revision;
  REQUIRE(Eventually([&] { return (*r)->registered_epoch() > 0; }, 5000));
  CHECK((*r)->Admit(0).ok());
  // A node with no hints pending registers at once; another node's hints do not hold it.
  auto o2 = NodeOpts(cluster, "n3", "127.0.0.1:9103");
  o2.hints_applied_revision = [&] { return before->revision; };
  auto r2 = Registration::Start(o2);
  REQUIRE(r2.ok());
  CHECK((*r2)->registered_epoch() > 0);
  (*r)->Stop(2000);
  (*r2)->Stop(2000);
}
