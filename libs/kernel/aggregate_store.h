#ifndef CRM_LIBS_KERNEL_AGGREGATE_STORE_H_
#define CRM_LIBS_KERNEL_AGGREGATE_STORE_H_

// The write path every service is moving onto (docs/architecture.md §3): a command runs under a
// lease on its aggregates, reads each state row once, answers a repeated request_id from one
// prefix seek, checks the expected version, decides, seals each event once, folds the sealed
// events once into the state it answers with, and appends once with the log's own version
// check. The projection still applies the appended records through the writer's ApplyFn.
#include <atomic>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "libs/common/caller.h"
#include "libs/common/etag.h"
#include "libs/eventlog/log.h"
#include "libs/projection/aggregate_writer.h"
#include "libs/projection/execute.h"
#include "libs/projection/fold.h"
#include "libs/projection/rows.h"

namespace crm::kernel {

// Until execute.h goes (its users move here), the two share these.
using projection::Cause;
using projection::Written;

// What an AggregateStore did since it was made, for tests that count the work a command costs.
struct StoreCounters {
  int64_t state_reads = 0;      // state rows read (one per command)
  int64_t request_lookups = 0;  // request-id prefix seeks (one per command with a request_id)
  int64_t folds = 0;            // events folded into a reply state
  int64_t seals = 0;            // events sealed, one SHA-256 each
  int64_t appends = 0;          // appends handed to the log
};

// Exclusive use of one or more aggregates, by id: the commands on an aggregate run one at a
// time, in arrival order. Copyable; the aggregates are released when the last copy goes, in
// reverse order of acquisition, and a release may run the next waiter's command on the
// releasing thread. An empty Lease holds nothing.
class Lease {
 public:
  Lease() = default;

  // Whether this lease holds aggregate `id`.
  bool Holds(const std::string& id) const;
  // The ids held, sorted, without repeats.
  const std::vector<std::string>& ids() const;

 private:
  friend class AggregateStore;
  struct Held;
  explicit Lease(std::shared_ptr<const Held> held) : held_(std::move(held)) {}
  std::shared_ptr<const Held> held_;
};

// One command on one aggregate. `K` (the aggregate's traits, see AggregateStore::Execute)
// names its type, row and fold.
template <typename State, typename Event>
struct Command {
  Caller caller;
  // The aggregate's id. Required.
  std::string id;
  // The client's idempotency key; empty when the command has none. Syntax checked by the caller
  // (CheckRequestId).
  std::string request_id;
  // Whether the request changes many aggregates by design, one command each (a bulk command
  // such as tickets' type migration): then only an r/ row for `id` counts (a repeat), and rows
  // of other aggregates are no reuse. Default: false (the request names one resource, or the
  // lease's).
  bool request_spans_aggregates = false;
  // The version the caller decided on (an etag): Exact(v), NoStream() for "nothing written
  // yet", Any() for none. Checked before `decide`, after a repeat is answered (a retry carries
  // the expectation it had before its first attempt committed). Default: Any().
  eventlog::ExpectedVersion expected = eventlog::ExpectedVersion::Any();
  // The request field the expectation came from, named in an ABORTED answer. Default: none.
  std::string expected_field;
  // The events the command records given the state (null when none); none: nothing to record.
  // Called at most once, under the lease.
  absl::AnyInvocable<absl::StatusOr<std::vector<Event>>(const State*)> decide;
  Cause cause;
};

template <typename State>
using Done = absl::AnyInvocable<void(absl::StatusOr<Written<State>>)>;

// Runs commands over one service's AggregateWriter (its topic and projections). Thread-safe.
class AggregateStore {
 public:
  // Most aggregates one lease may hold: a command that spans more is a caller's bug.
  static constexpr size_t kMaxLeaseIds = 8;
  // Most r/ rows one request-id lookup reads: a request changes at most a few aggregates.
  static constexpr size_t kMaxRequestHolders = 16;

  // `writer` must outlive the store; its Serialize/Release queue is the store's lease table, so
  // code still on execute.h excludes commands of the store on the same ids.
  explicit AggregateStore(projection::AggregateWriter* writer) : writer_(writer) {}

  // Calls `fn` with a lease on `ids` once every earlier lease on any of them is released,
  // without holding a thread while it waits: on the calling thread when none is held, else on
  // the thread releasing the last one. Ids are taken in sorted order, so leases over several
  // aggregates cannot deadlock each other. INVALID_ARGUMENT (right away) when `ids` is empty,
  // holds an empty id or more than kMaxLeaseIds distinct ids.
  void Acquire(std::vector<std::string> ids, absl::AnyInvocable<void(absl::StatusOr<Lease>)> fn);

  // Runs `cmd` under a lease on cmd.id; see ExecuteHeld.
  template <typename K, typename State, typename Event>
  void Execute(Command<State, Event> cmd, std::type_identity_t<Done<State>> done);

  // Runs `cmd` under `lease`, which must hold cmd.id (FAILED_PRECONDITION otherwise):
  //  1. reads the state row K::Row(id) once;
  //  2. with a request_id, one prefix seek over its r/ rows decides (customers' rule, for every
  //     aggregate): a row for `id` makes the command a repeat, answered with the state (no
  //     token) when K::Visible(caller, state), PERMISSION_DENIED otherwise; a row for an
  //     aggregate outside `lease` is INVALID_ARGUMENT on request_id ("used for another
  //     resource"); rows only for other aggregates of the lease (a two-aggregate command resumed
  //     after its first write), or any with cmd.request_spans_aggregates, let the command run;
  //  3. checks cmd.expected against the state's version (ABORTED, ETAG_MISMATCH, nothing written);
  //  4. decides; no events answers with the state as it is;
  //  5. seals each event once and folds the sealed envelopes into the state with K::Apply;
  //  6. appends with NoStream() for a new aggregate, Exact(version) otherwise, and answers with
  //     the folded state and the consistency token once the projection committed. Errors are
  //     AggregateWriter::Append's.
  // The lease is held until `done` returned. `done` runs on the log writer's thread, or on the
  // caller's when nothing is appended.
  //
  // `K` describes the aggregate: K::kType (aggregate type), K::Row(id) (its state row),
  // K::Visible(caller, state), and K::Apply(State&, const Event&, int64_t version, absl::Time
  // at, const std::string& actor), the fold the projection uses too (projection::FoldSealed).
  template <typename K, typename State, typename Event>
  void ExecuteHeld(Lease lease, Command<State, Event> cmd, std::type_identity_t<Done<State>> done);

  StoreCounters counters() const;
  projection::AggregateWriter* writer() const { return writer_; }

 private:
  struct Acquisition;
  void AcquireFrom(std::shared_ptr<Acquisition> a, size_t next);
  // Step 2 of ExecuteHeld: whether `request_id` already changed `id`.
  absl::StatusOr<bool> IsRepeat(const Lease& lease, const std::string& request_id, const std::string& id,
                                bool spans_aggregates);

  projection::AggregateWriter* const writer_;
  std::atomic<int64_t> state_reads_{0};
  std::atomic<int64_t> request_lookups_{0};
  std::atomic<int64_t> folds_{0};
  std::atomic<int64_t> seals_{0};
  std::atomic<int64_t> appends_{0};
};

// The expectation of an etag as ParseEtag (libs/common/request.h) reads it: 0 is Any(),
// kEtagNothingWritten NoStream(), a version Exact(version).
eventlog::ExpectedVersion ExpectedFromEtag(int64_t etag);

// ABORTED (ETAG_MISMATCH, naming `field` when given) unless `expected` allows an aggregate of
// type `what` at `version` (0: none written).
absl::Status CheckExpected(const eventlog::ExpectedVersion& expected, int64_t version, absl::string_view what,
                           absl::string_view field);

template <typename K, typename State, typename Event>
void AggregateStore::Execute(Command<State, Event> cmd, std::type_identity_t<Done<State>> done) {
  std::vector<std::string> ids{cmd.id};
  Acquire(std::move(ids), [this, cmd = std::move(cmd), done = std::move(done)](absl::StatusOr<Lease> lease) mutable {
    if (!lease.ok()) return done(lease.status());
    ExecuteHeld<K>(*std::move(lease), std::move(cmd), std::move(done));
  });
}

template <typename K, typename State, typename Event>
void AggregateStore::ExecuteHeld(Lease lease, Command<State, Event> cmd, std::type_identity_t<Done<State>> done) {
  if (!lease.Holds(cmd.id)) {
    return done(absl::FailedPreconditionError("a command ran without a lease on its aggregate"));
  }
  state_reads_.fetch_add(1, std::memory_order_relaxed);
  auto state = projection::ReadStateRow<State>(writer_->db()->db(), K::Row(cmd.id));
  if (!state.ok()) return done(state.status());
  const State* cur = state->has_value() ? &**state : nullptr;
  if (!cmd.request_id.empty()) {
    absl::StatusOr<bool> repeat = IsRepeat(lease, cmd.request_id, cmd.id, cmd.request_spans_aggregates);
    if (!repeat.ok()) return done(repeat.status());
    if (*repeat) {
      if (cur == nullptr) return done(absl::NotFoundError("the resource this request_id wrote no longer exists"));
      if (!K::Visible(cmd.caller, *cur)) {
        return done(absl::PermissionDeniedError("the resource belongs to another owner or team"));
      }
      return done(Written<State>{*cur, ""});
    }
  }
  const int64_t version = cur != nullptr ? cur->version() : 0;
  if (absl::Status s = CheckExpected(cmd.expected, version, K::kType, cmd.expected_field); !s.ok()) return done(s);
  auto decided = cmd.decide(cur);
  if (!decided.ok()) return done(decided.status());
  if (decided->empty()) return done(Written<State>{cur != nullptr ? *cur : State(), ""});

  projection::AggregateHead head{K::kType, cmd.id, version, cur != nullptr ? cur->last_hash() : ""};
  const auto ctx = projection::WriteContext::For(
      cmd.caller, cmd.cause.source, cmd.cause.correlation_id.empty() ? cmd.request_id : cmd.cause.correlation_id,
      cmd.cause.causation_id);
  projection::AggregateWriter::Sealed sealed =
      writer_->Seal(head, ctx, projection::NewEvent::All(*decided, cmd.cause.occurred_at));
  seals_.fetch_add(static_cast<int64_t>(sealed.envelopes.size()), std::memory_order_relaxed);
  // The reply is this fold of the sealed envelopes (their versions, times and hashes), the same
  // fold the projection commits: no read after the commit.
  State next = cur != nullptr ? std::move(**state) : State();
  for (size_t i = 0; i < decided->size(); ++i) {
    projection::FoldSealed<State, Event>(next, (*decided)[i], sealed.envelopes[i], &K::Apply);
  }
  folds_.fetch_add(static_cast<int64_t>(decided->size()), std::memory_order_relaxed);
  appends_.fetch_add(1, std::memory_order_relaxed);
  writer_->AppendSealed(head, std::move(sealed),
                        [lease = std::move(lease), next = std::move(next),
                         done = std::move(done)](absl::StatusOr<std::string> token) mutable {
                          // Released when this call returns, not when the log drops the callback.
                          Lease held = std::move(lease);
                          if (!token.ok()) return done(token.status());
                          done(Written<State>{std::move(next), *std::move(token)});
                        });
}

}  // namespace crm::kernel

#endif  // CRM_LIBS_KERNEL_AGGREGATE_STORE_H_
