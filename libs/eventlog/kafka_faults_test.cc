// Kafka-only behaviour under faults injected into the mock cluster.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <cstdio>
#include <functional>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "libs/common/wait_testing.h"
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
  // Bounded (ReadToEnd's timeout): a log that cannot be read fails the test, not aborts it.
  auto read = ReadToEnd(*log_, kTopic, from);
  ASSERT_TRUE(read.ok()) << read.status();
  std::vector<Record> recs = *std::move(read);
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
  read = ReadToEnd(*log_, kTopic, from);
  ASSERT_TRUE(read.ok()) << read.status();
  recs = *std::move(read);
  int v0 = 0, v2 = 0;
  for (const Record& rec : recs) {
    v0 += rec.value == "v0";
    v2 += rec.value == "v2";
  }
  EXPECT_EQ(v0, 1);
  EXPECT_EQ(v2, 1);
}

// A zombie: a service instance that lost its place to a newer one (a second process with the
// same transactional.id) but still runs. A real broker answers the zombie's next transaction
// with PRODUCER_FENCED, because the newer producer's InitProducerId bumped the epoch; the mock
// hands out a fresh producer id instead of bumping (see LogTest.SecondWriterOfATopicIsRefused),
// so the broker's answer is injected here. What is under test is ours: the fenced writer
// reports FAILED_PRECONDITION, writes nothing more, and the newer writer goes on.
TEST_F(KafkaFaultsTest, AZombieWriterFencedByTheBrokerWritesNothingMore) {
  auto zombie = *log_->OpenWriter(kTopic);
  ASSERT_TRUE(zombie->AppendSync("z", {{"from-zombie-before", {}}}).ok());
  KafkaLogOptions o;
  o.bootstrap_servers = mock_->bootstrap_servers();
  auto newer_log = *OpenKafkaLog(o);
  auto newer = *newer_log->OpenWriter(kTopic);
  ASSERT_TRUE(newer->AppendSync("z", {{"from-newer-1", {}}}).ok());
  constexpr int16_t kAddPartitionsToTxn = 24;
  rd_kafka_mock_push_request_errors(mock_->c_ptr(), kAddPartitionsToTxn, 1,
                                    RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
  auto fenced = zombie->AppendSync("z", {{"from-zombie-after", {}}});
  EXPECT_EQ(fenced.status().code(), absl::StatusCode::kFailedPrecondition) << fenced.status();
  // Every later append is refused at once, without reaching the broker.
  auto again = zombie->AppendSync("y", {{"from-zombie-later", {}}});
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition) << again.status();
  ASSERT_TRUE(newer->AppendSync("z", {{"from-newer-2", {}}}).ok());
  std::vector<Position> from;
  for (int p = 0; p < 4; ++p) from.push_back({p, 0});
  auto recs = ReadToEnd(*log_, kTopic, from);
  ASSERT_TRUE(recs.ok()) << recs.status();
  std::vector<std::string> values;
  for (const Record& r : *recs) values.push_back(r.value);
  EXPECT_EQ(values, (std::vector<std::string>{"from-zombie-before", "from-newer-1",
                                              "from-newer-2"}));
}

// 100k single-event appends from 256 aggregates written in turn (each aggregate's next
// version goes out once the previous one is acknowledged, as a service writes), while the
// cluster misbehaves: produce refused with NOT_ENOUGH_REPLICAS and REQUEST_TIMED_OUT, every
// partition's leader moved twice, a partition leader down for 10 s, and EndTxn timing out
// until the writer must re-read its tail. An append reported UNAVAILABLE is sent again with a
// new attempt number. Afterwards every acknowledged append is on the log once, at the offset
// it was acknowledged with, in its key's partition, and each key's versions are in order.
TEST(KafkaFaultsLoadTest, HundredThousandEventsThroughBrokerFaults) {
  constexpr int kAggregates = 256;
  constexpr int kVersions = 391;  // 256 × 391 = 100,096 events
  constexpr int kPartitions = 8;
  constexpr int16_t kProduce = 0, kAddPartitionsToTxn = 24;
  constexpr char kLoadTopic[] = "crm.faults.load.v1";
  auto mock = *MockCluster::Start(3);
  ASSERT_TRUE(mock->CreateTopic(kLoadTopic, kPartitions, 3).ok());
  rd_kafka_mock_cluster_t* mc = mock->c_ptr();
  const std::string txn_id = std::string("crm-writer.") + kLoadTopic;
  // The transaction coordinator stays on broker 1; broker 3 is the one taken down.
  ASSERT_EQ(rd_kafka_mock_coordinator_set(mc, "transaction", txn_id.c_str(), 1),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  // Partition p led by broker (p + shift) % 3 + 1: shift 0 to start, then moved twice.
  auto move_leaders = [&](int shift) {
    for (int p = 0; p < kPartitions; ++p) {
      ASSERT_EQ(rd_kafka_mock_partition_set_leader(mc, kLoadTopic, p, (p + shift) % 3 + 1),
                RD_KAFKA_RESP_ERR_NO_ERROR);
    }
  };
  move_leaders(0);
  KafkaLogOptions o;
  o.bootstrap_servers = mock->bootstrap_servers();
  o.append_timeout = absl::Seconds(3);
  auto log = *OpenKafkaLog(o);
  auto writer = *log->OpenWriter(kLoadTopic);

  struct Acked {
    int32_t partition;
    int64_t offset;
    int attempt;
  };
  absl::Mutex mu;
  std::map<std::pair<int, int>, Acked> acked;  // (aggregate, version) -> where
  std::set<std::string> failed_attempts;       // values reported not written
  int64_t unavailable = 0, done_aggregates = 0;
  bool stop = false;  // a wait timed out: send nothing more
  absl::Status unexpected;
  std::vector<int> attempt(kAggregates, 0), version(kAggregates, 1);

  std::function<void(int)> send = [&](int a) {
    const std::string value = absl::StrCat("a", a, "/v", version[a], "/t", attempt[a]);
    writer->Append(absl::StrCat("a", a), {{value, {}}},
                   [&, a, value](absl::StatusOr<Appended> r) {
      bool again = true;
      {
        absl::MutexLock l(&mu);
        if (stop) return;
        if (r.ok()) {
          acked[{a, version[a]}] = {r->partition, r->offsets[0], attempt[a]};
          attempt[a] = 0;
          if (++version[a] > kVersions) {
            again = false;
            ++done_aggregates;
          }
        } else if (absl::IsUnavailable(r.status())) {
          ++unavailable;
          failed_attempts.insert(value);
          ++attempt[a];
        } else {
          unexpected = r.status();
          again = false;
          ++done_aggregates;
        }
      }
      if (again) send(a);
    });
  };
  for (int a = 0; a < kAggregates; ++a) send(a);

  auto acked_count = [&] {
    absl::MutexLock l(&mu);
    return acked.size();
  };
  // Waits (bounded) for `done`. On a timeout the load stops and the writer goes before the
  // test returns: its callbacks use this frame.
  auto wait = [&](absl::string_view what, std::function<bool()> done) {
    ::testing::AssertionResult r = crm::testing::WaitUntil(
        what, absl::Minutes(3), done,
        [&] {
          const int64_t recoveries = writer->recoveries();
          absl::MutexLock l(&mu);
          return absl::StrCat(acked.size(), " appends acknowledged, ", unavailable, " unavailable, ", done_aggregates,
                              " of ", kAggregates, " aggregates done, ", recoveries, " recoveries");
        },
        absl::Milliseconds(20));
    if (!r) {
      {
        absl::MutexLock l(&mu);
        stop = true;
      }
      writer.reset();
    }
    return r;
  };
  auto wait_for = [&](size_t n) {
    return wait(absl::StrCat(n, " acknowledged appends"), [&, n] { return acked_count() >= n; });
  };
  std::vector<rd_kafka_resp_err_t> errs;
  ASSERT_TRUE(wait_for(10'000));
  errs.assign(30, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
  rd_kafka_mock_push_request_errors_array(mc, kProduce, errs.size(), errs.data());
  ASSERT_TRUE(wait_for(20'000));
  errs.assign(30, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
  rd_kafka_mock_push_request_errors_array(mc, kProduce, errs.size(), errs.data());
  errs.assign(10, RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS);
  rd_kafka_mock_push_request_errors_array(mc, kAddPartitionsToTxn, errs.size(), errs.data());
  ASSERT_TRUE(wait_for(30'000));
  move_leaders(1);
  ASSERT_TRUE(wait_for(40'000));
  // Broker 3 leads a third of the partitions; every transaction touching one of them fails
  // until it is back.
  const int64_t unavailable_before_down = [&] { absl::MutexLock l(&mu); return unavailable; }();
  ASSERT_EQ(rd_kafka_mock_broker_set_down(mc, 3), RD_KAFKA_RESP_ERR_NO_ERROR);
  absl::SleepFor(absl::Seconds(10));  // the outage's length, longer than append_timeout: time passing is the fault
  ASSERT_EQ(rd_kafka_mock_broker_set_up(mc, 3), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_TRUE(wait_for(acked_count() + 10'000));
  // Appends caught in the outage fail once their message timeout runs out, after it ended.
  const int64_t unavailable_while_down = [&] { absl::MutexLock l(&mu); return unavailable; }() -
                                         unavailable_before_down;
  errs.assign(200, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
  rd_kafka_mock_push_request_errors_array(mc, kEndTxn, errs.size(), errs.data());
  ASSERT_TRUE(wait("the writer to re-read its tail after EndTxn timed out", [&] { return writer->recoveries() > 0; }));
  rd_kafka_mock_clear_request_errors(mc, kEndTxn);
  ASSERT_TRUE(wait_for(acked_count() + 5'000));
  move_leaders(2);
  ASSERT_TRUE(wait("every aggregate's last version", [&] {
    absl::MutexLock l(&mu);
    return done_aggregates == kAggregates;
  }));
  const int64_t recoveries = writer->recoveries();
  writer.reset();
  ASSERT_TRUE(unexpected.ok()) << unexpected;
  ASSERT_EQ(acked.size(), static_cast<size_t>(kAggregates) * kVersions);
  EXPECT_GT(unavailable_while_down, 0) << "the broker outage failed no append: test did not test";

  std::vector<Position> from;
  for (int p = 0; p < kPartitions; ++p) from.push_back({p, 0});
  auto recs = ReadToEnd(*log, kLoadTopic, from, absl::Seconds(120));
  ASSERT_TRUE(recs.ok()) << recs.status();
  std::map<std::pair<int32_t, int64_t>, const Record*> at;
  std::map<std::string, int> copies;
  int64_t from_failed = 0, unexplained = 0;
  for (const Record& r : *recs) {
    at[{r.partition, r.offset}] = &r;
    ++copies[r.value];
  }
  int64_t lost = 0, duplicated = 0, misplaced = 0, out_of_order = 0;
  for (int a = 0; a < kAggregates; ++a) {
    const std::string key = absl::StrCat("a", a);
    int64_t last_offset = -1;
    for (int v = 1; v <= kVersions; ++v) {
      const Acked& k = acked.at({a, v});
      const std::string value = absl::StrCat(key, "/v", v, "/t", k.attempt);
      auto it = at.find({k.partition, k.offset});
      if (it == at.end() || it->second->value != value) {
        ++lost;
        continue;
      }
      duplicated += copies[value] - 1;
      misplaced += k.partition != PartitionForKey(key, kPartitions) || it->second->key != key;
      out_of_order += k.offset <= last_offset;
      last_offset = k.offset;
      copies.erase(value);
    }
  }
  // What is left was never acknowledged. The mock shows aborted transactions to
  // read_committed readers (docs/benchmarks.md, "The mock cluster: what it cannot show"), so
  // appends reported not written may appear; nothing else may.
  for (const auto& [value, n] : copies) {
    (failed_attempts.contains(value) ? from_failed : unexplained) += n;
  }
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(duplicated, 0);
  EXPECT_EQ(misplaced, 0);
  EXPECT_EQ(out_of_order, 0);
  EXPECT_EQ(unexplained, 0);
  EXPECT_GE(recoveries, 1);
  std::printf("acknowledged %zu, records read %zu, sent again %lld (%lld in the outage), "
              "recoveries %lld, aborted but visible on the mock %lld\n",
              acked.size(), recs->size(), static_cast<long long>(unavailable),
              static_cast<long long>(unavailable_while_down), static_cast<long long>(recoveries),
              static_cast<long long>(from_failed));
}

// A delivery report that comes after its transaction was given up must find nothing freed.
// The writer's per-message slots (msg_opaque) live for one CommitGroup; a produce still in
// flight when its commit or abort gives up (their flush of delivery reports timed out) is
// answered by the broker later. Set up so that this happens, in an order the test enforces
// rather than hopes for:
//   1. A "hold" append to partition 0, whose produce broker 2 answers 1 s late, keeps the
//      writer inside one transaction while the test queues the next two appends, so both
//      go into the following transaction (checked: "hold" is still unanswered then).
//   2. In that transaction broker 3 keeps the produce of "in-flight" (partition 1) for 8 s,
//      and broker 2 refuses the produce of "refused" (partition 0) for good, but only 1 s
//      after it arrived, by when "in-flight" has left the client (checked on broker 3: a
//      produce refused at once makes librdkafka purge the other before it is ever sent).
//   3. The refusal makes the transaction abortable, but neither the commit's nor the
//      abort's flush can finish while "in-flight" is outstanding: both time out, the writer
//      gives the transaction up and recovers, and the broker's answer comes after the
//      transaction's slots are gone.
// append_timeout (2 s) leaves room for a new producer's first commit, which waits up to
// ~1 s for the topic's metadata in librdkafka 2.0. A report reaching a freed slot is a
// heap-use-after-free under -fsanitize=address; the writer must also answer both appends
// and take writes again.
TEST(KafkaLateDeliveryTest, AReportAfterAnAbortedTransactionTouchesNothingFreed) {
  constexpr char kLateTopic[] = "crm.faults.late.v1";
  constexpr int16_t kProduce = 0;
  constexpr int kHoldMs = 1000, kRefuseAfterMs = 1000, kLateMs = 8000;
  auto mock = *MockCluster::Start(3);
  ASSERT_TRUE(mock->CreateTopic(kLateTopic, 2, 3).ok());
  rd_kafka_mock_cluster_t* mc = mock->c_ptr();
  const std::string txn_id = std::string("crm-writer.") + kLateTopic;
  ASSERT_EQ(rd_kafka_mock_coordinator_set(mc, "transaction", txn_id.c_str(), 1), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_EQ(rd_kafka_mock_partition_set_leader(mc, kLateTopic, 0, 2), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_EQ(rd_kafka_mock_partition_set_leader(mc, kLateTopic, 1, 3), RD_KAFKA_RESP_ERR_NO_ERROR);
  std::string key_on[2];
  for (int i = 0; key_on[0].empty() || key_on[1].empty(); ++i) {
    const std::string k = absl::StrCat("k", i);
    std::string& slot = key_on[PartitionForKey(k, 2)];
    if (slot.empty()) slot = k;
  }
  // Produce requests broker `id` has still to receive of those given a scripted answer.
  auto scripted_left = [mc](int32_t id) {
    size_t n = 0;
    EXPECT_EQ(rd_kafka_mock_broker_error_stack_cnt(mc, id, kProduce, &n), RD_KAFKA_RESP_ERR_NO_ERROR);
    return n;
  };
  KafkaLogOptions o;
  o.bootstrap_servers = mock->bootstrap_servers();
  o.append_timeout = absl::Seconds(2);
  o.extra = {{"message.timeout.ms", "30000"}};
  auto log = *OpenKafkaLog(o);
  auto writer = *log->OpenWriter(kLateTopic);
  // Connections to both leaders and the topic's metadata, before anything is slow.
  for (int p = 0; p < 2; ++p) {
    auto warm = writer->AppendSync(key_on[p], {{absl::StrCat("warm-", p), {}}});
    ASSERT_TRUE(warm.ok()) << warm.status();
  }

  ASSERT_EQ(rd_kafka_mock_broker_push_request_error_rtts(
                mc, 2, kProduce, 2, RD_KAFKA_RESP_ERR_NO_ERROR, kHoldMs,
                RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, kRefuseAfterMs),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_EQ(rd_kafka_mock_broker_push_request_error_rtts(mc, 3, kProduce, 1, RD_KAFKA_RESP_ERR_NO_ERROR, kLateMs),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  struct Answers {
    absl::Mutex mu;
    std::map<std::string, absl::Status> got ABSL_GUARDED_BY(mu);
  };
  auto answers = std::make_shared<Answers>();
  auto record = [answers](std::string what) {
    return [answers, what](absl::StatusOr<Appended> r) {
      absl::MutexLock l(&answers->mu);
      answers->got[what] = r.status();
    };
  };
  auto answered = [answers] {
    absl::MutexLock l(&answers->mu);
    std::string out;
    for (const auto& [what, status] : answers->got) absl::StrAppend(&out, what, ": ", status.ToString(), "; ");
    return out;
  };
  writer->Append(key_on[0], {{"hold", {}}}, record("hold"));
  ASSERT_TRUE(crm::testing::WaitUntil(
      "broker 2 to receive the holding produce", absl::Seconds(10), [&] { return scripted_left(2) == 1; }, answered,
      absl::Milliseconds(1)));
  writer->Append(key_on[1], {{"in-flight", {}}}, record("in-flight"));
  writer->Append(key_on[0], {{"refused", {}}}, record("refused"));
  {
    // The writer answers "hold" only after its transaction; until then it has not looked at
    // the queue again, so the two appends just queued go into one transaction.
    absl::MutexLock l(&answers->mu);
    ASSERT_TRUE(answers->got.empty()) << "the holding append was answered before the next two were queued: "
                                         "test did not test";
  }
  ASSERT_TRUE(crm::testing::WaitUntil(
      "broker 3 to receive the slow produce", absl::Seconds(10), [&] { return scripted_left(3) == 0; }, answered,
      absl::Milliseconds(5)));
  const absl::Time late_answer_due = absl::Now() + absl::Milliseconds(kLateMs);
  EXPECT_TRUE(crm::testing::WaitUntil(
      "the writer giving up a transaction with a produce in flight", absl::Seconds(30),
      [&] { return writer->recoveries() >= 1; }, answered, absl::Milliseconds(20)));
  EXPECT_TRUE(crm::testing::WaitUntil(
      "all three appends answered", absl::Seconds(60),
      [&] {
        absl::MutexLock l(&answers->mu);
        return answers->got.size() == 3;
      },
      answered, absl::Milliseconds(20)));
  {
    absl::MutexLock l(&answers->mu);
    EXPECT_TRUE(answers->got["hold"].ok()) << answers->got["hold"];
    // Never written; "in-flight" may be reported written: the mock keeps aborted records
    // visible, and the recovery finds it there.
    EXPECT_TRUE(absl::IsUnavailable(answers->got["refused"])) << answers->got["refused"];
  }
  // Past the late answer: the writer takes writes.
  absl::SleepFor(late_answer_due + absl::Seconds(1) - absl::Now());
  auto after = writer->AppendSync(key_on[1], {{"after", {}}}, {.timeout = absl::Seconds(30)});
  EXPECT_TRUE(after.ok()) << after.status();
  writer.reset();
}

// A commit that outlives append_timeout by a hair must not derail the writer's next
// transaction. librdkafka 2.0 keeps one result slot per producer for its transactional calls:
// when commit_transaction's flush ends right at the deadline, the call times out waiting for
// its EndTxn, and the result EndTxn sets a moment later is taken by the resumed call's first
// step, so every later call returns the result meant for the step before it. The next
// begin_transaction then returns before the transaction began, its produce is refused with
// "Erroneous state", and an append on a healthy cluster is answered "not written". Broker 2
// answers each probe's produce append_timeout late, which ends the flush within a millisecond
// of the deadline; the slip needs the EndTxn answer to win a race against the resumed call,
// so the probe is repeated.
TEST(KafkaSlowCommitTest, TheAppendAfterACommitThatEndedAtItsDeadlineIsWritten) {
  constexpr char kSlowTopic[] = "crm.faults.slow-commit.v1";
  constexpr int16_t kProduce = 0;
  constexpr int kTimeoutMs = 300, kProbes = 60;
  auto mock = *MockCluster::Start(3);
  ASSERT_TRUE(mock->CreateTopic(kSlowTopic, 1, 3).ok());
  rd_kafka_mock_cluster_t* mc = mock->c_ptr();
  ASSERT_EQ(rd_kafka_mock_partition_set_leader(mc, kSlowTopic, 0, 2), RD_KAFKA_RESP_ERR_NO_ERROR);
  KafkaLogOptions o;
  o.bootstrap_servers = mock->bootstrap_servers();
  o.append_timeout = absl::Milliseconds(kTimeoutMs);
  o.extra = {{"message.timeout.ms", "30000"}};
  auto log = *OpenKafkaLog(o);
  auto writer = *log->OpenWriter(kSlowTopic);
  auto warm = writer->AppendSync("k", {{"warm", {}}});
  ASSERT_TRUE(warm.ok()) << warm.status();
  int failed = 0;
  std::string first;
  for (int i = 0; i < kProbes; ++i) {
    ASSERT_EQ(rd_kafka_mock_broker_push_request_error_rtts(mc, 2, kProduce, 1, RD_KAFKA_RESP_ERR_NO_ERROR, kTimeoutMs),
              RD_KAFKA_RESP_ERR_NO_ERROR);
    auto probe = writer->AppendSync("k", {{absl::StrCat("probe-", i), {}}});
    auto next = writer->AppendSync("k", {{absl::StrCat("next-", i), {}}});
    for (const auto* r : {&probe, &next}) {
      if (r->ok()) continue;
      if (failed++ == 0) first = absl::StrCat("probe ", i, ": ", r->status().ToString());
    }
  }
  EXPECT_EQ(failed, 0) << "appends on a healthy cluster answered not written; first: " << first
                       << "; recoveries: " << writer->recoveries();
}

// A producer is new after every start and every recovery; librdkafka 2.0 learns the leaders
// of a topic it has not produced to on its periodic metadata scan, up to ~1 s after the first
// produce. An append timeout shorter than that must still let the first append through
// (and so a recovery converge): below it, every attempt timed out, recovered into another
// new producer, and nothing was ever written.
TEST(KafkaShortTimeoutTest, ANewProducersFirstAppendFitsAShortAppendTimeout) {
  constexpr char kShortTopic[] = "crm.faults.short-timeout.v1";
  auto mock = *MockCluster::Start(3);
  ASSERT_TRUE(mock->CreateTopic(kShortTopic, 2, 3).ok());
  KafkaLogOptions o;
  o.bootstrap_servers = mock->bootstrap_servers();
  o.append_timeout = absl::Milliseconds(150);
  auto log = *OpenKafkaLog(o);
  auto writer = *log->OpenWriter(kShortTopic);
  auto first = writer->AppendSync("k", {{"first", {}}}, {.timeout = absl::Seconds(10)});
  EXPECT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(writer->recoveries(), 0);
}

}  // namespace
}  // namespace crm::eventlog
