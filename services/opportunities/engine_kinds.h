#ifndef CRM_SERVICES_OPPORTUNITIES_ENGINE_KINDS_H_
#define CRM_SERVICES_OPPORTUNITIES_ENGINE_KINDS_H_

// What the opportunities engine's files share: the aggregates as the write path
// (kernel::AggregateStore) sees them (aggregate type, state row, visibility and fold per state
// message) and reply plumbing. Internal to services/opportunities.
#include <string>

#include "absl/strings/string_view.h"
#include "libs/common/ids.h"
#include "libs/common/request.h"
#include "services/opportunities/opportunity_engine.h"
#include "services/opportunities/opportunity_projections.h"
#include "services/opportunities/settings.h"

namespace crm::opportunities {

template <typename State>
struct Kind;

template <>
struct Kind<OpportunityState> {
  static constexpr const char* kType = topics::opportunities::kOpportunity.type;
  static std::string Row(absl::string_view id) { return rows::Opportunity(id); }
  static bool Visible(const Caller& c, const OpportunityState& s) { return CanSee(c, s); }
  static void Apply(OpportunityState& s, const OpportunityEvent& e, int64_t version, absl::Time at, const std::string& actor) {
    opportunities::Apply(s, e, version, at, actor);
  }
};

template <>
struct Kind<QuoteState> {
  static constexpr const char* kType = topics::opportunities::kQuote.type;
  static std::string Row(absl::string_view id) { return rows::Quote(id); }
  static bool Visible(const Caller& c, const QuoteState& s) { return CanSee(c, s); }
  static void Apply(QuoteState& s, const QuoteEvent& e, int64_t version, absl::Time at, const std::string& actor) {
    opportunities::Apply(s, e, version, at, actor);
  }
};

template <>
struct Kind<ContractState> {
  static constexpr const char* kType = topics::opportunities::kContract.type;
  static std::string Row(absl::string_view id) { return rows::Contract(id); }
  static bool Visible(const Caller& c, const ContractState& s) { return CanSee(c, s); }
  static void Apply(ContractState& s, const ContractEvent& e, int64_t version, absl::Time at, const std::string& actor) {
    opportunities::Apply(s, e, version, at, actor);
  }
};

// The settings (one aggregate, id kSettingsId): whoever may call a settings command may see
// them.
template <>
struct Kind<OpportunitySettings> {
  static constexpr const char* kType = topics::opportunities::kSettings.type;
  static std::string Row(absl::string_view) { return rows::kSettings; }
  static bool Visible(const Caller&, const OpportunitySettings&) { return true; }
  static void Apply(OpportunitySettings& s, const SettingsEvent& e, int64_t version, absl::Time at,
                    const std::string& actor) {
    opportunities::Apply(s, e, version, at, actor);
  }
};

// The settings commands under names the engine's methods do not hide.
using SetPipelinesCmd = SetPipelines;
using SetContractPolicyCmd = SetContractPolicy;

using kernel::Reply;

// A DecideFn of a pure Decide overload.
template <typename State, typename Event, typename Cmd>
OpportunityEngine::DecideFn<State, Event> PlainDecide(const Caller& caller, Cmd cmd) {
  return [caller, cmd = std::move(cmd)](const State* s) { return Decide(s, caller, cmd); };
}

// The state of aggregate `id` from its events recorded up to `until` (version 0 when none was).
template <typename State, typename Event>
absl::StatusOr<State> PastStateOf(rocksdb::DB* db, const std::string& id, absl::Time until,
                                  absl::StatusOr<Event> (*unpack)(const common::v1::EventEnvelope&)) {
  State past;
  auto folded = projection::FoldHistory(db, id, until, 0, [&](const common::v1::EventEnvelope& env) -> absl::Status {
    absl::StatusOr<Event> ev = unpack(env);
    if (!ev.ok()) return ev.status();
    past.set_id(id);
    Apply(past, *ev, env.aggregate_version(), projection::OccurredAt(env), env.actor().user_id());
    return absl::OkStatus();
  });
  if (!folded.ok()) return folded.status();
  return past;
}

// The id of a new aggregate: derived from the request id, so that a retry lands on the same
// one, else a fresh UUIDv7.
inline std::string NewId(absl::string_view collection, const std::string& request_id, absl::Time now) {
  return request_id.empty() ? NewUuidV7(now) : DerivedId(collection, request_id);
}

}  // namespace crm::opportunities

#endif  // CRM_SERVICES_OPPORTUNITIES_ENGINE_KINDS_H_
