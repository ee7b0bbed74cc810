#include "services/tickets/ticket_projections.h"

#include "absl/strings/str_cat.h"
#include "crm/common/v1/customer_ref.pb.h"
#include "crm/customers/v1/customers_events.pb.h"
#include "libs/common/proto_time.h"
#include "libs/common/request.h"
#include "libs/common/status_macros.h"
#include "libs/customer_view/customer_view.h"
#include "libs/eventlog/envelope.h"
#include "libs/projection/fold.h"

namespace crm::tickets {

using common::v1::EventEnvelope;
using projection::Batch;
using projection::IndexRows;
using projection::ProjectionDb;
using projection::TimeKey;

namespace rows {
std::string Ticket(absl::string_view id) { return absl::StrCat("k/", id); }
std::string TicketType(absl::string_view id) { return absl::StrCat(kTicketTypePrefix, id); }
std::string Policy(absl::string_view id) { return absl::StrCat("p/", id); }
std::string Calendar(absl::string_view id) { return absl::StrCat(kCalendarPrefix, id); }
std::string AssigneePrefix(absl::string_view u) { return absl::StrCat("ia/", u, "/"); }
std::string CreatorPrefix(absl::string_view u) { return absl::StrCat("ib/", u, "/"); }
std::string TeamPrefix(absl::string_view t) { return absl::StrCat("it/", t, "/"); }
std::string TypePrefix(absl::string_view t) { return absl::StrCat("ic/", t, "/"); }
std::string CustomerPrefix(absl::string_view c) { return absl::StrCat("ik/", c, "/"); }
std::string VersionPrefix(absl::string_view t, int32_t v) { return absl::StrCat("iv/", t, "/", v, "/"); }
std::string PolicyIndexPrefix(absl::string_view t) { return absl::StrCat("ip/", t, "/"); }
std::string MergedPrefix(absl::string_view s) { return absl::StrCat("cm/", s, "/"); }
}  // namespace rows

std::string PolicyId(absl::string_view type, v1::TicketPriority priority) {
  return DerivedId("sla-policies", absl::StrCat(type, "/", PriorityKey(priority)));
}
std::string CalendarId(absl::string_view key) { return DerivedId("calendars", key); }

absl::StatusOr<TicketEvent> UnpackTicketEvent(const EventEnvelope& e) {
  return projection::UnpackEvent<TicketEvent>(e);
}

namespace {

absl::StatusOr<TicketTypeEvent> UnpackTypeEvent(const EventEnvelope& e) {
  return projection::UnpackEvent<TicketTypeEvent>(e);
}
absl::StatusOr<SlaPolicyEvent> UnpackPolicyEvent(const EventEnvelope& e) {
  return projection::UnpackEvent<SlaPolicyEvent>(e);
}
absl::StatusOr<CalendarEvent> UnpackCalendarEvent(const EventEnvelope& e) {
  return projection::UnpackEvent<CalendarEvent>(e);
}

IndexRows TicketIndex(const TicketState& s) {
  IndexRows out;
  if (s.version() == 0) return out;
  const std::string at = absl::StrCat(TimeKey(FromProto(s.create_time())), s.id());
  out.push_back({absl::StrCat(rows::kAllPrefix, at), ""});
  out.push_back({absl::StrCat(rows::CreatorPrefix(s.created_by()), at), ""});
  out.push_back({absl::StrCat(rows::TeamPrefix(s.team_id()), at), ""});
  out.push_back({absl::StrCat(rows::TypePrefix(s.type_id()), at), ""});
  if (!s.assignee_id().empty()) out.push_back({absl::StrCat(rows::AssigneePrefix(s.assignee_id()), at), ""});
  if (!s.customer_id().empty()) out.push_back({absl::StrCat(rows::CustomerPrefix(s.customer_id()), at), ""});
  if (!s.closed()) {
    out.push_back({absl::StrCat(rows::kOpenPrefix, at), ""});
    out.push_back({absl::StrCat(rows::VersionPrefix(s.type_id(), s.type_version()), at), ""});
  }
  return out;
}

IndexRows NoIndex(const TicketTypeState&) { return {}; }
IndexRows NoCalendarIndex(const v1::CalendarState&) { return {}; }
IndexRows PolicyIndex(const v1::SlaPolicyState& s) {
  if (s.version() == 0 || s.deleted()) return {};
  return {{absl::StrCat(rows::PolicyIndexPrefix(s.policy().type_id()), PriorityKey(s.policy().priority())), s.id()}};
}

// The domain's Apply functions are overloaded; FoldRow takes one by pointer.
void ApplyTicket(TicketState& s, const TicketEvent& e, int64_t v, absl::Time at, const std::string& actor) {
  Apply(s, e, v, at, actor);
}
void ApplyType(TicketTypeState& s, const TicketTypeEvent& e, int64_t v, absl::Time at, const std::string& actor) {
  Apply(s, e, v, at, actor);
}
void ApplyPolicy(v1::SlaPolicyState& s, const SlaPolicyEvent& e, int64_t v, absl::Time at, const std::string& actor) {
  Apply(s, e, v, at, actor);
}
void ApplyCalendar(v1::CalendarState& s, const CalendarEvent& e, int64_t v, absl::Time at, const std::string& actor) {
  Apply(s, e, v, at, actor);
}

}  // namespace

absl::Status ApplyTicketsRecord(ProjectionDb& db, const eventlog::Record& r, Batch& b) {
  CRM_ASSIGN_OR_RETURN(EventEnvelope env, eventlog::EnvelopeOf(r));
  const std::string& type = env.aggregate_type();
  const std::string& id = env.aggregate_id();
  if (type == topics::tickets::kTicket.type) {
    projection::FoldedEvent<TicketState, TicketEvent> folded;
    return projection::FoldRow<TicketState, TicketEvent>(db, r, env, b, rows::Ticket(id), &UnpackTicketEvent,
                                                         &TicketIndex, &ApplyTicket, &folded)
        .status();
  }
  if (type == topics::tickets::kTicketType.type) {
    projection::FoldedEvent<TicketTypeState, TicketTypeEvent> folded;
    return projection::FoldRow<TicketTypeState, TicketTypeEvent>(db, r, env, b, rows::TicketType(id), &UnpackTypeEvent,
                                                                 &NoIndex, &ApplyType, &folded)
        .status();
  }
  if (type == topics::tickets::kSlaPolicy.type) {
    projection::FoldedEvent<v1::SlaPolicyState, SlaPolicyEvent> folded;
    return projection::FoldRow<v1::SlaPolicyState, SlaPolicyEvent>(db, r, env, b, rows::Policy(id), &UnpackPolicyEvent,
                                                                   &PolicyIndex, &ApplyPolicy, &folded)
        .status();
  }
  if (type == topics::tickets::kCalendar.type) {
    projection::FoldedEvent<v1::CalendarState, CalendarEvent> folded;
    return projection::FoldRow<v1::CalendarState, CalendarEvent>(
               db, r, env, b, rows::Calendar(id), &UnpackCalendarEvent, &NoCalendarIndex, &ApplyCalendar, &folded)
        .status();
  }
  return absl::DataLossError(absl::StrCat("unknown aggregate type ", type, " on the tickets topic"));
}

absl::Status ApplyCustomersRecord(ProjectionDb& db, const eventlog::Record& r, Batch& b) {
  CRM_ASSIGN_OR_RETURN(EventEnvelope env, eventlog::EnvelopeOf(r));
  if (env.aggregate_type() != topics::customers::kCustomer.type) return absl::OkStatus();
  const bool merge = eventlog::Is<customers::v1::CustomerMergedInto>(env);
  const bool unmerge = eventlog::Is<customers::v1::CustomerUnmerged>(env);
  std::string before;
  if (unmerge) {
    // The survivor it leaves, as the batch knows it before this event.
    common::v1::CustomerRef ref;
    std::string raw;
    if (db.Get(b, CustomerRefRow(env.aggregate_id()), &raw).ok() && ref.ParseFromString(raw)) {
      before = ref.merged_into();
    }
  }
  CRM_RETURN_IF_ERROR(ApplyCustomerEvent(db, env, b));
  if (merge) {
    customers::v1::CustomerMergedInto m;
    if (!env.payload().UnpackTo(&m)) return absl::DataLossError("bad payload of CustomerMergedInto");
    b.Put(absl::StrCat(rows::MergedPrefix(m.survivor_id()), env.aggregate_id()), "");
  } else if (unmerge && !before.empty()) {
    b.Delete(absl::StrCat(rows::MergedPrefix(before), env.aggregate_id()));
  }
  return absl::OkStatus();
}

}  // namespace crm::tickets
