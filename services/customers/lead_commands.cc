// CustomerEngine's lead (线索) commands and reads; the customer side is customer_engine.cc.
#include <algorithm>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "libs/common/grpc_status.h"
#include "libs/common/money.h"
#include "libs/common/ids.h"
#include "libs/common/status_macros.h"
#include "libs/projection/index_walk.h"
#include "services/customers/customer_engine.h"
#include "services/customers/customer_list.h"
#include "services/customers/customer_projections.h"
#include "services/customers/engine_util.h"

namespace crm::customers {

using namespace internal;  // NOLINT: the engine's own helpers
using projection::FromRocks;

absl::StatusOr<CustomerSettings> CustomerEngine::Settings() {
  CRM_ASSIGN_OR_RETURN(CustomerSettings stored, ReadSettings(db_->db()));
  return EffectiveSettings(stored);
}

v1::Lead CustomerEngine::LeadToApi(const LeadState& s) const {
  v1::Lead l;
  CopySameNamed(s.profile(), &l);
  CopySameNamed(s, &l);
  l.set_name(absl::StrCat("leads/", s.id()));
  l.set_in_pool(s.owner_id().empty() && (s.status() == v1::LEAD_STATUS_OPEN || s.status() == v1::LEAD_STATUS_QUALIFIED));
  if (!s.customer_id().empty()) l.set_customer(absl::StrCat("customers/", s.customer_id()));
  l.set_etag(std::to_string(s.version()));
  return l;
}

void CustomerEngine::AppendLead(const Caller& caller, const LeadState* lead, const std::string& id,
                                const std::string& correlation, std::vector<LeadEvent> events,
                                Callback<LeadWritten> done) {
  projection::AggregateHead head{topics::customers::kLead.type, id, lead ? lead->version() : 0,
                                 lead ? lead->last_hash() : ""};
  const auto ctx = projection::WriteContext::For(caller, common::v1::ACTOR_SOURCE_API, correlation);
  std::vector<projection::NewEvent> out = projection::NewEvent::All(events);
  writer_->Append(head, ctx, std::move(out), [this, id, done = std::move(done)](absl::StatusOr<std::string> token) mutable {
    if (!token.ok()) return done(token.status());
    auto lead = ReadLead(db_->db(), id);
    if (!lead.ok()) return done(lead.status());
    if (!lead->has_value()) return done(absl::InternalError("lead vanished after its write"));
    done(LeadWritten{**std::move(lead), *std::move(token)});
  });
}

void CustomerEngine::ExecuteLead(const Caller& caller, const std::string& id, const std::string& request_id,
                                 LeadDecideFn decide, LeadDone done) {
  writer_->Serialize(id, [this, caller, id, request_id, decide = std::move(decide), done = std::move(done)]() mutable {
    auto fail = [&](absl::Status s) {
      writer_->Release(id);
      done(std::move(s));
    };
    auto lead = ReadLead(db_->db(), id);
    if (!lead.ok()) return fail(lead.status());
    const LeadState* cur = lead->has_value() ? &**lead : nullptr;
    if (!request_id.empty()) {
      auto seen = SeenRequest(request_id, id);
      if (!seen.ok()) return fail(seen.status());
      if (*seen && cur != nullptr && CanSee(caller, *cur)) {
        writer_->Release(id);
        return done(LeadToApi(*cur));
      }
    }
    auto events = decide(cur);
    if (!events.ok()) return fail(events.status());
    if (events->empty()) {
      if (cur == nullptr) return fail(absl::NotFoundError("lead not found"));
      writer_->Release(id);
      return done(LeadToApi(*cur));
    }
    AppendLead(caller, cur, id, request_id, *std::move(events),
               [this, id, done = std::move(done)](absl::StatusOr<LeadWritten> w) mutable {
                 writer_->Release(id);
                 if (!w.ok()) return done(w.status());
                 v1::Lead l = LeadToApi(w->lead);
                 l.set_consistency_token(w->token);
                 done(std::move(l));
               });
  });
}

namespace {

template <typename Command>
auto LeadDecider(const Caller& caller, Command cmd) {
  return [caller, cmd = std::move(cmd)](const LeadState* cur) { return Decide(cur, caller, cmd); };
}

}  // namespace

void CustomerEngine::CreateLead(const Caller& caller, const v1::CreateLeadRequest& req, LeadDone done) {
  if (absl::Status s = CheckRequestId(req.request_id()); !s.ok()) return done(s);
  if (!req.has_lead()) return done(InvalidFieldError("lead", "is required"));
  if (!req.lead().name().empty()) return done(InvalidFieldError("lead.name", "is assigned by the service"));
  if (!req.request_id().empty()) {
    auto ids = ReadHolders(db_->db(), rows::RequestPrefix(req.request_id()));
    if (!ids.ok()) return done(ids.status());
    for (const auto& id : *ids) {
      auto lead = ReadLead(db_->db(), id);
      if (!lead.ok()) return done(lead.status());
      if (lead->has_value() && CanSee(caller, **lead)) return done(LeadToApi(**lead));
    }
    if (!ids->empty()) return done(InvalidFieldError("request_id", "was already used for another resource"));
  }
  auto settings = Settings();
  if (!settings.ok()) return done(settings.status());
  customers::CreateLead cmd;
  CopySameNamed(req.lead(), &cmd.profile);
  cmd.owner_id = req.lead().owner_id();
  cmd.team_id = req.lead().team_id();
  cmd.settings = *std::move(settings);
  ExecuteLead(caller, NewUuidV7(options_.clock->Now()), req.request_id(), LeadDecider(caller, std::move(cmd)),
              std::move(done));
}

void CustomerEngine::UpdateLead(const Caller& caller, const v1::UpdateLeadRequest& req, LeadDone done) {
  auto t = ParseTarget(req.request_id(), req.lead().name(), "lead.name", req.lead().etag(), "lead.etag", "leads");
  if (!t.ok()) return done(t.status());
  auto settings = Settings();
  if (!settings.ok()) return done(settings.status());
  customers::UpdateLead cmd;
  CopySameNamed(req.lead(), &cmd.profile);
  for (const auto& p : req.update_mask().paths()) cmd.paths.push_back(p);
  if (cmd.paths.empty()) cmd.paths = SetFields(cmd.profile, LeadFields());
  cmd.expected_version = t->etag;
  cmd.settings = *std::move(settings);
  ExecuteLead(caller, t->id, req.request_id(), LeadDecider(caller, std::move(cmd)), std::move(done));
}

void CustomerEngine::AssignLead(const Caller& caller, const v1::AssignLeadRequest& req, LeadDone done) {
  auto t = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "leads");
  if (!t.ok()) return done(t.status());
  ExecuteLead(caller, t->id, req.request_id(),
              LeadDecider(caller, customers::AssignLead{req.owner_id(), req.team_id(), t->etag}), std::move(done));
}

void CustomerEngine::ClaimLead(const Caller& caller, const v1::ClaimLeadRequest& req, LeadDone done) {
  auto t = ParseTarget(req.request_id(), req.name(), "name", "", "etag", "leads");
  if (!t.ok()) return done(t.status());
  ExecuteLead(caller, t->id, req.request_id(), LeadDecider(caller, customers::ClaimLead{}), std::move(done));
}

void CustomerEngine::ReleaseLead(const Caller& caller, const v1::ReleaseLeadRequest& req, LeadDone done) {
  auto t = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "leads");
  if (!t.ok()) return done(t.status());
  ExecuteLead(caller, t->id, req.request_id(), LeadDecider(caller, customers::ReleaseLead{req.reason(), t->etag}),
              std::move(done));
}

void CustomerEngine::QualifyLead(const Caller& caller, const v1::QualifyLeadRequest& req, LeadDone done) {
  auto t = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "leads");
  if (!t.ok()) return done(t.status());
  ExecuteLead(caller, t->id, req.request_id(), LeadDecider(caller, customers::QualifyLead{t->etag}), std::move(done));
}

void CustomerEngine::DisqualifyLead(const Caller& caller, const v1::DisqualifyLeadRequest& req, LeadDone done) {
  auto t = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "leads");
  if (!t.ok()) return done(t.status());
  ExecuteLead(caller, t->id, req.request_id(),
              LeadDecider(caller, customers::DisqualifyLead{req.reason(), t->etag}), std::move(done));
}

void CustomerEngine::ConvertLead(const Caller& caller, const v1::ConvertLeadRequest& req,
                                 Callback<v1::ConvertLeadResponse> done) {
  auto t = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "leads");
  if (!t.ok()) return done(t.status());
  std::string target;
  if (!req.customer().empty()) {
    auto id = ParseName(req.customer(), "customer");
    if (!id.ok()) return done(id.status());
    target = *id;
  }
  v1::LeadConverted converted;
  converted.set_opportunity_requested(req.create_opportunity());
  if (req.create_opportunity()) {
    if (auto s = CheckText(req.opportunity_name(), "opportunity_name", 200, true); !s.ok()) return done(s);
    if (req.expected_amount_minor() < 0) return done(InvalidFieldError("expected_amount_minor", "must not be negative"));
    // Before the customer is created: the conversion must not fail halfway.
    if (auto s = money::CheckAmount(req.expected_amount_minor(), "expected_amount_minor"); !s.ok()) return done(s);
    const std::string currency = req.currency().empty() ? "CNY" : req.currency();
    if (currency.size() != 3 || !std::all_of(currency.begin(), currency.end(), absl::ascii_isupper)) {
      return done(InvalidFieldError("currency", "must be an ISO 4217 code such as CNY"));
    }
    converted.set_opportunity_name(req.opportunity_name());
    converted.set_expected_amount_minor(req.expected_amount_minor());
    converted.set_currency(currency);
  }
  const std::string lead_id = t->id;
  const std::string rid = req.request_id();
  const int64_t etag = t->etag;
  writer_->Serialize(lead_id, [this, caller, lead_id, rid, etag, target, converted,
                               done = std::move(done)]() mutable {
    auto fail = [&](absl::Status s) {
      writer_->Release(lead_id);
      done(std::move(s));
    };
    auto loaded = ReadLead(db_->db(), lead_id);
    if (!loaded.ok()) return fail(loaded.status());
    if (!loaded->has_value()) return fail(absl::NotFoundError("lead not found"));
    const LeadState lead = **loaded;
    auto reply = [this, caller](const LeadState& l, const std::string& token, bool created) -> absl::StatusOr<v1::ConvertLeadResponse> {
      v1::ConvertLeadResponse resp;
      *resp.mutable_lead() = LeadToApi(l);
      resp.mutable_lead()->set_consistency_token(token);
      resp.set_customer_created(created);
      CRM_ASSIGN_OR_RETURN(auto c, ReadCustomer(db_->db(), rocksdb::ReadOptions(), l.customer_id()));
      if (c.has_value() && CanSee(caller, *c)) *resp.mutable_customer() = ToApi(*c);
      return resp;
    };
    if (!rid.empty()) {
      auto seen = SeenRequest(rid, lead_id);
      if (!seen.ok()) return fail(seen.status());
      if (*seen && lead.status() == v1::LEAD_STATUS_CONVERTED && CanSee(caller, lead)) {
        auto r = reply(lead, "", false);
        writer_->Release(lead_id);
        return done(std::move(r));
      }
    }
    if (absl::Status s = CheckConvertible(&lead, caller, etag); !s.ok()) return fail(s);

    // The customer: named, else the live holder of the lead's phone or email, else a new one
    // whose id derives from the lead (so a retry after a crash finds it).
    std::string cid = target;
    for (const std::string& prefix : {lead.normalized_phone().empty() ? "" : rows::PhonePrefix(lead.normalized_phone()),
                                      lead.normalized_email().empty() ? "" : rows::EmailPrefix(lead.normalized_email())}) {
      if (!cid.empty() || prefix.empty()) continue;
      auto holders = ReadHolders(db_->db(), prefix);
      if (!holders.ok()) return fail(holders.status());
      if (!holders->empty()) cid = holders->front();
    }
    if (cid.empty()) cid = DerivedId(lead_id, "customer");
    auto settings = Settings();
    if (!settings.ok()) return fail(settings.status());
    auto created = std::make_shared<bool>(false);
    const bool named = !target.empty();
    DecideFn decide = [this, caller, lead, lead_id, named, created,
                       settings = *settings](const CustomerState* cur) -> absl::StatusOr<Decided> {
      Decided d;
      CustomerState next = cur ? *cur : CustomerState();
      auto add = [&](absl::StatusOr<std::vector<CustomerEvent>> events) -> absl::Status {
        CRM_RETURN_IF_ERROR(events.status());
        for (auto& e : *events) {
          Apply(next, e, next.version() + 1, options_.clock->Now(), caller.user_id);
          d.events.push_back(std::move(e));
        }
        return absl::OkStatus();
      };
      if (cur == nullptr || cur->purged()) {
        if (named) return absl::NotFoundError("customer not found");
        CRM_ASSIGN_OR_RETURN(std::string number, AllocateNumber());
        auto events = Decide(nullptr, caller, CreateCustomer{CustomerProfileFromLead(lead), number, settings});
        CRM_RETURN_IF_ERROR(events.status());
        std::get<v1::CustomerCreated>(events->front()).set_lead_id(lead_id);
        CRM_RETURN_IF_ERROR(add(std::move(events)));
        *created = true;
      } else {
        if (cur->deleted()) {
          return absl::FailedPreconditionError(absl::StrCat("customers/", cur->id(), " is in the recycle bin"));
        }
        if (!CanEdit(caller, *cur)) {
          return WithErrorInfo(absl::FailedPreconditionError(absl::StrCat(
                                   "the lead matches customers/", cur->id(),
                                   ", which another owner holds; a manager or admin can convert into it")),
                               "DUPLICATE_CUSTOMER", {{"existing", absl::StrCat("customers/", cur->id())}});
        }
        *created = cur->lead_id() == lead_id;  // created by an earlier, interrupted conversion
        UpdateCustomer fill = FillFromLead(*cur, lead, settings);
        if (!fill.paths.empty()) CRM_RETURN_IF_ERROR(add(Decide(cur, caller, fill)));
      }
      if (auto contact = ContactFromLead(&next, lead)) {
        contact->set_id(DerivedId(lead_id, "contact"));
        CRM_RETURN_IF_ERROR(add(Decide(&next, caller, customers::AddContact{*contact})));
      }
      return d;
    };
    const std::string correlation = rid.empty() ? NewUuidV7(options_.clock->Now()) : rid;
    Execute(caller, common::v1::ACTOR_SOURCE_API, cid, "", std::move(decide),
            [this, caller, lead, lead_id, cid, etag, correlation, converted, created, reply,
             done = std::move(done)](absl::StatusOr<Written> w) mutable {
              if (!w.ok()) {
                writer_->Release(lead_id);
                return done(w.status());
              }
              converted.set_customer_id(cid);
              converted.set_customer_created(*created);
              auto events = Decide(&lead, caller, customers::ConvertLead{converted, etag});
              if (!events.ok()) {
                writer_->Release(lead_id);
                return done(events.status());
              }
              AppendLead(caller, &lead, lead_id, correlation, *std::move(events),
                         [this, lead_id, created, reply, done = std::move(done)](absl::StatusOr<LeadWritten> lw) mutable {
                           absl::StatusOr<v1::ConvertLeadResponse> r =
                               lw.ok() ? reply(lw->lead, lw->token, *created)
                                       : absl::StatusOr<v1::ConvertLeadResponse>(lw.status());
                           writer_->Release(lead_id);
                           done(std::move(r));
                         });
            },
            correlation);
  });
}

absl::StatusOr<v1::Lead> CustomerEngine::GetLead(const Caller& caller, const v1::GetLeadRequest& req,
                                                 absl::Time deadline) {
  CRM_ASSIGN_OR_RETURN(std::string id, ParseName(req.name(), "name", "leads"));
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  CRM_ASSIGN_OR_RETURN(auto lead, ReadLead(db_->db(), id));
  if (!lead.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
  if (!CanSee(caller, *lead)) return absl::PermissionDeniedError("the lead belongs to another owner or team");
  return LeadToApi(*lead);
}

absl::StatusOr<v1::ListLeadsResponse> CustomerEngine::ListLeads(const Caller& caller,
                                                                const v1::ListLeadsRequest& req,
                                                                absl::Time deadline) {
  CRM_ASSIGN_OR_RETURN(int32_t page_size, PageSize(req.page_size(), "page_size"));
  CRM_ASSIGN_OR_RETURN(std::string after, ParsePositionToken(req.page_token(), req.filter()));
  // Terms: status, owner_id, team_id, source_channel (=) and in_pool (true/false).
  CRM_ASSIGN_OR_RETURN(std::vector<FilterTerm> parsed,
                       ParseFilterTerms(req.filter(), {"status", "owner_id", "team_id", "source_channel", "in_pool"}));
  std::map<std::string, std::string> terms;
  for (FilterTerm& t : parsed) terms[t.field] = std::move(t.value);
  int status = -1, channel = -1;
  if (terms.contains("status")) {
    v1::LeadStatus st;
    if (!v1::LeadStatus_Parse(terms["status"], &st)) return InvalidFieldError("filter", "status is not a LeadStatus");
    status = st;
  }
  if (terms.contains("source_channel")) {
    v1::SourceChannel ch;
    if (!v1::SourceChannel_Parse(terms["source_channel"], &ch)) {
      return InvalidFieldError("filter", "source_channel is not a SourceChannel");
    }
    channel = ch;
  }
  if (terms.contains("in_pool") && terms["in_pool"] != "true" && terms["in_pool"] != "false") {
    return InvalidFieldError("filter", "in_pool must be true or false");
  }
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  const std::string* owner = terms.contains("owner_id") ? &terms["owner_id"] : nullptr;
  const std::string* team = terms.contains("team_id") ? &terms["team_id"] : nullptr;
  const int in_pool = terms.contains("in_pool") ? terms["in_pool"] == "true" : -1;
  auto admit = [&](const ListEntry& e) {
    return SeesRecord(caller, e.owner, e.team, e.owner.empty()) && (owner == nullptr || e.owner == *owner) &&
           (team == nullptr || e.team == *team) && (in_pool < 0 || e.in_pool == (in_pool == 1));
  };

  const rocksdb::Snapshot* snap = db_->db()->GetSnapshot();
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  auto release = absl::MakeCleanup([&] { db_->db()->ReleaseSnapshot(snap); });
  absl::optional<int64_t> counted;
  if (status < 0 && channel < 0) {
    CRM_ASSIGN_OR_RETURN(ListCounts counts, SumListCounts(db_->db(), ro, kLeadCountPrefix, admit));
    counted = counts.admitted;
  }
  // Newest first: the l/<id> rows backwards from the token's id.
  Page page(page_size, counted, after);
  v1::ListLeadsResponse resp;
  CRM_ASSIGN_OR_RETURN(
      WalkEnd end,
      projection::WalkIndexes(db_->db(), ro, {.prefixes = {rows::kLeadPrefix}, .descending = true, .after = after},
                              [&](absl::string_view id, absl::string_view value) -> absl::StatusOr<bool> {
                                LeadState s;
                                if (!s.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
                                  return absl::DataLossError("undecodable lead state");
                                }
                                if (!admit(LeadEntry(s)) || (status >= 0 && s.status() != status) ||
                                    (channel >= 0 && s.profile().source_channel() != channel)) {
                                  return true;
                                }
                                if (page.Takes(id)) *resp.add_leads() = LeadToApi(s);
                                return page.More();
                              }));
  resp.set_next_page_token(page.Token(end, req.filter()));
  resp.set_total_size(page.Total(end));
  return resp;
}

}  // namespace crm::customers
