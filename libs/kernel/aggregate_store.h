#ifndef CRM_LIBS_KERNEL_AGGREGATE_STORE_H_
#define CRM_LIBS_KERNEL_AGGREGATE_STORE_H_

// The write path of every aggregate (docs/architecture.md §3): a command runs under a
// lease on its aggregates, reads each state row once, answers a repeated request_id from one
// prefix seek, checks the expected version, decides, seals each event once, folds the sealed
// events once into the state it answers with, and appends once with the log's own version
// check. The projection applies the appended records through the writer's ApplyFn, taking
// this fold with each record (projection::SealedFold) instead of reading and folding again.
#include <atomic>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/common/caller.h"
#include "libs/common/etag.h"
#include "libs/common/grpc_status.h"
#include "libs/common/status_macros.h"
#include "libs/eventlog/log.h"
#include "libs/kernel/state_cache.h"
#include "libs/projection/aggregate_writer.h"
#include "libs/projection/fold.h"
#include "libs/projection/rows.h"

namespace crm::kernel {

// What a command wrote: the state it answers with, folded from the sealed events.
template <typename State>
struct Written {
  State state;
  std::string token;  // the consistency token; empty when nothing was appended
};

// Why a command runs, when it is not a plain API call.
struct Cause {
  common::v1::ActorSource source = common::v1::ACTOR_SOURCE_API;
  std::string causation_id;
  std::string correlation_id;                     // default: the request id
  absl::Time occurred_at = absl::InfinitePast();  // default: now
};

// A `done` for AggregateStore::Execute that answers with `engine->ToApi(state)` and the
// consistency token.
template <typename State, typename Api, typename Engine>
absl::AnyInvocable<void(absl::StatusOr<Written<State>>)> Reply(const Engine* engine,
                                                              absl::AnyInvocable<void(absl::StatusOr<Api>)> done) {
  return [engine, done = std::move(done)](absl::StatusOr<Written<State>> w) mutable {
    if (!w.ok()) return done(w.status());
    Api a = engine->ToApi(w->state);
    a.set_consistency_token(w->token);
    done(std::move(a));
  };
}

// What an AggregateStore did since it was made, for tests that count the work a command costs.
struct StoreCounters {
  int64_t state_reads = 0;      // state rows read (one per command, none on a cache hit)
  int64_t cache_hits = 0;       // states taken from the store's cache instead
  int64_t request_lookups = 0;  // request-id prefix seeks (one per command with a request_id)
  int64_t folds = 0;            // events folded into a reply state
  int64_t seals = 0;            // events sealed, one SHA-256 each
  int64_t appends = 0;          // appends handed to the log
  int64_t keys_in_flight = 0;   // unique keys and request ids held right now (a gauge, not a sum)
  // The projection's side (ProjectionDb::fold_counters of the writer's database, every
  // record it applied): events whose fold it took from the store, and rows it read and events
  // it folded itself (records from the log: catch-ups, and any append made without a fold).
  int64_t folds_taken = 0;
  int64_t projection_reads = 0;
  int64_t projection_folds = 0;

  // States a command started from: one per command, read or cached.
  int64_t states() const { return state_reads + cache_hits; }
  // Every fold of an event, the store's and the projection's own: one per event when the
  // projection takes the store's.
  int64_t all_folds() const { return folds + projection_folds; }
  // Every state a command started from or its projection read: one per command, read or cached.
  int64_t all_states() const { return states() + projection_reads; }
  // The work done since `before` (keys_in_flight stays the gauge it is).
  StoreCounters Since(const StoreCounters& before) const {
    StoreCounters d = *this;
    d.state_reads -= before.state_reads;
    d.cache_hits -= before.cache_hits;
    d.request_lookups -= before.request_lookups;
    d.folds -= before.folds;
    d.seals -= before.seals;
    d.appends -= before.appends;
    d.folds_taken -= before.folds_taken;
    d.projection_reads -= before.projection_reads;
    d.projection_folds -= before.projection_folds;
    return d;
  }
};

// A value at most one aggregate may hold at a time (a customer's normalised phone): while a
// command that gives it to its aggregate is in flight, and once committed, through the index
// rows "<prefix><holder id>" the projection keeps.
struct UniqueKey {
  // The index rows' prefix, e.g. "p/<normalised phone>/". Required.
  std::string prefix;
  // The ErrorInfo reason of the ALREADY_EXISTS answer, e.g. "DUPLICATE_PHONE". Required.
  std::string reason;
  // The request field the value came from, named in the answer, e.g. "customer.phone".
  std::string field;
  // What the value is and the holders' collection, for the message "<collection>/<holder>
  // already has this <what>" and ErrorInfo "existing" = "<collection>/<holder>".
  std::string what;
  std::string collection;
};

// What a command decided, when it needs more than the events (see Command::decide).
template <typename Event>
struct Decision {
  // The events to record, in order; none: nothing to record.
  std::vector<Event> events;
  // When they happened (business time). Default: Command::cause.occurred_at.
  absl::Time occurred_at = absl::InfinitePast();
  // The event of another stream this reacts to. Default: Command::cause.causation_id.
  std::string causation_id;
  // Runs exactly once when the decision is settled: true once the events are committed, false
  // when they were not (refused after deciding, nothing to record, or the append failed); so a
  // count taken while deciding (a daily limit) can be given back. Runs before the command's
  // `done`, under the lease. Default: none.
  absl::AnyInvocable<void(bool written)> after;
};

// Command::decide: a callable taking the state (null when none) and returning either
// absl::StatusOr<std::vector<Event>> or absl::StatusOr<Decision<Event>>.
template <typename State, typename Event>
class Decider {
 public:
  Decider() = default;
  template <typename F, typename R = std::invoke_result_t<F&, const State*>>
  Decider(F f) {  // NOLINT: implicit, so `cmd.decide = lambda` takes either shape
    if constexpr (std::is_same_v<R, absl::StatusOr<Decision<Event>>>) {
      fn_ = std::move(f);
    } else {
      static_assert(std::is_convertible_v<R, absl::StatusOr<std::vector<Event>>>,
                    "decide returns absl::StatusOr<std::vector<Event>> or absl::StatusOr<Decision<Event>>");
      fn_ = [f = std::move(f)](const State* s) mutable -> absl::StatusOr<Decision<Event>> {
        absl::StatusOr<std::vector<Event>> events = f(s);
        if (!events.ok()) return events.status();
        Decision<Event> d;
        d.events = *std::move(events);
        return d;
      };
    }
  }
  explicit operator bool() const { return static_cast<bool>(fn_); }
  absl::StatusOr<Decision<Event>> operator()(const State* s) { return fn_(s); }

 private:
  absl::AnyInvocable<absl::StatusOr<Decision<Event>>(const State*)> fn_;
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
  // Whether `id` was just picked for a new aggregate (a create under a fresh id): an r/ row of
  // another aggregate then is an earlier attempt of this request, answered as a repeat with
  // that aggregate's state (when it is of this kind; INVALID_ARGUMENT on request_id otherwise).
  // Default: false (another aggregate's row is reuse, INVALID_ARGUMENT).
  bool fresh_id = false;
  // The version the caller decided on (an etag): Exact(v), NoStream() for "nothing written
  // yet", Any() for none. Checked before `decide`, after a repeat is answered (a retry carries
  // the expectation it had before its first attempt committed). Default: Any().
  eventlog::ExpectedVersion expected = eventlog::ExpectedVersion::Any();
  // The request field the expectation came from, named in an ABORTED answer. Default: none.
  std::string expected_field;
  // The events the command records given the state (null when none); none: nothing to record.
  // Returns the events, or a Decision<Event> when it also sets their time, causation or an
  // `after` hook. Called at most once, under the lease.
  Decider<State, Event> decide;
  Cause cause;
  // The unique keys the aggregate holds once the events are folded in (`after`, the state the
  // reply carries): each must be held by no other aggregate, committed or in flight, else the
  // command is ALREADY_EXISTS (UniqueKey::reason, "existing", "field") and writes nothing. The
  // keys are held from the check until the append settled. Default: none.
  absl::AnyInvocable<std::vector<UniqueKey>(const State& after)> reserve_keys;
  // An aggregate that may hold this one's keys meanwhile and is no conflict (the other side
  // of a merge, held by the same lease). Default: none.
  std::string shares_keys_with;
};

template <typename State>
using Done = absl::AnyInvocable<void(absl::StatusOr<Written<State>>)>;

namespace internal {

// One append's fold (AggregateStore::ExecuteHeld): the state read, the events and the state
// after each, and their annexes for the projection, kept until the append's `done` ran.
template <typename State, typename Event>
struct Folds {
  absl::optional<State> before;  // none: a new aggregate
  std::vector<Event> events;
  std::vector<State> states;
  std::vector<projection::SealedFold<State, Event>> annexes;
};

}  // namespace internal

struct StoreOptions {
  // Most unique keys and request ids held by commands in flight together; a command that
  // would hold more is RESOURCE_EXHAUSTED (retryable) and writes nothing. Default: 65536.
  size_t max_keys_in_flight = 65536;
  // Most commands waiting for one aggregate's lease; one more is RESOURCE_EXHAUSTED (retryable)
  // and writes nothing. The gRPC runtime bounds the calls in flight too, but reactions and
  // schedulers queue without it. Default: 1024.
  size_t max_waiting_per_aggregate = 1024;
  // Most aggregate states the store keeps after a write (StateCache), so that the next command
  // on a hot aggregate reads no row; an aggregate is kept from its second write on (a create
  // alone is not a sign of more to come). 0 keeps none. Default: 4096.
  size_t cached_states = 4096;
  // Compares every cached state with its row as it is read (one read per hit, as without the
  // cache) and fails the command with INTERNAL on a difference; and has the projection read,
  // unpack and fold each event again and compare with the kernel's fold instead of taking it
  // (INTERNAL, the append then UNAVAILABLE, on a difference): a projection that commits
  // something other than the kernel's fold. For tests and for an operator who suspects the
  // cache or a fold. Default: false, true when the environment sets CRM_CHECK_STATE_CACHE=1.
  bool check_cached_states = CheckCachedStatesByDefault();

  static bool CheckCachedStatesByDefault();
};

// Runs commands over one service's AggregateWriter (its topic and projections). Thread-safe.
class AggregateStore {
 public:
  // Most aggregates one lease may hold: a command that spans more is a caller's bug.
  static constexpr size_t kMaxLeaseIds = 8;
  // Most r/ rows one request-id lookup reads: a request changes at most a few aggregates.
  static constexpr size_t kMaxRequestHolders = 16;
  // Most index rows one unique-key check reads: a key has one holder, two during a merge.
  static constexpr size_t kMaxKeyHolders = 16;

  using Options = StoreOptions;

  // `writer` must outlive the store; its Serialize/Release queue is the store's lease table.
  explicit AggregateStore(projection::AggregateWriter* writer, Options options = {});

  // Calls `fn` with a lease on `ids` once every earlier lease on any of them is released,
  // without holding a thread while it waits: on the calling thread when none is held, else on
  // the thread releasing the last one. Ids are taken in sorted order, so leases over several
  // aggregates cannot deadlock each other. INVALID_ARGUMENT (right away) when `ids` is empty,
  // holds an empty id or more than kMaxLeaseIds distinct ids; RESOURCE_EXHAUSTED (right away,
  // holding nothing) when Options::max_waiting_per_aggregate wait for one of them already;
  // DEADLINE_EXCEEDED, holding nothing, when the lease is granted after `deadline` (the
  // caller's call is over: its command is not started).
  void Acquire(std::vector<std::string> ids, absl::AnyInvocable<void(absl::StatusOr<Lease>)> fn,
               absl::Time deadline = absl::InfiniteFuture());

  // Runs `cmd` under a lease on cmd.id, acquired by cmd.caller.deadline; see ExecuteHeld.
  template <typename K, typename State, typename Event>
  void Execute(Command<State, Event> cmd, std::type_identity_t<Done<State>> done);

  // Runs `cmd` under `lease`, which must hold cmd.id (FAILED_PRECONDITION otherwise):
  //  1. holds the request id, unless request_spans_aggregates: ABORTED ("in progress") while a
  //     command on another aggregate holds it (two first attempts of one create), and
  //     RESOURCE_EXHAUSTED beyond Options::max_keys_in_flight; then reads the state row
  //     K::Row(id) once;
  //  2. with a request_id, one prefix seek over its r/ rows decides (customers' rule, for every
  //     aggregate): a row for `id` makes the command a repeat, answered with the state (no
  //     token) when K::Visible(caller, state), PERMISSION_DENIED otherwise; a row for an
  //     aggregate outside `lease` is INVALID_ARGUMENT on request_id ("used for another
  //     resource"), or with cmd.fresh_id a repeat answered with that aggregate (one read more); rows only for other aggregates of the lease (a two-aggregate command resumed
  //     after its first write), or any with cmd.request_spans_aggregates, let the command run;
  //  3. decides; a refusal is the answer, nothing written; then checks cmd.expected against
  //     the state's version (ABORTED, ETAG_MISMATCH, nothing written, `after(false)`): the
  //     command's own refusal comes first, so a caller who may not see or change the aggregate
  //     (NOT_FOUND, PERMISSION_DENIED from Decide) learns nothing of its version;
  //  4. no events answers with the state as it is;
  //  5. seals each event once and folds the sealed envelopes into the state with K::Apply; the
  //     projection takes these folds with the records (projection::SealedFold);
  //  6. holds the keys of cmd.reserve_keys(folded state): ALREADY_EXISTS when another
  //     aggregate holds a key (committed or in flight, cmd.shares_keys_with excepted),
  //     RESOURCE_EXHAUSTED beyond Options::max_keys_in_flight; keys and request id are all
  //     released before `done` runs, on every path;
  //  7. appends with NoStream() for a new aggregate, Exact(version) otherwise, and answers with
  //     the folded state and the consistency token once the projection committed. Errors are
  //     AggregateWriter::Append's.
  // The store lets go of its copy of `lease` before `done` runs, on every path: a caller that
  // continues under the lease (a two-aggregate command's second step) keeps a copy of its own,
  // and one that tears the store down once answered leaves no release behind. `done` runs on
  // the log writer's thread, or on the caller's when nothing is appended.
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
  // Step 2 of ExecuteHeld: the aggregate whose change by `request_id` makes this command a
  // repeat (`id`, or with `fresh_id` the one an earlier attempt created); empty when none.
  absl::StatusOr<std::string> RepeatOf(const Lease& lease, const std::string& request_id, const std::string& id,
                                       bool spans_aggregates, bool fresh_id);
  // Holds `request_id` for aggregate `id`, appending the table's key to *held (for Unhold):
  // ABORTED ("in progress") when a command on another aggregate holds it.
  absl::Status HoldRequest(const std::string& id, const std::string& request_id, std::vector<std::string>* held);
  // Step 6 of ExecuteHeld: holds `keys` for aggregate `id`, appending the table's keys it took
  // to *held (for Unhold), or fails holding none of them.
  absl::Status HoldKeys(const std::string& id, const std::vector<UniqueKey>& keys, const std::string& shares_with,
                        std::vector<std::string>* held);
  void Unhold(const std::vector<std::string>& held);
  // The first aggregate the committed index rows under `prefix` name for which `mine` is false;
  // empty when none.
  absl::StatusOr<std::string> OtherHolder(const std::string& prefix, absl::FunctionRef<bool(absl::string_view)> mine);
  // Step 1's read of state row `row`: from the cache when it holds it.
  template <typename State>
  absl::StatusOr<absl::optional<State>> ReadState(const std::string& row);

  projection::AggregateWriter* const writer_;
  const Options options_;
  mutable absl::Mutex keys_mu_;
  // In-flight unique keys (UniqueKey::prefix) and request ids (projection::RequestPrefix) ->
  // the aggregate whose command holds them.
  absl::flat_hash_map<std::string, std::string> keys_in_flight_ ABSL_GUARDED_BY(keys_mu_);
  std::unique_ptr<StateCache> cache_;  // null when Options::cached_states is 0
  std::atomic<int64_t> state_reads_{0};
  std::atomic<int64_t> cache_hits_{0};
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
  const absl::Time deadline = cmd.caller.deadline;
  Acquire(
      std::move(ids),
      [this, cmd = std::move(cmd), done = std::move(done)](absl::StatusOr<Lease> lease) mutable {
        if (!lease.ok()) return done(lease.status());
        ExecuteHeld<K>(*std::move(lease), std::move(cmd), std::move(done));
      },
      deadline);
}

template <typename K, typename State, typename Event>
void AggregateStore::ExecuteHeld(Lease lease, Command<State, Event> cmd, std::type_identity_t<Done<State>> done) {
  if (!lease.Holds(cmd.id)) {
    return done(absl::FailedPreconditionError("a command ran without a lease on its aggregate"));
  }
  // The keys and the request id this command holds in the store's table. They and the store's
  // copy of the lease are let go before `done` runs, on every path.
  std::vector<std::string> held;
  auto answer = [this, &lease, &done, &held](absl::StatusOr<Written<State>> result) {
    Unhold(held);
    held.clear();
    lease = Lease();
    done(std::move(result));
  };
  // The request id is held before its rows are read: an attempt of the same request on another
  // aggregate (a retried create under a fresh id) is then either still in flight (ABORTED here)
  // or committed its r/ rows before it let go (a repeat below), never between the two.
  const std::string& hold_request = cmd.request_spans_aggregates ? std::string() : cmd.request_id;
  if (!hold_request.empty()) {
    if (absl::Status s = HoldRequest(cmd.id, hold_request, &held); !s.ok()) return answer(s);
  }
  const std::string row = K::Row(cmd.id);
  absl::StatusOr<absl::optional<State>> state = ReadState<State>(row);
  if (!state.ok()) return answer(state.status());
  const State* cur = state->has_value() ? &**state : nullptr;
  if (!cmd.request_id.empty()) {
    absl::StatusOr<std::string> repeat =
        RepeatOf(lease, cmd.request_id, cmd.id, cmd.request_spans_aggregates, cmd.fresh_id);
    if (!repeat.ok()) return answer(repeat.status());
    if (!repeat->empty()) {
      const State* shown = cur;
      absl::StatusOr<absl::optional<State>> earlier = absl::optional<State>();
      if (*repeat != cmd.id) {  // a create's earlier attempt, under the id it picked
        state_reads_.fetch_add(1, std::memory_order_relaxed);
        earlier = projection::ReadStateRow<State>(writer_->db()->db(), K::Row(*repeat));
        if (!earlier.ok()) return answer(earlier.status());
        if (!earlier->has_value()) return answer(InvalidFieldError("request_id", "was already used for another resource"));
        shown = &**earlier;
      }
      if (shown == nullptr) return answer(absl::NotFoundError("the resource this request_id wrote no longer exists"));
      if (!K::Visible(cmd.caller, *shown)) {
        return answer(absl::PermissionDeniedError("the resource belongs to another owner or team"));
      }
      return answer(Written<State>{*shown, ""});
    }
  }
  const int64_t version = cur != nullptr ? cur->version() : 0;
  const absl::Status stale = CheckExpected(cmd.expected, version, K::kType, cmd.expected_field);
  absl::StatusOr<Decision<Event>> decided = cmd.decide(cur);
  if (!decided.ok()) return answer(decided.status());
  if (!stale.ok()) {
    if (decided->after) decided->after(false);
    return answer(stale);
  }
  absl::AnyInvocable<void(bool)> after = std::move(decided->after);
  auto refuse = [&](absl::Status s) {
    if (after) after(false);
    answer(std::move(s));
  };
  std::vector<Event>& events = decided->events;
  if (events.empty()) {
    if (after) after(false);
    return answer(Written<State>{cur != nullptr ? *cur : State(), ""});
  }

  projection::AggregateHead head{K::kType, cmd.id, version, cur != nullptr ? cur->last_hash() : ""};
  const auto ctx = projection::WriteContext::For(
      cmd.caller, cmd.cause.source, cmd.cause.correlation_id.empty() ? cmd.request_id : cmd.cause.correlation_id,
      decided->causation_id.empty() ? cmd.cause.causation_id : decided->causation_id);
  const absl::Time at = decided->occurred_at != absl::InfinitePast() ? decided->occurred_at : cmd.cause.occurred_at;
  projection::AggregateWriter::Sealed sealed = writer_->Seal(head, ctx, projection::NewEvent::All(events, at));
  seals_.fetch_add(static_cast<int64_t>(sealed.envelopes.size()), std::memory_order_relaxed);
  // The reply is this fold of the sealed envelopes (their versions, times and hashes), and the
  // projection commits it as it is (projection::SealedFold): no read after the commit, and no
  // second read or fold in the projection.
  auto folds = std::make_shared<internal::Folds<State, Event>>();
  folds->events = std::move(events);
  folds->before = std::move(*state);
  const State* before = folds->before.has_value() ? &*folds->before : &State::default_instance();
  const size_t n = folds->events.size();
  folds->states.reserve(n);
  State next = *before;
  for (size_t i = 0; i < n; ++i) {
    if constexpr (requires(State& s) { s.set_id(std::string()); }) {
      projection::FoldSealed<State, Event>(next, folds->events[i], sealed.envelopes[i], &K::Apply);
    } else {  // a singleton without an id field (a service's settings): FoldSealed minus set_id
      const common::v1::EventEnvelope& env = sealed.envelopes[i];
      K::Apply(next, folds->events[i], env.aggregate_version(), projection::OccurredAt(env), env.actor().user_id());
      next.set_last_hash(env.hash());
    }
    folds->states.push_back(i + 1 < n ? next : std::move(next));
  }
  folds_.fetch_add(static_cast<int64_t>(n), std::memory_order_relaxed);
  folds->annexes.resize(n);
  sealed.annexes.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    projection::SealedFold<State, Event>& a = folds->annexes[i];
    a.before = i == 0 ? before : &folds->states[i - 1];
    a.after = &folds->states[i];
    a.event = &folds->events[i];
    a.check = options_.check_cached_states;
    sealed.annexes.push_back(&a);
  }
  sealed.annex_owner = folds;
  if (cmd.reserve_keys) {
    if (absl::Status s = HoldKeys(cmd.id, cmd.reserve_keys(folds->states.back()), cmd.shares_keys_with, &held);
        !s.ok()) {
      return refuse(s);
    }
  }
  appends_.fetch_add(1, std::memory_order_relaxed);
  // An aggregate written again is kept (see Options::cached_states).
  const bool cache = cache_ != nullptr && version > 0;
  if (cache) cache_->Expect(row);
  writer_->AppendSealed(head, std::move(sealed),
                        [this, lease = std::move(lease), folds = std::move(folds), held = std::move(held),
                         after = std::move(after), done = std::move(done), cache,
                         row](absl::StatusOr<std::string> token) mutable {
                          // The projection applied the folds already (or never will): the last
                          // state is the reply's from here on.
                          State& last = folds->states.back();
                          if (cache) cache_->Fill(row, token.ok() ? std::make_shared<const State>(last) : nullptr);
                          // The index rows hold the keys from here on (the projection committed).
                          Unhold(held);
                          if (after) after(token.ok());
                          // Released before `done`, not when the log drops the callback.
                          lease = Lease();
                          if (!token.ok()) return done(token.status());
                          done(Written<State>{std::move(last), *std::move(token)});
                        });
}

template <typename State>
absl::StatusOr<absl::optional<State>> AggregateStore::ReadState(const std::string& row) {
  std::shared_ptr<const google::protobuf::Message> hit = cache_ != nullptr ? cache_->Find(row) : nullptr;
  // One row holds one type; anything else is no hit (fail closed).
  if (hit == nullptr || hit->GetDescriptor() != State::descriptor()) {
    state_reads_.fetch_add(1, std::memory_order_relaxed);
    return projection::ReadStateRow<State>(writer_->db()->db(), row);
  }
  cache_hits_.fetch_add(1, std::memory_order_relaxed);
  absl::optional<State> cached(static_cast<const State&>(*hit));
  if (options_.check_cached_states) {
    CRM_ASSIGN_OR_RETURN(absl::optional<State> stored, projection::ReadStateRow<State>(writer_->db()->db(), row));
    if (!stored.has_value() || projection::DeterministicBytes(*stored) != projection::DeterministicBytes(*cached)) {
      return absl::InternalError(absl::StrCat("the cached state of ", row, " differs from its row"));
    }
  }
  return cached;
}

}  // namespace crm::kernel

#endif  // CRM_LIBS_KERNEL_AGGREGATE_STORE_H_
