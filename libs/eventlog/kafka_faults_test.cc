// Kafka-only behaviour under faults injected into the mock cluster.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/eventlog/kafka_log.h"
#include "libs/eventlog/mock_cluster.h"

namespace crm::eventlog {
namespace {

constexpr char kTopic[] = "crm.faults.events.v1";
constexpr int16_t kEndTxn = 26;  // Kafka protocol API key of EndTxn

class KafkaFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mock_ = *MockCluster::Start(3);
    ASSERT_TRUE(mock_->CreateTopic(kTopic, 4, 3).ok());
    KafkaLogOptions o;
    o.bootstrap_servers = mock_->bootstrap_servers();
    o.append_timeout = absl::Seconds(2);
    log_ = *OpenKafkaLog(o);
  }
  std::unique_ptr<MockCluster> mock_;
  std::unique_ptr<Log> log_;
};

TEST_F(KafkaFaultsTest, CommitWithUnknownOutcomeIsResolvedByRereadingTheTail) {
  auto w = *log_->OpenWriter(kTopic);
  ASSERT_TRUE(w->AppendSync("before", {{"v0", {}}}).ok());
  // Every EndTxn times out for a while: commit_transaction keeps failing with a retriable
  // error, so whether the broker committed is unknown and the writer must recover.
  std::vector<rd_kafka_resp_err_t> errs(200, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
  rd_kafka_mock_push_request_errors_array(mock_->c_ptr(), kEndTxn, errs.size(), errs.data());
  auto r = w->AppendSync("during", {{"v1", {}}});
  EXPECT_GE(w->recoveries(), 1) << "the commit outcome never became unknown: test did not test";
  // The outcome is now known: either it is on the log for every read_committed reader and
  // we get its offset, or it is not and we get UNAVAILABLE. Never "maybe".
  std::vector<Position> from;
  for (int p = 0; p < 4; ++p) from.push_back({p, 0});
  // Let the injected errors drain before reading and writing again.
  rd_kafka_mock_clear_request_errors(mock_->c_ptr(), kEndTxn);
  auto recs = *ReadToEnd(*log_, kTopic, from);
  int found = 0;
  for (const Record& rec : recs) found += rec.value == "v1";
  if (r.ok()) {
    EXPECT_EQ(found, 1) << "acknowledged after recovery but not readable";
  } else {
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
    EXPECT_EQ(found, 0) << "reported not written but readers see it";
  }
  // On the mock, aborted records stay visible (it has no read_committed isolation), so the
  // recovery finds v1 and acknowledges it; on a real broker the re-initialised producer's
  // abort hides it and the append is reported not written. Either way readers agree.
  // The partition takes writes again, and nothing was written twice.
  auto after = w->AppendSync("after", {{"v2", {}}});
  ASSERT_TRUE(after.ok()) << after.status();
  recs = *ReadToEnd(*log_, kTopic, from);
  int v0 = 0, v2 = 0;
  for (const Record& rec : recs) {
    v0 += rec.value == "v0";
    v2 += rec.value == "v2";
  }
  EXPECT_EQ(v0, 1);
  EXPECT_EQ(v2, 1);
}

}  // namespace
}  // namespace crm::eventlog
