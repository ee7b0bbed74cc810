#include "services/tickets/sla_policy.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/common/grpc_status.h"
#include "libs/common/proto_time.h"
#include "libs/common/status_macros.h"
#include "libs/common/text.h"
#include "services/tickets/business_calendar.h"
#include "services/tickets/form.h"

namespace crm::tickets {
namespace {

constexpr int64_t kYearMinutes = 366 * 24 * 60;

}  // namespace

std::string PriorityKey(v1::TicketPriority p) {
  switch (p) {
    case v1::TICKET_PRIORITY_LOW: return "low";
    case v1::TICKET_PRIORITY_NORMAL: return "normal";
    case v1::TICKET_PRIORITY_HIGH: return "high";
    case v1::TICKET_PRIORITY_URGENT: return "urgent";
    default: return "default";
  }
}

bool ParsePriorityKey(const std::string& key, v1::TicketPriority* p) {
  for (int i = v1::TicketPriority_MIN; i <= v1::TicketPriority_MAX; ++i) {
    const auto candidate = static_cast<v1::TicketPriority>(i);
    if (v1::TicketPriority_IsValid(i) && PriorityKey(candidate) == key) {
      *p = candidate;
      return true;
    }
  }
  return false;
}

absl::Status ValidatePolicy(const v1::SlaPolicy& p, const std::string& prefix) {
  auto field = [&](absl::string_view f) { return absl::StrCat(prefix, ".", f); };
  if (!v1::TicketPriority_IsValid(p.priority())) return InvalidFieldError(field("priority"), "is not a TicketPriority");
  for (const auto& [name, minutes] : {std::pair<const char*, int64_t>{"first_response_minutes", p.first_response_minutes()},
                                      {"resolution_minutes", p.resolution_minutes()}}) {
    if (minutes < 0 || minutes > kYearMinutes) return InvalidFieldError(field(name), "must be 0 to 527040 (a year)");
  }
  if (p.first_response_minutes() == 0 && p.resolution_minutes() == 0) {
    return InvalidFieldError(field("resolution_minutes"), "a policy needs a first-response or a resolution target");
  }
  if (p.warning_percent() < 0 || p.warning_percent() > 99) {
    return InvalidFieldError(field("warning_percent"), "must be 0 to 99");
  }
  if (!p.calendar().empty() &&
      (!absl::StartsWith(p.calendar(), "calendars/") || !ValidIdentifier(p.calendar().substr(strlen("calendars/"))))) {
    return InvalidFieldError(field("calendar"), "must be calendars/{id}");
  }
  for (int i = 0; i < p.pause_states_size(); ++i) {
    if (!ValidIdentifier(p.pause_states(i))) {
      return InvalidFieldError(field(absl::StrCat("pause_states[", i, "]")), "is not a state id");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SlaPolicyEvent>> Decide(const v1::SlaPolicyState* s, const Caller& c,
                                                   const SetSlaPolicy& cmd) {
  if (s != nullptr && !s->deleted() && s->policy().SerializeAsString() == cmd.policy.SerializeAsString()) {
    return std::vector<SlaPolicyEvent>{};
  }
  v1::SlaPolicySet e;
  *e.mutable_policy() = cmd.policy;
  return std::vector<SlaPolicyEvent>{std::move(e)};
}

absl::StatusOr<std::vector<SlaPolicyEvent>> Decide(const v1::SlaPolicyState* s, const Caller& c,
                                                   const DeleteSlaPolicy& cmd) {
  if (s == nullptr || s->version() == 0) return absl::NotFoundError("SLA policy not found");
  if (s->deleted()) return std::vector<SlaPolicyEvent>{};
  return std::vector<SlaPolicyEvent>{v1::SlaPolicyDeleted()};
}

void Apply(v1::SlaPolicyState& s, const SlaPolicyEvent& e, int64_t version, absl::Time at, const std::string& actor) {
  s.set_version(version);
  *s.mutable_update_time() = ToProto(at);
  s.set_updated_by(actor);
  if (const auto* set = std::get_if<v1::SlaPolicySet>(&e)) {
    *s.mutable_policy() = set->policy();
    s.set_deleted(false);
  } else {
    s.set_deleted(true);
  }
}

absl::StatusOr<std::vector<CalendarEvent>> Decide(const v1::CalendarState* s, const Caller& c, const SetCalendar& cmd) {
  if (!ValidIdentifier(cmd.key)) return InvalidFieldError("calendar.name", "must be calendars/{id}, id [a-z][a-z0-9_]{0,39}");
  CRM_RETURN_IF_ERROR(CheckText(cmd.display_name, "calendar.display_name", 40, true));
  CRM_RETURN_IF_ERROR(BusinessCalendar::Make(cmd.calendar, "calendar.calendar").status());
  if (cmd.calendar.windows_size() == 0) {
    return InvalidFieldError("calendar.calendar.windows", "a calendar needs working windows");
  }
  if (s != nullptr && s->version() > 0) {
    if (s->display_name() == cmd.display_name && s->calendar().SerializeAsString() == cmd.calendar.SerializeAsString()) {
      return std::vector<CalendarEvent>{};
    }
  }
  v1::CalendarSet e;
  e.set_key(cmd.key);
  e.set_display_name(cmd.display_name);
  *e.mutable_calendar() = cmd.calendar;
  return std::vector<CalendarEvent>{std::move(e)};
}

void Apply(v1::CalendarState& s, const CalendarEvent& e, int64_t version, absl::Time at, const std::string& actor) {
  const auto& set = std::get<v1::CalendarSet>(e);
  s.set_version(version);
  *s.mutable_update_time() = ToProto(at);
  s.set_updated_by(actor);
  s.set_key(set.key());
  s.set_display_name(set.display_name());
  *s.mutable_calendar() = set.calendar();
}

TicketTimeline TimelineOf(const v1::TicketState& t, const v1::SlaPolicy& policy) {
  TicketTimeline out;
  out.created = FromProto(t.create_time());
  const auto& named = policy.pause_states();
  for (const auto& step : t.timeline()) {
    const bool pauses =
        named.empty() ? step.pauses_sla() : std::find(named.begin(), named.end(), step.state()) != named.end();
    out.steps.push_back({FromProto(step.at()), pauses, step.final()});
  }
  if (t.has_first_response_time()) out.first_response = FromProto(t.first_response_time());
  return out;
}

SlaTargets TargetsOf(const v1::SlaPolicy& p) {
  SlaTargets t;
  t.first_response = absl::Minutes(p.first_response_minutes());
  t.resolution = absl::Minutes(p.resolution_minutes());
  t.warning_percent = p.warning_percent();
  return t;
}

}  // namespace crm::tickets
