#ifndef CRM_SERVICES_TICKETS_ENGINE_KINDS_H_
#define CRM_SERVICES_TICKETS_ENGINE_KINDS_H_

// What the tickets engine's files share (ticket_engine.cc, sla_commands.cc): the aggregates as
// the write kernel (libs/kernel/aggregate_store.h) sees them, resource-name parsing, row scans
// and the SLA a read shows.
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "libs/common/caller.h"
#include "libs/common/request.h"
#include "libs/kernel/aggregate_store.h"
#include "libs/kernel/target_command.h"
#include "services/tickets/sla_policy.h"
#include "services/tickets/ticket.h"
#include "services/tickets/ticket_engine.h"
#include "services/tickets/ticket_projections.h"
#include "services/tickets/ticket_type.h"

namespace crm::tickets {

inline constexpr char kSource[] = "/crm/tickets";
inline const Caller kScheduler{"scheduler", "service", ""};

// Each Kind's Apply is the domain's Apply overload that the projection folds the same events
// with (ticket_projections.cc), so the state a command answers with is the row committed.
struct TicketKind {
  static constexpr const char* kType = topics::tickets::kTicket.type;
  static std::string Row(absl::string_view id) { return rows::Ticket(id); }
  static bool Visible(const Caller& c, const TicketState& s) { return CanSee(c, s); }
  static void Apply(TicketState& s, const TicketEvent& e, int64_t version, absl::Time at, const std::string& actor) {
    tickets::Apply(s, e, version, at, actor);
  }
};
struct TypeKind {
  static constexpr const char* kType = topics::tickets::kTicketType.type;
  static std::string Row(absl::string_view id) { return rows::TicketType(id); }
  static bool Visible(const Caller&, const TicketTypeState&) { return true; }
  static void Apply(TicketTypeState& s, const TicketTypeEvent& e, int64_t version, absl::Time at,
                    const std::string& actor) {
    tickets::Apply(s, e, version, at, actor);
  }
};
struct PolicyKind {
  static constexpr const char* kType = topics::tickets::kSlaPolicy.type;
  static std::string Row(absl::string_view id) { return rows::Policy(id); }
  static bool Visible(const Caller&, const v1::SlaPolicyState&) { return true; }
  static void Apply(v1::SlaPolicyState& s, const SlaPolicyEvent& e, int64_t version, absl::Time at,
                    const std::string& actor) {
    tickets::Apply(s, e, version, at, actor);
  }
};
struct CalendarKind {
  static constexpr const char* kType = topics::tickets::kCalendar.type;
  static std::string Row(absl::string_view id) { return rows::Calendar(id); }
  static bool Visible(const Caller&, const v1::CalendarState&) { return true; }
  static void Apply(v1::CalendarState& s, const CalendarEvent& e, int64_t version, absl::Time at,
                    const std::string& actor) {
    tickets::Apply(s, e, version, at, actor);
  }
};

// The command on aggregate `id` that the domain's Decide(state, caller, cmd) decides, for the
// store (request_id: the client's, checked by CheckRequestId; empty for none), expecting the
// version of the request's `etag` (as ParseEtag reads it; 0: any), which the store checks
// before deciding (ABORTED naming the request field "etag").
template <typename State, typename Event, typename Cmd>
kernel::Command<State, Event> Plain(const Caller& caller, std::string id, std::string request_id, Cmd cmd,
                                    int64_t etag = 0) {
  return kernel::TargetCommand<State, Event>(
      caller, {.id = std::move(id), .etag = etag, .request_id = std::move(request_id), .etag_field = "etag"},
      [caller, cmd = std::move(cmd)](const State* s) { return Decide(s, caller, cmd); });
}

// The id of ticketTypes/{id}: an identifier [a-z][a-z0-9_]{0,39} or a generated UUID.
absl::StatusOr<std::string> ParseTypeName(const std::string& name, absl::string_view field);
absl::StatusOr<Target> ParseTypeTarget(const std::string& request_id, const std::string& name, const std::string& etag);
// The aggregate id of ticketTypes/{type}/slaPolicies/{priority}.
absl::StatusOr<std::string> ParsePolicyName(const std::string& name, absl::string_view field);

// Every state row under `prefix`, in key order, until `fn` returns false.
template <typename State>
absl::Status ScanRows(rocksdb::DB* db, const std::string& prefix, absl::FunctionRef<bool(const State&)> fn) {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    State s;
    if (!s.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(absl::StrCat("undecodable row ", it->key().ToString()));
    }
    if (!fn(s)) break;
  }
  return projection::FromRocks(it->status(), "scan rows");
}

// The clocks of `s` as of `now` under `policy` (none: an empty status).
v1::SlaStatus SlaOf(const TicketState& s, const std::optional<TicketEngine::ResolvedPolicy>& policy, absl::Time now);
v1::SlaStatus SlaOf(const TicketState& s, const std::string& name, const v1::SlaPolicy& policy,
                    const BusinessCalendar& calendar, absl::Time now);

}  // namespace crm::tickets

#endif  // CRM_SERVICES_TICKETS_ENGINE_KINDS_H_
