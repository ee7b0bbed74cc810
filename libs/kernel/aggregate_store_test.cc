#include "libs/kernel/aggregate_store.h"

#include <atomic>
#include <filesystem>
#include <functional>
#include <thread>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "crm/kernel/testing/v1/counter.pb.h"
#include "google/protobuf/util/message_differencer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/grpc_status.h"
#include "libs/common/proto_time.h"
#include "libs/common/temp_dir_testing.h"
#include "libs/eventlog/embedded_log.h"
#include "libs/eventlog/envelope.h"
#include "libs/kernel/target_command.h"

namespace crm::kernel {
namespace {

using testing::v1::CounterAdded;
using testing::v1::CounterReset;
using testing::v1::CounterState;
using CounterEvent = std::variant<CounterAdded, CounterReset>;

void ApplyCounter(CounterState& s, const CounterEvent& e, int64_t version, absl::Time at, const std::string& actor) {
  if (const auto* add = std::get_if<CounterAdded>(&e)) {
    s.set_total(s.total() + add->amount());
  } else {
    s.set_total(0);
  }
  s.set_version(version);
  *s.mutable_update_time() = ToProto(at);
  s.set_updated_by(actor);
}

absl::StatusOr<CounterEvent> UnpackCounter(const common::v1::EventEnvelope& e) {
  if (eventlog::Is<CounterAdded>(e)) return eventlog::PayloadAs<CounterAdded>(e);
  if (eventlog::Is<CounterReset>(e)) return eventlog::PayloadAs<CounterReset>(e);
  return absl::DataLossError(absl::StrCat("not a counter event: ", e.event_type()));
}

// The unique-key tests treat a counter's total as a value one counter may hold (customers'
// phone): index rows u/<total>/<id>.
projection::IndexRows TotalIndex(const CounterState& s) {
  if (s.total() == 0) return {};
  return {{absl::StrCat("u/", s.total(), "/", s.id()), ""}};
}

UniqueKey TotalKey(int64_t total) {
  return {.prefix = absl::StrCat("u/", total, "/"), .reason = "DUPLICATE_TOTAL", .field = "counter.total",
          .what = "total", .collection = "counters"};
}

struct CounterKind {
  static constexpr const char* kType = "counter";
  static std::string Row(absl::string_view id) { return absl::StrCat("a/", id); }
  // A stranger may not see a counter, to test repeats that must not show it.
  static bool Visible(const Caller& c, const CounterState&) { return c.role != "stranger"; }
  static void Apply(CounterState& s, const CounterEvent& e, int64_t version, absl::Time at, const std::string& actor) {
    ApplyCounter(s, e, version, at, actor);
  }
};

const Caller kAlice{"alice", "rep", "t1"};

// The projection as services have it: the record's envelope, FoldRow.
absl::Status ApplyCounterRecord(projection::ProjectionDb& db, const eventlog::Record& r, projection::Batch& b) {
  CRM_ASSIGN_OR_RETURN(common::v1::EventEnvelope env, eventlog::EnvelopeOf(r));
  projection::FoldedEvent<CounterState, CounterEvent> folded;
  return projection::FoldRow<CounterState, CounterEvent>(db, r, env, b, CounterKind::Row(env.aggregate_id()),
                                                         &UnpackCounter, &TotalIndex, &ApplyCounter, &folded)
      .status();
}

class AggregateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = NewTestDir("kernel");
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    log_ = *eventlog::OpenEmbeddedLog({.path = dir_ + "/log"});
    db_ = *projection::ProjectionDb::Open({.path = dir_ + "/proj"});
    auto* db = db_.get();
    auto w = projection::AggregateWriter::Open(
        log_.get(), db_.get(), {.topic = "t", .partitions = 2, .source = "/test", .clock = &clock_},
        [this, db](const eventlog::Record& r, projection::Batch& b) -> absl::Status {
          if (apply_hook_) apply_hook_();
          if (fail_apply_) return absl::DataLossError("the test refuses this record");
          return ApplyCounterRecord(*db, r, b);
        });
    ASSERT_TRUE(w.ok()) << w.status();
    writer_ = std::move(*w);
    store_ = std::make_unique<AggregateStore>(writer_.get());
  }
  void TearDown() override {
    store_.reset();
    writer_.reset();
    db_.reset();
    log_.reset();
    std::filesystem::remove_all(dir_);
  }

  Command<CounterState, CounterEvent> Add(const std::string& id, int64_t amount, const std::string& request_id = "") {
    Command<CounterState, CounterEvent> cmd;
    cmd.caller = kAlice;
    cmd.id = id;
    cmd.request_id = request_id;
    cmd.decide = [this, amount](const CounterState*) -> absl::StatusOr<std::vector<CounterEvent>> {
      ++decisions_;
      CounterAdded a;
      a.set_amount(amount);
      return std::vector<CounterEvent>{a};
    };
    return cmd;
  }

  // Add with the total as a unique key (see TotalIndex).
  Command<CounterState, CounterEvent> Keyed(const std::string& id, int64_t amount, const std::string& request_id = "") {
    auto cmd = Add(id, amount, request_id);
    cmd.reserve_keys = [](const CounterState& after) {
      return after.total() != 0 ? std::vector<UniqueKey>{TotalKey(after.total())} : std::vector<UniqueKey>{};
    };
    return cmd;
  }

  // Makes the projection's next apply (on the writer's thread) wait until `release_`, so that
  // the command being applied stays in flight; `entered_` tells it got there.
  void HoldNextApply() {
    apply_hook_ = [this] {
      if (held_once_.exchange(true)) return;
      entered_.Notify();
      release_.WaitForNotificationWithTimeout(absl::Seconds(30));
    };
  }

  absl::StatusOr<Written<CounterState>> Run(Command<CounterState, CounterEvent> cmd) {
    absl::Notification done;
    absl::StatusOr<Written<CounterState>> out = absl::UnknownError("no answer");
    store_->Execute<CounterKind>(std::move(cmd), [&](absl::StatusOr<Written<CounterState>> w) {
      out = std::move(w);
      done.Notify();
    });
    if (!done.WaitForNotificationWithTimeout(absl::Seconds(10))) return absl::DeadlineExceededError("no answer");
    return out;
  }

  // The committed state row, parsed.
  CounterState Row(const std::string& id) {
    auto s = projection::ReadStateRow<CounterState>(db_->db(), CounterKind::Row(id));
    EXPECT_TRUE(s.ok() && s->has_value()) << id;
    return s.ok() && s->has_value() ? **s : CounterState();
  }
  size_t LogSize() { return eventlog::ReadToEnd(*log_, "t", {{0, 0}, {1, 0}})->size(); }

  std::atomic<int> decisions_{0};
  std::function<void()> apply_hook_;  // set before the commands it affects start
  std::atomic<bool> fail_apply_{false};  // the projection refuses records while set
  std::atomic<bool> held_once_{false};
  absl::Notification entered_, release_;
  std::string dir_;
  ManualClock clock_;
  std::unique_ptr<eventlog::Log> log_;
  std::unique_ptr<projection::ProjectionDb> db_;
  std::unique_ptr<projection::AggregateWriter> writer_;
  std::unique_ptr<AggregateStore> store_;
};

MATCHER_P(EqualsProto, want, "") { return google::protobuf::util::MessageDifferencer::Equals(arg, want); }

TEST_F(AggregateStoreTest, CreateAndUpdateReadOnceFoldOnceSealOncePerEventAndAnswerTheCommittedRow) {
  const int64_t hashes = eventlog::EnvelopeHashCount();
  auto created = Run(Add("c1", 5, "req-1"));
  ASSERT_TRUE(created.ok()) << created.status();
  StoreCounters c = store_->counters();
  EXPECT_EQ(c.state_reads, 1) << "no read after the commit";
  EXPECT_EQ(c.request_lookups, 1);
  EXPECT_EQ(c.folds, 1);
  EXPECT_EQ(c.seals, 1);
  EXPECT_EQ(c.appends, 1);
  // The seal's hash only: the projection applies the sealed envelope without hashing it again.
  EXPECT_EQ(eventlog::EnvelopeHashCount() - hashes, 1);
  // ... and takes the kernel's fold: no row read, no payload unpacked, no second fold.
  projection::ProjectionDb::FoldCounters p = db_->fold_counters();
  EXPECT_EQ(p.rows_read, 0);
  EXPECT_EQ(p.folds, 0);
  EXPECT_EQ(p.taken, 1);
  EXPECT_FALSE(created->token.empty());
  EXPECT_EQ(created->state.version(), 1);
  EXPECT_EQ(created->state.total(), 5);
  EXPECT_EQ(created->state.updated_by(), "alice");
  EXPECT_THAT(created->state, EqualsProto(Row("c1")));

  // Two events in one command: one read, a fold and a seal per event.
  auto cmd = Add("c1", 0, "req-2");
  cmd.decide = [](const CounterState* s) -> absl::StatusOr<std::vector<CounterEvent>> {
    CounterAdded a;
    a.set_amount(s->total());
    return std::vector<CounterEvent>{CounterReset(), a};
  };
  clock_.Advance(absl::Minutes(1));
  auto updated = Run(std::move(cmd));
  ASSERT_TRUE(updated.ok()) << updated.status();
  c = store_->counters();
  EXPECT_EQ(c.state_reads, 2);
  EXPECT_EQ(c.request_lookups, 2);
  EXPECT_EQ(c.folds, 3);
  EXPECT_EQ(c.seals, 3);
  EXPECT_EQ(c.appends, 2);
  p = db_->fold_counters();
  EXPECT_EQ(p.rows_read, 0);
  EXPECT_EQ(p.folds, 0);
  EXPECT_EQ(p.taken, 3) << "one per event, the middle state included";
  EXPECT_EQ(updated->state.version(), 3);
  EXPECT_EQ(updated->state.total(), 5);
  EXPECT_THAT(updated->state, EqualsProto(Row("c1"))) << "reply == the row Get would read";
  EXPECT_EQ(LogSize(), 3u);
}

TEST_F(AggregateStoreTest, RepeatedRequestIdIsAnsweredFromTheStateWithoutDecidingOrAppending) {
  auto first = Run(Add("c1", 5, "req-1"));
  ASSERT_TRUE(first.ok()) << first.status();
  auto again = Run(Add("c1", 5, "req-1"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_THAT(again->state, EqualsProto(first->state));
  EXPECT_TRUE(again->token.empty());
  EXPECT_EQ(decisions_.load(), 1);
  EXPECT_EQ(store_->counters().appends, 1);
  EXPECT_EQ(store_->counters().request_lookups, 2) << "one lookup per command";
  EXPECT_EQ(LogSize(), 1u);

  auto stranger = Add("c1", 5, "req-1");
  stranger.caller = {"mallory", "stranger", ""};
  EXPECT_EQ(Run(std::move(stranger)).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(AggregateStoreTest, RequestIdOfAnotherAggregateIsRefusedUnlessTheLeaseHoldsIt) {
  ASSERT_TRUE(Run(Add("c1", 5, "req-1")).ok());
  auto other = Run(Add("c2", 1, "req-1"));
  EXPECT_EQ(other.status().code(), absl::StatusCode::kInvalidArgument) << other.status();
  EXPECT_THAT(other.status().message(), ::testing::HasSubstr("request_id"));
  EXPECT_EQ(LogSize(), 1u);

  // A command of a two-aggregate request resumed after its first write: the lease holds both.
  absl::Notification done;
  absl::StatusOr<Written<CounterState>> out = absl::UnknownError("");
  store_->Acquire({"c2", "c1"}, [&](absl::StatusOr<Lease> lease) {
    ASSERT_TRUE(lease.ok());
    store_->ExecuteHeld<CounterKind>(*lease, Add("c2", 1, "req-1"), [&](absl::StatusOr<Written<CounterState>> w) {
      out = std::move(w);
      done.Notify();
    });
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->state.version(), 1);
  EXPECT_EQ(LogSize(), 2u);
}

TEST_F(AggregateStoreTest, StaleExpectedVersionIsAbortedUnlessTheCommandIsRefusedAnywayAndWritesNothing) {
  ASSERT_TRUE(Run(Add("c1", 5)).ok());
  ASSERT_TRUE(Run(Add("c1", 5)).ok());

  auto stale = Add("c1", 1);
  stale.expected = eventlog::ExpectedVersion::Exact(1);
  stale.expected_field = "etag";
  auto out = Run(std::move(stale));
  EXPECT_EQ(out.status().code(), absl::StatusCode::kAborted) << out.status();
  auto exists = Add("c1", 1);
  exists.expected = eventlog::ExpectedVersion::NoStream();
  EXPECT_EQ(Run(std::move(exists)).status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(LogSize(), 2u);
  EXPECT_EQ(Row("c1").version(), 2);

  // The command's own refusal comes first: a caller who may not see or change the aggregate
  // learns nothing of its version from a stale etag, and its `after` hook hears of no write.
  bool after_called = false, after_wrote = true;
  auto hidden = Add("c1", 1);
  hidden.expected = eventlog::ExpectedVersion::Exact(1);
  hidden.decide = [&](const CounterState*) -> absl::StatusOr<Decision<CounterEvent>> {
    return absl::PermissionDeniedError("not yours");
  };
  EXPECT_EQ(Run(std::move(hidden)).status().code(), absl::StatusCode::kPermissionDenied);
  auto stale_with_hook = Add("c1", 1);
  stale_with_hook.expected = eventlog::ExpectedVersion::Exact(1);
  stale_with_hook.decide = [&](const CounterState*) -> absl::StatusOr<Decision<CounterEvent>> {
    Decision<CounterEvent> d;
    d.events.push_back(CounterAdded());
    d.after = [&](bool wrote) {
      after_called = true;
      after_wrote = wrote;
    };
    return d;
  };
  EXPECT_EQ(Run(std::move(stale_with_hook)).status().code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(after_called);
  EXPECT_FALSE(after_wrote);
  EXPECT_EQ(LogSize(), 2u);

  auto current = Add("c1", 1);
  current.expected = eventlog::ExpectedVersion::Exact(2);
  auto ok = Run(std::move(current));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->state.version(), 3);
  auto fresh = Add("c9", 1);
  fresh.expected = eventlog::ExpectedVersion::NoStream();
  EXPECT_TRUE(Run(std::move(fresh)).ok());
}

TEST(ExpectedFromEtagTest, ReadsEtagsAsParseEtagReturnsThem) {
  EXPECT_EQ(ExpectedFromEtag(0), eventlog::ExpectedVersion::Any());
  EXPECT_EQ(ExpectedFromEtag(kEtagNothingWritten), eventlog::ExpectedVersion::NoStream());
  EXPECT_EQ(ExpectedFromEtag(7), eventlog::ExpectedVersion::Exact(7));
  EXPECT_TRUE(CheckExpected(ExpectedFromEtag(kEtagNothingWritten), 0, "counter", "etag").ok());
  EXPECT_EQ(CheckExpected(eventlog::ExpectedVersion::Exact(0), 3, "counter", "etag").code(),
            absl::StatusCode::kInvalidArgument)
      << "Exact(0) is not read as 'any'";
}

TEST_F(AggregateStoreTest, ABulkRequestIdChangesEachAggregateOnceAndRepeatsPerAggregate) {
  for (const char* id : {"c1", "c2", "c3"}) {
    auto cmd = Add(id, 1, "bulk-1");
    cmd.request_spans_aggregates = true;
    auto out = Run(std::move(cmd));
    ASSERT_TRUE(out.ok()) << id << ": " << out.status();
    EXPECT_FALSE(out->token.empty());
  }
  auto again = Add("c2", 1, "bulk-1");
  again.request_spans_aggregates = true;
  auto out = Run(std::move(again));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(out->token.empty()) << "a repeat for c2";
  EXPECT_EQ(LogSize(), 3u);
}

// A bulk request changes more aggregates than one seek of its r/ rows reads: a retry must still
// find each one's own row, however late it sorts, and not apply the change twice.
TEST_F(AggregateStoreTest, ABulkRequestOverMoreAggregatesThanOneSeekReadsRepeatsEachOnce) {
  const size_t n = AggregateStore::kMaxRequestHolders + 4;
  for (size_t i = 0; i < n; ++i) {
    auto cmd = Add(absl::StrCat("t", 100 + i), 1, "bulk-2");
    cmd.request_spans_aggregates = true;
    ASSERT_TRUE(Run(std::move(cmd)).ok()) << i;
  }
  auto last = Add(absl::StrCat("t", 100 + n - 1), 1, "bulk-2");  // its row sorts after the first 16
  last.request_spans_aggregates = true;
  auto out = Run(std::move(last));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(out->token.empty()) << "answered as a repeat";
  EXPECT_EQ(out->state.version(), 1);
  EXPECT_EQ(LogSize(), n);
}

// The same for a request id whose seek is filled by rows of longer request ids sharing its
// prefix ("req" and "req/0" ... "req/15"): its own row is still found.
TEST_F(AggregateStoreTest, ARepeatIsFoundBehindAFullSeekOfLongerRequestIds) {
  for (size_t i = 0; i < AggregateStore::kMaxRequestHolders; ++i) {
    ASSERT_TRUE(Run(Add(absl::StrCat("a", i), 1, absl::StrCat("req/", i))).ok()) << i;
  }
  ASSERT_TRUE(Run(Add("z", 1, "req")).ok());  // "r/req/z" sorts after every "r/req/<n>/..."
  auto again = Run(Add("z", 1, "req"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->token.empty()) << "answered as a repeat";
  EXPECT_EQ(again->state.version(), 1);
}

TEST_F(AggregateStoreTest, RequestIdLookupIgnoresLongerRequestIdsSharingItsPrefix) {
  // "req" and "req/2" share the seek's prefix r/req/: the row of "req/2" is no reuse of "req".
  ASSERT_TRUE(Run(Add("c1", 1, "req/2")).ok());
  auto out = Run(Add("c2", 1, "req"));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->state.version(), 1);
  EXPECT_EQ(LogSize(), 2u);
}

TEST_F(AggregateStoreTest, ConcurrentCommandsOnOneAggregateGetGaplessVersions) {
  constexpr int kCommands = 16;
  std::vector<int64_t> versions;
  absl::Mutex mu;
  std::atomic<int> answered{0};
  absl::Notification all;
  std::vector<std::thread> threads;
  for (int i = 0; i < kCommands; ++i) {
    threads.emplace_back([&] {
      store_->Execute<CounterKind>(Add("hot", 1), [&](absl::StatusOr<Written<CounterState>> w) {
        {
          absl::MutexLock l(&mu);
          versions.push_back(w.ok() ? w->state.version() : -1);
        }
        if (++answered == kCommands) all.Notify();
      });
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(all.WaitForNotificationWithTimeout(absl::Seconds(20)));
  std::sort(versions.begin(), versions.end());
  for (int i = 0; i < kCommands; ++i) EXPECT_EQ(versions[i], i + 1);
  EXPECT_EQ(Row("hot").version(), kCommands);
  EXPECT_EQ(Row("hot").total(), kCommands);
}

TEST_F(AggregateStoreTest, TwoAggregateLeasesInBothOrdersDoNotDeadlock) {
  constexpr int kRounds = 50;
  std::atomic<int> finished{0};
  absl::Notification all;
  auto both = [&](std::vector<std::string> ids) {
    store_->Acquire(std::move(ids), [&](absl::StatusOr<Lease> lease) {
      ASSERT_TRUE(lease.ok());
      // Both commands under the one lease, the second after the first answered.
      store_->ExecuteHeld<CounterKind>(*lease, Add("x", 1), [&, lease = *lease](absl::StatusOr<Written<CounterState>> w) {
        EXPECT_TRUE(w.ok()) << w.status();
        store_->ExecuteHeld<CounterKind>(lease, Add("y", 1), [&](absl::StatusOr<Written<CounterState>> w2) {
          EXPECT_TRUE(w2.ok()) << w2.status();
          if (++finished == 2 * kRounds) all.Notify();
        });
      });
    });
  };
  std::thread a([&] {
    for (int i = 0; i < kRounds; ++i) both({"x", "y"});
  });
  std::thread b([&] {
    for (int i = 0; i < kRounds; ++i) both({"y", "x"});
  });
  a.join();
  b.join();
  ASSERT_TRUE(all.WaitForNotificationWithTimeout(absl::Seconds(30))) << finished.load() << " finished";
  EXPECT_EQ(Row("x").version(), 2 * kRounds);
  EXPECT_EQ(Row("y").version(), 2 * kRounds);
}

TEST_F(AggregateStoreTest, LeaseWaitersRunInArrivalOrderOnceReleasedWithoutBlockingTheirThread) {
  std::optional<Lease> first;
  store_->Acquire({"k"}, [&](absl::StatusOr<Lease> l) { first = *l; });
  ASSERT_TRUE(first.has_value());
  std::vector<int> order;
  for (int i = 0; i < 3; ++i) {
    // Returns at once although "k" is held: the waiter is queued, not a blocked thread.
    store_->Acquire({"k", absl::StrCat("o", i)}, [&order, i](absl::StatusOr<Lease> l) {
      ASSERT_TRUE(l.ok());
      order.push_back(i);
    });
  }
  EXPECT_TRUE(order.empty());
  first.reset();
  EXPECT_THAT(order, ::testing::ElementsAre(0, 1, 2));
}

// One aggregate flooded with commands (a hostile client, a runaway reaction) cannot grow its
// queue without bound: past the limit a lease is refused at once, retryably, holding nothing.
TEST_F(AggregateStoreTest, WaitersForOneAggregateAreBoundedAndARefusedLeaseHoldsNothing) {
  store_ = std::make_unique<AggregateStore>(writer_.get(), AggregateStore::Options{.max_waiting_per_aggregate = 2});
  std::optional<Lease> first;
  store_->Acquire({"x"}, [&](absl::StatusOr<Lease> l) { first = *l; });
  ASSERT_TRUE(first.has_value());
  int granted = 0;
  for (int i = 0; i < 2; ++i) {
    store_->Acquire({"x"}, [&](absl::StatusOr<Lease> l) {
      ASSERT_TRUE(l.ok()) << l.status();
      ++granted;
    });
  }
  absl::Status refused;
  // "a" is taken first (ids are sorted), then "x" is full: "a" must be given back.
  store_->Acquire({"x", "a"}, [&](absl::StatusOr<Lease> l) { refused = l.status(); });
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_EQ(ForClient(refused).message(), refused.message()) << "backpressure, not an incident";
  bool a_free = false;
  store_->Acquire({"a"}, [&](absl::StatusOr<Lease> l) { a_free = l.ok(); });
  EXPECT_TRUE(a_free) << "the refused lease still held a";
  first.reset();
  EXPECT_EQ(granted, 2) << "the queued waiters ran once the lease was released";
  bool again = false;
  store_->Acquire({"x"}, [&](absl::StatusOr<Lease> l) { again = l.ok(); });
  EXPECT_TRUE(again);
}

// A command that waited for its aggregate past its caller's deadline is not started: its
// client was told DEADLINE_EXCEEDED, so writing it would be a change nobody saw succeed.
TEST_F(AggregateStoreTest, ACommandWhoseDeadlinePassedWhileItWaitedWritesNothingAndHoldsNothing) {
  std::optional<Lease> first;
  store_->Acquire({"c1"}, [&](absl::StatusOr<Lease> l) { first = *l; });
  ASSERT_TRUE(first.has_value());
  auto late = Add("c1", 5, "rid-late");
  late.caller.deadline = absl::Now() + absl::Milliseconds(20);
  absl::Notification answered;
  absl::Status status;
  store_->Execute<CounterKind>(std::move(late), [&](absl::StatusOr<Written<CounterState>> w) {
    status = w.status();
    answered.Notify();
  });
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_FALSE(answered.HasBeenNotified()) << "a waiter is answered when it is granted, not before";
  first.reset();
  ASSERT_TRUE(answered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  EXPECT_EQ(decisions_.load(), 0);
  EXPECT_EQ(LogSize(), 0u);
  EXPECT_EQ(store_->counters().keys_in_flight, 0) << "the request id is not held";
  // The lease went back, and the same request runs once a caller still waits for it.
  auto on_time = Add("c1", 5, "rid-late");
  on_time.caller.deadline = absl::Now() + absl::Seconds(10);
  EXPECT_TRUE(Run(std::move(on_time)).ok());
  EXPECT_EQ(LogSize(), 1u);
}

// An aggregate written again is kept: the next command on it reads no row, and its reply is
// the row the projection committed.
TEST_F(AggregateStoreTest, AHotAggregateIsDecidedOnItsCachedStateWithoutAReadAndEqualsItsRow) {
  ASSERT_TRUE(Run(Add("c1", 1)).ok());
  ASSERT_TRUE(Run(Add("c1", 2)).ok());  // the second write is cached
  const StoreCounters before = store_->counters();
  auto third = Run(Add("c1", 3));
  ASSERT_TRUE(third.ok()) << third.status();
  const StoreCounters after = store_->counters();
  EXPECT_EQ(after.state_reads - before.state_reads, 0);
  EXPECT_EQ(after.cache_hits - before.cache_hits, 1);
  EXPECT_EQ(third->state.total(), 6);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(third->state, Row("c1")));
  // A create is not cached: the next command on it reads its row.
  ASSERT_TRUE(Run(Add("c2", 1)).ok());
  const StoreCounters created = store_->counters();
  ASSERT_TRUE(Run(Add("c2", 1)).ok());
  EXPECT_EQ(store_->counters().state_reads - created.state_reads, 1);
}

// Any other commit of a cached row (a catch-up, a follower, a repair) drops it, so the next
// command decides on the row as committed, not on the cache.
TEST_F(AggregateStoreTest, ACommitOfACachedRowByAnyoneElseDropsIt) {
  ASSERT_TRUE(Run(Add("c1", 1)).ok());
  ASSERT_TRUE(Run(Add("c1", 1)).ok());
  CounterState changed = Row("c1");
  changed.set_total(100);
  projection::Batch b;
  b.Put(CounterKind::Row("c1"), projection::DeterministicBytes(changed));
  ASSERT_TRUE(db_->Commit(b, "other-topic", 0, 1).ok());
  const StoreCounters before = store_->counters();
  auto next = Run(Add("c1", 1));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->state.total(), 101) << "decided on the committed row";
  EXPECT_EQ(store_->counters().state_reads - before.state_reads, 1);
  EXPECT_EQ(store_->counters().cache_hits - before.cache_hits, 0);
}

// A failed append leaves nothing cached, and the cache holds at most Options::cached_states.
TEST_F(AggregateStoreTest, TheCacheIsBoundedAndKeepsNoStateOfAFailedAppend) {
  store_ = std::make_unique<AggregateStore>(writer_.get(), AggregateStore::Options{.cached_states = 2});
  for (const char* id : {"a", "b", "c"}) {
    ASSERT_TRUE(Run(Add(id, 1)).ok());
    ASSERT_TRUE(Run(Add(id, 1)).ok());
  }
  StoreCounters before = store_->counters();
  ASSERT_TRUE(Run(Add("a", 1)).ok());  // the oldest went first
  EXPECT_EQ(store_->counters().state_reads - before.state_reads, 1);
  before = store_->counters();
  ASSERT_TRUE(Run(Add("c", 1)).ok());
  EXPECT_EQ(store_->counters().cache_hits - before.cache_hits, 1);

  // The projection refuses the next apply: the append is not acknowledged, and the state the
  // command folded must not be served to the next one.
  apply_hook_ = [this] {
    if (!held_once_.exchange(true)) fail_apply_ = true;
  };
  auto failed = Run(Add("c", 50));
  EXPECT_FALSE(failed.ok());
  apply_hook_ = nullptr;
  fail_apply_ = false;
  before = store_->counters();
  // Decided on the row (the cache kept nothing), then told to decide again: the writer caught
  // the projections up with the log first.
  EXPECT_EQ(Run(Add("c", 1)).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store_->counters().cache_hits - before.cache_hits, 0);
  auto after = Run(Add("c", 1));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->state.total(), 54);
  EXPECT_EQ(after->state.total(), Row("c").total());
}

// With check_cached_states, a row changed behind the projections' back (a defect: every change
// goes through ProjectionDb::Commit) fails the command instead of deciding on a stale state.
TEST_F(AggregateStoreTest, ACheckedCacheFailsClosedOnARowThatDiffersFromIt) {
  store_ = std::make_unique<AggregateStore>(writer_.get(), AggregateStore::Options{.check_cached_states = true});
  ASSERT_TRUE(Run(Add("c1", 1)).ok());
  ASSERT_TRUE(Run(Add("c1", 1)).ok());
  ASSERT_TRUE(Run(Add("c1", 1)).ok()) << "a hit equal to its row passes";
  CounterState changed = Row("c1");
  changed.set_total(100);
  ASSERT_TRUE(db_->db()->Put(rocksdb::WriteOptions(), CounterKind::Row("c1"), projection::DeterministicBytes(changed)).ok());
  auto refused = Run(Add("c1", 1));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInternal) << refused.status();
  EXPECT_EQ(Row("c1").total(), 100) << "nothing written";
}

// A kernel whose fold differs from the projection's (a defect): the projection commits the
// kernel's fold as it is, and with check_cached_states refuses it instead.
struct SkewedKind : CounterKind {
  static void Apply(CounterState& s, const CounterEvent& e, int64_t version, absl::Time at, const std::string& actor) {
    ApplyCounter(s, e, version, at, actor);
    s.set_total(s.total() + 1000);
  }
};

TEST_F(AggregateStoreTest, TheProjectionCommitsTheKernelsFoldAsItIsAndACheckRefusesOneThatDiffers) {
  auto skewed = [&](Command<CounterState, CounterEvent> cmd) {
    absl::Notification n;
    absl::StatusOr<Written<CounterState>> out;
    store_->Execute<SkewedKind>(std::move(cmd), [&](absl::StatusOr<Written<CounterState>> w) {
      out = std::move(w);
      n.Notify();
    });
    n.WaitForNotification();
    return out;
  };
  store_ = std::make_unique<AggregateStore>(writer_.get(), AggregateStore::Options{.check_cached_states = false});
  auto taken = skewed(Add("c1", 5));
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_EQ(Row("c1").total(), 1005) << "the row is the kernel's fold, not folded again";
  EXPECT_EQ(db_->fold_counters().folds, 0);

  store_ = std::make_unique<AggregateStore>(writer_.get(), AggregateStore::Options{.check_cached_states = true});
  auto refused = skewed(Add("c2", 5));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  std::string row;
  EXPECT_TRUE(db_->db()->Get(rocksdb::ReadOptions(), CounterKind::Row("c2"), &row).IsNotFound())
      << "the projection committed nothing of it";
}

// A kernel fold that names another version than the event's (a defect) is refused by the
// projection even when it takes folds unchecked: nothing of it is committed.
struct VersionSkewedKind : CounterKind {
  static void Apply(CounterState& s, const CounterEvent& e, int64_t version, absl::Time at, const std::string& actor) {
    ApplyCounter(s, e, version, at, actor);
    s.set_version(version + 1);
  }
};

TEST_F(AggregateStoreTest, AFoldIntoAnotherVersionIsRefusedEvenUnchecked) {
  store_ = std::make_unique<AggregateStore>(writer_.get(), AggregateStore::Options{.check_cached_states = false});
  absl::Notification n;
  absl::StatusOr<Written<CounterState>> out;
  store_->Execute<VersionSkewedKind>(Add("c1", 5), [&](absl::StatusOr<Written<CounterState>> w) {
    out = std::move(w);
    n.Notify();
  });
  n.WaitForNotification();
  EXPECT_EQ(out.status().code(), absl::StatusCode::kUnavailable) << out.status();
  std::string row;
  EXPECT_TRUE(db_->db()->Get(rocksdb::ReadOptions(), CounterKind::Row("c1"), &row).IsNotFound())
      << "the projection committed nothing of it";
}

// Records read from the log (a catch-up, a rebuild, a follower) carry no kernel fold: the
// projection reads and folds each itself.
TEST_F(AggregateStoreTest, RecordsReadFromTheLogAreFoldedByTheProjection) {
  ASSERT_TRUE(Run(Add("c1", 5)).ok());
  ASSERT_TRUE(Run(Add("c1", 2)).ok());
  auto fresh = projection::ProjectionDb::Open({.path = dir_ + "/fresh"});
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  projection::ProjectionDb* db = fresh->get();
  auto applied = db->CatchUp(*log_, "t", [db](const eventlog::Record& r, projection::Batch& b) {
    return ApplyCounterRecord(*db, r, b);
  });
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(*applied, 2);
  projection::ProjectionDb::FoldCounters c = db->fold_counters();
  EXPECT_EQ(c.rows_read, 2);
  EXPECT_EQ(c.folds, 2);
  EXPECT_EQ(c.taken, 0);
  std::string row;
  ASSERT_TRUE(db->db()->Get(rocksdb::ReadOptions(), CounterKind::Row("c1"), &row).ok());
  EXPECT_EQ(row, projection::DeterministicBytes(Row("c1"))) << "the same row as the kernel's fold";
}

TEST_F(AggregateStoreTest, BadLeasesAndCommandsOutsideTheirLeaseFailClosed) {
  auto code = [&](std::vector<std::string> ids) {
    absl::StatusCode c = absl::StatusCode::kOk;
    store_->Acquire(std::move(ids), [&](absl::StatusOr<Lease> l) { c = l.status().code(); });
    return c;
  };
  EXPECT_EQ(code({}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code({""}), absl::StatusCode::kInvalidArgument);
  std::vector<std::string> many;
  for (size_t i = 0; i <= AggregateStore::kMaxLeaseIds; ++i) many.push_back(absl::StrCat("id", i));
  EXPECT_EQ(code(many), absl::StatusCode::kInvalidArgument);

  absl::StatusCode c = absl::StatusCode::kOk;
  store_->ExecuteHeld<CounterKind>(Lease(), Add("c1", 1), [&](absl::StatusOr<Written<CounterState>> w) {
    c = w.status().code();
  });
  EXPECT_EQ(c, absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(LogSize(), 0u);
}

TEST_F(AggregateStoreTest, UniqueKeyOfAnotherAggregateIsAlreadyExistsWithErrorInfoAndWritesNothing) {
  auto a = Run(Keyed("c1", 5));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(store_->counters().folds, 1) << "the keys come from the reply's fold, not a fold of their own";

  auto b = Run(Keyed("c2", 5));
  EXPECT_EQ(b.status().code(), absl::StatusCode::kAlreadyExists) << b.status();
  EXPECT_THAT(b.status().message(), ::testing::HasSubstr("counters/c1 already has this total"));
  auto info = GetErrorInfo(b.status());
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->reason(), "DUPLICATE_TOTAL");
  EXPECT_EQ(info->metadata().at("existing"), "counters/c1");
  EXPECT_EQ(info->metadata().at("field"), "counter.total");
  EXPECT_EQ(LogSize(), 1u);
  EXPECT_EQ(store_->counters().keys_in_flight, 0);

  // Its own key is no conflict; once it holds another value the old one is free.
  ASSERT_TRUE(Run(Keyed("c1", 0)).ok());
  ASSERT_TRUE(Run(Keyed("c1", 2)).ok());
  auto moved = Run(Keyed("c2", 5));
  ASSERT_TRUE(moved.ok()) << moved.status();
  // The other side of a merge may hold the key meanwhile.
  auto partner = Keyed("c3", 7);
  EXPECT_EQ(Run(Keyed("c3", 7)).status().code(), absl::StatusCode::kAlreadyExists);
  partner.shares_keys_with = "c1";
  auto shared = Run(std::move(partner));
  ASSERT_TRUE(shared.ok()) << shared.status();
  EXPECT_EQ(store_->counters().keys_in_flight, 0);
}

TEST_F(AggregateStoreTest, KeyOfACommandStillInFlightIsRefusedToAnotherAggregate) {
  HoldNextApply();
  absl::Notification a_done;
  absl::StatusOr<Written<CounterState>> a = absl::UnknownError("");
  store_->Execute<CounterKind>(Keyed("c1", 5), [&](absl::StatusOr<Written<CounterState>> w) {
    a = std::move(w);
    a_done.Notify();
  });
  ASSERT_TRUE(entered_.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(store_->counters().keys_in_flight, 1);
  // c1's key is not in the index yet: only the in-flight table knows it.
  auto b = Run(Keyed("c2", 5));
  EXPECT_EQ(b.status().code(), absl::StatusCode::kAlreadyExists) << b.status();
  EXPECT_THAT(b.status().message(), ::testing::HasSubstr("counters/c1 already has this total"));
  release_.Notify();
  ASSERT_TRUE(a_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(store_->counters().keys_in_flight, 0) << "released before its done ran";
  EXPECT_EQ(LogSize(), 1u);
  EXPECT_EQ(Run(Keyed("c2", 5)).status().code(), absl::StatusCode::kAlreadyExists) << "now the index holds it";
}

TEST_F(AggregateStoreTest, TwoFirstAttemptsOfOneRequestIdOnTwoAggregatesLeaveOneAbortedInProgress) {
  // A create picks a fresh id per attempt, so the lease does not keep two attempts apart. Both
  // carry the same unique key too: the answer is "retry", not "taken".
  HoldNextApply();
  absl::Notification a_done;
  absl::StatusOr<Written<CounterState>> a = absl::UnknownError("");
  store_->Execute<CounterKind>(Keyed("c1", 1, "rid-1"), [&](absl::StatusOr<Written<CounterState>> w) {
    a = std::move(w);
    a_done.Notify();
  });
  ASSERT_TRUE(entered_.WaitForNotificationWithTimeout(absl::Seconds(10)));
  auto b = Run(Keyed("c2", 1, "rid-1"));
  EXPECT_EQ(b.status().code(), absl::StatusCode::kAborted) << b.status();
  EXPECT_THAT(b.status().message(), ::testing::HasSubstr("in progress"));
  release_.Notify();
  ASSERT_TRUE(a_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(LogSize(), 1u);
  EXPECT_EQ(store_->counters().keys_in_flight, 0);
  EXPECT_EQ(Run(Add("c2", 1, "rid-1")).status().code(), absl::StatusCode::kInvalidArgument)
      << "once committed, the r/ row answers";
}

TEST_F(AggregateStoreTest, ADecisionSetsTimeAndCausationAndSettlesItsAfterHookOnEveryPath) {
  std::vector<bool> settled;
  const absl::Time when = absl::FromUnixSeconds(1700000000);
  auto decision = [&](int64_t amount) {
    return [&settled, when, amount](const CounterState*) -> absl::StatusOr<Decision<CounterEvent>> {
      Decision<CounterEvent> d;
      if (amount != 0) {
        CounterAdded add;
        add.set_amount(amount);
        d.events.push_back(add);
      }
      d.occurred_at = when;
      d.causation_id = "cause-1";
      d.after = [&settled](bool written) { settled.push_back(written); };
      return d;
    };
  };
  auto cmd = Keyed("c1", 0);
  cmd.decide = decision(5);
  absl::Notification done;
  store_->Execute<CounterKind>(std::move(cmd), [&](absl::StatusOr<Written<CounterState>> w) {
    ASSERT_TRUE(w.ok()) << w.status();
    EXPECT_THAT(settled, ::testing::ElementsAre(true)) << "after runs before done";
    EXPECT_EQ(FromProto(w->state.update_time()), when);
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  auto records = eventlog::ReadToEnd(*log_, "t", {{0, 0}, {1, 0}});
  ASSERT_TRUE(records.ok() && records->size() == 1u);
  auto env = eventlog::DecodeEnvelope((*records)[0].value);
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->causation_id(), "cause-1");
  EXPECT_EQ(FromProto(env->occurred_at()), when);

  auto dup = Keyed("c2", 0);
  dup.decide = decision(5);
  EXPECT_EQ(Run(std::move(dup)).status().code(), absl::StatusCode::kAlreadyExists);
  auto none = Keyed("c2", 0);
  none.decide = decision(0);
  EXPECT_TRUE(Run(std::move(none)).ok());
  EXPECT_THAT(settled, ::testing::ElementsAre(true, false, false));
  EXPECT_EQ(LogSize(), 1u);
}

TEST_F(AggregateStoreTest, KeysInFlightAreBoundedAndTheRefusalIsRetryable) {
  store_ = std::make_unique<AggregateStore>(writer_.get(), AggregateStore::Options{.max_keys_in_flight = 1});
  auto two = Run(Keyed("c1", 5, "rid-1"));  // a key and a request id
  EXPECT_EQ(two.status().code(), absl::StatusCode::kResourceExhausted) << two.status();
  // Backpressure, not an incident: the client sees this message, not a redacted one.
  EXPECT_EQ(ForClient(two.status()).message(), two.status().message());
  EXPECT_EQ(LogSize(), 0u);
  EXPECT_EQ(store_->counters().keys_in_flight, 0);
  auto one = Run(Keyed("c1", 5));
  ASSERT_TRUE(one.ok()) << one.status();
}

TEST_F(AggregateStoreTest, TheStoreLetsGoOfTheLeaseBeforeDoneRunsOnEveryPath) {
  // Whoever is answered may tear the store and its writer down at once: no release may be
  // left to run after `done`. A lease taken inside `done` is granted there and then.
  auto relocked_in_done = [&](Command<CounterState, CounterEvent> cmd) {
    absl::Notification done;
    bool granted = false;
    store_->Execute<CounterKind>(std::move(cmd), [&](absl::StatusOr<Written<CounterState>>) {
      store_->Acquire({"c1"}, [&](absl::StatusOr<Lease> l) { granted = l.ok(); });
      EXPECT_TRUE(granted);
      done.Notify();
    });
    EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
    return granted;
  };
  EXPECT_TRUE(relocked_in_done(Add("c1", 1))) << "appended";
  auto refused = Add("c1", 1);
  refused.decide = [](const CounterState*) -> absl::StatusOr<std::vector<CounterEvent>> {
    return absl::FailedPreconditionError("no");
  };
  EXPECT_TRUE(relocked_in_done(std::move(refused))) << "refused";
  EXPECT_TRUE(relocked_in_done(Add("c1", 1, "rid-1")));
  EXPECT_TRUE(relocked_in_done(Add("c1", 1, "rid-1"))) << "a repeat";
}

TEST_F(AggregateStoreTest, ACreateUnderAFreshIdRepeatsTheAggregateItsEarlierAttemptCreated) {
  // Each attempt of a create picks a fresh id: the second finds the first's r/ row under c1.
  ASSERT_TRUE(Run(Add("c1", 5, "rid-1")).ok());
  auto again = Add("c2", 5, "rid-1");
  again.fresh_id = true;
  auto out = Run(std::move(again));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->state.id(), "c1");
  EXPECT_TRUE(out->token.empty());
  EXPECT_EQ(decisions_.load(), 1);
  EXPECT_EQ(LogSize(), 1u);

  auto stranger = Add("c3", 5, "rid-1");
  stranger.fresh_id = true;
  stranger.caller = {"mallory", "stranger", ""};
  EXPECT_EQ(Run(std::move(stranger)).status().code(), absl::StatusCode::kPermissionDenied);
  auto update = Add("c4", 5, "rid-1");  // not a create: reuse of another resource's request id
  EXPECT_EQ(Run(std::move(update)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LogSize(), 1u);
}

// A retried create (fresh id c2) is deciding while its first attempt (c1) runs again: one
// request must not become two resources. The attempt in flight holds the request id from
// before its lookup, so the other is told to retry, and the retry is answered with c2.
TEST_F(AggregateStoreTest, AnAttemptWhileAnotherDecidesIsToldToRetryAndNotCreatedTwice) {
  absl::Notification deciding, first_done;
  auto second = Add("c2", 5, "rid-race");
  second.fresh_id = true;
  second.decide = [&](const CounterState*) -> absl::StatusOr<std::vector<CounterEvent>> {
    deciding.Notify();
    EXPECT_TRUE(first_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
    CounterAdded a;
    a.set_amount(5);
    return std::vector<CounterEvent>{a};
  };
  absl::StatusOr<Written<CounterState>> deciding_one = absl::UnknownError("");
  std::thread t([&] { deciding_one = Run(std::move(second)); });
  ASSERT_TRUE(deciding.WaitForNotificationWithTimeout(absl::Seconds(10)));
  auto first = Add("c1", 5, "rid-race");
  first.fresh_id = true;
  absl::StatusOr<Written<CounterState>> meanwhile = Run(std::move(first));
  first_done.Notify();
  t.join();
  EXPECT_EQ(meanwhile.status().code(), absl::StatusCode::kAborted) << meanwhile.status();
  ASSERT_TRUE(deciding_one.ok()) << deciding_one.status();
  EXPECT_EQ(LogSize(), 1u) << "one request, one resource";
  auto retry = Add("c3", 5, "rid-race");
  retry.fresh_id = true;
  auto out = Run(std::move(retry));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->state.id(), "c2");
  EXPECT_EQ(LogSize(), 1u);
  EXPECT_EQ(store_->counters().keys_in_flight, 0);
}

TEST_F(AggregateStoreTest, EveryRefusalOfARacedKeyNamesTheAggregateThatHoldsIt) {
  // Many creates of one key at once: one wins, and each refusal names the winner, never a
  // loser that held the key for a moment.
  constexpr int kRounds = 5, kRacers = 16;
  for (int round = 1; round <= kRounds; ++round) {
    std::vector<absl::StatusOr<Written<CounterState>>> out(kRacers, absl::UnknownError(""));
    std::vector<std::thread> threads;
    for (int i = 0; i < kRacers; ++i) {
      threads.emplace_back([&, i] { out[i] = Run(Keyed(absl::StrCat("r", round, "-", i), round)); });
    }
    for (auto& t : threads) t.join();
    std::string winner;
    for (const auto& o : out) {
      if (o.ok()) {
        EXPECT_TRUE(winner.empty()) << "two holders of one key";
        winner = o->state.id();
      }
    }
    ASSERT_FALSE(winner.empty()) << "round " << round;
    for (const auto& o : out) {
      if (o.ok()) continue;
      EXPECT_EQ(o.status().code(), absl::StatusCode::kAlreadyExists) << o.status();
      auto info = GetErrorInfo(o.status());
      ASSERT_TRUE(info.has_value());
      EXPECT_EQ(info->metadata().at("existing"), absl::StrCat("counters/", winner)) << "round " << round;
    }
  }
  EXPECT_EQ(store_->counters().keys_in_flight, 0);
}

}  // namespace
}  // namespace crm::kernel

namespace crm::kernel {
namespace {

TEST_F(AggregateStoreTest, ATargetCommandCarriesTheRequestsIdRequestIdAndEtagNamedByItsField) {
  ASSERT_TRUE(Run(Add("c1", 5)).ok());
  auto decide = [](const CounterState*) -> absl::StatusOr<std::vector<CounterEvent>> {
    CounterAdded a;
    a.set_amount(1);
    return std::vector<CounterEvent>{a};
  };
  const std::string id = "0190a5a4-0000-7000-8000-000000000001";
  auto target = [&](const std::string& rid, const std::string& etag) {
    auto t = ParseTarget(rid, absl::StrCat("counters/", id), "counter.name", etag, "counter.etag", "counters");
    EXPECT_TRUE(t.ok()) << t.status();
    return *t;
  };
  // An etag of "0" expects nothing written yet; once the counter exists it is stale, and the
  // answer names the field the etag came from.
  ASSERT_TRUE(Run(TargetCommand<CounterState, CounterEvent>(kAlice, target("", "0"), decide)).ok());
  auto stale = Run(TargetCommand<CounterState, CounterEvent>(kAlice, target("", "0"), decide));
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted) << stale.status();
  auto info = GetErrorInfo(stale.status());
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->reason(), "ETAG_MISMATCH");
  EXPECT_EQ(info->metadata().at("field"), "counter.etag");
  EXPECT_EQ(info->metadata().at("current_etag"), "1");

  auto current = Run(TargetCommand<CounterState, CounterEvent>(kAlice, target("r-1", "1"), decide));
  ASSERT_TRUE(current.ok()) << current.status();
  EXPECT_EQ(current->state.version(), 2);
  // The request id came along: a repeat is answered, not decided on the stale etag again.
  auto repeat = Run(TargetCommand<CounterState, CounterEvent>(kAlice, target("r-1", "1"), decide));
  ASSERT_TRUE(repeat.ok()) << repeat.status();
  EXPECT_EQ(repeat->state.version(), 2);
  EXPECT_EQ(Row(id).version(), 2);
}

}  // namespace
}  // namespace crm::kernel
