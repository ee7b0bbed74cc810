#ifndef CRM_LIBS_PROJECTION_FOLD_H_
#define CRM_LIBS_PROJECTION_FOLD_H_

// The fold of one aggregate event into its state row that every service's projection shares:
// take the write kernel's fold of an event this process sealed, or read the row as the batch
// leaves it, check the event continues it (replays are skipped, a gap or a broken hash chain is
// DATA_LOSS) and fold; then move the index rows, and keep the envelope as history and the
// request id.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"
#include "libs/eventlog/log.h"
#include "libs/projection/aggregate_writer.h"
#include "libs/projection/rows.h"

namespace crm::projection {

// Index rows an aggregate holds in a state: keys with their values.
using IndexRows = std::vector<std::pair<std::string, std::string>>;

// Replaces the index rows `before` by `after` in the batch.
inline void Reindex(Batch& b, const IndexRows& before, const IndexRows& after) {
  for (const auto& [k, v] : before) {
    if (std::none_of(after.begin(), after.end(), [&](const auto& a) { return a.first == k; })) b.Delete(k);
  }
  for (const auto& [k, v] : after) b.Put(k, v);
}

// Folds `event`, sealed in `env`, into `s`: the one fold of an aggregate event, shared by the
// projection (FoldRow) and the write kernel's reply (libs/kernel), so that a reply equals the
// row the projection commits.
template <typename State, typename Event>
void FoldSealed(State& s, const Event& event, const common::v1::EventEnvelope& env,
                void (*apply)(State&, const Event&, int64_t version, absl::Time at, const std::string& actor)) {
  s.set_id(env.aggregate_id());
  apply(s, event, env.aggregate_version(), OccurredAt(env), env.actor().user_id());
  s.set_last_hash(env.hash());
}

// The write kernel's fold of one event it sealed (libs/kernel), handed to the projection with
// the record (eventlog::Record::annex): the projection commits these states as they are,
// without reading the row, unpacking the payload or folding again (docs/architecture.md §3).
template <typename State, typename Event>
struct SealedFold final : eventlog::RecordAnnex {
  const State* before = nullptr;  // the state the event continues; an empty State when new
  const State* after = nullptr;   // `before` with the event folded in by FoldSealed
  const Event* event = nullptr;   // the event as decided
  // Read, unpack and fold as if the annex were absent, then compare with it (INTERNAL on a
  // difference): a test's or an operator's check that the two folds agree.
  bool check = false;
};

// One event folded into its state row by Fold(): the state after it and the event, either
// taken from the writer's SealedFold or read, unpacked and folded here. Valid while the record
// is being applied. Neither copyable nor movable (it may point into itself).
template <typename State, typename Event>
class FoldedEvent {
 public:
  FoldedEvent() = default;
  FoldedEvent(const FoldedEvent&) = delete;
  FoldedEvent& operator=(const FoldedEvent&) = delete;

  // Folds `env`, the envelope of `r`, into state row `key` as `b` leaves it: `before` sees the
  // state the event continues, then `fold(state, event, env)` folds it in. Returns false
  // (nothing folded) when the event was applied already, DATA_LOSS on a gap or a broken hash
  // chain (IsNextEvent). With the writer's SealedFold<State, Event> on `r`, takes its states
  // and event instead: the writer sealed the event on top of the state it read under the
  // aggregate's lease, and the log accepted it as exactly the next version. INTERNAL when `r`
  // carries a fold of other types. Counted in db.fold_counters().
  template <typename FoldFn>
  absl::StatusOr<bool> Fold(ProjectionDb& db, const eventlog::Record& r, const common::v1::EventEnvelope& env,
                            Batch& b, const std::string& key,
                            absl::StatusOr<Event> (*unpack)(const common::v1::EventEnvelope&), FoldFn fold,
                            absl::FunctionRef<void(const State&)> before) {
    const auto* sealed = dynamic_cast<const SealedFold<State, Event>*>(r.annex);
    if (sealed == nullptr && r.annex != nullptr) {
      // The writer's aggregate kind and this projection disagree on the state or event type: a
      // defect that would fold the record other than the reply did. Fail closed.
      return absl::InternalError(absl::StrCat("the writer folded ", key, " as another type"));
    }
    if (sealed != nullptr && !sealed->check) {
      // Holds by construction (the log took the event as exactly the next version of the
      // state the writer read); two integer compares make a defect fail closed, not commit.
      if (sealed->before->version() + 1 != env.aggregate_version() ||
          sealed->after->version() != env.aggregate_version()) {
        return absl::InternalError(absl::StrCat("the writer folded ", key, " into version ", sealed->after->version(),
                                                " from ", sealed->before->version(), ", not into ",
                                                env.aggregate_version()));
      }
      db.CountFold(/*taken=*/true);
      before(*sealed->before);
      state_ = sealed->after;
      event_ = sealed->event;
      return true;
    }
    CRM_RETURN_IF_ERROR(ReadRow(db, b, key, &own_state_).status());
    CRM_ASSIGN_OR_RETURN(bool next, IsNextEvent(r, env, own_state_.version(), own_state_.last_hash()));
    if (!next) return false;
    CRM_ASSIGN_OR_RETURN(own_event_, unpack(env));
    if (sealed != nullptr && DeterministicBytes(own_state_) != DeterministicBytes(*sealed->before)) {
      return absl::InternalError(absl::StrCat("the writer folded ", key, " from a state other than its row"));
    }
    before(own_state_);
    fold(own_state_, own_event_, env);
    if (sealed != nullptr && DeterministicBytes(own_state_) != DeterministicBytes(*sealed->after)) {
      return absl::InternalError(absl::StrCat("the writer's fold of ", key, " differs from the projection's"));
    }
    db.CountFold(/*taken=*/sealed != nullptr);
    return true;
  }

  const State& state() const { return *state_; }
  const Event& event() const { return *event_; }

 private:
  State own_state_;
  Event own_event_;
  const State* state_ = &own_state_;
  const Event* event_ = &own_event_;
};

// Folds `env` (the envelope of `r`) into state row `key` through the service's `apply`
// (FoldSealed), moves the state's `index` rows, and keeps the envelope as history and the
// request id. Returns false when the event was applied already; the state and the event are
// in *out.
template <typename State, typename Event>
absl::StatusOr<bool> FoldRow(ProjectionDb& db, const eventlog::Record& r, const common::v1::EventEnvelope& env,
                             Batch& b, const std::string& key,
                             absl::StatusOr<Event> (*unpack)(const common::v1::EventEnvelope&),
                             IndexRows (*index)(const State&),
                             void (*apply)(State&, const Event&, int64_t version, absl::Time at,
                                           const std::string& actor),
                             FoldedEvent<State, Event>* out) {
  IndexRows before;
  CRM_ASSIGN_OR_RETURN(
      bool next, out->Fold(
                     db, r, env, b, key, unpack,
                     [apply](State& s, const Event& e, const common::v1::EventEnvelope& sealed) {
                       FoldSealed(s, e, sealed, apply);
                     },
                     [&](const State& s) { before = index(s); }));
  if (!next) return false;
  const State& s = out->state();
  Reindex(b, before, index(s));
  b.Put(History(s.id(), s.version()), r.value);
  if (!env.correlation_id().empty()) b.Put(Request(env.correlation_id(), s.id()), "");
  b.Put(key, DeterministicBytes(s));
  return true;
}

}  // namespace crm::projection

#endif  // CRM_LIBS_PROJECTION_FOLD_H_
