#ifndef CRM_LIBS_PROJECTION_AGGREGATE_WRITER_H_
#define CRM_LIBS_PROJECTION_AGGREGATE_WRITER_H_

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "crm/common/v1/envelope.pb.h"
#include "google/protobuf/any.pb.h"
#include "libs/common/caller.h"
#include "libs/common/clock.h"
#include "libs/eventlog/log.h"
#include "libs/projection/projection_db.h"
#include "libs/topics/topics.h"

namespace crm::projection {

// One event to append: the payload and its business time.
struct NewEvent {
  google::protobuf::Any payload;
  std::string type;  // full name of the payload message
  // When it happened; InfinitePast means "now" (the writer's clock at append).
  absl::Time occurred_at = absl::InfinitePast();

  static NewEvent Of(const google::protobuf::Message& m, absl::Time occurred_at = absl::InfinitePast());
  // The payloads of a decision's events (a std::variant of event messages each), in order.
  template <typename Events>
  static std::vector<NewEvent> All(const Events& events, absl::Time occurred_at = absl::InfinitePast()) {
    std::vector<NewEvent> out;
    out.reserve(events.size());
    for (const auto& e : events) {
      out.push_back(Of(std::visit([](const auto& m) -> const google::protobuf::Message& { return m; }, e), occurred_at));
    }
    return out;
  }
};

// The aggregate an append continues: its type and id, and the version and hash of its last
// event (0 and "" for a new aggregate).
struct AggregateHead {
  std::string type;
  std::string id;
  int64_t version = 0;
  std::string last_hash;
};

// Who and what caused an append, copied into every envelope.
struct WriteContext {
  common::v1::Actor actor;
  // The request; a fresh UUIDv7 when empty.
  std::string correlation_id;
  // The event that caused this one, if any.
  std::string causation_id;

  // `caller` as the actor, from `source`.
  static WriteContext For(const Caller& caller, common::v1::ActorSource source, std::string correlation_id,
                          std::string causation_id = "") {
    WriteContext ctx;
    ctx.actor.set_user_id(caller.user_id);
    ctx.actor.set_role(caller.role);
    ctx.actor.set_team_id(caller.team);
    // A service token is an integration's (docs/architecture.md §5): its API calls are recorded as such.
    if (source == common::v1::ACTOR_SOURCE_API && caller.role == "service") source = common::v1::ACTOR_SOURCE_INTEGRATION;
    ctx.actor.set_source(source);
    ctx.correlation_id = std::move(correlation_id);
    ctx.causation_id = std::move(causation_id);
    return ctx;
  }
};

// The write path every service shares (docs/architecture.md §3), after Decide: seal the events into
// envelopes chained per aggregate, append them durably, fold them into the projections in one
// commit with the checkpoint, and answer with a consistency token. Also serialises commands
// per aggregate. Thread-safe.
class AggregateWriter {
 public:
  struct Options {
    // The service's topic. Required.
    std::string topic;
    // Partitions when the topic has to be created. Default: 8.
    int32_t partitions = topics::kPartitions;
    // CloudEvents source, e.g. "/crm/customers". Required.
    std::string source;
    // Tenant written into every envelope. Default: "default".
    std::string tenant = "default";
    // recorded_at, and occurred_at when an event has none. Required.
    Clock* clock = nullptr;
    // Called with the time each append took to become durable. Default: none.
    std::function<void(absl::Duration)> observe_append;
  };

  // Creates the topic if needed, catches `db` up with it through `apply`, becomes the topic's
  // single writer and catches up once more (a writer that took over may have written past the
  // first catch-up). `log` and `db` must outlive the writer.
  static absl::StatusOr<std::unique_ptr<AggregateWriter>> Open(eventlog::Log* log, ProjectionDb* db,
                                                               Options options,
                                                               ProjectionDb::ApplyFn apply);

  // Refuses appends from here on (UNAVAILABLE, nothing written), then closes the log's writer,
  // which writes or fails what it took within its bound (eventlog::Writer::~Writer): every
  // Append's `done` has run, exactly once, when this returns. A `done` that starts the next
  // command of its aggregate (Release) gets that command refused, so the waiters drain too.
  // No thread may call this writer after it returned.
  ~AggregateWriter();

  // Runs `fn` once every earlier Serialize() for `key` has called Release(key): commands on one
  // aggregate run one at a time, in arrival order, without holding a thread while they wait.
  // `fn` runs on the calling thread when nothing is queued, else where Release() was called.
  // Returns false, and neither queues nor runs `fn`, when `max_waiting` callers already wait
  // for `key`: one aggregate flooded with commands cannot grow the queue without bound.
  bool Serialize(const std::string& key, absl::AnyInvocable<void()> fn, size_t max_waiting);
  void Release(const std::string& key);

  // Seals `events` as versions head.version+1, ... of the aggregate, appends them under its id
  // (all or none), applies them through the projection function and commits, then calls
  // `done` with the consistency token of the last event. `done` runs on the log writer's
  // thread and must not block. Every error's message is ours and safe for clients (the log's
  // and the store's own text goes to the server log): the codes say what a client does.
  // A definite error means nothing was written: the log's
  // RESOURCE_EXHAUSTED (a full disk, a full queue) or FAILED_PRECONDITION (fenced), or a refusal
  // before the append (UNAVAILABLE once the writer is being destroyed). UNAVAILABLE means the
  // outcome is not known to this call: the log's write failed
  // midway, or the events are durable but the projections could not apply them. Then a
  // command deciding on the projections would repeat a version: every later append first
  // catches the projections up with the log (and is refused, UNAVAILABLE or
  // RESOURCE_EXHAUSTED, while they cannot), which the first append after the last one in
  // flight attempts. A retry with the same request_id then finds the events if they landed.
  using Done = absl::AnyInvocable<void(absl::StatusOr<std::string>)>;
  void Append(const AggregateHead& head, const WriteContext& ctx, std::vector<NewEvent> events,
              Done done);

  // Events sealed for one append: each envelope as sealed (version, hash, times set) and the
  // log message carrying it, in order.
  struct Sealed {
    std::vector<common::v1::EventEnvelope> envelopes;
    std::vector<eventlog::Message> messages;
    // Per message, the caller's fold of its event (projection::SealedFold), handed to the
    // projections with the record (eventlog::Record::annex); empty when the caller has none.
    // `annex_owner` keeps them valid until the append's `done` returned.
    std::vector<const eventlog::RecordAnnex*> annexes;
    std::shared_ptr<const void> annex_owner;
  };
  // The first half of Append: seals `events` as versions head.version+1, ... of the aggregate,
  // hashing each once, with one clock reading for all. For a caller that folds the sealed
  // envelopes itself (libs/kernel) before AppendSealed.
  Sealed Seal(const AggregateHead& head, const WriteContext& ctx, std::vector<NewEvent> events) const;
  // The second half of Append, with its contract: appends `sealed` (from Seal() with the same
  // `head`, not empty) expecting the aggregate at head.version.
  void AppendSealed(const AggregateHead& head, Sealed sealed, Done done);

  const std::string& topic() const { return options_.topic; }
  ProjectionDb* db() const { return db_; }
  Clock* clock() const { return options_.clock; }

 private:
  AggregateWriter(eventlog::Log* log, ProjectionDb* db, Options o, ProjectionDb::ApplyFn apply)
      : log_(log), db_(db), options_(std::move(o)), apply_(std::move(apply)) {}

  // One append the log answered, waiting for its group's end (eventlog::AnswerGroup).
  struct Answered {
    absl::StatusOr<eventlog::Appended> appended;
    // The appended messages' bytes (moved into `records` when applied), the envelopes they
    // encode and the caller's folds of them (Sealed::annexes), kept valid by `annex_owner`.
    std::vector<std::string> values;
    std::vector<common::v1::EventEnvelope> envelopes;
    std::vector<const eventlog::RecordAnnex*> annexes;
    std::shared_ptr<const void> annex_owner;
    std::vector<eventlog::Record> records;
    Done done;
  };
  class GroupCommit;

  // OK to append, after catching the projections up if they missed an event; else why not.
  absl::Status Admit();
  // Commits the appends of `answered` (one log group's, in log order) to the projections in
  // one batch, unless the projections are behind, then answers each.
  void Finish(std::vector<Answered>& answered);
  // Why `a` is not applied (its append failed, or the projections are behind): OK to apply.
  absl::Status Refusal(const Answered& a);
  // Applies `a`'s records into `batch`.
  absl::Status ApplyInto(Answered& a, Batch& batch);

  eventlog::Log* log_;
  ProjectionDb* db_;
  const Options options_;
  const ProjectionDb::ApplyFn apply_;
  std::unique_ptr<eventlog::Writer> writer_;

  absl::Mutex mu_;
  // Set by the destructor: Admit refuses every append from then on.
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  // Appends admitted but not yet handed to writer_: the destructor waits for them before it
  // closes writer_ (an atomic, not under mu_, so the append path takes no second lock).
  std::atomic<int64_t> handing_over_{0};
  absl::flat_hash_map<std::string, std::deque<absl::AnyInvocable<void()>>> queues_ ABSL_GUARDED_BY(mu_);
  // Not OK once an appended event could not be applied; OK again after a catch-up.
  absl::Status behind_ ABSL_GUARDED_BY(mu_);
  bool catching_up_ ABSL_GUARDED_BY(mu_) = false;
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

// The event's occurred_at as absl::Time.
absl::Time OccurredAt(const common::v1::EventEnvelope& e);
absl::Time RecordedAt(const common::v1::EventEnvelope& e);

// Checks that `e`, the envelope of `r`, continues an aggregate whose last applied event had
// `version` and `hash`: false when it was applied already (replays), OK/true when it is next,
// DATA_LOSS on a gap or a broken hash chain. A record this process sealed (Record::sealed) is
// checked for its place in the chain but not hashed again: its hash was computed from these
// bytes when it was sealed.
absl::StatusOr<bool> IsNextEvent(const eventlog::Record& r, const common::v1::EventEnvelope& e, int64_t version,
                                 absl::string_view hash);

}  // namespace crm::projection

#endif  // CRM_LIBS_PROJECTION_AGGREGATE_WRITER_H_
