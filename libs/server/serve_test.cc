#include "libs/server/serve.h"

#include "gtest/gtest.h"

namespace crm::server {
namespace {

TEST(SlotPoolTest, LimitsEachUserAndEveryoneAndGivesSlotsBack) {
  SlotPool pool(3, 2, "exports");
  auto a1 = pool.Take("alice");
  auto a2 = pool.Take("alice");
  ASSERT_TRUE(a1.ok() && a2.ok());
  auto a3 = pool.Take("alice");
  EXPECT_EQ(a3.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(a3.status().message().find("one user"), std::string::npos) << a3.status();
  auto b1 = pool.Take("bob");
  ASSERT_TRUE(b1.ok());
  auto c1 = pool.Take("carol");  // three in all
  EXPECT_EQ(c1.status().code(), absl::StatusCode::kResourceExhausted);
  a1->reset();
  EXPECT_EQ(pool.used(), 2);
  EXPECT_TRUE(pool.Take("carol").ok());  // the slot came back (and went again with the temporary)
  EXPECT_TRUE(pool.Take("alice").ok());
  EXPECT_EQ(pool.used(), 2);
}

}  // namespace
}  // namespace crm::server
