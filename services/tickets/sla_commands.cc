// The tickets engine's SLA side: policies and calendars, the clocks a read shows, what-if
// evaluation over a period, and the scheduler's notices. Plus the row helpers the engine's
// files share (engine_kinds.h).
#include <algorithm>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "libs/common/grpc_status.h"
#include "libs/common/ids.h"
#include "libs/common/proto_time.h"
#include "libs/common/status_macros.h"
#include "services/tickets/engine_kinds.h"
#include "services/tickets/form.h"
#include "services/tickets/workflow.h"

namespace crm::tickets {

using kernel::Reply;

namespace {
// Tickets one scheduler run records notices on; the rest wait for the next run.
constexpr size_t kMaxNotices = 20000;
}  // namespace

absl::StatusOr<std::string> ParseTypeName(const std::string& name, absl::string_view field) {
  if (!absl::StartsWith(name, "ticketTypes/")) return InvalidFieldError(field, "must be ticketTypes/{id}");
  std::string id = name.substr(strlen("ticketTypes/"));
  if (!ValidIdentifier(id) && !IsCanonicalUuid(id)) return InvalidFieldError(field, "must be ticketTypes/{id}");
  return id;
}

absl::StatusOr<Target> ParseTypeTarget(const std::string& request_id, const std::string& name,
                                       const std::string& etag) {
  CRM_RETURN_IF_ERROR(CheckRequestId(request_id));
  Target t;
  CRM_ASSIGN_OR_RETURN(t.id, ParseTypeName(name, "name"));
  CRM_ASSIGN_OR_RETURN(t.etag, ParseEtag(etag, "etag"));
  return t;
}

absl::StatusOr<std::string> ParsePolicyName(const std::string& name, absl::string_view field) {
  std::vector<std::string> parts = absl::StrSplit(name, '/');
  v1::TicketPriority p;
  if (parts.size() != 4 || parts[0] != "ticketTypes" || parts[2] != "slaPolicies" ||
      !(ValidIdentifier(parts[1]) || IsCanonicalUuid(parts[1])) || !ParsePriorityKey(parts[3], &p)) {
    return InvalidFieldError(field, "must be ticketTypes/{id}/slaPolicies/{low|normal|high|urgent|default}");
  }
  return PolicyId(parts[1], p);
}

namespace {

void FillClock(const SlaClock& c, v1::SlaClockStatus* out) {
  out->set_has_target(c.has_target);
  out->set_target_seconds(absl::ToInt64Seconds(c.target));
  out->set_elapsed_seconds(absl::ToInt64Seconds(c.elapsed));
  out->set_met(c.has_target && c.stopped && !c.breached);
  out->set_breached(c.breached);
  out->set_paused(c.paused || c.stopped);
  if (c.due != absl::InfiniteFuture()) *out->mutable_due_time() = ToProto(c.due);
  if (c.breached) *out->mutable_breach_time() = ToProto(c.breached_at);
}

}  // namespace

v1::SlaStatus SlaOf(const TicketState& s, const std::string& name, const v1::SlaPolicy& policy,
                    const BusinessCalendar& calendar, absl::Time now) {
  v1::SlaStatus out;
  out.set_policy(name);
  const SlaStatus st = EvaluateSla(TimelineOf(s, policy), TargetsOf(policy), calendar, now);
  FillClock(st.first_response, out.mutable_first_response());
  FillClock(st.resolution, out.mutable_resolution());
  return out;
}

v1::SlaStatus SlaOf(const TicketState& s, const std::optional<TicketEngine::ResolvedPolicy>& policy, absl::Time now) {
  if (!policy.has_value()) return v1::SlaStatus();
  return SlaOf(s, policy->name, policy->policy, *policy->calendar, now);
}

// ---- Policies and calendars ----

v1::SlaPolicyResource TicketEngine::ToApi(const v1::SlaPolicyState& s) const {
  v1::SlaPolicyResource r;
  r.set_name(absl::StrCat("ticketTypes/", s.policy().type_id(), "/slaPolicies/", PriorityKey(s.policy().priority())));
  if (!s.deleted()) *r.mutable_policy() = s.policy();
  r.set_updated_by(s.updated_by());
  *r.mutable_update_time() = s.update_time();
  r.set_etag(std::to_string(s.version()));
  return r;
}

v1::Calendar TicketEngine::ToApi(const v1::CalendarState& s) const {
  v1::Calendar c;
  c.set_name(absl::StrCat("calendars/", s.key()));
  c.set_display_name(s.display_name());
  *c.mutable_calendar() = s.calendar();
  c.set_updated_by(s.updated_by());
  *c.mutable_update_time() = s.update_time();
  c.set_etag(std::to_string(s.version()));
  return c;
}

absl::StatusOr<std::shared_ptr<const BusinessCalendar>> TicketEngine::CalendarFor(const std::string& name) const {
  if (name.empty()) return std::make_shared<const BusinessCalendar>(BusinessCalendar::AlwaysOpen());
  CRM_ASSIGN_OR_RETURN(auto s, projection::ReadStateRow<v1::CalendarState>(
                                   db_->db(), rows::Calendar(CalendarId(name.substr(strlen("calendars/"))))));
  if (!s.has_value()) return absl::NotFoundError(absl::StrCat(name, " does not exist"));
  CRM_ASSIGN_OR_RETURN(BusinessCalendar cal, BusinessCalendar::Make(s->calendar(), "calendar"));
  return std::make_shared<const BusinessCalendar>(std::move(cal));
}

absl::StatusOr<std::optional<TicketEngine::ResolvedPolicy>> TicketEngine::PolicyFor(const std::string& type,
                                                                                      v1::TicketPriority priority) const {
  for (v1::TicketPriority p : {priority, v1::TICKET_PRIORITY_UNSPECIFIED}) {
    CRM_ASSIGN_OR_RETURN(auto s, projection::ReadStateRow<v1::SlaPolicyState>(db_->db(), rows::Policy(PolicyId(type, p))));
    if (!s.has_value() || s->deleted()) continue;
    ResolvedPolicy r;
    r.name = absl::StrCat("ticketTypes/", type, "/slaPolicies/", PriorityKey(p));
    r.policy = s->policy();
    CRM_ASSIGN_OR_RETURN(r.calendar, CalendarFor(r.policy.calendar()));
    return std::optional<ResolvedPolicy>(std::move(r));
  }
  return std::optional<ResolvedPolicy>();
}

void TicketEngine::SetSlaPolicy(const Caller& c, const v1::SetSlaPolicyRequest& req,
                                Callback<v1::SlaPolicyResource> done) {
  if (auto s = CheckRequestId(req.request_id()); !s.ok()) return done(s);
  auto etag = ParseEtag(req.etag(), "etag");
  if (!etag.ok()) return done(etag.status());
  const v1::SlaPolicy& p = req.policy();
  auto type = ParseTypeName(absl::StrCat("ticketTypes/", p.type_id()), "policy.type_id");
  if (!type.ok()) return done(type.status());
  if (auto s = ValidatePolicy(p, "policy"); !s.ok()) return done(s);
  auto t = projection::ReadStateRow<TicketTypeState>(db_->db(), rows::TicketType(*type));
  if (!t.ok()) return done(t.status());
  if (!t->has_value()) return done(InvalidFieldError("policy.type_id", absl::StrCat("ticketTypes/", *type, " does not exist")));
  if (!p.calendar().empty()) {
    auto cal = CalendarFor(p.calendar());
    if (absl::IsNotFound(cal.status())) return done(InvalidFieldError("policy.calendar", cal.status().message()));
    if (!cal.ok()) return done(cal.status());
  }
  for (int i = 0; i < p.pause_states_size(); ++i) {
    const v1::TicketTypeVersion* v = CurrentVersion(**t);
    if (v != nullptr && FindState(v->definition().workflow(), p.pause_states(i)) == nullptr) {
      return done(InvalidFieldError(absl::StrCat("policy.pause_states[", i, "]"),
                                    absl::StrCat(p.pause_states(i), " is not a state of the type's workflow")));
    }
  }
  store_.Execute<PolicyKind>(Plain<v1::SlaPolicyState, SlaPolicyEvent>(c, PolicyId(*type, p.priority()), req.request_id(),
                                                                      tickets::SetSlaPolicy{p}, *etag),
                             Reply<v1::SlaPolicyState, v1::SlaPolicyResource>(this, std::move(done)));
}

void TicketEngine::DeleteSlaPolicy(const Caller& c, const v1::DeleteSlaPolicyRequest& req,
                                   Callback<v1::SlaPolicyResource> done) {
  if (auto s = CheckRequestId(req.request_id()); !s.ok()) return done(s);
  auto id = ParsePolicyName(req.name(), "name");
  if (!id.ok()) return done(id.status());
  auto etag = ParseEtag(req.etag(), "etag");
  if (!etag.ok()) return done(etag.status());
  store_.Execute<PolicyKind>(
      Plain<v1::SlaPolicyState, SlaPolicyEvent>(c, *id, req.request_id(), tickets::DeleteSlaPolicy{}, *etag),
      Reply<v1::SlaPolicyState, v1::SlaPolicyResource>(this, std::move(done)));
}

absl::StatusOr<v1::SlaPolicyResource> TicketEngine::GetSlaPolicy(const Caller&, const v1::GetSlaPolicyRequest& req,
                                                                 absl::Time deadline) {
  CRM_ASSIGN_OR_RETURN(std::string id, ParsePolicyName(req.name(), "name"));
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  CRM_ASSIGN_OR_RETURN(auto s, projection::ReadStateRow<v1::SlaPolicyState>(db_->db(), rows::Policy(id)));
  if (!s.has_value() || s->deleted()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
  return ToApi(*s);
}

absl::StatusOr<v1::ListSlaPoliciesResponse> TicketEngine::ListSlaPolicies(const Caller&,
                                                                          const v1::ListSlaPoliciesRequest& req,
                                                                          absl::Time deadline) {
  std::string prefix = "ip/";
  if (!req.parent().empty()) {
    CRM_ASSIGN_OR_RETURN(std::string type, ParseTypeName(req.parent(), "parent"));
    prefix = rows::PolicyIndexPrefix(type);
  }
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  v1::ListSlaPoliciesResponse resp;
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    CRM_ASSIGN_OR_RETURN(auto s, projection::ReadStateRow<v1::SlaPolicyState>(db_->db(), rows::Policy(it->value().ToString())));
    if (s.has_value() && !s->deleted()) *resp.add_policies() = ToApi(*s);
  }
  CRM_RETURN_IF_ERROR(projection::FromRocks(it->status(), "list SLA policies"));
  return resp;
}

void TicketEngine::SetCalendar(const Caller& c, const v1::SetCalendarRequest& req, Callback<v1::Calendar> done) {
  if (auto s = CheckRequestId(req.request_id()); !s.ok()) return done(s);
  const v1::Calendar& in = req.calendar();
  if (!absl::StartsWith(in.name(), "calendars/")) return done(InvalidFieldError("calendar.name", "must be calendars/{id}"));
  auto etag = ParseEtag(req.etag(), "etag");
  if (!etag.ok()) return done(etag.status());
  const std::string key = in.name().substr(strlen("calendars/"));
  store_.Execute<CalendarKind>(
      Plain<v1::CalendarState, CalendarEvent>(c, CalendarId(key), req.request_id(),
                                              tickets::SetCalendar{key, in.display_name(), in.calendar()}, *etag),
      Reply<v1::CalendarState, v1::Calendar>(this, std::move(done)));
}

absl::StatusOr<v1::Calendar> TicketEngine::GetCalendar(const Caller&, const v1::GetCalendarRequest& req,
                                                       absl::Time deadline) {
  if (!absl::StartsWith(req.name(), "calendars/") || !ValidIdentifier(req.name().substr(strlen("calendars/")))) {
    return InvalidFieldError("name", "must be calendars/{id}");
  }
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  CRM_ASSIGN_OR_RETURN(auto s, projection::ReadStateRow<v1::CalendarState>(
                                   db_->db(), rows::Calendar(CalendarId(req.name().substr(strlen("calendars/"))))));
  if (!s.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
  return ToApi(*s);
}

absl::StatusOr<v1::ListCalendarsResponse> TicketEngine::ListCalendars(const Caller&, const v1::ListCalendarsRequest& req,
                                                                      absl::Time deadline) {
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  v1::ListCalendarsResponse resp;
  CRM_RETURN_IF_ERROR(ScanRows<v1::CalendarState>(db_->db(), rows::kCalendarPrefix, [&](const v1::CalendarState& s) {
    *resp.add_calendars() = ToApi(s);
    return true;
  }));
  std::sort(resp.mutable_calendars()->begin(), resp.mutable_calendars()->end(),
            [](const auto& a, const auto& b) { return a.name() < b.name(); });
  return resp;
}

// ---- Evaluation ----

namespace {

// The policies in force by ticket type and priority, read once per evaluation or scheduler run.
class PolicyCache {
 public:
  explicit PolicyCache(const TicketEngine* engine) : engine_(engine) {}
  absl::StatusOr<const std::optional<TicketEngine::ResolvedPolicy>*> For(const TicketState& s) {
    auto key = std::make_pair(s.type_id(), static_cast<int>(s.priority()));
    auto found = cache_.find(key);
    if (found == cache_.end()) {
      CRM_ASSIGN_OR_RETURN(auto p, engine_->PolicyFor(s.type_id(), s.priority()));
      found = cache_.emplace(key, std::move(p)).first;
    }
    return &found->second;
  }

 private:
  const TicketEngine* engine_;
  std::map<std::pair<std::string, int>, std::optional<TicketEngine::ResolvedPolicy>> cache_;
};

// Counts clocks into a summary.
class Tally {
 public:
  void Add(const v1::SlaClockStatus& c) {
    if (!c.has_target()) {
      ++no_target_;
      return;
    }
    if (c.breached()) {
      ++breached_;
    } else if (c.met()) {
      ++met_;
    } else {
      ++running_;
    }
    elapsed_.push_back(c.elapsed_seconds());
  }
  v1::SlaSummary Summary() {
    v1::SlaSummary s;
    s.set_met(met_);
    s.set_breached(breached_);
    s.set_running(running_);
    s.set_no_target(no_target_);
    s.set_compliance_percent(met_ + breached_ == 0 ? 100.0 : 100.0 * met_ / (met_ + breached_));
    if (!elapsed_.empty()) {
      std::sort(elapsed_.begin(), elapsed_.end());
      s.set_median_elapsed_seconds(elapsed_[elapsed_.size() / 2]);
      s.set_p90_elapsed_seconds(elapsed_[std::min(elapsed_.size() - 1, elapsed_.size() * 9 / 10)]);
    }
    return s;
  }

 private:
  int32_t met_ = 0, breached_ = 0, running_ = 0, no_target_ = 0;
  std::vector<int64_t> elapsed_;
};

}  // namespace

absl::StatusOr<v1::EvaluateSlaResponse> TicketEngine::EvaluateSla(const Caller& c, const v1::EvaluateSlaRequest& req,
                                                                  absl::Time deadline) {
  const absl::Time t0 = absl::Now();
  std::string type;
  if (!req.ticket_type().empty()) {
    CRM_ASSIGN_OR_RETURN(type, ParseTypeName(req.ticket_type(), "ticket_type"));
  }
  if (!v1::TicketPriority_IsValid(req.priority())) return InvalidFieldError("priority", "is not a TicketPriority");
  CRM_ASSIGN_OR_RETURN(const TimeRange range,
                       ClientTimeRange(req.has_start_time() ? &req.start_time() : nullptr, "start_time",
                                       req.has_end_time() ? &req.end_time() : nullptr, "end_time"));
  const absl::Time start = range.start, end = range.end;
  CRM_ASSIGN_OR_RETURN(const absl::Time as_of,
                       OptionalClientTime(req.has_as_of(), req.as_of(), "as_of", options_.clock->Now()));
  std::shared_ptr<const BusinessCalendar> what_if_calendar;
  if (req.has_what_if()) {
    v1::SlaPolicy p = req.what_if();
    CRM_RETURN_IF_ERROR(ValidatePolicy(p, "what_if"));
    auto cal = CalendarFor(p.calendar());
    if (absl::IsNotFound(cal.status())) return InvalidFieldError("what_if.calendar", cal.status().message());
    CRM_ASSIGN_OR_RETURN(what_if_calendar, std::move(cal));
  }
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));

  std::vector<std::pair<std::string, std::string>> keys;
  CRM_RETURN_IF_ERROR(
      projection::ScanTimed(db_->db(), type.empty() ? std::string(rows::kAllPrefix) : rows::TypePrefix(type), start, end,
                            &keys));
  PolicyCache policies(this);
  Tally actual_fr, actual_res, what_fr, what_res;
  v1::EvaluateSlaResponse resp;
  for (const auto& [at, id] : keys) {
    if (absl::Now() > deadline) return absl::DeadlineExceededError("the evaluation ran out of time; narrow the period");
    CRM_ASSIGN_OR_RETURN(auto s, projection::ReadStateRow<TicketState>(db_->db(), rows::Ticket(id)));
    if (!s.has_value() || !CanSee(c, *s)) continue;
    if (req.priority() != v1::TICKET_PRIORITY_UNSPECIFIED && s->priority() != req.priority()) continue;
    CRM_ASSIGN_OR_RETURN(const std::optional<ResolvedPolicy>* policy, policies.For(*s));
    resp.set_tickets(resp.tickets() + 1);
    v1::SlaStatus actual = SlaOf(*s, *policy, as_of);
    actual_fr.Add(actual.first_response());
    actual_res.Add(actual.resolution());
    v1::SlaStatus what_if;
    if (what_if_calendar != nullptr) {
      what_if = SlaOf(*s, "what_if", req.what_if(), *what_if_calendar, as_of);
      what_fr.Add(what_if.first_response());
      what_res.Add(what_if.resolution());
    }
    if (req.include_tickets() && resp.details_size() < 1000) {
      auto* d = resp.add_details();
      d->set_ticket(absl::StrCat("tickets/", id));
      *d->mutable_actual() = std::move(actual);
      if (what_if_calendar != nullptr) *d->mutable_what_if() = std::move(what_if);
    }
  }
  *resp.mutable_actual_first_response() = actual_fr.Summary();
  *resp.mutable_actual_resolution() = actual_res.Summary();
  if (what_if_calendar != nullptr) {
    *resp.mutable_what_if_first_response() = what_fr.Summary();
    *resp.mutable_what_if_resolution() = what_res.Summary();
  }
  resp.set_evaluation_micros(absl::ToInt64Microseconds(absl::Now() - t0));
  return resp;
}

// ---- Scheduler ----

absl::StatusOr<TicketEngine::SchedulerRun> TicketEngine::RunScheduler(absl::Time now) {
  SchedulerRun run;
  std::vector<std::pair<std::string, std::string>> keys;
  CRM_RETURN_IF_ERROR(projection::ScanTimed(db_->db(), rows::kOpenPrefix, absl::InfinitePast(), absl::InfiniteFuture(), &keys));
  PolicyCache policies(this);
  struct Notice {
    std::string ticket;
    std::variant<v1::SlaWarning, v1::SlaBreached> event;
    absl::Time at;
  };
  std::vector<Notice> notices;
  auto recorded = [](const auto& kinds, v1::SlaClockKind k) {
    return std::find(kinds.begin(), kinds.end(), k) != kinds.end();
  };
  for (const auto& [at, id] : keys) {
    if (notices.size() >= kMaxNotices) break;
    CRM_ASSIGN_OR_RETURN(auto s, projection::ReadStateRow<TicketState>(db_->db(), rows::Ticket(id)));
    if (!s.has_value() || s->closed()) continue;
    ++run.tickets;
    CRM_ASSIGN_OR_RETURN(const std::optional<ResolvedPolicy>* policy, policies.For(*s));
    if (!policy->has_value()) continue;
    const ResolvedPolicy& rp = **policy;
    const SlaStatus st = tickets::EvaluateSla(TimelineOf(*s, rp.policy), TargetsOf(rp.policy), *rp.calendar, now);
    for (const auto& [kind, clock] : {std::pair<v1::SlaClockKind, const SlaClock*>{v1::SLA_CLOCK_KIND_FIRST_RESPONSE, &st.first_response},
                                      {v1::SLA_CLOCK_KIND_RESOLUTION, &st.resolution}}) {
      if (!clock->has_target) continue;
      if (clock->breached && clock->breached_at <= now && !recorded(s->breached(), kind)) {
        v1::SlaBreached b;
        b.set_clock(kind);
        b.set_policy(rp.name);
        b.set_target_seconds(absl::ToInt64Seconds(clock->target));
        notices.push_back({id, b, clock->breached_at});
      } else if (!clock->breached && !clock->stopped && clock->warn_at <= now && !recorded(s->warned(), kind) &&
                 !recorded(s->breached(), kind)) {
        v1::SlaWarning w;
        w.set_clock(kind);
        w.set_policy(rp.name);
        w.set_target_seconds(absl::ToInt64Seconds(clock->target));
        w.set_elapsed_seconds(absl::ToInt64Seconds(clock->elapsed));
        if (clock->due != absl::InfiniteFuture()) *w.mutable_due_time() = ToProto(clock->due);
        notices.push_back({id, w, clock->warn_at});
      }
    }
  }
  if (notices.empty()) return run;
  absl::BlockingCounter pending(static_cast<int>(notices.size()));
  absl::Mutex mu;
  absl::Status first_error;
  for (const Notice& n : notices) {
    const bool breach = std::holds_alternative<v1::SlaBreached>(n.event);
    kernel::Command<TicketState, TicketEvent> cmd =
        Plain<TicketState, TicketEvent>(kScheduler, n.ticket, "", RecordSla{{n.event}});
    cmd.cause = {.source = common::v1::ACTOR_SOURCE_SYSTEM, .occurred_at = n.at};
    store_.Execute<TicketKind>(
        std::move(cmd),
        [&, breach](absl::StatusOr<kernel::Written<TicketState>> w) {
          {
            absl::MutexLock l(&mu);
            if (!w.ok()) {
              if (first_error.ok()) first_error = w.status();
            } else if (!w->token.empty()) {
              ++(breach ? run.breaches : run.warnings);
            }
          }
          pending.DecrementCount();
        });
  }
  pending.Wait();
  if (!first_error.ok()) return first_error;
  return run;
}

}  // namespace crm::tickets
