#include "libs/common/ids.h"

#include <set>

#include "gtest/gtest.h"

namespace crm {
namespace {

TEST(IdsTest, UuidV7IsCanonicalVersion7AndCarriesTime) {
  const absl::Time t = absl::FromUnixMillis(1767225600123);
  const std::string id = NewUuidV7(t);
  EXPECT_TRUE(IsCanonicalUuid(id)) << id;
  EXPECT_EQ(id[14], '7');
  EXPECT_TRUE(id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b') << id;
  EXPECT_EQ(UuidV7Millis(id), 1767225600123);
}

TEST(IdsTest, UuidV7SortsByTimeAndDoesNotRepeat) {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) seen.insert(NewUuidV7(absl::FromUnixMillis(1000)));
  EXPECT_EQ(seen.size(), 10000u);
  EXPECT_LT(NewUuidV7(absl::FromUnixMillis(1000)), NewUuidV7(absl::FromUnixMillis(1001)));
}

TEST(IdsTest, RejectsNonCanonical) {
  EXPECT_FALSE(IsCanonicalUuid("not-a-uuid"));
  EXPECT_FALSE(IsCanonicalUuid("0190F1C4-0000-7000-8000-000000000000"));
  EXPECT_TRUE(IsCanonicalUuid("0190f1c4-0000-7000-8000-000000000000"));
}

}  // namespace
}  // namespace crm
