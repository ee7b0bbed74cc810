#include "services/analytics/analytics_engine.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/common/grpc_status.h"
#include "libs/common/proto_time.h"
#include "libs/common/status_macros.h"
#include "services/analytics/funnel.h"
#include "services/analytics/tickets_report.h"

namespace crm::analytics {

absl::StatusOr<std::unique_ptr<AnalyticsEngine>> AnalyticsEngine::Open(eventlog::Log* log,
                                                                        projection::ProjectionDb* db,
                                                                        Options options) {
  if (options.clock == nullptr) return absl::InvalidArgumentError("AnalyticsEngine needs a clock");
  std::unique_ptr<AnalyticsEngine> e(new AnalyticsEngine(db, std::move(options)));
  for (const projection::Source& source : Spec(e->options_).sources) {
    projection::Follower::Options fo;
    fo.topic = source.topic;
    CRM_ASSIGN_OR_RETURN(auto f, projection::Follower::Start(log, db, std::move(fo), source.apply(db)));
    e->followers_.push_back(std::move(f));
  }
  return e;
}

AnalyticsEngine::~AnalyticsEngine() { followers_.clear(); }

projection::ProjectionSpec AnalyticsEngine::Spec(const Options& o) {
  projection::ProjectionSpec spec;
  spec.version = kProjectionVersion;
  spec.sources.push_back(projection::FoldSource(o.opportunities_topic, false, 0, &ApplyOpportunitiesRecord));
  spec.sources.push_back(projection::FoldSource(o.tickets_topic, false, 0, &ApplyTicketsRecord));
  return spec;
}

namespace {

// The owner and team filters the caller's role allows for `scope`, and the scope applied.
absl::Status Scope(const Caller& c, v1::ReportScope scope, std::string* owner_id, std::string* team_id,
                   v1::ReportScope* applied) {
  if (!v1::ReportScope_IsValid(scope)) return InvalidFieldError("scope", "is not a ReportScope");
  const bool all = IsPrivileged(c);
  if (scope == v1::REPORT_SCOPE_UNSPECIFIED) {
    scope = all ? v1::REPORT_SCOPE_ALL : c.role == "manager" ? v1::REPORT_SCOPE_TEAM : v1::REPORT_SCOPE_OWN;
  }
  if (scope == v1::REPORT_SCOPE_ALL && !all) return absl::PermissionDeniedError("only admins see every team's figures");
  if (scope == v1::REPORT_SCOPE_TEAM && !all && c.role != "manager") {
    return absl::PermissionDeniedError("a rep sees their own figures; managers their team's");
  }
  if (scope == v1::REPORT_SCOPE_OWN) {
    if (!owner_id->empty() && *owner_id != c.user_id && !all) {
      return absl::PermissionDeniedError("a rep sees their own figures");
    }
    if (owner_id->empty()) *owner_id = c.user_id;
  }
  if (scope == v1::REPORT_SCOPE_TEAM && !all) {
    if (!team_id->empty() && *team_id != c.team) return absl::PermissionDeniedError("a manager sees their team's figures");
    *team_id = c.team;
  }
  *applied = scope;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::FunnelReport> AnalyticsEngine::GetFunnelReport(const Caller& c, const v1::GetFunnelReportRequest& req,
                                                                  absl::Time) {
  if (!req.has_start_time()) return InvalidFieldError("start_time", "is required");
  if (!req.has_end_time()) return InvalidFieldError("end_time", "is required");
  FunnelQuery q;
  q.from = FromProto(req.start_time());
  q.to = FromProto(req.end_time());
  if (q.to <= q.from) return InvalidFieldError("end_time", "must be after start_time");
  q.as_of = req.has_as_of() ? FromProto(req.as_of()) : options_.clock->Now();
  q.pipeline_id = req.pipeline_id();
  q.owner_id = req.owner_id();
  q.team_id = req.team_id();
  v1::ReportScope scope = v1::REPORT_SCOPE_UNSPECIFIED;
  CRM_RETURN_IF_ERROR(Scope(c, req.scope(), &q.owner_id, &q.team_id, &scope));
  CRM_ASSIGN_OR_RETURN(FunnelReport r, Funnel(db_->db(), q));
  v1::FunnelReport out;
  out.set_opportunities(r.opportunities);
  out.set_won(r.won);
  out.set_lost(r.lost);
  out.set_win_rate_percent(r.win_rate_percent);
  for (const FunnelStage& s : r.stages) {
    auto* st = out.add_stages();
    st->set_stage_id(s.stage_id);
    st->set_stage_name(s.stage_name);
    st->set_kind(s.kind);
    st->set_reached(s.reached);
    st->set_amount_minor(s.amount_minor);
    st->set_conversion_percent(s.conversion_percent);
    st->set_average_stay_seconds(absl::ToInt64Seconds(s.average_stay));
    st->set_stays_ended(s.stays_ended);
  }
  *out.mutable_as_of() = ToProto(q.as_of);
  out.set_scope(scope);
  return out;
}

absl::StatusOr<v1::TicketsReport> AnalyticsEngine::GetTicketsReport(const Caller& c,
                                                                    const v1::GetTicketsReportRequest& req, absl::Time) {
  if (!req.has_start_time()) return InvalidFieldError("start_time", "is required");
  if (!req.has_end_time()) return InvalidFieldError("end_time", "is required");
  TicketsQuery q;
  q.from = FromProto(req.start_time());
  q.to = FromProto(req.end_time());
  if (q.to <= q.from) return InvalidFieldError("end_time", "must be after start_time");
  if (!v1::GroupBy_IsValid(req.group_by())) return InvalidFieldError("group_by", "is not a GroupBy");
  q.group_by = req.group_by() == v1::GROUP_BY_WEEK    ? Period::kWeek
               : req.group_by() == v1::GROUP_BY_MONTH ? Period::kMonth
                                                      : Period::kDay;
  if (q.group_by == Period::kDay && q.to - q.from > absl::Hours(24 * 10000)) {
    return InvalidFieldError("group_by", "more than 10000 days: group by week or month");
  }
  q.as_of = req.has_as_of() ? FromProto(req.as_of()) : options_.clock->Now();
  if (!req.ticket_type().empty()) {
    constexpr absl::string_view kPrefix = "ticketTypes/";
    if (!absl::StartsWith(req.ticket_type(), kPrefix) || req.ticket_type().size() == kPrefix.size()) {
      return InvalidFieldError("ticket_type", "must be ticketTypes/{id}");
    }
    q.type_id = req.ticket_type().substr(kPrefix.size());
  }
  q.owner_id = req.owner_id();
  q.team_id = req.team_id();
  v1::ReportScope scope = v1::REPORT_SCOPE_UNSPECIFIED;
  CRM_RETURN_IF_ERROR(Scope(c, req.scope(), &q.owner_id, &q.team_id, &scope));
  CRM_ASSIGN_OR_RETURN(TicketsReport r, Tickets(db_->db(), q));
  v1::TicketsReport out;
  for (const TicketsBucket& b : r.buckets) {
    auto* p = out.add_periods();
    *p->mutable_start_time() = ToProto(b.start);
    p->set_opened(b.opened);
    p->set_closed(b.closed);
    p->set_first_response_breaches(b.first_response_breaches);
    p->set_resolution_breaches(b.resolution_breaches);
  }
  out.set_opened(r.opened);
  out.set_closed(r.closed);
  out.set_first_response_breaches(r.first_response_breaches);
  out.set_resolution_breaches(r.resolution_breaches);
  out.set_resolution_compliance_percent(r.resolution_compliance_percent);
  *out.mutable_as_of() = ToProto(q.as_of);
  out.set_scope(scope);
  return out;
}

}  // namespace crm::analytics
