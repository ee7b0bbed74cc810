#include "libs/projection/rebuild.h"

#include <unistd.h>

#include <filesystem>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/eventlog/embedded_log.h"
#include "libs/common/temp_dir_testing.h"

namespace crm::projection {
namespace {

absl::Status CountRecords(ProjectionDb& db, const eventlog::Record& r, Batch& b) {
  b.Put(absl::StrCat("r/", r.partition, "/", r.offset), r.value);
  return absl::OkStatus();
}

// Projections that applied records a log no longer has (the log lost its tail): they would
// serve customers whose events are gone.
TEST(RebuildTest, ProjectionsAheadOfTheLogAreRefusedUntilRebuilt) {
  const std::string dir = NewTestDir("ahead");
  std::filesystem::remove_all(dir);
  const ProjectionSpec spec{.version = 1, .sources = {FoldSource("t", true, 1, &CountRecords)}};
  {
    auto log = eventlog::OpenEmbeddedLog({.path = dir + "/log"});
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE((*log)->CreateTopic("t", 1).ok());
    auto w = (*log)->OpenWriter("t");
    for (int i = 0; i < 5; ++i) ASSERT_TRUE((*w)->AppendSync("k", {{"v", {}}}).ok());
    int64_t rebuilt = 0;
    auto db = OpenProjections(**log, spec, dir + "/proj", &rebuilt);
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_EQ(*(*db)->CatchUp(**log, "t", spec.sources[0].apply(db->get())), 5);
  }
  // The same projections beside a log that kept only 3 of those records.
  std::filesystem::remove_all(dir + "/log");
  auto log = eventlog::OpenEmbeddedLog({.path = dir + "/log"});
  ASSERT_TRUE((*log)->CreateTopic("t", 1).ok());
  {
    auto w = (*log)->OpenWriter("t");
    for (int i = 0; i < 3; ++i) ASSERT_TRUE((*w)->AppendSync("k", {{"v", {}}}).ok());
  }
  int64_t rebuilt = 0;
  auto refused = OpenProjections(**log, spec, dir + "/proj", &rebuilt);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kDataLoss) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()),
              ::testing::HasSubstr("t partition 0: applied up to offset 4, the log ends at offset 3"));
  // Refused before a version change could rebuild them silently, too.
  const ProjectionSpec next{.version = 2, .sources = spec.sources};
  EXPECT_EQ(OpenProjections(**log, next, dir + "/proj", &rebuilt).status().code(), absl::StatusCode::kDataLoss);
  // An operator who accepts the loss rebuilds them from the log as it is.
  ASSERT_TRUE(RebuildAndSwap(**log, spec, dir + "/proj").ok());
  auto db = OpenProjections(**log, spec, dir + "/proj", &rebuilt);
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_EQ((*db)->NextOffset("t", 0), 3);
  db->reset();
  log->reset();
  std::filesystem::remove_all(dir);
}

// What the log-compatibility test relies on to name the rows that differ: each prefix's sum
// covers its rows only, and together they are Checksum.
TEST(RebuildTest, PrefixChecksumsAddUpToTheChecksumAndMoveOnlyWithTheirRows) {
  const std::string dir = NewTestDir("prefix-sums");
  std::filesystem::remove_all(dir);
  auto db = ProjectionDb::Open({.path = dir});
  ASSERT_TRUE(db.ok()) << db.status();
  Batch b;
  b.Put("a/1", "one");
  b.Put("a/2", "two");
  b.Put("h/1/1", "event");
  b.Put("settings", "s");
  ASSERT_TRUE((*db)->Commit(b, "t", 0, 4).ok());
  auto whole = Checksum(**db);
  auto sums = PrefixChecksums(**db);
  ASSERT_TRUE(whole.ok() && sums.ok());
  ASSERT_THAT(*sums, ::testing::ElementsAre(::testing::Key("a/"), ::testing::Key("h/"), ::testing::Key("settings")));
  EXPECT_THAT((*sums)["a/"], ::testing::StartsWith("2:"));
  std::string acc(32, '\0');
  int64_t rows = 0;
  for (const auto& [prefix, sum] : *sums) {
    const std::vector<std::string> parts = absl::StrSplit(sum, ':');
    const std::string bytes = absl::HexStringToBytes(parts[1]);
    for (size_t i = 0; i < acc.size(); ++i) acc[i] ^= bytes[i];
    rows += std::stoll(parts[0]);
  }
  EXPECT_EQ(absl::StrCat(rows, ":", absl::BytesToHexString(acc)), *whole);
  Batch c;
  c.Put("a/2", "TWO");
  ASSERT_TRUE((*db)->Commit(c, "t", 0, 5).ok());
  auto after = PrefixChecksums(**db);
  ASSERT_TRUE(after.ok());
  EXPECT_NE((*after)["a/"], (*sums)["a/"]);
  EXPECT_EQ((*after)["h/"], (*sums)["h/"]);
  EXPECT_EQ((*after)["settings"], (*sums)["settings"]);
  db->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace crm::projection
