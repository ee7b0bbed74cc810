#include "libs/projection/aggregate_writer.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <limits>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "google/protobuf/wrappers.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/await.h"
#include "libs/common/grpc_status.h"
#include "libs/common/status_macros.h"
#include "libs/common/temp_dir_testing.h"
#include "libs/common/wait_testing.h"
#include "libs/eventlog/answer_group.h"
#include "libs/eventlog/embedded_log.h"
#include "libs/eventlog/envelope.h"
#include "libs/eventlog/kafka_log.h"
#include "libs/eventlog/mock_cluster.h"

namespace crm::projection {
namespace {

// A projection that keeps each aggregate's last version and hash, the way services do.
absl::Status ApplyHeads(ProjectionDb& db, const eventlog::Record& r, Batch& b) {
  auto env = eventlog::EnvelopeOf(r);
  if (!env.ok()) return env.status();
  std::string raw;
  int64_t version = 0;
  std::string hash;
  if (db.Get(b, "v/" + env->aggregate_id(), &raw).ok()) {
    version = std::stoll(raw.substr(0, raw.find('|')));
    hash = raw.substr(raw.find('|') + 1);
  }
  auto next = IsNextEvent(r, *env, version, hash);
  if (!next.ok()) return next.status();
  if (!*next) return absl::OkStatus();
  b.Put("v/" + env->aggregate_id(), absl::StrCat(env->aggregate_version(), "|", env->hash()));
  return absl::OkStatus();
}

// The head of aggregate `id` of type "thing" as ApplyHeads keeps it, as a command would read it.
AggregateHead HeadIn(ProjectionDb& db, const std::string& id) {
  std::string raw;
  if (!db.db()->Get(rocksdb::ReadOptions(), "v/" + id, &raw).ok()) return {.type = "thing", .id = id};
  return {.type = "thing", .id = id, .version = std::stoll(raw.substr(0, raw.find('|'))),
          .last_hash = raw.substr(raw.find('|') + 1)};
}

// Serialize's bound on waiters, where a test does not exercise it (libs/kernel does).
constexpr size_t kNoBound = std::numeric_limits<size_t>::max();

class AggregateWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = NewTestDir("aggw");
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    log_ = *eventlog::OpenEmbeddedLog({.path = dir_ + "/log"});
    db_ = *ProjectionDb::Open({.path = dir_ + "/proj"});
    auto* db = db_.get();
    auto w = AggregateWriter::Open(log_.get(), db_.get(),
                                   {.topic = "t", .partitions = 2, .source = "/test", .clock = &clock_},
                                   [this, db](const eventlog::Record& r, Batch& b) {
                                     if (failing_applies_ > 0) {
                                       --failing_applies_;
                                       return absl::ResourceExhaustedError("the disk is full (test)");
                                     }
                                     return ApplyHeads(*db, r, b);
                                   });
    ASSERT_TRUE(w.ok()) << w.status();
    writer_ = std::move(*w);
  }
  void TearDown() override {
    writer_.reset();
    db_.reset();
    log_.reset();
    std::filesystem::remove_all(dir_);
  }

  absl::StatusOr<std::string> AppendSync(const AggregateHead& head, int n) {
    std::vector<NewEvent> events;
    for (int i = 0; i < n; ++i) {
      google::protobuf::Int64Value v;
      v.set_value(head.version + i + 1);
      events.push_back(NewEvent::Of(v, clock_.Now() - absl::Hours(i)));
    }
    absl::Notification done;
    absl::StatusOr<std::string> out;
    writer_->Append(head, {}, std::move(events), [&](absl::StatusOr<std::string> t) {
      out = std::move(t);
      done.Notify();
    });
    done.WaitForNotification();
    return out;
  }

  std::string Head(const std::string& id) {
    std::string head;
    return db_->db()->Get(rocksdb::ReadOptions(), "v/" + id, &head).ok() ? head.substr(0, head.find('|')) : "";
  }
  // The aggregate's head as the projection holds it, as a command would read it.
  AggregateHead Current(const std::string& id) {
    return HeadIn(*db_, id);
  }
  size_t LogSize() { return eventlog::ReadToEnd(*log_, "t", {{0, 0}, {1, 0}})->size(); }

  std::atomic<int> failing_applies_{0};  // the next N applies fail as on a full disk
  std::string dir_;
  ManualClock clock_;
  std::unique_ptr<eventlog::Log> log_;
  std::unique_ptr<ProjectionDb> db_;
  std::unique_ptr<AggregateWriter> writer_;
};

TEST_F(AggregateWriterTest, AppendsChainedVersionsAndAppliesThemBeforeAnswering) {
  auto token = AppendSync({.type = "thing", .id = "a"}, 3);
  ASSERT_TRUE(token.ok()) << token.status();
  auto decoded = DecodeToken(*token);
  ASSERT_TRUE(decoded.ok());
  EXPECT_TRUE(db_->WaitFor(*decoded, absl::Now()).ok()) << "applied before done";
  std::string head;
  ASSERT_TRUE(db_->db()->Get(rocksdb::ReadOptions(), "v/a", &head).ok());
  EXPECT_EQ(head.substr(0, 2), "3|");

  auto records = eventlog::ReadToEnd(*log_, "t", {{0, 0}, {1, 0}});
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 3u);
  std::string prev;
  for (int i = 0; i < 3; ++i) {
    auto env = *eventlog::DecodeEnvelope((*records)[i].value);
    EXPECT_EQ(env.aggregate_type(), "thing");
    EXPECT_EQ(env.aggregate_version(), i + 1);
    EXPECT_TRUE(eventlog::VerifyEnvelope(env, prev).ok());
    EXPECT_EQ(OccurredAt(env), clock_.Now() - absl::Hours(i)) << "business time kept";
    EXPECT_EQ(RecordedAt(env), clock_.Now());
    EXPECT_EQ(env.correlation_id(), eventlog::DecodeEnvelope((*records)[0].value)->correlation_id());
    prev = env.hash();
  }
}

// What one create costs in SHA-256 hashes: one, to seal the event. The projection applies the
// envelope this process just sealed without hashing it again (Record::sealed); a record read
// back from the log is verified in full.
TEST_F(AggregateWriterTest, ACreateCostsOneHashAndACatchUpVerifiesEachRecord) {
  const int64_t before = eventlog::EnvelopeHashCount();
  ASSERT_TRUE(AppendSync({.type = "thing", .id = "counted"}, 1).ok());
  EXPECT_EQ(eventlog::EnvelopeHashCount() - before, 1);
  const int64_t three = eventlog::EnvelopeHashCount();
  ASSERT_TRUE(AppendSync(Current("counted"), 3).ok());
  EXPECT_EQ(eventlog::EnvelopeHashCount() - three, 3) << "one seal per event, no verification";

  // A fresh store catching up from the log hashes each of the four records once.
  auto fresh = ProjectionDb::Open({.path = dir_ + "/fresh"});
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  ProjectionDb* db = fresh->get();
  const int64_t replay = eventlog::EnvelopeHashCount();
  auto applied = db->CatchUp(*log_, "t", [db](const eventlog::Record& r, Batch& b) { return ApplyHeads(*db, r, b); });
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(*applied, 4);
  EXPECT_EQ(eventlog::EnvelopeHashCount() - replay, 4);
}

// Not hashing its own records again must not skip the chain check: an event sealed onto a head
// whose hash is not the aggregate's last (a stale or corrupt read) is DATA_LOSS in the
// projection, which then holds writes until it caught up.
TEST_F(AggregateWriterTest, ARecordSealedHereIsStillCheckedForItsPlaceInTheChain) {
  ASSERT_TRUE(AppendSync({.type = "thing", .id = "a"}, 1).ok());
  AggregateHead wrong = Current("a");
  wrong.last_hash = std::string(32, 'x');
  auto broken = AppendSync(wrong, 1);
  EXPECT_EQ(broken.status().code(), absl::StatusCode::kUnavailable) << broken.status();
  EXPECT_THAT(std::string(broken.status().message()), ::testing::HasSubstr("written to the log"));
  EXPECT_EQ(Head("a"), "1") << "the projection did not apply it";
}

TEST_F(AggregateWriterTest, ProjectionRejectsAStaleHeadAsAGap) {
  ASSERT_TRUE(AppendSync({.type = "thing", .id = "a"}, 2).ok());
  // A head past the stream's end would leave a gap in its versions: the log refuses it.
  auto gap = AppendSync({.type = "thing", .id = "a", .version = 5}, 1);
  EXPECT_EQ(gap.status().code(), absl::StatusCode::kDataLoss) << gap.status();
  EXPECT_EQ(LogSize(), 2u) << "nothing appended";
}

// A caller that decides on a stale head would append a second version 1; the projections
// would take it as already applied and never notice. The log refuses it, and the caller is
// told to decide again.
TEST_F(AggregateWriterTest, TheLogRefusesASecondVersionFromAStaleHead) {
  ASSERT_TRUE(AppendSync({.type = "thing", .id = "a"}, 2).ok());
  auto stale = AppendSync({.type = "thing", .id = "a"}, 1);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kUnavailable) << stale.status();
  EXPECT_THAT(std::string(stale.status().message()), ::testing::HasSubstr("decide again"));
  EXPECT_EQ(LogSize(), 2u) << "the stale decision was not appended";
  EXPECT_EQ(Head("a"), "2");
  auto after = AppendSync(Current("a"), 1);
  EXPECT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(Head("a"), "3");
}

TEST_F(AggregateWriterTest, AnEventTheProjectionsMissedBlocksWritesUntilTheyCaughtUp) {
  ASSERT_TRUE(AppendSync({.type = "thing", .id = "a"}, 1).ok());
  // Version 2 reaches the log, but the projections cannot apply it.
  failing_applies_ = 1;
  auto missed = AppendSync(Current("a"), 1);
  // Not a definite failure: the event is in the log and counts once the projections caught up.
  EXPECT_EQ(missed.status().code(), absl::StatusCode::kUnavailable) << missed.status();
  EXPECT_THAT(std::string(missed.status().message()), ::testing::HasSubstr("written to the log"));
  EXPECT_EQ(LogSize(), 2u);
  EXPECT_EQ(Head("a"), "1");
  // A command deciding on version 1 now would write a second version 2: every append waits
  // for the projections to catch up first, and is refused while they cannot.
  failing_applies_ = 1;
  auto refused = AppendSync({.type = "thing", .id = "b"}, 1);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr("catch up with the log"));
  EXPECT_EQ(LogSize(), 2u) << "nothing appended while the projections are behind";
  // Once they can, the next append catches them up, and is refused all the same: it was
  // decided on version 1 of "a", and would write a second version 2.
  auto stale = AppendSync({.type = "thing", .id = "a", .version = 1}, 1);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kUnavailable) << stale.status();
  EXPECT_EQ(Head("a"), "2");
  EXPECT_EQ(LogSize(), 2u) << "the stale decision was not appended";
  // Decided again on the caught-up state, it goes ahead.
  auto after = AppendSync(Current("a"), 1);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(Head("a"), "3");
  EXPECT_EQ(LogSize(), 3u);
  auto records = eventlog::ReadToEnd(*log_, "t", {{0, 0}, {1, 0}});
  ASSERT_TRUE(records.ok());
  int64_t last = 0;
  std::string prev;
  for (const eventlog::Record& r : *records) {
    auto env = *eventlog::DecodeEnvelope(r.value);
    if (env.aggregate_id() != "a") continue;
    EXPECT_EQ(env.aggregate_version(), last + 1) << "no version twice";
    EXPECT_TRUE(eventlog::VerifyEnvelope(env, prev).ok()) << "the chain holds";
    last = env.aggregate_version();
    prev = env.hash();
  }
  EXPECT_EQ(last, 3);
}

TEST_F(AggregateWriterTest, SerializeRunsCommandsOnOneKeyInOrder) {
  std::vector<int> order;
  writer_->Serialize("k", [&] { order.push_back(1); }, kNoBound);
  writer_->Serialize("k", [&] { order.push_back(2); }, kNoBound);
  writer_->Serialize("other", [&] { order.push_back(9); }, kNoBound);  // another key does not wait
  EXPECT_EQ(order, (std::vector<int>{1, 9}));
  writer_->Release("k");
  EXPECT_EQ(order, (std::vector<int>{1, 9, 2}));
  writer_->Release("k");
  writer_->Release("other");
  writer_->Serialize("k", [&] { order.push_back(3); }, kNoBound);
  EXPECT_EQ(order.back(), 3);
  writer_->Release("k");
}

// Commands that end at once (a refusal, a repeat) release inside the Release that ran them:
// a burst of them on one aggregate must not nest a stack frame per command.
TEST_F(AggregateWriterTest, ABurstOfCommandsThatEndAtOnceDoesNotDeepenTheStack) {
  constexpr int kCommands = 300000;
  int ran = 0;
  bool in_order = true;
  writer_->Serialize("k", [] {}, kNoBound);  // holds the key while the burst queues
  for (int i = 0; i < kCommands; ++i) {
    writer_->Serialize("k", [this, &ran, &in_order, i] {
      in_order = in_order && ran == i;
      ++ran;
      writer_->Release("k");
    }, kNoBound);
  }
  writer_->Release("k");
  EXPECT_EQ(ran, kCommands);
  EXPECT_TRUE(in_order);
  bool free_again = false;
  writer_->Serialize("k", [&] { free_again = true; }, kNoBound);
  EXPECT_TRUE(free_again);
  writer_->Release("k");
}

TEST_F(AggregateWriterTest, EmptyAppendIsAnError) {
  auto r = AppendSync({.type = "thing", .id = "a"}, 0);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

// The writer on both log backends at its edges: destroyed with appends in flight, and answering
// its clients when the log refuses a write.
//
// The shutdown tests are meant to run under AddressSanitizer too, where a callback that touches
// the destroyed writer is a heap-use-after-free. The main build has no sanitizer; build this
// test alone in a folder of its own:
//   cmake -S . -B /tmp/crm-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
//     -DCMAKE_CXX_FLAGS="-fsanitize=address -fno-omit-frame-pointer" \
//     -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address \
//     -DCRM_GOOGLE_PROTOS=$PWD/build/third_party/google-proto-files/node_modules/google-proto-files
//   ninja -C /tmp/crm-asan crm_projection_test
//   /tmp/crm-asan/libs/projection/crm_projection_test --gtest_filter='*AggregateWriterEdge*:*AggregateWriterShutdown*'

constexpr char kTopic[] = "crm.shutdown.events.v1";

// A writer of kTopic on `backend` ("embedded" or "kafka": librdkafka's mock cluster in process).
class AggregateWriterEdgeTest : public ::testing::Test {
 protected:
  void Open(const std::string& backend) {
    dir_ = NewTestDir("aggw-edge");
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    if (backend == "kafka") {
      auto mock = eventlog::MockCluster::Start(1);
      ASSERT_TRUE(mock.ok()) << mock.status();
      mock_ = *std::move(mock);
      ASSERT_TRUE(mock_->CreateTopic(kTopic, 2, 1).ok());
      eventlog::KafkaLogOptions o;
      o.bootstrap_servers = mock_->bootstrap_servers();
      o.append_timeout = absl::Seconds(5);
      auto log = eventlog::OpenKafkaLog(o);
      ASSERT_TRUE(log.ok()) << log.status();
      log_ = *std::move(log);
    } else {
      auto log = eventlog::OpenEmbeddedLog({.path = dir_ + "/log"});
      ASSERT_TRUE(log.ok()) << log.status();
      log_ = *std::move(log);
    }
    auto db = ProjectionDb::Open({.path = dir_ + "/proj"});
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    ProjectionDb* raw = db_.get();
    auto w = AggregateWriter::Open(log_.get(), db_.get(),
                                   {.topic = kTopic, .partitions = 2, .source = "/test", .clock = &clock_},
                                   [raw](const eventlog::Record& r, Batch& b) { return ApplyHeads(*raw, r, b); });
    ASSERT_TRUE(w.ok()) << w.status();
    writer_ = *std::move(w);
  }
  void TearDown() override {
    writer_.reset();
    db_.reset();
    log_.reset();
    mock_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // The aggregate's head as the projection holds it, as a command would read it.
  AggregateHead Current(const std::string& id) {
    return HeadIn(*db_, id);
  }
  static std::vector<NewEvent> OneEvent() {
    google::protobuf::Int64Value v;
    v.set_value(1);
    return {NewEvent::Of(v)};
  }

  std::string dir_;
  ManualClock clock_;
  std::unique_ptr<eventlog::MockCluster> mock_;
  std::unique_ptr<eventlog::Log> log_;
  std::unique_ptr<ProjectionDb> db_;
  std::unique_ptr<AggregateWriter> writer_;
};

class AggregateWriterShutdownTest : public AggregateWriterEdgeTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(Open(GetParam())); }
};

// Commands queued per aggregate (Serialize) and appends in the log's hands when the writer is
// destroyed: each command's answer comes exactly once, before the destructor returns, and the
// answers that start the next command of an aggregate (Release) find the writer's queues alive.
TEST_P(AggregateWriterShutdownTest, AnswersEveryCommandInFlightOnceBeforeTheWriterIsGone) {
  constexpr int kCommands = 400;
  constexpr int kAggregates = 16;
  struct Tally {
    absl::Mutex mu;
    std::vector<int> answers = std::vector<int>(kCommands, 0);
    int written = 0;
    std::vector<absl::Status> refusals;
  };
  auto tally = std::make_shared<Tally>();  // outlives the writer whatever the writer does
  AggregateWriter* w = writer_.get();
  for (int i = 0; i < kCommands; ++i) {
    const std::string id = absl::StrCat("a", i % kAggregates);
    w->Serialize(id, [this, w, tally, id, i] {
      w->Append(Current(id), {}, OneEvent(), [w, tally, id, i](absl::StatusOr<std::string> token) {
        {
          absl::MutexLock l(&tally->mu);
          ++tally->answers[i];
          if (token.ok()) {
            ++tally->written;
          } else {
            tally->refusals.push_back(token.status());
          }
        }
        w->Release(id);
      });
    }, kCommands);
  }
  int answered_before = 0;
  {
    absl::MutexLock l(&tally->mu);
    for (int n : tally->answers) answered_before += n > 0;
  }
  writer_.reset();
  absl::MutexLock l(&tally->mu);
  EXPECT_LT(answered_before, kCommands) << "every command had its answer already: the test did not test";
  for (int i = 0; i < kCommands; ++i) EXPECT_EQ(tally->answers[i], 1) << "command " << i;
  for (const absl::Status& s : tally->refusals) {
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
    EXPECT_TRUE(IsClientSafe(s)) << s;
  }
  EXPECT_EQ(tally->written + static_cast<int>(tally->refusals.size()), kCommands);
}

// A writer the broker fenced (a newer instance took the topic over) answers in our words: no
// librdkafka text reaches a client, and the code stays FAILED_PRECONDITION. The broker's answer
// is injected: the mock does not fence by itself (libs/eventlog/kafka_faults_test.cc).
TEST_F(AggregateWriterEdgeTest, AFencedWriterRefusesInOurWordsKeepingTheCode) {
  ASSERT_NO_FATAL_FAILURE(Open("kafka"));
  auto first = AwaitCallback<absl::StatusOr<std::string>>(
      [&](AggregateWriter::Done done) { writer_->Append({.type = "thing", .id = "z"}, {}, OneEvent(), std::move(done)); });
  ASSERT_TRUE(first.ok()) << first.status();
  constexpr int16_t kAddPartitionsToTxn = 24;
  rd_kafka_mock_push_request_errors(mock_->c_ptr(), kAddPartitionsToTxn, 1, RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
  auto fenced = AwaitCallback<absl::StatusOr<std::string>>(
      [&](AggregateWriter::Done done) { writer_->Append(Current("z"), {}, OneEvent(), std::move(done)); });
  ASSERT_EQ(fenced.status().code(), absl::StatusCode::kFailedPrecondition) << fenced.status();
  const std::string said(fenced.status().message());
  EXPECT_THAT(said, ::testing::HasSubstr("another one took over"));
  for (const char* foreign : {"commit_transaction", "begin_transaction", "fatal", "fenced by", "Broker:", "epoch"}) {
    EXPECT_THAT(said, ::testing::Not(::testing::HasSubstr(foreign))) << "librdkafka's text reached the client";
  }
  EXPECT_EQ(ToGrpcStatus(fenced.status()).error_message(), said);
}

// The log's UNAVAILABLE on the embedded backend names its folder or RocksDB's words; a
// projection commit that fails says what RocksDB said. Neither reaches a client but as an incident.
TEST_F(AggregateWriterEdgeTest, AProjectionThatCannotApplyReachesClientsAsAnIncidentWithoutItsFiles) {
  ASSERT_NO_FATAL_FAILURE(Open("embedded"));
  writer_.reset();
  ProjectionDb* raw = db_.get();
  std::atomic<int> failing{1};
  auto w = AggregateWriter::Open(log_.get(), db_.get(),
                                 {.topic = kTopic, .partitions = 2, .source = "/test", .clock = &clock_},
                                 [raw, &failing](const eventlog::Record& r, Batch& b) {
                                   if (failing.fetch_sub(1) > 0) {
                                     return absl::ResourceExhaustedError("IO error: No space left on device: /data/proj/000042.log");
                                   }
                                   return ApplyHeads(*raw, r, b);
                                 });
  ASSERT_TRUE(w.ok()) << w.status();
  writer_ = *std::move(w);
  auto missed = AwaitCallback<absl::StatusOr<std::string>>(
      [&](AggregateWriter::Done done) { writer_->Append({.type = "thing", .id = "p"}, {}, OneEvent(), std::move(done)); });
  ASSERT_EQ(missed.status().code(), absl::StatusCode::kUnavailable) << missed.status();
  EXPECT_THAT(std::string(missed.status().message()), ::testing::HasSubstr("written to the log"));
  // RocksDB's text stays out of the client's answer: an incident, whose id names the full text
  // in the server's log.
  EXPECT_THAT(ToGrpcStatus(missed.status()).error_message(), ::testing::HasSubstr("incident"));
  EXPECT_THAT(ToGrpcStatus(missed.status()).error_message(), ::testing::Not(::testing::HasSubstr("/data/proj")));
  // The projections are behind until the next append catches them up: that refusal too.
  failing = 1;
  auto refused = AwaitCallback<absl::StatusOr<std::string>>(
      [&](AggregateWriter::Done done) { writer_->Append({.type = "thing", .id = "q"}, {}, OneEvent(), std::move(done)); });
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  EXPECT_THAT(ToGrpcStatus(refused.status()).error_message(), ::testing::Not(::testing::HasSubstr("/data/proj")));
  writer_.reset();  // before `failing`, which its projection function uses
}

INSTANTIATE_TEST_SUITE_P(Backends, AggregateWriterShutdownTest, ::testing::Values("embedded", "kafka"),
                         [](const auto& info) { return info.param; });


// A log whose answers the test gives itself: each append goes to `base`, and base's answer is
// held until AnswerHeld() runs every held one inside one eventlog::AnswerGroup, as a log
// answers the appends of one group commit.
class HeldAnswersLog final : public eventlog::Log {
 public:
  explicit HeldAnswersLog(eventlog::Log* base) : base_(base) {}
  absl::Status CreateTopic(absl::string_view topic, int32_t partitions) override {
    return base_->CreateTopic(topic, partitions);
  }
  absl::StatusOr<int32_t> PartitionCount(absl::string_view topic) override { return base_->PartitionCount(topic); }
  absl::StatusOr<std::vector<int64_t>> EndOffsets(absl::string_view topic) override {
    return base_->EndOffsets(topic);
  }
  absl::StatusOr<std::unique_ptr<eventlog::Subscription>> Subscribe(absl::string_view topic,
                                                                   std::vector<eventlog::Position> from) override {
    return base_->Subscribe(topic, std::move(from));
  }
  absl::StatusOr<std::unique_ptr<eventlog::Writer>> OpenWriter(absl::string_view topic) override {
    CRM_ASSIGN_OR_RETURN(std::unique_ptr<eventlog::Writer> w, base_->OpenWriter(topic));
    return std::make_unique<HoldingWriter>(this, std::move(w));
  }

  // Waits until `n` answers are held, then runs them in log order as one group.
  bool AnswerHeld(size_t n) {
    std::vector<std::pair<eventlog::AppendCallback, absl::StatusOr<eventlog::Appended>>> held;
    {
      absl::MutexLock l(&mu_);
      auto ready = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return held_.size() >= n; };
      if (!mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Seconds(30))) return false;
      held.swap(held_);
    }
    eventlog::AnswerGroup group;
    for (auto& [done, result] : held) done(std::move(result));
    return true;
  }
  size_t held() {
    absl::MutexLock l(&mu_);
    return held_.size();
  }

 private:
  class HoldingWriter final : public eventlog::Writer {
   public:
    HoldingWriter(HeldAnswersLog* log, std::unique_ptr<eventlog::Writer> base) : log_(log), base_(std::move(base)) {}
    void Append(std::string key, std::vector<eventlog::Message> messages, eventlog::AppendCallback done) override {
      base_->Append(std::move(key), std::move(messages), Hold(std::move(done)));
    }
    void AppendExpecting(std::string key, std::vector<eventlog::Message> messages, std::string stream,
                         eventlog::ExpectedVersion expected, eventlog::AppendCallback done) override {
      base_->AppendExpecting(std::move(key), std::move(messages), std::move(stream), expected,
                             Hold(std::move(done)));
    }
    const std::string& topic() const override { return base_->topic(); }

   private:
    eventlog::AppendCallback Hold(eventlog::AppendCallback done) {
      return [log = log_, done = std::move(done)](absl::StatusOr<eventlog::Appended> a) mutable {
        absl::MutexLock l(&log->mu_);
        log->held_.emplace_back(std::move(done), std::move(a));
      };
    }
    HeldAnswersLog* log_;
    std::unique_ptr<eventlog::Writer> base_;
  };

  eventlog::Log* base_;
  absl::Mutex mu_;
  std::vector<std::pair<eventlog::AppendCallback, absl::StatusOr<eventlog::Appended>>> held_ ABSL_GUARDED_BY(mu_);
};

struct CommitCounter final : ProjectionDb::CommitObserver {
  void Committed(const Batch&) override { commits.fetch_add(1); }
  std::atomic<int> commits{0};
};

// A test folder with an embedded log (`options`, its path set here), a projection store and
// a clock, removed at the end; writers declared after it are gone first.
struct GroupBed {
  explicit GroupBed(const std::string& name, eventlog::EmbeddedLogOptions options = {}) : dir(NewTestDir(name)) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    options.path = dir + "/log";
    log = *eventlog::OpenEmbeddedLog(options);
    db = *ProjectionDb::Open({.path = dir + "/proj"});
  }
  ~GroupBed() {
    db.reset();
    log.reset();
    std::filesystem::remove_all(dir);
  }
  std::string dir;
  ManualClock clock;
  std::unique_ptr<eventlog::Log> log;
  std::unique_ptr<ProjectionDb> db;
};

// The appends a log answers together (one group commit) reach the projections in one batch,
// and each is answered only after that commit, with its own token; a refused append in the
// group answers as before, and holds the appends after it until the projections caught up.
TEST(AggregateWriterGroupTest, AppendsAnsweredTogetherCommitOnceAndAreAnsweredAfterIt) {
  GroupBed bed("aggw-group");
  ManualClock& clock = bed.clock;
  auto& base = bed.log;
  HeldAnswersLog log(base.get());
  ProjectionDb* store = bed.db.get();
  auto writer = *AggregateWriter::Open(&log, store, {.topic = "t", .partitions = 2, .source = "/test", .clock = &clock},
                                       [store](const eventlog::Record& r, Batch& b) { return ApplyHeads(*store, r, b); });
  CommitCounter counter;
  store->AddCommitObserver(&counter);

  absl::Mutex mu;
  std::map<std::string, absl::StatusOr<std::string>> answers;
  std::map<std::string, bool> applied_when_answered;
  auto append = [&](const std::string& name, const AggregateHead& head) {
    google::protobuf::Int64Value v;
    v.set_value(1);
    const size_t held = log.held();
    writer->Append(head, {}, {NewEvent::Of(v)}, [&, name](absl::StatusOr<std::string> t) {
      bool applied = false;
      if (t.ok()) applied = store->WaitFor(*DecodeToken(*t), absl::Now()).ok();
      absl::MutexLock l(&mu);
      answers.emplace(name, std::move(t));
      applied_when_answered[name] = applied;
    });
    // One at a time, so the log order is the order of the calls.
    ASSERT_TRUE(testing::WaitUntil("the log's answer", absl::Seconds(30), [&] { return log.held() == held + 1; },
                                   [&] { return log.held(); }));
  };
  append("a", {.type = "thing", .id = "a"});
  append("b", {.type = "thing", .id = "b"});
  append("a again", {.type = "thing", .id = "a"});  // a stale decision: the log refuses it
  append("c", {.type = "thing", .id = "c"});
  ASSERT_TRUE(log.AnswerHeld(4));

  absl::MutexLock l(&mu);
  ASSERT_EQ(answers.size(), 4u);
  EXPECT_EQ(counter.commits.load(), 1) << "one projection commit for the group";
  EXPECT_TRUE(answers.at("a").ok()) << answers.at("a").status();
  EXPECT_TRUE(answers.at("b").ok()) << answers.at("b").status();
  EXPECT_TRUE(applied_when_answered["a"]) << "answered after its rows were committed";
  EXPECT_TRUE(applied_when_answered["b"]);
  EXPECT_NE(*answers.at("a"), *answers.at("b")) << "each its own token";
  EXPECT_EQ(answers.at("a again").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(answers.at("a again").status().message()), ::testing::HasSubstr("decide again"));
  EXPECT_EQ(answers.at("c").status().code(), absl::StatusCode::kUnavailable) << answers.at("c").status();
  EXPECT_THAT(std::string(answers.at("c").status().message()), ::testing::HasSubstr("written to the log"));
  EXPECT_EQ(HeadIn(*store, "a").version, 1);
  EXPECT_EQ(HeadIn(*store, "b").version, 1);
  EXPECT_EQ(HeadIn(*store, "c").version, 0) << "applied once the projections caught up, not in the group";
  store->RemoveCommitObserver(&counter);
  writer.reset();
}

// An append the log refuses at once (a full queue) is answered inside the Append call, on the
// appending thread. A command started from another writer's answer makes that call inside
// the log's answer group (eventlog::AnswerGroup), which ends later and holds nothing the
// writer's destructor waits for: the answer must not wait for that group's end, or it comes
// after ~AggregateWriter returned (every `done` has run by then), on a destroyed writer.
TEST(AggregateWriterGroupTest, AnAppendRefusedAtOnceInsideAGroupIsAnsweredBeforeTheWriterIsGone) {
  // No room in the queue: every append is refused at once, nothing written.
  GroupBed bed("aggw-group-refused", {.max_queued_appends = 0});
  ManualClock& clock = bed.clock;
  auto& log = bed.log;
  ProjectionDb* store = bed.db.get();
  auto writer = *AggregateWriter::Open(log.get(), store,
                                       {.topic = "t", .partitions = 2, .source = "/test", .clock = &clock},
                                       [store](const eventlog::Record& r, Batch& b) { return ApplyHeads(*store, r, b); });
  std::atomic<int> answered{0};
  absl::Status got;
  bool answered_when_gone = false;
  // On a thread of its own, as a log's answering thread: a group left open there (the bug)
  // must not end on the destroyed writer, and ends with the thread unnoticed.
  std::thread answering([&] {
    auto* group = new eventlog::AnswerGroup;
    google::protobuf::Int64Value v;
    v.set_value(1);
    writer->Append({.type = "thing", .id = "a"}, {}, {NewEvent::Of(v)}, [&](absl::StatusOr<std::string> t) {
      got = t.status();
      answered.fetch_add(1);
    });
    writer.reset();
    answered_when_gone = answered.load() == 1;
    if (answered_when_gone) delete group;
  });
  answering.join();
  EXPECT_TRUE(answered_when_gone) << "a done ran after ~AggregateWriter returned, or never";
  EXPECT_EQ(answered.load(), 1);
  EXPECT_EQ(got.code(), absl::StatusCode::kResourceExhausted) << got;
}

// A record of the group the projection refuses (Finish's partial failure): the appends before
// it are committed from a clean batch without any of its rows, the checkpoint stops before
// it, it and the appends after it are answered "written, not applied", and the next append
// catches the projections up with all of them.
TEST(AggregateWriterGroupTest, ARecordTheProjectionRefusesInAGroupCommitsOnlyTheAppendsBeforeIt) {
  GroupBed bed("aggw-group-partial");
  ManualClock& clock = bed.clock;
  auto& base = bed.log;
  HeldAnswersLog log(base.get());
  ProjectionDb* store = bed.db.get();
  std::atomic<bool> refuse{true};
  // Writes part of "bad"'s rows into the batch, then refuses it.
  auto apply = [store, &refuse](const eventlog::Record& r, Batch& b) -> absl::Status {
    CRM_RETURN_IF_ERROR(ApplyHeads(*store, r, b));
    if (refuse.load() && eventlog::EnvelopeOf(r)->aggregate_id() == "bad") {
      b.Put("junk/bad", "part of a refused record");
      return absl::InternalError("this projection cannot apply bad");
    }
    return absl::OkStatus();
  };
  // One partition: the three appends follow each other in it.
  auto writer = *AggregateWriter::Open(&log, store, {.topic = "t", .partitions = 1, .source = "/test", .clock = &clock},
                                       apply);
  CommitCounter counter;
  store->AddCommitObserver(&counter);

  absl::Mutex mu;
  std::map<std::string, absl::StatusOr<std::string>> answers;
  std::map<std::string, bool> applied_when_answered;
  google::protobuf::Int64Value v;
  v.set_value(1);
  for (const std::string id : {"a", "bad", "c"}) {
    const size_t held = log.held();
    writer->Append({.type = "thing", .id = id}, {}, {NewEvent::Of(v)}, [&, id](absl::StatusOr<std::string> t) {
      const bool applied = t.ok() && store->WaitFor(*DecodeToken(*t), absl::Now()).ok();
      absl::MutexLock l(&mu);
      answers.emplace(id, std::move(t));
      applied_when_answered[id] = applied;
    });
    ASSERT_TRUE(testing::WaitUntil("the log's answer", absl::Seconds(30), [&] { return log.held() == held + 1; },
                                   [&] { return log.held(); }));
  }
  ASSERT_TRUE(log.AnswerHeld(3));
  {
    absl::MutexLock l(&mu);
    ASSERT_EQ(answers.size(), 3u);
    EXPECT_TRUE(answers.at("a").ok()) << answers.at("a").status();
    EXPECT_TRUE(applied_when_answered["a"]) << "answered after its rows were committed";
    for (const char* id : {"bad", "c"}) {
      const absl::Status& s = answers.at(id).status();
      EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << id << ": " << s;
      EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("written to the log")) << id;
    }
  }
  EXPECT_EQ(counter.commits.load(), 1) << "the appends before the refused one, in one commit";
  EXPECT_EQ(HeadIn(*store, "a").version, 1);
  EXPECT_EQ(HeadIn(*store, "bad").version, 0) << "none of the refused record's rows";
  std::string junk;
  EXPECT_TRUE(store->db()->Get(rocksdb::ReadOptions(), "junk/bad", &junk).IsNotFound()) << junk;
  EXPECT_EQ(HeadIn(*store, "c").version, 0);
  EXPECT_EQ(store->NextOffset("t", 0), 1) << "the checkpoint stops before the refused record";

  // Once the projection can apply it, the next append catches up first, and its caller decides
  // again on the caught-up state.
  refuse = false;
  absl::Status again;
  writer->Append({.type = "thing", .id = "d"}, {}, {NewEvent::Of(v)},
                 [&](absl::StatusOr<std::string> t) { again = t.status(); });
  EXPECT_EQ(again.code(), absl::StatusCode::kUnavailable) << again;
  EXPECT_THAT(std::string(again.message()), ::testing::HasSubstr("caught up")) << again;
  EXPECT_EQ(HeadIn(*store, "bad").version, 1);
  EXPECT_EQ(HeadIn(*store, "c").version, 1);
  EXPECT_EQ(store->NextOffset("t", 0), 3);

  store->RemoveCommitObserver(&counter);
  writer.reset();
}

// A writer closed from inside another writer's answer, on the log's answering thread, while
// one of its appends waits, written, for that thread: at the close's deadline the log answers
// it there, inside the group being answered. That answer is the close's, not the group's:
// it must have run when ~AggregateWriter returns, not at the group's end on a destroyed
// writer.
TEST(AggregateWriterGroupTest, AWriterClosedInsideAnotherWritersAnswerAnswersItsWaitingAppendsFirst) {
  GroupBed bed("aggw-group-close", {.close_timeout = absl::Milliseconds(100)});
  ManualClock& clock = bed.clock;
  auto& log = bed.log;
  ProjectionDb* store = bed.db.get();
  auto apply = [store](const eventlog::Record& r, Batch& b) { return ApplyHeads(*store, r, b); };
  auto x = *AggregateWriter::Open(log.get(), store, {.topic = "x", .partitions = 1, .source = "/x", .clock = &clock},
                                  apply);
  auto w = *AggregateWriter::Open(log.get(), store, {.topic = "w", .partitions = 1, .source = "/w", .clock = &clock},
                                  apply);
  google::protobuf::Int64Value v;
  v.set_value(1);
  absl::Notification x_answering;
  std::atomic<int> w_answers{0};
  absl::Status w_status;
  bool waiting_was_written = false;
  bool w_answered_when_gone = false;
  x->Append({.type = "thing", .id = "a"}, {}, {NewEvent::Of(v)}, [&](absl::StatusOr<std::string>) {
    x_answering.Notify();
    // W's append is written behind this group and waits for this thread to answer it.
    waiting_was_written = testing::WaitUntil(
        "w's append written", absl::Seconds(30),
        [&] { return log->EndOffsets("w").value_or(std::vector<int64_t>{0})[0] == 1; },
        [&] { return log->EndOffsets("w").value_or(std::vector<int64_t>{0})[0]; });
    w.reset();
    w_answered_when_gone = w_answers.load() == 1;
  });
  ASSERT_TRUE(x_answering.WaitForNotificationWithTimeout(absl::Seconds(30)));
  w->Append({.type = "thing", .id = "b"}, {}, {NewEvent::Of(v)}, [&](absl::StatusOr<std::string> t) {
    w_status = t.status();
    w_answers.fetch_add(1);
  });
  ASSERT_TRUE(testing::WaitUntil("w's answer", absl::Seconds(30), [&] { return w_answers.load() >= 1; },
                                 [&] { return w_answers.load(); }));
  x.reset();  // after x's answer returned: no done of x runs any more
  EXPECT_TRUE(waiting_was_written);
  EXPECT_TRUE(w_answered_when_gone) << "a done of w ran after ~AggregateWriter returned";
  EXPECT_EQ(w_answers.load(), 1);
  EXPECT_EQ(w_status.code(), absl::StatusCode::kUnavailable) << w_status;
}
}  // namespace
}  // namespace crm::projection
