#include "services/opportunities/opportunity_projections.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/common/proto_time.h"
#include "libs/common/status_macros.h"
#include "libs/eventlog/envelope.h"
#include "libs/projection/aggregate_writer.h"
#include "libs/projection/day_numbers.h"
#include "libs/projection/fold.h"
#include "libs/projection/rows.h"
#include "services/opportunities/customer_refs.h"

namespace crm::opportunities {

using common::v1::EventEnvelope;
using projection::Batch;
using projection::ProjectionDb;

namespace rows {
std::string Opportunity(absl::string_view id) { return absl::StrCat("o/", id); }
std::string Quote(absl::string_view id) { return absl::StrCat("q/", id); }
std::string Contract(absl::string_view id) { return absl::StrCat("k/", id); }
std::string ByCustomerPrefix(absl::string_view c) { return absl::StrCat("oc/", c, "/"); }
std::string ByOwnerPrefix(absl::string_view o) { return absl::StrCat("oo/", o, "/"); }
std::string QuotesOfPrefix(absl::string_view o) { return absl::StrCat("qo/", o, "/"); }
std::string ContractsOfPrefix(absl::string_view c) { return absl::StrCat("kc/", c, "/"); }
std::string ReceivablesPrefix(absl::string_view c) { return absl::StrCat("rv/", c, "/"); }
std::string IdlePrefix(absl::string_view stage) { return absl::StrCat("ot/", stage, "/"); }
}  // namespace rows

absl::StatusOr<OpportunityEvent> UnpackOpportunityEvent(const EventEnvelope& e) {
  return projection::UnpackEvent<OpportunityEvent>(e);
}

absl::StatusOr<QuoteEvent> UnpackQuoteEvent(const EventEnvelope& e) {
  return projection::UnpackEvent<QuoteEvent>(e);
}

absl::StatusOr<ContractEvent> UnpackContractEvent(const EventEnvelope& e) {
  return projection::UnpackEvent<ContractEvent>(e);
}

absl::StatusOr<SettingsEvent> UnpackSettingsEvent(const EventEnvelope& e) {
  return projection::UnpackEvent<SettingsEvent>(e);
}

namespace {

using projection::IndexRows;

bool Live(const OpportunityState& s) { return s.version() > 0; }

IndexRows OpportunityIndex(const OpportunityState& s) {
  IndexRows out;
  if (!Live(s)) return out;
  out.push_back({absl::StrCat(rows::ByCustomerPrefix(s.profile().customer_id()), s.id()), ""});
  out.push_back({absl::StrCat(rows::ByOwnerPrefix(s.profile().owner_id()), s.id()), ""});
  if (s.customer_deleted()) out.push_back({absl::StrCat(rows::kFlaggedPrefix, s.id()), ""});
  const bool timed_out = !s.visits().empty() && s.visits().rbegin()->timed_out();
  if (s.status() == v1::OPPORTUNITY_STATUS_OPEN && !s.deleted() && !timed_out) {
    out.push_back({absl::StrCat(rows::IdlePrefix(s.stage_id()), projection::TimeKey(IdleSince(s)), s.id()), ""});
  }
  return out;
}

IndexRows QuoteIndex(const QuoteState& s) {
  if (s.version() == 0) return {};
  return {{absl::StrCat(rows::QuotesOfPrefix(s.opportunity_id()), s.id()), ""}};
}

bool Signed(const ContractState& s) {
  return s.status() == v1::CONTRACT_STATUS_ACTIVE || s.status() == v1::CONTRACT_STATUS_EXPIRED ||
         s.status() == v1::CONTRACT_STATUS_TERMINATED;
}

IndexRows ContractIndex(const ContractState& s) {
  IndexRows out;
  if (s.version() == 0) return out;
  const auto& t = s.terms();
  out.push_back({absl::StrCat(rows::ContractsOfPrefix(t.customer_id()), s.id()), ""});
  if (s.status() == v1::CONTRACT_STATUS_ACTIVE) out.push_back({absl::StrCat(rows::kEndPrefix, t.end_date(), "/", s.id()), ""});
  if (s.status() == v1::CONTRACT_STATUS_ACTIVE || s.status() == v1::CONTRACT_STATUS_EXPIRED) {
    for (const auto& i : s.plan()) {
      if (i.paid_minor() < i.amount_minor() && !i.overdue_reported()) {
        out.push_back({absl::StrCat(rows::kDuePrefix, i.due_date(), "/", s.id()), ""});
        break;  // the earliest is enough: the scheduler looks at them all
      }
    }
  }
  if (Signed(s)) out.push_back({absl::StrCat(rows::ReceivablesPrefix(t.customer_id()), s.id()), std::to_string(Receivable(s))});
  return out;
}

IndexRows SettingsIndex(const OpportunitySettings&) { return {}; }

// The fold every aggregate shares (projection::FoldRow), and what some events also settle.
// Nothing after FoldRow may write the state row: the write path answers with FoldRow's state
// without reading the row back (libs/kernel).
template <typename State, typename Event>
absl::Status Fold(ProjectionDb& db, const eventlog::Record& r, const EventEnvelope& env, Batch& b,
                  const std::string& key, absl::StatusOr<Event> (*unpack)(const EventEnvelope&),
                  IndexRows (*index)(const State&)) {
  projection::FoldedEvent<State, Event> folded;
  CRM_ASSIGN_OR_RETURN(bool next, (projection::FoldRow<State, Event>(
                                      db, r, env, b, key, unpack, index,
                                      +[](State& s, const Event& e, int64_t v, absl::Time at, const std::string& actor) {
                                        Apply(s, e, v, at, actor);
                                      },
                                      &folded)));
  if (!next) return absl::OkStatus();
  const State& s = folded.state();
  const Event& event = folded.event();
  if constexpr (std::is_same_v<Event, OpportunityEvent>) {
    if (const auto* c = std::get_if<v1::OpportunityCreated>(&event);
        c != nullptr && !c->profile().lead_id().empty() && s.id() == ConversionOpportunityId(c->profile().lead_id())) {
      b.Delete(absl::StrCat(kPendingConversions, c->profile().lead_id()));  // the conversion is done
    }
  }
  if constexpr (std::is_same_v<Event, ContractEvent>) {
    if (const auto* d = std::get_if<v1::ContractDrafted>(&event)) {
      projection::DayNumbers::Record(db, b, kContractNumberPrefix, d->terms().number());
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyOpportunitiesRecord(ProjectionDb& db, const eventlog::Record& r, Batch& b) {
  CRM_ASSIGN_OR_RETURN(EventEnvelope env, eventlog::EnvelopeOf(r));
  const std::string& type = env.aggregate_type();
  const std::string& id = env.aggregate_id();
  if (type == topics::opportunities::kOpportunity.type) {
    return Fold<OpportunityState, OpportunityEvent>(db, r, env, b, rows::Opportunity(id), &UnpackOpportunityEvent,
                                                    &OpportunityIndex);
  }
  if (type == topics::opportunities::kQuote.type) {
    return Fold<QuoteState, QuoteEvent>(db, r, env, b, rows::Quote(id), &UnpackQuoteEvent, &QuoteIndex);
  }
  if (type == topics::opportunities::kContract.type) {
    return Fold<ContractState, ContractEvent>(db, r, env, b, rows::Contract(id), &UnpackContractEvent, &ContractIndex);
  }
  if (type == topics::opportunities::kSettings.type) {
    // The fold every aggregate has, so that the write path's reply (its fold of the sealed
    // events) is this row, and a settings request id is found on a retry.
    return Fold<OpportunitySettings, SettingsEvent>(db, r, env, b, rows::kSettings, &UnpackSettingsEvent,
                                                    &SettingsIndex);
  }
  return absl::DataLossError(absl::StrCat("unknown aggregate type ", type));
}

absl::StatusOr<OpportunitySettings> ReadSettings(rocksdb::DB* db) {
  OpportunitySettings s;
  CRM_RETURN_IF_ERROR(projection::ReadRow(db, rocksdb::ReadOptions(), rows::kSettings, &s).status());
  return s;
}

}  // namespace crm::opportunities
