// shm_holder SOCKET TENANT CREDENTIAL [batch]: a same-host client that pins
// block 0x11.. (a load it never releases), reserves block 0x22.. and writes
// half of it (a store it never commits), prints "ready" and waits to be
// killed (shm_wire_test kills it with SIGKILL). With "batch" it does so
// through the batch ops: one kLoadBatch pins 0x11.. and 0x13.., one
// kStoreBatchBegin reserves 0x22.. and 0x24.., both half written. It gives
// up by itself after 60 s, so a test that dies first leaves nothing running
// for long.
#include <cstdio>
#include <cstring>

#include "shm_raw.h"

int main(int argc, char** argv) {
  const bool batch = argc == 5 && std::strcmp(argv[4], "batch") == 0;
  if (argc != 4 && !batch) {
    std::fprintf(stderr, "usage: shm_holder SOCKET TENANT CREDENTIAL [batch]\n");
    return 2;
  }
  shmtest::RawConn c;
  if (!c.Connect(argv[1])) {
    std::perror("connect");
    return 1;
  }
  if (c.Hello(argv[2], argv[3]) != 0) {
    std::fprintf(stderr, "hello refused\n");
    return 1;
  }
  const uint32_t ns = c.Open();
  if (batch) {
    const auto loads = c.LoadBatch(ns, {0x11, 0x13});
    if (loads.code != 0 || loads.items.size() != 2 || loads.items[0].id == 0 || loads.items[1].id == 0) {
      std::fprintf(stderr, "load batch failed: %d %s\n", loads.code, loads.message.c_str());
      return 1;
    }
    const auto stores = c.StoreBatchBegin(ns, {0x22, 0x24});
    if (stores.code != 0 || stores.items.size() != 2 || stores.items[0].code != 0 || stores.items[1].code != 0) {
      std::fprintf(stderr, "store batch begin failed: %d %s\n", stores.code, stores.message.c_str());
      return 1;
    }
    for (const auto& it : stores.items) std::memset(c.base() + it.off, 0x5a, shmtest::kShardBytes / 2);
    std::printf("ready pins=2 reservations=2\n");
    std::fflush(stdout);
    for (int i = 0; i < 60; ++i) sleep(1);
    return 0;
  }
  int32_t code = 0;
  uint64_t pin = 0, off = 0, size = 0, id = 0, woff = 0;
  if (ns == UINT32_MAX || !c.Load(ns, 0x11, &code, &pin, &off, &size) || pin == 0) {
    std::fprintf(stderr, "load failed: %d\n", code);
    return 1;
  }
  if (!c.StoreBegin(ns, 0x22, shmtest::kShardBytes, &code, &id, &woff)) {
    std::fprintf(stderr, "store begin failed: %d\n", code);
    return 1;
  }
  std::memset(c.base() + woff, 0x5a, shmtest::kShardBytes / 2);
  std::printf("ready pin=%llu reservation=%llu\n", static_cast<unsigned long long>(pin),
              static_cast<unsigned long long>(id));
  std::fflush(stdout);
  for (int i = 0; i < 60; ++i) sleep(1);
  return 0;
}
