#include "libs/projection/aggregate_writer.h"

#include <deque>
#include <map>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/grpc_status.h"
#include "libs/common/ids.h"
#include "libs/common/proto_time.h"
#include "libs/common/status_macros.h"
#include "libs/eventlog/answer_group.h"
#include "libs/eventlog/envelope.h"
#include "spdlog/spdlog.h"

namespace crm::projection {
namespace {

// The one place where an error of the log or of the projections' store becomes what clients
// read: our own words (`says`) with `code`. A cause in our words (ClientSafe) is said with them.
// A foreign cause (librdkafka's or RocksDB's text, file names) never reaches a client: under
// UNAVAILABLE or RESOURCE_EXHAUSTED it stays in the unmarked status, which ToGrpcStatus answers
// as an incident (the client gets its id, the server's log the full text, so an operator finds
// the cause from the client's report); under any other code, which ToGrpcStatus would pass on
// as it is, the client reads `says` alone and the server's log the cause.
absl::Status Reworded(absl::StatusCode code, absl::string_view says, const absl::Status& cause) {
  if (IsClientSafe(cause)) return ClientSafe(absl::Status(code, absl::StrCat(says, " (", cause.message(), ")")));
  if (code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kResourceExhausted) {
    return absl::Status(code, absl::StrCat(says, ": ", cause.ToString()));
  }
  spdlog::warn("{} ({})", std::string_view(says.data(), says.size()), cause.ToString());
  return ClientSafe(absl::Status(code, says));
}

// What a caller's client reads of the log's refusal of an append, keeping the codes clients act
// on. The log's ClientSafe statuses are in our words already. UNAVAILABLE (retry with the same
// request_id), RESOURCE_EXHAUSTED (retry later), INTERNAL and DATA_LOSS stay as they are:
// ToGrpcStatus answers each without its ClientSafe mark as an incident, whose id the client
// gets and whose full text (a file name, say) only the server's log has, so an operator finds
// the cause from the client's report. FAILED_PRECONDITION (fenced: this instance writes no
// more) would pass to the client as it is, so it is said in our words; any other code from
// the log is a fault of ours, hence INTERNAL.
absl::Status LogRefusal(const absl::Status& s) {
  if (IsClientSafe(s)) return s;
  switch (s.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kResourceExhausted:
      return s;
    case absl::StatusCode::kFailedPrecondition:
      return Reworded(s.code(), "this instance no longer writes the event log (another one took over); nothing was written", s);
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kDataLoss:
      return s;
    default:
      return absl::InternalError(absl::StrCat("the event log refused an append: ", s.ToString()));
  }
}

// How deep this thread is in a call an AggregateWriter makes into its log writer (an append,
// the close). A callback that runs meanwhile is that call's own answer, not a group's: the
// log refusing the append at once, or the close answering what waits past its deadline. It
// is answered there and then, never left to an answer group the thread may be in (a command
// started, or a writer closed, by another writer's answer): that group ends after the call
// returned, and nothing the destructor waits for (handing_over_, the log writer's close)
// covers it.
thread_local int in_log_call = 0;

}  // namespace

NewEvent NewEvent::Of(const google::protobuf::Message& m, absl::Time occurred_at) {
  NewEvent e;
  e.payload.PackFrom(m);
  e.type = m.GetDescriptor()->full_name();
  e.occurred_at = occurred_at;
  return e;
}

absl::Time OccurredAt(const common::v1::EventEnvelope& e) {
  return FromProto(e.occurred_at());
}

absl::Time RecordedAt(const common::v1::EventEnvelope& e) {
  return FromProto(e.recorded_at());
}

absl::StatusOr<bool> IsNextEvent(const eventlog::Record& r, const common::v1::EventEnvelope& e, int64_t version,
                                 absl::string_view hash) {
  if (e.aggregate_version() <= version) return false;
  if (e.aggregate_version() != version + 1) {
    return absl::DataLossError(absl::StrCat(e.aggregate_type(), " ", e.aggregate_id(),
                                            " jumps from version ", version, " to ",
                                            e.aggregate_version()));
  }
  CRM_RETURN_IF_ERROR(r.sealed != nullptr ? eventlog::VerifyChainLink(e, hash) : eventlog::VerifyEnvelope(e, hash));
  return true;
}

absl::StatusOr<std::unique_ptr<AggregateWriter>> AggregateWriter::Open(eventlog::Log* log,
                                                                       ProjectionDb* db,
                                                                       Options options,
                                                                       ProjectionDb::ApplyFn apply) {
  if (options.clock == nullptr) return absl::InvalidArgumentError("AggregateWriter needs a clock");
  if (options.topic.empty() || options.source.empty()) {
    return absl::InvalidArgumentError("AggregateWriter needs a topic and a source");
  }
  CRM_RETURN_IF_ERROR(log->CreateTopic(options.topic, options.partitions));
  std::unique_ptr<AggregateWriter> w(new AggregateWriter(log, db, std::move(options), std::move(apply)));
  // Catch up before taking writes (docs/architecture.md §3): Decide must see every version.
  CRM_RETURN_IF_ERROR(db->CatchUp(*log, w->options_.topic, w->apply_).status());
  CRM_ASSIGN_OR_RETURN(w->writer_, log->OpenWriter(w->options_.topic));
  CRM_RETURN_IF_ERROR(db->CatchUp(*log, w->options_.topic, w->apply_).status());
  return w;
}

AggregateWriter::~AggregateWriter() {
  {
    absl::MutexLock l(&mu_);
    closing_ = true;
  }
  // An append admitted just before is on its way into writer_: a non-blocking hand-over.
  while (handing_over_.load(std::memory_order_acquire) > 0) absl::SleepFor(absl::Microseconds(50));
  // Before mu_, queues_ and the projections die: the writer answers every append it took, and
  // those answers use them (Apply, Release from the callers' leases).
  ++in_log_call;
  writer_.reset();
  --in_log_call;
}

bool AggregateWriter::Serialize(const std::string& key, absl::AnyInvocable<void()> fn, size_t max_waiting) {
  {
    absl::MutexLock l(&mu_);
    auto [it, fresh] = queues_.try_emplace(key);
    if (!fresh) {
      if (it->second.size() >= max_waiting) return false;
      it->second.push_back(std::move(fn));
      return true;
    }
  }
  fn();
  return true;
}

void AggregateWriter::Release(const std::string& key) {
  absl::AnyInvocable<void()> next;
  {
    absl::MutexLock l(&mu_);
    auto it = queues_.find(key);
    if (it == queues_.end()) return;
    if (it->second.empty()) {
      queues_.erase(it);
      return;
    }
    next = std::move(it->second.front());
    it->second.pop_front();
  }
  // A command that ends at once (refused by Decide, a repeat) releases from inside the Release
  // that started it. Run inline, each would nest one more frame: a burst of such commands on
  // one aggregate (up to the runtime's in-flight bound, or a bulk import's rows) could exhaust
  // the stack. The outermost Release on a thread runs them one after another instead.
  thread_local std::deque<absl::AnyInvocable<void()>>* pending = nullptr;
  if (pending != nullptr) {
    pending->push_back(std::move(next));
    return;
  }
  std::deque<absl::AnyInvocable<void()>> ready;
  pending = &ready;
  next();
  while (!ready.empty()) {
    absl::AnyInvocable<void()> fn = std::move(ready.front());
    ready.pop_front();
    fn();
  }
  pending = nullptr;
}

void AggregateWriter::Append(const AggregateHead& head, const WriteContext& ctx,
                             std::vector<NewEvent> events, Done done) {
  if (events.empty()) return done(absl::InvalidArgumentError("nothing to append"));
  AppendSealed(head, Seal(head, ctx, std::move(events)), std::move(done));
}

AggregateWriter::Sealed AggregateWriter::Seal(const AggregateHead& head, const WriteContext& ctx,
                                              std::vector<NewEvent> events) const {
  const absl::Time now = options_.clock->Now();
  const std::string correlation = ctx.correlation_id.empty() ? NewUuidV7(now) : ctx.correlation_id;
  eventlog::StreamSealer sealer(head.version, head.last_hash, options_.source);
  Sealed out;
  out.envelopes.reserve(events.size());
  out.messages.reserve(events.size());
  for (NewEvent& ev : events) {
    common::v1::EventEnvelope env;
    env.set_event_id(NewUuidV7(now));
    env.set_event_type(std::move(ev.type));
    env.set_aggregate_type(head.type);
    env.set_aggregate_id(head.id);
    *env.mutable_occurred_at() = ToProto(ev.occurred_at == absl::InfinitePast() ? now : ev.occurred_at);
    *env.mutable_recorded_at() = ToProto(now);
    *env.mutable_actor() = ctx.actor;
    env.set_correlation_id(correlation);
    env.set_causation_id(ctx.causation_id);
    env.set_tenant_id(options_.tenant);
    *env.mutable_payload() = std::move(ev.payload);
    out.messages.push_back(sealer.Seal(env));
    out.envelopes.push_back(std::move(env));
  }
  return out;
}

// The appends of one log group (eventlog::AnswerGroup) this writer's projections commit
// together at the group's end.
class AggregateWriter::GroupCommit final : public eventlog::AnswerGroup::Part {
 public:
  explicit GroupCommit(AggregateWriter* writer) : writer_(writer) {}
  void Add(Answered a) { answered_.push_back(std::move(a)); }
  void End() override { writer_->Finish(answered_); }

 private:
  AggregateWriter* writer_;
  std::vector<Answered> answered_;
};

void AggregateWriter::AppendSealed(const AggregateHead& head, Sealed sealed, Done done) {
  if (sealed.messages.empty()) return done(absl::InvalidArgumentError("nothing to append"));
  std::vector<std::string> values;
  values.reserve(sealed.messages.size());
  for (const eventlog::Message& m : sealed.messages) values.push_back(m.value);
  if (absl::Status s = Admit(); !s.ok()) return done(s);
  // Admit counted this append in handing_over_.
  absl::Cleanup handed_over = [this] { handing_over_.fetch_sub(1, std::memory_order_release); };
  const absl::Time started = absl::Now();
  // The log refuses the append if another event took this version meanwhile (a decision on
  // stale projections): the second line of defence after Admit().
  const eventlog::ExpectedVersion expected =
      head.version == 0 ? eventlog::ExpectedVersion::NoStream() : eventlog::ExpectedVersion::Exact(head.version);
  Answered answered;
  answered.values = std::move(values);
  answered.envelopes = std::move(sealed.envelopes);
  answered.annexes = std::move(sealed.annexes);
  answered.annex_owner = std::move(sealed.annex_owner);
  answered.done = std::move(done);
  ++in_log_call;
  writer_->AppendExpecting(head.id, std::move(sealed.messages), absl::StrCat(head.type, "/", head.id), expected,
                           [this, a = std::move(answered), started](absl::StatusOr<eventlog::Appended> appended) mutable {
                             if (options_.observe_append) options_.observe_append(absl::Now() - started);
                             a.appended = std::move(appended);
                             eventlog::AnswerGroup* group = eventlog::AnswerGroup::Current();
                             if (group != nullptr && in_log_call == 0) {
                               group->PartOf<GroupCommit>(this, [this] { return std::make_unique<GroupCommit>(this); })
                                   .Add(std::move(a));
                               return;
                             }
                             std::vector<Answered> one;
                             one.push_back(std::move(a));
                             Finish(one);
                           });
  --in_log_call;
}

absl::Status AggregateWriter::Admit() {
  {
    absl::MutexLock l(&mu_);
    if (closing_) return ClientSafe(absl::UnavailableError("the service is stopping; nothing was written"));
    if (behind_.ok()) {
      ++in_flight_;
      handing_over_.fetch_add(1, std::memory_order_relaxed);
      return absl::OkStatus();
    }
    // Catch up only once nothing is in flight: a later callback must not apply an event the
    // catch-up applied too.
    if (catching_up_ || in_flight_ > 0) {
      return Reworded(absl::StatusCode::kUnavailable,
                      "writes wait until the projections catch up with the log; nothing was written; retry later",
                      behind_);
    }
    catching_up_ = true;
  }
  absl::StatusOr<int64_t> applied = db_->CatchUp(*log_, options_.topic, apply_);
  absl::MutexLock l(&mu_);
  catching_up_ = false;
  if (!applied.ok()) {
    const absl::Status& s = applied.status();
    return Reworded(
        s.code() == absl::StatusCode::kResourceExhausted ? s.code() : absl::StatusCode::kUnavailable,
        "writes wait until the projections catch up with the log, which failed; nothing was written; retry later", s);
  }
  behind_ = absl::OkStatus();
  // This write was decided on the projections as they were before the catch-up: if it applied
  // anything, the decision may be stale (a second version 1 of an aggregate whose first the
  // catch-up just applied), so the caller decides again on the caught-up state.
  if (*applied > 0) {
    return ClientSafe(absl::UnavailableError(
        "the projections just caught up with the log; decide again on the current state and retry"));
  }
  if (closing_) return ClientSafe(absl::UnavailableError("the service is stopping; nothing was written"));
  ++in_flight_;
  handing_over_.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status AggregateWriter::Refusal(const Answered& a) {
  if (absl::IsAborted(a.appended.status())) {
    // The log holds events the projections have not applied: catch up before the next write,
    // and let the caller decide again then.
    {
      absl::MutexLock l(&mu_);
      if (behind_.ok()) behind_ = a.appended.status();
    }
    return Reworded(absl::StatusCode::kUnavailable,
                    "another write changed this resource meanwhile; nothing was written; decide again on the "
                    "current state and retry",
                    a.appended.status());
  }
  if (!a.appended.ok()) {
    // UNAVAILABLE: the log may hold the events (a write failed midway, on a full disk say).
    // The next append catches the projections up first, so a retry with the same request_id
    // finds them instead of deciding on state that misses them.
    if (absl::IsUnavailable(a.appended.status())) {
      absl::MutexLock l(&mu_);
      if (behind_.ok()) behind_ = a.appended.status();
    }
    return LogRefusal(a.appended.status());
  }
  absl::MutexLock l(&mu_);
  if (!behind_.ok()) {
    return Reworded(absl::StatusCode::kUnavailable,
                    "the events were written to the log; the projections apply them once they caught up; retry "
                    "with the same request_id to learn the outcome",
                    behind_);
  }
  return absl::OkStatus();
}

absl::Status AggregateWriter::ApplyInto(Answered& a, Batch& batch) {
  if (a.records.empty()) {
    a.records.resize(a.values.size());
    for (size_t i = 0; i < a.values.size(); ++i) {
      eventlog::Record& r = a.records[i];
      r.topic = options_.topic;
      r.partition = a.appended->partition;
      r.offset = a.appended->offsets[i];
      r.timestamp_ms = a.appended->timestamp_ms;
      r.value = std::move(a.values[i]);
      // Applied as sealed: the projections neither parse nor hash again what Seal() just
      // encoded ...
      r.sealed = &a.envelopes[i];
      // ... nor fold again what the caller folded (projection::SealedFold).
      if (i < a.annexes.size()) r.annex = a.annexes[i];
    }
  }
  for (const eventlog::Record& r : a.records) CRM_RETURN_IF_ERROR(apply_(r, batch));
  return absl::OkStatus();
}

void AggregateWriter::Finish(std::vector<Answered>& answered) {
  // Never a definite failure once the log holds the events: they count once the projections
  // caught up (a full disk answered RESOURCE_EXHAUSTED here, and the "refused" customer
  // existed once space returned).
  auto not_applied = [](const absl::Status& s) {
    return Reworded(absl::StatusCode::kUnavailable,
                    "the events were written to the log but not yet applied; retry with the same request_id to "
                    "learn the outcome once the projections caught up",
                    s);
  };
  std::vector<absl::StatusOr<std::string>> results(answered.size(), absl::UnknownError("not answered"));
  // The log answers a group in log order per partition, so checkpoints only move forward.
  Batch batch;
  std::map<int32_t, int64_t> next;
  std::vector<size_t> in_batch;
  for (size_t i = 0; i < answered.size(); ++i) {
    Answered& a = answered[i];
    if (absl::Status refused = Refusal(a); !refused.ok()) {
      results[i] = std::move(refused);
      continue;
    }
    if (absl::Status s = ApplyInto(a, batch); !s.ok()) {
      // The batch holds part of this append's rows: the earlier appends go again into a clean
      // one, and every later one waits for a catch-up (behind_).
      {
        absl::MutexLock l(&mu_);
        behind_ = s;
      }
      results[i] = not_applied(s);
      batch = Batch();
      absl::Status again;
      for (size_t j : in_batch) {
        if (again.ok()) again = ApplyInto(answered[j], batch);
      }
      if (!again.ok()) {
        for (size_t j : in_batch) results[j] = not_applied(again);
        in_batch.clear();
        next.clear();
        batch = Batch();
      }
      continue;
    }
    in_batch.push_back(i);
    int64_t& n = next[a.appended->partition];
    n = std::max(n, a.appended->offsets.back() + 1);
  }
  if (!in_batch.empty()) {
    absl::Status s = db_->Commit(batch, options_.topic, next);
    if (!s.ok()) {
      absl::MutexLock l(&mu_);
      behind_ = s;
    }
    for (size_t j : in_batch) {
      if (!s.ok()) {
        results[j] = not_applied(s);
        continue;
      }
      common::v1::ConsistencyToken token;
      auto* pos = token.add_positions();
      pos->set_topic(options_.topic);
      pos->set_partition(answered[j].appended->partition);
      pos->set_offset(answered[j].appended->offsets.back());
      results[j] = EncodeToken(token);
    }
  }
  {
    absl::MutexLock l(&mu_);
    in_flight_ -= static_cast<int64_t>(answered.size());
  }
  for (size_t i = 0; i < answered.size(); ++i) answered[i].done(std::move(results[i]));
}

}  // namespace crm::projection
