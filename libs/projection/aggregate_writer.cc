#include "libs/projection/aggregate_writer.h"

#include <deque>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/grpc_status.h"
#include "libs/common/ids.h"
#include "libs/common/proto_time.h"
#include "libs/common/status_macros.h"
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
  writer_.reset();
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
  writer_->AppendExpecting(head.id, std::move(sealed.messages), absl::StrCat(head.type, "/", head.id), expected,
                  [this, values = std::move(values), envelopes = std::move(sealed.envelopes),
                   annexes = std::move(sealed.annexes), annex_owner = std::move(sealed.annex_owner),
                   done = std::move(done), started](absl::StatusOr<eventlog::Appended> appended) mutable {
                    if (options_.observe_append) options_.observe_append(absl::Now() - started);
                    absl::StatusOr<std::string> token = Apply(appended, values, envelopes, annexes);
                    {
                      absl::MutexLock l(&mu_);
                      --in_flight_;
                    }
                    done(std::move(token));
                  });
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

absl::StatusOr<std::string> AggregateWriter::Apply(const absl::StatusOr<eventlog::Appended>& appended,
                                                   std::vector<std::string>& values,
                                                   const std::vector<common::v1::EventEnvelope>& envelopes,
                                                   const std::vector<const eventlog::RecordAnnex*>& annexes) {
  if (absl::IsAborted(appended.status())) {
    // The log holds events the projections have not applied: catch up before the next write,
    // and let the caller decide again then.
    {
      absl::MutexLock l(&mu_);
      if (behind_.ok()) behind_ = appended.status();
    }
    return Reworded(absl::StatusCode::kUnavailable,
                    "another write changed this resource meanwhile; nothing was written; decide again on the "
                    "current state and retry",
                    appended.status());
  }
  if (!appended.ok()) {
    // UNAVAILABLE: the log may hold the events (a write failed midway, on a full disk say).
    // The next append catches the projections up first, so a retry with the same request_id
    // finds them instead of deciding on state that misses them.
    if (absl::IsUnavailable(appended.status())) {
      absl::MutexLock l(&mu_);
      if (behind_.ok()) behind_ = appended.status();
    }
    return LogRefusal(appended.status());
  }
  {
    absl::MutexLock l(&mu_);
    if (!behind_.ok()) {
      return Reworded(absl::StatusCode::kUnavailable,
                      "the events were written to the log; the projections apply them once they caught up; retry "
                      "with the same request_id to learn the outcome",
                      behind_);
    }
  }
  // The writer's thread reports appends in log order per partition, so checkpoints only move
  // forward.
  Batch batch;
  absl::Status s;
  for (size_t i = 0; i < values.size() && s.ok(); ++i) {
    eventlog::Record r;
    r.topic = options_.topic;
    r.partition = appended->partition;
    r.offset = appended->offsets[i];
    r.timestamp_ms = appended->timestamp_ms;
    r.value = std::move(values[i]);
    // Applied as sealed: the projections neither parse nor hash again what Seal() just encoded.
    r.sealed = &envelopes[i];
    // ... nor fold again what the caller folded (projection::SealedFold).
    if (i < annexes.size()) r.annex = annexes[i];
    s = apply_(r, batch);
  }
  if (s.ok()) s = db_->Commit(batch, options_.topic, appended->partition, appended->offsets.back() + 1);
  if (!s.ok()) {
    absl::MutexLock l(&mu_);
    behind_ = s;
    // Never a definite failure: the events are in the log and count once the projections
    // caught up (a full disk answered RESOURCE_EXHAUSTED here, and the "refused" customer
    // existed once space returned).
    return Reworded(absl::StatusCode::kUnavailable,
                    "the events were written to the log but not yet applied; retry with the same request_id to "
                    "learn the outcome once the projections caught up",
                    s);
  }
  common::v1::ConsistencyToken token;
  auto* pos = token.add_positions();
  pos->set_topic(options_.topic);
  pos->set_partition(appended->partition);
  pos->set_offset(appended->offsets.back());
  return EncodeToken(token);
}

}  // namespace crm::projection
