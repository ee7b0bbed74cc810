#include "libs/projection/token_gate.h"

#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "libs/eventlog/embedded_log.h"
#include "libs/projection/projection_db.h"
#include "libs/projection/rebuild.h"
#include "libs/common/temp_dir_testing.h"

namespace crm::projection {
namespace {

class TokenGateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = NewTestDir("gate");
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    log_ = *eventlog::OpenEmbeddedLog({.path = dir_ + "/log"});
    ASSERT_TRUE(log_->CreateTopic("t", 2).ok());
    writer_ = *log_->OpenWriter("t");
  }
  void TearDown() override {
    writer_.reset();
    log_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Appends one record under `key`; returns its token.
  std::string Write(const std::string& key) {
    eventlog::Appended a = *writer_->AppendSync(key, {{"v", {}}});
    return Token({{"t", a.partition, a.offsets.back()}});
  }

  struct Pos {
    std::string topic;
    int32_t partition;
    int64_t offset;
  };
  static std::string Token(const std::vector<Pos>& positions) {
    ConsistencyToken t;
    for (const Pos& p : positions) {
      auto* pos = t.add_positions();
      pos->set_topic(p.topic);
      pos->set_partition(p.partition);
      pos->set_offset(p.offset);
    }
    return EncodeToken(t);
  }

  std::string dir_;
  std::unique_ptr<eventlog::Log> log_;
  std::unique_ptr<eventlog::Writer> writer_;
};

TEST_F(TokenGateTest, AcceptsWhatThisLogAcknowledgedAndCollapsesRepeats) {
  TokenGate gate(log_.get(), {"t", "other"});
  EXPECT_TRUE(gate.Check(Write("a"), "min_consistency_token").ok());
  // The gate saw the end before these writes: a newer token makes it look again.
  const std::string later = Write("b");
  auto checked = gate.Check(later, "min_consistency_token");
  ASSERT_TRUE(checked.ok()) << checked.status();
  ASSERT_EQ(checked->positions_size(), 1);
  // One position per partition, the highest offset.
  auto collapsed = gate.Check(Token({{"t", 0, 0}, {"t", 0, 0}, {"t", 0, 0}}), "f");
  ASSERT_TRUE(collapsed.ok()) << collapsed.status();
  EXPECT_EQ(collapsed->positions_size(), 1);
  EXPECT_TRUE(gate.Check("", "f")->positions().empty());
}

TEST_F(TokenGateTest, RefusesOffsetsBeyondTheLogsEndAtOnce) {
  Write("a");
  TokenGate gate(log_.get(), {"t"});
  auto far = gate.Check(Token({{"t", 0, 1'000'000'000'000}}), "min_consistency_token");
  EXPECT_EQ(far.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(far.status().message().find("min_consistency_token"), std::string::npos) << far.status();
  // A followed topic nobody has written yet has no offsets at all.
  TokenGate unwritten(log_.get(), {"t", "not-yet"});
  EXPECT_EQ(unwritten.Check(Token({{"not-yet", 0, 0}}), "f").status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(TokenGateTest, RefusesTopicsPartitionsAndSizesItDoesNotServe) {
  Write("a");
  TokenGate gate(log_.get(), {"t"});
  EXPECT_EQ(gate.Check(Token({{"crm.elsewhere.v1", 0, 0}}), "f").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(gate.Check(Token({{"t", 7, 0}}), "f").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(gate.Check("!!not base64!!", "f").status().code(), absl::StatusCode::kInvalidArgument);
  // 100k positions (3.6 MB) once made every commit scan them while the read waited.
  std::vector<Pos> many(1000, Pos{"t", 0, 0});
  const std::string big = Token(many);
  ASSERT_GT(big.size(), TokenGate::kMaxTokenBytes);
  EXPECT_EQ(gate.Check(big, "f").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TokenGateTest, ProjectionsWithoutAGateRefuseEveryTokenButTheEmptyOne) {
  auto db = *ProjectionDb::Open({.path = dir_ + "/proj"});
  absl::Status got = absl::UnknownError("not called");
  AfterToken(*db, Write("a"), "min_consistency_token", absl::Now() + absl::Seconds(5), [&](absl::Status s) { got = s; });
  EXPECT_EQ(got.code(), absl::StatusCode::kFailedPrecondition);
  AfterToken(*db, "", "min_consistency_token", absl::Now() + absl::Seconds(5), [&](absl::Status s) { got = s; });
  EXPECT_TRUE(got.ok()) << got;
  db->AcceptTokens(log_.get(), {"t"});
  AfterToken(*db, Token({{"t", 0, 1'000'000'000'000}}), "min_consistency_token", absl::Now() + absl::Seconds(5),
             [&](absl::Status s) { got = s; });
  EXPECT_EQ(got.code(), absl::StatusCode::kFailedPrecondition);  // at once, not at the deadline
}

}  // namespace
}  // namespace crm::projection
