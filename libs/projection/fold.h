#ifndef CRM_LIBS_PROJECTION_FOLD_H_
#define CRM_LIBS_PROJECTION_FOLD_H_

// The fold of one aggregate event into its state row that every service's projection shares:
// read the row as the batch leaves it, check the event continues it (replays are skipped, a
// gap or a broken hash chain is DATA_LOSS), fold, move the index rows, and keep the envelope as
// history and the request id.
#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

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

// Folds `env` (the envelope of `r`) into state row `key` through the service's `apply`.
// Returns the new state and the event, or
// nullopt when the event was applied already.
template <typename State, typename Event>
absl::StatusOr<std::optional<std::pair<State, Event>>> FoldRow(
    ProjectionDb& db, const eventlog::Record& r, const common::v1::EventEnvelope& env, Batch& b,
    const std::string& key, absl::StatusOr<Event> (*unpack)(const common::v1::EventEnvelope&),
    IndexRows (*index)(const State&),
    void (*apply)(State&, const Event&, int64_t version, absl::Time at, const std::string& actor)) {
  State s;
  CRM_RETURN_IF_ERROR(ReadRow(db, b, key, &s).status());
  CRM_ASSIGN_OR_RETURN(bool next, IsNextEvent(r, env, s.version(), s.last_hash()));
  if (!next) return std::optional<std::pair<State, Event>>();
  CRM_ASSIGN_OR_RETURN(Event event, unpack(env));
  const IndexRows before = index(s);
  FoldSealed(s, event, env, apply);
  Reindex(b, before, index(s));
  b.Put(History(s.id(), s.version()), r.value);
  if (!env.correlation_id().empty()) b.Put(Request(env.correlation_id(), s.id()), "");
  b.Put(key, DeterministicBytes(s));
  return std::optional<std::pair<State, Event>>(std::make_pair(std::move(s), std::move(event)));
}

}  // namespace crm::projection

#endif  // CRM_LIBS_PROJECTION_FOLD_H_
