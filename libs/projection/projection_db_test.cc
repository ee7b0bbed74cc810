#include "libs/projection/projection_db.h"

#include <unistd.h>

#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "libs/eventlog/embedded_log.h"
#include "libs/common/temp_dir_testing.h"

namespace crm::projection {
namespace {

class ProjectionDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = NewTestDir("proj");
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    log_ = *eventlog::OpenEmbeddedLog({.path = dir_ + "/log"});
    ASSERT_TRUE(log_->CreateTopic("t", 2).ok());
  }
  void TearDown() override {
    log_.reset();  // closes (and flushes) the log before its folder goes
    std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<ProjectionDb> OpenDb() { return *ProjectionDb::Open({.path = dir_ + "/proj"}); }
  // A token for one position of topic "t".
  static ConsistencyToken TokenAt(int32_t partition, int64_t offset) {
    ConsistencyToken t;
    auto* p = t.add_positions();
    p->set_topic("t");
    p->set_partition(partition);
    p->set_offset(offset);
    return t;
  }

  std::string dir_;
  std::unique_ptr<eventlog::Log> log_;
};

TEST(TokenTest, RoundTripsAndRejectsGarbage) {
  ConsistencyToken t;
  auto* p = t.add_positions();
  p->set_topic("crm.customers.events.v1");
  p->set_partition(3);
  p->set_offset(42);
  auto back = DecodeToken(EncodeToken(t));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->positions(0).offset(), 42);
  EXPECT_EQ(DecodeToken("!!!").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(DecodeToken("")->positions().empty());
}

TEST_F(ProjectionDbTest, CatchUpAppliesEachRecordOnceAcrossRestarts) {
  auto w = *log_->OpenWriter("t");
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(w->AppendSync(absl::StrCat("k", i % 3), {{"v", {}}}).ok());
  auto count = [](ProjectionDb* db) {
    return [db](const eventlog::Record& r, Batch& b) {
      std::string v;
      db->Get(b, "count/" + r.key, &v).IgnoreError();  // NOT_FOUND leaves v empty
      b.Put("count/" + r.key, std::to_string(v.empty() ? 1 : std::stoi(v) + 1));
      return absl::OkStatus();
    };
  };
  {
    auto db = OpenDb();
    // batch_records = 1 so every record commits its own checkpoint, as live applies do.
    auto n = db->CatchUp(*log_, "t", count(db.get()), 1);
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(*n, 10);
  }
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(w->AppendSync("k0", {{"v", {}}}).ok());
  auto db = OpenDb();
  EXPECT_EQ(*db->CatchUp(*log_, "t", count(db.get())), 5);
  EXPECT_EQ(*db->CatchUp(*log_, "t", count(db.get())), 0);
  std::string v;
  ASSERT_TRUE(db->db()->Get(rocksdb::ReadOptions(), "count/k0", &v).ok());
  EXPECT_EQ(v, "9");  // 4 of the first 10 (i = 0, 3, 6, 9) + 5
}

// The timeout is on a log that delivers nothing, not on the whole catch-up: a large log
// catches up however long that takes (crmd on 10M events took longer than the 10-minute
// default once, and refused to start). Every record here is slower to apply than the timeout.
TEST_F(ProjectionDbTest, CatchUpTimesOutOnSilenceNotOnALongLog) {
  auto w = *log_->OpenWriter("t");
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(w->AppendSync(absl::StrCat("k", i), {{"v", {}}}).ok());
  auto db = OpenDb();
  auto slow = [](const eventlog::Record& r, Batch& b) {
    absl::SleepFor(absl::Milliseconds(5));
    b.Put("seen/" + r.key, "1");
    return absl::OkStatus();
  };
  auto n = db->CatchUp(*log_, "t", slow, 1, absl::Milliseconds(2));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 20);
}

TEST_F(ProjectionDbTest, WaitForReturnsOnceCheckpointPassesTheToken) {
  auto db = OpenDb();
  const ConsistencyToken t = TokenAt(1, 4);
  EXPECT_EQ(db->WaitFor(t, absl::Now() + absl::Milliseconds(50)).code(),
            absl::StatusCode::kDeadlineExceeded);
  std::thread committer([&] {
    absl::SleepFor(absl::Milliseconds(100));
    Batch b;
    ASSERT_TRUE(db->Commit(b, "t", 1, 5).ok());
  });
  EXPECT_TRUE(db->WaitFor(t, absl::Now() + absl::Seconds(10)).ok());
  committer.join();
  EXPECT_EQ(db->NextOffset("t", 1), 5);
  // Checkpoints never move backwards.
  Batch b;
  ASSERT_TRUE(db->Commit(b, "t", 1, 2).ok());
  EXPECT_EQ(db->NextOffset("t", 1), 5);
}

TEST_F(ProjectionDbTest, NotifyWhenReachedFiresOnCommitOrDeadlineWithoutBlocking) {
  auto db = OpenDb();
  const ConsistencyToken t = TokenAt(0, 9);
  absl::Notification reached, expired, immediate;
  absl::Status reached_status, expired_status;
  db->NotifyWhenReached(t, absl::Now() + absl::Seconds(30), [&](absl::Status s) {
    reached_status = s;
    reached.Notify();
  });
  db->NotifyWhenReached(t, absl::Now() + absl::Milliseconds(50), [&](absl::Status s) {
    expired_status = s;
    expired.Notify();
  });
  ASSERT_TRUE(expired.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(expired_status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_FALSE(reached.HasBeenNotified());
  Batch b;
  ASSERT_TRUE(db->Commit(b, "t", 0, 10).ok());
  ASSERT_TRUE(reached.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_TRUE(reached_status.ok());
  // Already reached: called at once, on this thread.
  db->NotifyWhenReached(t, absl::Now() + absl::Seconds(1), [&](absl::Status s) {
    EXPECT_TRUE(s.ok());
    immediate.Notify();
  });
  EXPECT_TRUE(immediate.HasBeenNotified());
}

// The deadline timer once slept for good after its waiters had all expired: a later waiter
// was never answered, and every unreached read held its server slot until the process died.
TEST_F(ProjectionDbTest, DeadlinesFireForWaitersAfterAnEmptySpellAndForEarlierOnes) {
  auto db = OpenDb();
  const ConsistencyToken t = TokenAt(0, 100);
  auto expect_expiry = [&](absl::Duration wait) {
    absl::Notification fired;
    absl::Status got;
    db->NotifyWhenReached(t, absl::Now() + wait, [&](absl::Status s) {
      got = s;
      fired.Notify();
    });
    ASSERT_TRUE(fired.WaitForNotificationWithTimeout(wait + absl::Seconds(5))) << "waiter of " << wait << " never answered";
    EXPECT_EQ(got.code(), absl::StatusCode::kDeadlineExceeded);
  };
  expect_expiry(absl::Milliseconds(20));
  expect_expiry(absl::Milliseconds(20));  // the timer had nothing left to wait for
  // A waiter whose deadline is earlier than the one the timer sleeps towards.
  absl::Notification late_fired;
  db->NotifyWhenReached(t, absl::Now() + absl::Hours(1), [&](absl::Status) { late_fired.Notify(); });
  expect_expiry(absl::Milliseconds(20));
  EXPECT_FALSE(late_fired.HasBeenNotified());
}

TEST_F(ProjectionDbTest, PendingWaitersAreCancelledOnClose) {
  auto db = OpenDb();
  const ConsistencyToken t = TokenAt(0, 100);
  absl::Status got;
  db->NotifyWhenReached(t, absl::Now() + absl::Hours(1), [&](absl::Status s) { got = s; });
  db.reset();
  EXPECT_EQ(got.code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace crm::projection
