#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "util/log_limit.h"

TEST_CASE("a log limit says the first time, then once per interval", "[util]") {
  mq::LogLimit limit(60'000);
  CHECK(limit.due(1'000'000));
  CHECK_FALSE(limit.due(1'000'001));
  CHECK_FALSE(limit.due(1'059'999));
  CHECK(limit.due(1'060'000));
  CHECK_FALSE(limit.due(1'060'000));
}

TEST_CASE("of callers racing for a due log limit one wins", "[util]") {
  mq::LogLimit limit(60'000);
  std::atomic<int> won{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 8; ++i)
    ts.emplace_back([&] {
      for (int k = 0; k < 1000; ++k)
        if (limit.due(5'000)) ++won;
    });
  for (auto& t : ts) t.join();
  CHECK(won == 1);
}
