#include "services/analytics/analytics_engine.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "crm/customers/v1/customers_service.pb.h"
#include "libs/common/grpc_status.h"
#include "libs/common/proto_time.h"
#include "libs/common/status_macros.h"
#include "libs/common/text.h"
#include "libs/server/access.h"
#include "libs/common/money.h"
#include "services/analytics/customer_facts.h"
#include "services/analytics/funnel.h"
#include "services/analytics/receivables.h"
#include "services/analytics/reports.h"
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
  spec.sources.push_back(projection::FoldSource(o.customers_topic, false, 0, &ApplyCustomersRecord));
  spec.sources.push_back(projection::FoldSource(o.opportunities_topic, false, 0, &ApplyOpportunitiesRecord));
  spec.sources.push_back(projection::FoldSource(o.tasks_topic, false, 0, &ApplyTasksRecord));
  spec.sources.push_back(projection::FoldSource(o.tickets_topic, false, 0, &ApplyTicketsRecord));
  return spec;
}

namespace {

// The owner and team filters the shared visibility rule allows the caller for `scope`
// (FilterRows), and the scope applied.
absl::Status Scope(const Caller& c, v1::ReportScope scope, std::string* owner_id, std::string* team_id,
                   v1::ReportScope* applied) {
  if (!v1::ReportScope_IsValid(scope)) return InvalidFieldError("scope", "is not a ReportScope");
  Reach wanted = Reach::kNone;
  switch (scope) {
    case v1::REPORT_SCOPE_OWN: wanted = Reach::kOwn; break;
    case v1::REPORT_SCOPE_TEAM: wanted = Reach::kTeam; break;
    case v1::REPORT_SCOPE_ALL: wanted = Reach::kAll; break;
    default: break;
  }
  CRM_ASSIGN_OR_RETURN(RowFilter f, FilterRows(c, wanted, *owner_id, *team_id));
  *owner_id = std::move(f.owner_id);
  *team_id = std::move(f.team_id);
  *applied = f.reach == Reach::kAll ? v1::REPORT_SCOPE_ALL
             : f.reach == Reach::kTeam ? v1::REPORT_SCOPE_TEAM
                                        : v1::REPORT_SCOPE_OWN;
  return absl::OkStatus();
}

Period PeriodOf(v1::GroupBy g, Period unspecified) {
  switch (g) {
    case v1::GROUP_BY_DAY: return Period::kDay;
    case v1::GROUP_BY_WEEK: return Period::kWeek;
    case v1::GROUP_BY_MONTH: return Period::kMonth;
    default: return unspecified;
  }
}

// The range, periods, as_of, scope and (where the request has one) currency every report
// request carries.
template <typename Req>
absl::StatusOr<ReportQuery> ParseQuery(const Caller& c, const Req& req, Period unspecified, absl::Time now,
                                       v1::ReportScope* scope) {
  CRM_ASSIGN_OR_RETURN(const TimeRange range,
                       ClientTimeRange(req.has_start_time() ? &req.start_time() : nullptr, "start_time",
                                       req.has_end_time() ? &req.end_time() : nullptr, "end_time"));
  ReportQuery q;
  q.from = range.start;
  q.to = range.end;
  if (!v1::GroupBy_IsValid(req.group_by())) return InvalidFieldError("group_by", "is not a GroupBy");
  q.group_by = PeriodOf(req.group_by(), unspecified);
  if (q.group_by == Period::kDay && q.to - q.from > absl::Hours(24 * 10000)) {
    return InvalidFieldError("group_by", "more than 10000 days: group by week or month");
  }
  CRM_ASSIGN_OR_RETURN(q.as_of, OptionalClientTime(req.has_as_of(), req.as_of(), "as_of", now));
  if constexpr (requires { req.currency(); }) {
    if (!req.currency().empty()) {
      if (!money::MinorDigits(req.currency()).ok()) return InvalidFieldError("currency", "is not a currency we accept");
      q.currency = req.currency();
    }
  }
  CRM_RETURN_IF_ERROR(CheckText(req.owner_id(), "owner_id", 128, false));
  CRM_RETURN_IF_ERROR(CheckText(req.team_id(), "team_id", 128, false));
  q.owner_id = req.owner_id();
  q.team_id = req.team_id();
  CRM_RETURN_IF_ERROR(Scope(c, req.scope(), &q.owner_id, &q.team_id, scope));
  return q;
}

}  // namespace

absl::StatusOr<v1::FunnelReport> AnalyticsEngine::GetFunnelReport(const Caller& c, const v1::GetFunnelReportRequest& req,
                                                                  absl::Time) {
  v1::ReportScope scope;
  CRM_ASSIGN_OR_RETURN(ReportQuery rq, ParseQuery(c, req, Period::kMonth, options_.clock->Now(), &scope));
  FunnelQuery q{.from = rq.from, .to = rq.to, .as_of = rq.as_of, .pipeline_id = req.pipeline_id(),
                .owner_id = rq.owner_id, .team_id = rq.team_id, .group_by = rq.group_by};
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
  for (const auto& b : r.periods) {
    auto* p = out.add_periods();
    *p->mutable_start_time() = ToProto(b.start);
    p->set_opportunities(b.opportunities);
    p->set_won(b.won);
    p->set_lost(b.lost);
    p->set_won_amount_minor(b.won_amount_minor);
  }
  *out.mutable_as_of() = ToProto(q.as_of);
  out.set_scope(scope);
  return out;
}

absl::StatusOr<v1::TicketsReport> AnalyticsEngine::GetTicketsReport(const Caller& c,
                                                                    const v1::GetTicketsReportRequest& req, absl::Time) {
  v1::ReportScope scope;
  CRM_ASSIGN_OR_RETURN(ReportQuery rq, ParseQuery(c, req, Period::kDay, options_.clock->Now(), &scope));
  TicketsQuery q{.from = rq.from, .to = rq.to, .as_of = rq.as_of, .group_by = rq.group_by,
                 .owner_id = rq.owner_id, .team_id = rq.team_id};
  if (!req.ticket_type().empty()) {
    constexpr absl::string_view kPrefix = "ticketTypes/";
    if (!absl::StartsWith(req.ticket_type(), kPrefix) || req.ticket_type().size() == kPrefix.size()) {
      return InvalidFieldError("ticket_type", "must be ticketTypes/{id}");
    }
    q.type_id = req.ticket_type().substr(kPrefix.size());
  }
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

absl::StatusOr<v1::ChannelsReport> AnalyticsEngine::GetChannelsReport(const Caller& c,
                                                                      const v1::GetChannelsReportRequest& req,
                                                                      absl::Time) {
  v1::ChannelsReport out;
  v1::ReportScope scope;
  CRM_ASSIGN_OR_RETURN(ReportQuery q, ParseQuery(c, req, Period::kDay, options_.clock->Now(), &scope));
  CRM_ASSIGN_OR_RETURN(ChannelsReport r, Channels(db_->db(), q));
  // Costs are what ListChannelCosts lists: only roles that may call it see them here (a rep
  // once read company-wide spend per channel through this report).
  static const server::MethodAccess costs(customers::v1::ListChannelCostsRequest::descriptor(), "ListChannelCosts");
  if (!costs.Admits(c.role)) {
    for (ChannelRow& x : r.channels) x.cost_minor = x.cost_per_lead_minor = x.cost_per_customer_minor = 0;
  }
  for (const ChannelRow& x : r.channels) {
    auto* o = out.add_channels();
    o->set_channel(x.channel);
    o->set_leads(x.leads);
    o->set_leads_converted(x.leads_converted);
    o->set_customers(x.customers);
    o->set_customers_won(x.customers_won);
    o->set_deals_won(x.deals_won);
    o->set_won_amount_minor(x.won_amount_minor);
    o->set_cost_minor(x.cost_minor);
    o->set_lead_conversion_percent(x.lead_conversion_percent);
    o->set_deal_conversion_percent(x.deal_conversion_percent);
    o->set_cost_per_lead_minor(x.cost_per_lead_minor);
    o->set_cost_per_customer_minor(x.cost_per_customer_minor);
  }
  for (const ChannelPeriod& x : r.periods) {
    auto* o = out.add_periods();
    *o->mutable_start_time() = ToProto(x.start);
    o->set_channel(x.channel);
    o->set_leads(x.leads);
    o->set_customers(x.customers);
    o->set_deals_won(x.deals_won);
  }
  *out.mutable_as_of() = ToProto(q.as_of);
  out.set_scope(scope);
  return out;
}

namespace {

template <typename Out>
void SetPerformance(const Performance& p, Out* o) {
  o->set_follow_ups(p.follow_ups);
  o->set_tasks_done(p.tasks_done);
  o->set_tasks_overdue(p.tasks_overdue);
  o->set_deals_won(p.deals_won);
  o->set_deals_lost(p.deals_lost);
  o->set_win_rate_percent(p.win_rate_percent);
  o->set_won_amount_minor(p.won_amount_minor);
  o->set_collected_minor(p.collected_minor);
}

}  // namespace

absl::StatusOr<v1::TeamReport> AnalyticsEngine::GetTeamReport(const Caller& c, const v1::GetTeamReportRequest& req,
                                                              absl::Time) {
  v1::TeamReport out;
  v1::ReportScope scope;
  CRM_ASSIGN_OR_RETURN(ReportQuery q, ParseQuery(c, req, Period::kDay, options_.clock->Now(), &scope));
  CRM_ASSIGN_OR_RETURN(TeamReport r, Team(db_->db(), q));
  for (const RepRow& x : r.reps) {
    auto* o = out.add_reps();
    o->set_owner_id(x.owner_id);
    o->set_team_id(x.team_id);
    SetPerformance(x, o);
  }
  SetPerformance(r.total, out.mutable_total());
  for (const TeamPeriod& x : r.periods) {
    auto* o = out.add_periods();
    *o->mutable_start_time() = ToProto(x.start);
    SetPerformance(x, o);
  }
  *out.mutable_as_of() = ToProto(q.as_of);
  out.set_scope(scope);
  return out;
}

absl::StatusOr<v1::CustomerValueReport> AnalyticsEngine::GetCustomerValueReport(
    const Caller& c, const v1::GetCustomerValueReportRequest& req, absl::Time) {
  if (req.limit() < 0 || req.limit() > 1000) return InvalidFieldError("limit", "must be 1-1000 (0: 20)");
  v1::CustomerValueReport out;
  v1::ReportScope scope;
  CRM_ASSIGN_OR_RETURN(ReportQuery q, ParseQuery(c, req, Period::kMonth, options_.clock->Now(), &scope));
  CRM_ASSIGN_OR_RETURN(ValueReport r, CustomerValue(db_->db(), q, req.limit() == 0 ? 20 : req.limit()));
  out.set_customers(r.customers);
  out.set_paying_customers(r.paying_customers);
  out.set_collected_minor(r.collected_minor);
  auto segments = [](const std::vector<ValueSegment>& in, auto* field) {
    for (const ValueSegment& x : in) {
      auto* o = field->Add();
      o->set_key(x.key);
      o->set_customers(x.customers);
      o->set_paying_customers(x.paying_customers);
      o->set_collected_minor(x.collected_minor);
    }
  };
  segments(r.by_region, out.mutable_by_region());
  segments(r.by_industry, out.mutable_by_industry());
  for (const ValueCustomer& x : r.high_value) {
    auto* o = out.add_high_value();
    o->set_customer_id(x.customer_id);
    o->set_name(x.name);
    o->set_region(x.region);
    o->set_industry(x.industry);
    o->set_owner_id(x.owner_id);
    o->set_monetary_minor(x.monetary_minor);
    o->set_frequency(x.frequency);
    o->set_recency_days(x.recency_days);
    o->set_r_score(x.r_score);
    o->set_f_score(x.f_score);
    o->set_m_score(x.m_score);
    o->set_segment(x.segment);
  }
  for (const auto& x : r.periods) {
    auto* o = out.add_periods();
    *o->mutable_start_time() = ToProto(x.start);
    o->set_collected_minor(x.collected_minor);
    o->set_payments(x.payments);
  }
  *out.mutable_as_of() = ToProto(q.as_of);
  out.set_scope(scope);
  return out;
}

absl::StatusOr<v1::ChurnReport> AnalyticsEngine::GetChurnReport(const Caller& c, const v1::GetChurnReportRequest& req,
                                                                absl::Time) {
  v1::ChurnReport out;
  v1::ReportScope scope;
  CRM_ASSIGN_OR_RETURN(ReportQuery q, ParseQuery(c, req, Period::kMonth, options_.clock->Now(), &scope));
  CRM_ASSIGN_OR_RETURN(ChurnReport r, Churn(db_->db(), q));
  out.set_churned(r.churned);
  out.set_new_customers(r.new_customers);
  for (const auto& x : r.by_reason) {
    auto* o = out.add_by_reason();
    o->set_reason(x.reason);
    o->set_churned(x.churned);
  }
  for (const auto& x : r.periods) {
    auto* o = out.add_periods();
    *o->mutable_start_time() = ToProto(x.start);
    o->set_churned(x.churned);
    o->set_new_customers(x.new_customers);
  }
  *out.mutable_as_of() = ToProto(q.as_of);
  out.set_scope(scope);
  return out;
}

absl::StatusOr<v1::ReceivablesReport> AnalyticsEngine::GetReceivablesReport(
    const Caller& c, const v1::GetReceivablesReportRequest& req, absl::Time) {
  v1::ReceivablesReport out;
  v1::ReportScope scope;
  CRM_ASSIGN_OR_RETURN(ReportQuery q, ParseQuery(c, req, Period::kMonth, options_.clock->Now(), &scope));
  ReceivablesQuery rq{.from = q.from, .to = q.to, .as_of = q.as_of, .group_by = q.group_by,
                      .owner_id = q.owner_id, .team_id = q.team_id, .currency = q.currency};
  CRM_ASSIGN_OR_RETURN(ReceivablesReport r, Receivables(db_->db(), rq));
  for (const auto& x : r.buckets) {
    auto* o = out.add_periods();
    *o->mutable_start_time() = ToProto(x.start);
    o->set_planned_minor(x.planned_minor);
    o->set_collected_minor(x.collected_minor);
    o->set_payments(x.payments);
  }
  out.set_planned_minor(r.planned_minor);
  out.set_collected_minor(r.collected_minor);
  out.set_payments(r.payments);
  out.set_collection_percent(r.collection_percent);
  *out.mutable_as_of() = ToProto(q.as_of);
  out.set_scope(scope);
  return out;
}

}  // namespace crm::analytics
