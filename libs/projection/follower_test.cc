#include "libs/projection/follower.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/eventlog/embedded_log.h"
#include "libs/common/temp_dir_testing.h"

namespace crm::projection {
namespace {

class FollowerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = NewTestDir("follow");
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    log_ = *eventlog::OpenEmbeddedLog({.path = dir_ + "/log"});
    db_ = *ProjectionDb::Open({.path = dir_ + "/proj"});
  }
  void TearDown() override {
    db_.reset();
    log_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Counts records per key; a record whose value is "poison" is refused.
  ProjectionDb::ApplyFn Count() {
    return [this](const eventlog::Record& r, Batch& b) -> absl::Status {
      if (r.value == "poison") return absl::DataLossError("cannot apply this record");
      std::string v;
      db_->Get(b, "count/" + r.key, &v).IgnoreError();  // NOT_FOUND leaves v empty
      b.Put("count/" + r.key, std::to_string(v.empty() ? 1 : std::stoi(v) + 1));
      return absl::OkStatus();
    };
  }
  int Counted(const std::string& key) {
    std::string v;
    if (!db_->db()->Get(rocksdb::ReadOptions(), "count/" + key, &v).ok()) return 0;
    return std::stoi(v);
  }
  // A token naming where `appended` landed.
  static ConsistencyToken TokenOf(const eventlog::Appended& appended) {
    ConsistencyToken t;
    auto* p = t.add_positions();
    p->set_topic("other");
    p->set_partition(appended.partition);
    p->set_offset(appended.offsets.back());
    return t;
  }
  Follower::Options Fast() {
    Follower::Options o;
    o.topic = "other";
    o.poll_timeout = absl::Milliseconds(20);
    o.retry_after = absl::Milliseconds(20);
    return o;
  }

  std::string dir_;
  std::unique_ptr<eventlog::Log> log_;
  std::unique_ptr<ProjectionDb> db_;
};

TEST_F(FollowerTest, CatchesUpAtStartThenFollowsAndReadersCanWaitForAToken) {
  // Given records written before the follower starts
  ASSERT_TRUE(log_->CreateTopic("other", 3).ok());
  auto w = *log_->OpenWriter("other");
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(w->AppendSync(absl::StrCat("k", i % 4), {{"v", {}}}).ok());
  // When it starts, it has applied them before Start returns
  auto f = Follower::Start(log_.get(), db_.get(), Fast(), Count());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(Counted("k0"), 5);
  EXPECT_EQ((*f)->applied(), 20);
  // And a later record is applied in the background; a reader waits for it by token
  auto a = w->AppendSync("k0", {{"v", {}}});
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(db_->WaitFor(TokenOf(*a), absl::Now() + absl::Seconds(10)).ok());
  EXPECT_EQ(Counted("k0"), 6);
  EXPECT_TRUE((*f)->status().ok());
}

TEST_F(FollowerTest, ARestartAppliesNothingTwice) {
  ASSERT_TRUE(log_->CreateTopic("other", 2).ok());
  auto w = *log_->OpenWriter("other");
  eventlog::Appended last;
  {
    auto f = *Follower::Start(log_.get(), db_.get(), Fast(), Count());
    for (int i = 0; i < 50; ++i) last = *w->AppendSync(absl::StrCat("k", i % 2), {{"v", {}}});
    ASSERT_TRUE(db_->WaitFor(TokenOf(last), absl::Now() + absl::Seconds(10)).ok());
  }  // stopped
  for (int i = 0; i < 10; ++i) last = *w->AppendSync("k0", {{"v", {}}});
  auto f = *Follower::Start(log_.get(), db_.get(), Fast(), Count());
  EXPECT_EQ(Counted("k0"), 35);
  EXPECT_EQ(Counted("k1"), 25);
  EXPECT_EQ(f->applied(), 10);
}

TEST_F(FollowerTest, WaitsForATopicThatDoesNotExistYet) {
  auto f = Follower::Start(log_.get(), db_.get(), Fast(), Count());
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_TRUE(log_->CreateTopic("other", 1).ok());
  auto w = *log_->OpenWriter("other");
  auto a = *w->AppendSync("late", {{"v", {}}});
  ASSERT_TRUE(db_->WaitFor(TokenOf(a), absl::Now() + absl::Seconds(10)).ok());
  EXPECT_EQ(Counted("late"), 1);
}

TEST_F(FollowerTest, APoisonRecordHaltsTheProjectionVisiblyAndIsNotSkipped) {
  ASSERT_TRUE(log_->CreateTopic("other", 1).ok());
  auto w = *log_->OpenWriter("other");
  auto f = *Follower::Start(log_.get(), db_.get(), Fast(), Count());
  ASSERT_TRUE(w->AppendSync("a", {{"v", {}}}).ok());
  ASSERT_TRUE(w->AppendSync("a", {{"poison", {}}}).ok());
  auto after = *w->AppendSync("a", {{"v", {}}});
  // The record after the poison one is never applied, and the follower says why
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (f->status().ok() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(f->status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(f->status().message().find("other/0@1"), std::string::npos) << f->status();
  EXPECT_FALSE(db_->WaitFor(TokenOf(after), absl::Now() + absl::Milliseconds(200)).ok());
  EXPECT_EQ(Counted("a"), 1);
}

}  // namespace
}  // namespace crm::projection
