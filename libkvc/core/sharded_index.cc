#include "core/sharded_index.h"

namespace kvc {

ShardedIndex::ShardedIndex(uint32_t stripes) : mask_(stripes - 1) {
  stripes_.reserve(stripes);
  for (uint32_t i = 0; i < stripes; ++i) stripes_.push_back(std::make_unique<Stripe>());
}

}  // namespace kvc
