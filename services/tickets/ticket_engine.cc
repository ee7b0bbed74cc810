#include "services/tickets/ticket_engine.h"

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "libs/common/grpc_status.h"
#include "libs/common/list_page.h"
#include "libs/projection/index_walk.h"
#include "libs/common/ids.h"
#include "libs/common/proto_time.h"
#include "libs/common/request.h"
#include "libs/common/status_macros.h"
#include "libs/customer_view/customer_view.h"
#include "libs/projection/history.h"
#include "services/tickets/engine_kinds.h"
#include "services/tickets/workflow.h"

namespace crm::tickets {

using kernel::Reply;

absl::StatusOr<std::unique_ptr<TicketEngine>> TicketEngine::Open(eventlog::Log* log, projection::ProjectionDb* db,
                                                                 Options options) {
  if (options.clock == nullptr) return absl::InvalidArgumentError("TicketEngine needs a clock");
  const projection::ProjectionSpec spec = Spec(options);
  // The writer comes first: the engine's store runs on it from construction.
  CRM_ASSIGN_OR_RETURN(auto writer, projection::AggregateWriter::Open(
                                        log, db,
                                        {.topic = options.topic, .partitions = options.partitions, .source = kSource,
                                         .tenant = options.tenant, .clock = options.clock,
                                         .observe_append = options.observe_append},
                                        spec.sources[0].apply(db)));
  std::unique_ptr<TicketEngine> e(new TicketEngine(log, db, std::move(options), std::move(writer)));
  projection::Follower::Options fo;
  fo.topic = spec.sources[1].topic;
  CRM_ASSIGN_OR_RETURN(e->follower_, projection::Follower::Start(log, db, std::move(fo), spec.sources[1].apply(db)));
  return e;
}

TicketEngine::~TicketEngine() {
  follower_.reset();
  writer_.reset();
}

projection::ProjectionSpec TicketEngine::Spec(const Options& o) {
  projection::ProjectionSpec spec;
  spec.version = kProjectionVersion;
  spec.sources.push_back(projection::FoldSource(o.topic, true, o.partitions, &ApplyTicketsRecord));
  spec.sources.push_back(projection::FoldSource(o.customers_topic, false, 0, &ApplyCustomersRecord));
  return spec;
}

absl::Status TicketEngine::WaitToken(const std::string& token, absl::string_view field, absl::Time deadline) {
  return projection::WaitForToken(*db_, token, field, deadline);
}

// ---- Ticket types ----

v1::TicketType TicketEngine::ToApi(const TicketTypeState& s) const {
  v1::TicketType t;
  t.set_name(absl::StrCat("ticketTypes/", s.id()));
  if (const v1::TicketTypeVersion* v = CurrentVersion(s)) {
    *t.mutable_definition() = v->definition();
    t.set_current_version(v->number());
  }
  *t.mutable_versions() = s.versions();
  t.set_archived(s.archived());
  t.set_archive_reason(s.archive_reason());
  t.set_created_by(s.created_by());
  *t.mutable_create_time() = s.create_time();
  *t.mutable_update_time() = s.update_time();
  t.set_etag(std::to_string(s.version()));
  return t;
}

void TicketEngine::CreateTicketType(const Caller& c, const v1::CreateTicketTypeRequest& req,
                                    Callback<v1::TicketType> done) {
  if (auto s = CheckRequestId(req.request_id()); !s.ok()) return done(s);
  std::string id = req.ticket_type_id();
  if (!id.empty() && !ValidIdentifier(id)) {
    return done(InvalidFieldError("ticket_type_id", "must be [a-z][a-z0-9_]{0,39}"));
  }
  if (id.empty()) {
    id = req.request_id().empty() ? NewUuidV7(options_.clock->Now())
                                  : DerivedId("ticket-types", absl::StrCat(c.user_id, "/", req.request_id()));
  }
  store_.Execute<TypeKind>(
      Plain<TicketTypeState, TicketTypeEvent>(c, id, req.request_id(), tickets::CreateTicketType{req.definition()}),
      Reply<TicketTypeState, v1::TicketType>(this, std::move(done)));
}

void TicketEngine::PublishTicketTypeVersion(const Caller& c, const v1::PublishTicketTypeVersionRequest& req,
                                            Callback<v1::TicketType> done) {
  auto t = ParseTypeTarget(req.request_id(), req.name(), req.etag());
  if (!t.ok()) return done(t.status());
  store_.Execute<TypeKind>(
      Plain<TicketTypeState, TicketTypeEvent>(c, t->id, req.request_id(), PublishTicketType{req.definition()}, t->etag),
      Reply<TicketTypeState, v1::TicketType>(this, std::move(done)));
}

void TicketEngine::ArchiveTicketType(const Caller& c, const v1::ArchiveTicketTypeRequest& req,
                                     Callback<v1::TicketType> done) {
  auto t = ParseTypeTarget(req.request_id(), req.name(), req.etag());
  if (!t.ok()) return done(t.status());
  store_.Execute<TypeKind>(Plain<TicketTypeState, TicketTypeEvent>(c, t->id, req.request_id(),
                                                                   tickets::ArchiveTicketType{req.reason()}, t->etag),
                           Reply<TicketTypeState, v1::TicketType>(this, std::move(done)));
}

absl::StatusOr<v1::TicketType> TicketEngine::GetTicketType(const Caller&, const v1::GetTicketTypeRequest& req,
                                                           absl::Time deadline) {
  CRM_ASSIGN_OR_RETURN(std::string id, ParseTypeName(req.name(), "name"));
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  CRM_ASSIGN_OR_RETURN(auto s, projection::ReadStateRow<TicketTypeState>(db_->db(), rows::TicketType(id)));
  if (!s.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
  return ToApi(*s);
}

absl::StatusOr<v1::ListTicketTypesResponse> TicketEngine::ListTicketTypes(const Caller&,
                                                                          const v1::ListTicketTypesRequest& req,
                                                                          absl::Time deadline) {
  CRM_ASSIGN_OR_RETURN(int32_t page_size, PageSize(req.page_size(), "page_size"));
  const std::string fingerprint = absl::StrCat("types/", req.show_archived());
  CRM_ASSIGN_OR_RETURN(int64_t offset, ParsePageToken(req.page_token(), fingerprint));
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  v1::ListTicketTypesResponse resp;
  int64_t seen = 0;
  CRM_RETURN_IF_ERROR(ScanRows<TicketTypeState>(db_->db(), rows::kTicketTypePrefix, [&](const TicketTypeState& s) {
    if (s.archived() && !req.show_archived()) return true;
    if (seen++ < offset) return true;
    if (resp.ticket_types_size() == page_size) {
      resp.set_next_page_token(PageToken(offset + page_size, fingerprint));
      return false;
    }
    v1::TicketType t = ToApi(s);
    t.clear_versions();  // GetTicketType has them
    *resp.add_ticket_types() = std::move(t);
    return true;
  }));
  return resp;
}

// ---- Tickets ----

v1::Ticket TicketEngine::ToApi(const TicketState& s) const {
  v1::Ticket t;
  t.set_name(absl::StrCat("tickets/", s.id()));
  t.set_ticket_type(absl::StrCat("ticketTypes/", s.type_id()));
  t.set_type_version(s.type_version());
  t.set_title(s.title());
  if (!s.customer_id().empty()) {
    auto survivor = SurvivorOf(db_->db(), s.customer_id());
    t.set_customer(absl::StrCat("customers/", survivor.ok() ? *survivor : s.customer_id()));
  }
  *t.mutable_values() = s.values();
  t.set_priority(s.priority());
  t.set_state(s.state());
  if (auto type = projection::ReadStateRow<TicketTypeState>(db_->db(), rows::TicketType(s.type_id()));
      type.ok() && type->has_value()) {
    if (const v1::TicketTypeVersion* v = FindVersion(**type, s.type_version())) {
      if (const v1::WorkflowState* st = FindState(v->definition().workflow(), s.state())) t.set_state_name(st->name());
    }
  }
  t.set_assignee_id(s.assignee_id());
  t.set_team_id(s.team_id());
  t.set_closed(s.closed());
  *t.mutable_comments() = s.comments();
  t.set_created_by(s.created_by());
  *t.mutable_create_time() = s.create_time();
  *t.mutable_update_time() = s.update_time();
  if (auto policy = PolicyFor(s.type_id(), s.priority()); policy.ok()) {
    *t.mutable_sla() = SlaOf(s, *policy, options_.clock->Now());
  }
  t.set_etag(std::to_string(s.version()));
  return t;
}

void TicketEngine::WithCustomer(const Caller& c, const std::string& customer, const std::string& field,
                                absl::AnyInvocable<void(std::string)> then,
                                absl::AnyInvocable<void(absl::Status)> fail) {
  if (customer.empty()) return then("");
  auto id = ParseName(customer, field, "customers");
  if (!id.ok()) return fail(id.status());
  auto check = [this, c, field](const std::string& id) -> absl::StatusOr<std::string> {
    CRM_ASSIGN_OR_RETURN(std::string survivor, SurvivorOf(db_->db(), id));
    CRM_ASSIGN_OR_RETURN(CustomerView v, ReadCustomerView(db_->db(), survivor));
    if (!v.exists) return absl::NotFoundError(absl::StrCat("customers/", id, " does not exist"));
    if (v.deleted) return InvalidFieldError(field, absl::StrCat("customers/", survivor, " is in the recycle bin"));
    if (!SeesRecord(c, v.owner_id, v.team_id, /*in_pool=*/v.owner_id.empty())) {
      return absl::PermissionDeniedError(absl::StrCat("customers/", survivor, " belongs to another owner or team"));
    }
    return survivor;
  };
  auto first = check(*id);
  if (!absl::IsNotFound(first.status())) {
    if (!first.ok()) return fail(first.status());
    return then(*first);
  }
  projection::AfterCaughtUp(*log_, *db_, {options_.customers_topic}, absl::Now() + absl::Seconds(10),
                            [check, field, id = *id, then = std::move(then), fail = std::move(fail)](absl::Status st) mutable {
                              if (!st.ok()) return fail(st);
                              auto again = check(id);
                              if (absl::IsNotFound(again.status())) {
                                return fail(InvalidFieldError(field, again.status().message()));
                              }
                              if (!again.ok()) return fail(again.status());
                              then(*again);
                            });
}

void TicketEngine::CreateTicket(const Caller& c, const v1::CreateTicketRequest& req, Callback<v1::Ticket> done) {
  if (auto s = CheckRequestId(req.request_id()); !s.ok()) return done(s);
  const v1::Ticket& in = req.ticket();
  auto type_id = ParseTypeName(in.ticket_type(), "ticket.ticket_type");
  if (!type_id.ok()) return done(type_id.status());
  auto type = projection::ReadStateRow<TicketTypeState>(db_->db(), rows::TicketType(*type_id));
  if (!type.ok()) return done(type.status());
  if (!type->has_value()) return done(InvalidFieldError("ticket.ticket_type", absl::StrCat(in.ticket_type(), " does not exist")));
  if ((*type)->archived()) {
    return done(absl::FailedPreconditionError(absl::StrCat(in.ticket_type(), " is archived: no new tickets")));
  }
  const v1::TicketTypeVersion* version = CurrentVersion(**type);
  if (version == nullptr) return done(absl::FailedPreconditionError("the ticket type has no version"));
  tickets::CreateTicket cmd{*type_id, *version, in.title(), "", FormValues(in.values().begin(), in.values().end()),
                            in.priority(), in.assignee_id(), in.team_id()};
  const std::string id = req.request_id().empty() ? NewUuidV7(options_.clock->Now())
                                                  : DerivedId("tickets", absl::StrCat(c.user_id, "/", req.request_id()));
  auto shared = std::make_shared<Callback<v1::Ticket>>(std::move(done));
  WithCustomer(
      c, in.customer(), "ticket.customer",
      [this, c, id, cmd = std::move(cmd), rid = req.request_id(), shared](std::string customer) mutable {
        cmd.customer_id = std::move(customer);
        store_.Execute<TicketKind>(Plain<TicketState, TicketEvent>(c, id, rid, std::move(cmd)),
                                   Reply<TicketState, v1::Ticket>(this, std::move(*shared)));
      },
      [shared](absl::Status s) { (*shared)(std::move(s)); });
}

template <typename Cmd>
void TicketEngine::OnTicket(const Caller& c, const std::string& id, const std::string& request_id, int64_t etag,
                            Cmd cmd, Callback<v1::Ticket> done) {
  auto decide = [this, c, cmd = std::move(cmd)](const TicketState* s) mutable -> TicketDecision {
    if constexpr (requires { cmd.type; }) {
      if (s != nullptr) {
        CRM_ASSIGN_OR_RETURN(auto type, projection::ReadStateRow<TicketTypeState>(db_->db(), rows::TicketType(s->type_id())));
        const v1::TicketTypeVersion* v = type.has_value() ? FindVersion(*type, s->type_version()) : nullptr;
        if (v == nullptr) return absl::DataLossError("the ticket's type version is missing");
        cmd.type = *v;
      }
    }
    return Decide(s, c, cmd);
  };
  store_.Execute<TicketKind>(
      kernel::TargetCommand<TicketState, TicketEvent>(
          c, {.id = id, .etag = etag, .request_id = request_id, .etag_field = "etag"}, std::move(decide)),
      Reply<TicketState, v1::Ticket>(this, std::move(done)));
}

void TicketEngine::UpdateTicket(const Caller& c, const v1::UpdateTicketRequest& req, Callback<v1::Ticket> done) {
  auto t = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "tickets");
  if (!t.ok()) return done(t.status());
  OnTicket(c, t->id, req.request_id(), t->etag, UpdateValues{{}, FormValues(req.values().begin(), req.values().end())},
           std::move(done));
}

void TicketEngine::TransitionTicket(const Caller& c, const v1::TransitionTicketRequest& req, Callback<v1::Ticket> done) {
  auto t = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "tickets");
  if (!t.ok()) return done(t.status());
  if (req.transition_id().empty()) return done(InvalidFieldError("transition_id", "is required"));
  OnTicket(c, t->id, req.request_id(), t->etag, TakeTransition{{}, req.transition_id(), req.comment()}, std::move(done));
}

void TicketEngine::AssignTicket(const Caller& c, const v1::AssignTicketRequest& req, Callback<v1::Ticket> done) {
  auto t = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "tickets");
  if (!t.ok()) return done(t.status());
  OnTicket(c, t->id, req.request_id(), t->etag, tickets::AssignTicket{req.assignee_id(), req.team_id()}, std::move(done));
}

void TicketEngine::AddComment(const Caller& c, const v1::AddCommentRequest& req, Callback<v1::Ticket> done) {
  auto t = ParseTarget(req.request_id(), req.name(), "name", "", "etag", "tickets");
  if (!t.ok()) return done(t.status());
  const std::string comment_id = req.request_id().empty() ? NewUuidV7(options_.clock->Now())
                                                          : DerivedId("comments", absl::StrCat(c.user_id, "/", req.request_id()));
  OnTicket(c, t->id, req.request_id(), 0, CommentTicket{comment_id, req.body(), req.internal()}, std::move(done));
}

absl::StatusOr<v1::Ticket> TicketEngine::GetTicket(const Caller& c, const v1::GetTicketRequest& req,
                                                   absl::Time deadline) {
  CRM_ASSIGN_OR_RETURN(std::string id, ParseName(req.name(), "name", "tickets"));
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  CRM_ASSIGN_OR_RETURN(auto s, projection::ReadStateRow<TicketState>(db_->db(), rows::Ticket(id)));
  if (!s.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
  if (!CanSee(c, *s)) return absl::PermissionDeniedError(absl::StrCat(req.name(), " belongs to another assignee or team"));
  return ToApi(*s);
}

absl::StatusOr<v1::ListTicketsResponse> TicketEngine::ListTickets(const Caller& c, const v1::ListTicketsRequest& req,
                                                                  absl::Time deadline) {
  CRM_ASSIGN_OR_RETURN(int32_t page_size, PageSize(req.page_size(), "page_size"));
  CRM_ASSIGN_OR_RETURN(std::vector<FilterTerm> terms,
                       ParseFilterTerms(req.filter(), {"ticket_type", "state", "assignee_id", "team_id", "customer",
                                                       "priority", "closed", "sla_breached"}));
  CRM_ASSIGN_OR_RETURN(std::string after, ParsePositionToken(req.page_token(), req.filter()));
  std::map<std::string, std::string> f;
  for (auto& t : terms) f[t.field] = t.value;
  int priority = -1;
  if (f.count("priority")) {
    v1::TicketPriority p;
    if (!v1::TicketPriority_Parse(absl::StrCat("TICKET_PRIORITY_", f["priority"]), &p) ||
        p == v1::TICKET_PRIORITY_UNSPECIFIED) {
      return InvalidFieldError("filter", "priority must be LOW, NORMAL, HIGH or URGENT");
    }
    priority = p;
  }
  for (const char* flag : {"closed", "sla_breached"}) {
    if (f.count(flag) && f[flag] != "true" && f[flag] != "false") {
      return InvalidFieldError("filter", absl::StrCat(flag, " must be true or false"));
    }
  }
  std::string type_id;
  if (f.count("ticket_type")) {
    CRM_ASSIGN_OR_RETURN(type_id, ParseTypeName(f["ticket_type"], "filter"));
  }
  std::string customer;
  if (f.count("customer")) {
    CRM_ASSIGN_OR_RETURN(customer, ParseName(f["customer"], "filter", "customers"));
  }
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));

  // The most selective index the filter allows, then every term on the state.
  std::vector<std::string> prefixes;
  if (!customer.empty()) {
    CRM_ASSIGN_OR_RETURN(customer, SurvivorOf(db_->db(), customer));
    prefixes.push_back(rows::CustomerPrefix(customer));
    CRM_ASSIGN_OR_RETURN(auto merged, projection::ReadIds(db_->db(), rows::MergedPrefix(customer)));
    for (const auto& m : merged) prefixes.push_back(rows::CustomerPrefix(m));
  } else if (f.count("assignee_id")) {
    prefixes.push_back(rows::AssigneePrefix(f["assignee_id"]));
  } else if (f.count("team_id")) {
    prefixes.push_back(rows::TeamPrefix(f["team_id"]));
  } else if (!type_id.empty()) {
    prefixes.push_back(rows::TypePrefix(type_id));
  } else if (ReachOf(c) == Reach::kAll) {
    prefixes.push_back(f.count("closed") && f["closed"] == "false" ? rows::kOpenPrefix : rows::kAllPrefix);
  } else if (ReachOf(c) == Reach::kTeam) {
    prefixes.push_back(rows::TeamPrefix(c.team));
  } else {
    prefixes.push_back(rows::AssigneePrefix(c.user_id));
    prefixes.push_back(rows::CreatorPrefix(c.user_id));
  }
  // Newest first: the indexes (create time key, then id) walked backwards in step.
  Page page(page_size, absl::nullopt, after);
  v1::ListTicketsResponse resp;
  auto visit = [&](absl::string_view pos, absl::string_view) -> absl::StatusOr<bool> {
    if (pos.size() <= 8) return true;  // not a ticket row
    CRM_ASSIGN_OR_RETURN(auto s, projection::ReadStateRow<TicketState>(db_->db(), rows::Ticket(pos.substr(8))));
    if (!s.has_value() || !CanSee(c, *s)) return true;
    if ((!type_id.empty() && s->type_id() != type_id) || (f.count("state") && s->state() != f["state"]) ||
        (f.count("assignee_id") && s->assignee_id() != f["assignee_id"]) ||
        (f.count("team_id") && s->team_id() != f["team_id"]) || (priority >= 0 && s->priority() != priority) ||
        (f.count("closed") && s->closed() != (f["closed"] == "true")) ||
        (f.count("sla_breached") && (s->breached_size() > 0) != (f["sla_breached"] == "true"))) {
      return true;
    }
    if (page.Takes(pos)) *resp.add_tickets() = ToApi(*s);
    return page.More();
  };
  CRM_ASSIGN_OR_RETURN(WalkEnd end, projection::WalkIndexes(db_->db(), rocksdb::ReadOptions(),
                                                            {.prefixes = prefixes, .descending = true, .after = after},
                                                            visit));
  resp.set_next_page_token(page.Token(end, req.filter()));
  resp.set_total_size(page.Total(end));
  return resp;
}

absl::StatusOr<v1::ListEventsResponse> TicketEngine::ListEvents(const Caller& c, const v1::ListEventsRequest& req,
                                                                absl::Time deadline) {
  CRM_ASSIGN_OR_RETURN(int32_t page_size, PageSize(req.page_size(), "page_size"));
  CRM_ASSIGN_OR_RETURN(int64_t offset, ParsePageToken(req.page_token(), req.parent()));
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  std::string id;
  int64_t version = 0;
  const std::string& parent = req.parent();
  auto not_found = [&] { return absl::NotFoundError(absl::StrCat(parent, " not found")); };
  if (absl::StartsWith(parent, "tickets/")) {
    CRM_ASSIGN_OR_RETURN(id, ParseName(parent, "parent", "tickets"));
    CRM_ASSIGN_OR_RETURN(auto s, projection::ReadStateRow<TicketState>(db_->db(), rows::Ticket(id)));
    if (!s.has_value()) return not_found();
    if (!CanSee(c, *s)) return absl::PermissionDeniedError(absl::StrCat(parent, " belongs to another assignee or team"));
    version = s->version();
  } else if (absl::StartsWith(parent, "calendars/")) {
    const std::string key = parent.substr(strlen("calendars/"));
    if (!ValidIdentifier(key)) return InvalidFieldError("parent", "must be calendars/{id}");
    id = CalendarId(key);
    CRM_ASSIGN_OR_RETURN(auto s, projection::ReadStateRow<v1::CalendarState>(db_->db(), rows::Calendar(id)));
    if (!s.has_value()) return not_found();
    version = s->version();
  } else if (absl::StrContains(parent, "/slaPolicies/")) {
    CRM_ASSIGN_OR_RETURN(id, ParsePolicyName(parent, "parent"));
    CRM_ASSIGN_OR_RETURN(auto s, projection::ReadStateRow<v1::SlaPolicyState>(db_->db(), rows::Policy(id)));
    if (!s.has_value()) return not_found();
    version = s->version();
  } else if (absl::StartsWith(parent, "ticketTypes/")) {
    CRM_ASSIGN_OR_RETURN(id, ParseTypeName(parent, "parent"));
    CRM_ASSIGN_OR_RETURN(auto s, projection::ReadStateRow<TicketTypeState>(db_->db(), rows::TicketType(id)));
    if (!s.has_value()) return not_found();
    version = s->version();
  } else {
    return InvalidFieldError("parent", "must be tickets/{id}, ticketTypes/{id}, ticketTypes/{id}/slaPolicies/{priority} or calendars/{id}");
  }
  return projection::EventsPage<v1::ListEventsResponse>(db_->db(), id, version, offset, page_size, parent);
}

// ---- Migration ----

void TicketEngine::MigrateTickets(const Caller& c, const v1::MigrateTicketsRequest& req,
                                  Callback<v1::MigrateTicketsResponse> done) {
  if (auto s = CheckRequestId(req.request_id()); !s.ok()) return done(s);
  auto type_id = ParseTypeName(req.name(), "name");
  if (!type_id.ok()) return done(type_id.status());
  auto type = projection::ReadStateRow<TicketTypeState>(db_->db(), rows::TicketType(*type_id));
  if (!type.ok()) return done(type.status());
  if (!type->has_value()) return done(absl::NotFoundError(absl::StrCat(req.name(), " not found")));
  const v1::TicketTypeVersion* from = FindVersion(**type, req.from_version());
  if (from == nullptr) return done(InvalidFieldError("from_version", "is not a version of the type"));
  const v1::TicketTypeVersion* to = req.to_version() == 0 ? CurrentVersion(**type) : FindVersion(**type, req.to_version());
  if (to == nullptr) return done(InvalidFieldError("to_version", "is not a version of the type"));
  for (const auto& [old_key, new_key] : req.field_mapping()) {
    if (!new_key.empty() && FindField(to->definition().form(), new_key) == nullptr) {
      return done(InvalidFieldError(absl::StrCat("field_mapping.", old_key), absl::StrCat("version ", to->number(), "'s form has no field ", new_key)));
    }
  }
  for (const auto& [old_state, new_state] : req.state_mapping()) {
    const v1::WorkflowState* st = FindState(to->definition().workflow(), new_state);
    if (st == nullptr || st->final()) {
      return done(InvalidFieldError(absl::StrCat("state_mapping.", old_state),
                                    absl::StrCat(new_state, " is not an open state of version ", to->number())));
    }
  }
  if (req.max_tickets() < 0 || req.max_tickets() > 1000) return done(InvalidFieldError("max_tickets", "must be 0 to 1000"));
  const size_t max = req.max_tickets() == 0 ? 1000 : req.max_tickets();
  std::vector<std::pair<std::string, std::string>> keys;
  if (auto s = projection::ScanTimed(db_->db(), rows::VersionPrefix(*type_id, from->number()), absl::InfinitePast(),
                                     absl::InfiniteFuture(), &keys);
      !s.ok()) {
    return done(s);
  }
  std::sort(keys.begin(), keys.end());  // oldest first

  struct Run {
    absl::Mutex mu;
    v1::MigrateTicketsResponse resp;
    size_t left = 0;
    Callback<v1::MigrateTicketsResponse> done;
  };
  auto run = std::make_shared<Run>();
  run->resp.set_remaining(static_cast<int32_t>(keys.size() > max ? keys.size() - max : 0));
  if (keys.size() > max) keys.resize(max);
  run->left = keys.size();
  run->done = std::move(done);
  if (keys.empty()) return run->done(run->resp);
  MigrateTicket cmd{*from, *to, {req.field_mapping().begin(), req.field_mapping().end()},
                    {req.state_mapping().begin(), req.state_mapping().end()},
                    FormValues(req.defaults().begin(), req.defaults().end())};
  auto finish_one = [run](const std::string& id, absl::Status failure) {
    const absl::Status s = ForClient(failure);  // a reason names no file: internal failures as incident ids
    bool last = false;
    {
      absl::MutexLock l(&run->mu);
      if (s.ok()) {
        run->resp.set_migrated(run->resp.migrated() + 1);
      } else {
        auto* f = run->resp.add_failures();
        f->set_ticket(absl::StrCat("tickets/", id));
        std::string reason(s.message());
        if (auto br = GetBadRequest(s)) {
          for (const auto& v : br->field_violations()) absl::StrAppend(&reason, "; ", v.field(), ": ", v.description());
        }
        f->set_reason(reason);
      }
      last = --run->left == 0;
    }
    if (last) {
      std::sort(run->resp.mutable_failures()->begin(), run->resp.mutable_failures()->end(),
                [](const auto& a, const auto& b) { return a.ticket() < b.ticket(); });
      run->done(run->resp);
    }
  };
  for (const auto& [at, id] : keys) {
    if (req.validate_only()) {
      auto s = projection::ReadStateRow<TicketState>(db_->db(), rows::Ticket(id));
      absl::Status st = s.ok() ? (s->has_value() ? Decide(&**s, c, cmd).status() : absl::NotFoundError("gone")) : s.status();
      finish_one(id, st);
      continue;
    }
    kernel::Command<TicketState, TicketEvent> one = Plain<TicketState, TicketEvent>(c, id, req.request_id(), cmd);
    // One request id for every ticket of the run: a ticket it already migrated is a repeat, the
    // others are no reuse.
    one.request_spans_aggregates = true;
    store_.Execute<TicketKind>(std::move(one), [finish_one, id](absl::StatusOr<kernel::Written<TicketState>> w) {
      finish_one(id, w.status());
    });
  }
}

}  // namespace crm::tickets
