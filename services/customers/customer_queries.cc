// The customers service's query side: every read over its projections (docs/architecture.md §4).
#include "services/customers/customer_queries.h"

#include <algorithm>
#include <limits>
#include <map>
#include <memory>
#include <set>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "libs/common/grpc_status.h"
#include "libs/common/money.h"
#include "libs/common/status_macros.h"
#include "libs/eventlog/envelope.h"
#include "libs/projection/index_walk.h"
#include "libs/projection/rebuild.h"
#include "services/customers/customer_columns.h"
#include "services/customers/customer_list.h"
#include "services/customers/customer_projections.h"
#include "services/customers/engine_util.h"

namespace crm::customers {
namespace {

using common::v1::EventEnvelope;

constexpr int kExportChunk = 500;

}  // namespace

using namespace internal;  // NOLINT: the service's own helpers
using projection::FromRocks;

v1::Customer CustomerQueries::ToApi(const CustomerState& s) const {
  v1::Customer c;
  CopySameNamed(s.profile(), &c);
  CopySameNamed(s, &c);
  c.set_name(absl::StrCat("customers/", s.id()));
  c.set_etag(std::to_string(s.version()));
  if (!s.merged_into().empty()) c.set_merged_into(absl::StrCat("customers/", s.merged_into()));
  for (const auto& m : s.merges()) {
    c.add_merged_from(absl::StrCat("customers/", m.merged_id()));
    // The follow-ups of a merged customer show on the survivor.
    auto merged = ReadCustomer(db_->db(), rocksdb::ReadOptions(), m.merged_id());
    if (merged.ok() && merged->has_value()) c.set_follow_up_count(c.follow_up_count() + (*merged)->follow_up_count());
  }
  return c;
}

void CustomerQueries::AfterToken(const std::string& token, absl::string_view field,
                                absl::Time deadline, absl::AnyInvocable<void(absl::Status)> done) const {
  projection::AfterToken(*db_, token, field, deadline, std::move(done));
}

absl::Status CustomerQueries::WaitToken(const std::string& token, absl::string_view field,
                                       absl::Time deadline) const {
  return projection::WaitForToken(*db_, token, field, deadline);
}

absl::StatusOr<CustomerState> CustomerQueries::LoadVisible(const Caller& caller, const std::string& id,
                                                          absl::string_view what) const {
  CRM_ASSIGN_OR_RETURN(auto state, ReadCustomer(db_->db(), rocksdb::ReadOptions(), id));
  if (!state.has_value() || state->purged()) {
    return absl::NotFoundError(absl::StrCat(what, " not found"));
  }
  if (!CanSee(caller, *state)) {
    return absl::PermissionDeniedError("the customer belongs to another owner or team");
  }
  return *std::move(state);
}

absl::StatusOr<v1::Customer> CustomerQueries::Get(const Caller& caller,
                                                 const v1::GetCustomerRequest& req,
                                                 absl::Time deadline) const {
  CRM_ASSIGN_OR_RETURN(std::string id, ParseName(req.name(), "name"));
  if (req.as_of_version() < 0) return InvalidFieldError("as_of_version", "must not be negative");
  if (req.as_of_version() > 0 && req.has_as_of_time()) {
    return InvalidFieldError("as_of_version", "cannot be combined with as_of_time");
  }
  CRM_ASSIGN_OR_RETURN(const absl::Time until, OptionalClientTime(req.has_as_of_time(), req.as_of_time(),
                                                                  "as_of_time", absl::InfiniteFuture()));
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  CRM_ASSIGN_OR_RETURN(CustomerState state, LoadVisible(caller, id, req.name()));
  if (req.as_of_version() == 0 && !req.has_as_of_time()) return ToApi(state);

  // Time travel: fold the customer's own events up to the version or recording time.
  if (req.as_of_version() > state.version()) {
    return InvalidFieldError("as_of_version", absl::StrCat("is past the latest version ", state.version()));
  }
  CustomerState past;
  CRM_RETURN_IF_ERROR(projection::FoldHistory(db_->db(), id, until, req.as_of_version(),
                                              [&](const EventEnvelope& env) -> absl::Status {
                                                CRM_ASSIGN_OR_RETURN(CustomerEvent ev, UnpackCustomerEvent(env));
                                                past.set_id(id);
                                                Apply(past, ev, env.aggregate_version(), projection::OccurredAt(env),
                                                      env.actor().user_id());
                                                return absl::OkStatus();
                                              })
                          .status());
  if (past.version() == 0) {
    return absl::NotFoundError(absl::StrCat(req.name(), " did not exist at as_of_time"));
  }
  return ToApi(past);
}

absl::StatusOr<v1::ListCustomersResponse> CustomerQueries::List(const Caller& caller,
                                                               const v1::ListCustomersRequest& req,
                                                               absl::Time deadline) const {
  CRM_ASSIGN_OR_RETURN(int32_t page_size, PageSize(req.page_size(), "page_size"));
  CRM_ASSIGN_OR_RETURN(ListQuery query, ParseListQuery(req.filter(), req.order_by(), req.show_deleted()));
  const std::string fingerprint = absl::StrCat(req.filter(), "|", req.order_by(), "|", req.show_deleted());
  CRM_ASSIGN_OR_RETURN(std::string after, ParsePositionToken(req.page_token(), fingerprint));
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));

  // One snapshot for the whole page so concurrent writes cannot tear it.
  const rocksdb::Snapshot* snap = db_->db()->GetSnapshot();
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  auto release = absl::MakeCleanup([&] { db_->db()->ReleaseSnapshot(snap); });
  CRM_ASSIGN_OR_RETURN(absl::optional<int64_t> counted, CountCustomers(db_->db(), ro, caller, query));
  Page page(page_size, counted, after);
  v1::ListCustomersResponse resp;
  CRM_ASSIGN_OR_RETURN(
      WalkEnd end, WalkCustomers(db_->db(), ro, caller, query, after, page_size + 1, kListScanBudget,
                                 [&](CustomerState&& s, absl::string_view position) -> absl::StatusOr<bool> {
                                   if (page.Takes(position)) *resp.add_customers() = ToApi(s);
                                   return page.More();
                                 }));
  resp.set_next_page_token(page.Token(end, fingerprint));
  resp.set_total_size(page.Total(end));
  return resp;
}

absl::StatusOr<v1::ListCustomerEventsResponse> CustomerQueries::History(
    const Caller& caller, const v1::ListCustomerEventsRequest& req, absl::Time deadline) const {
  CRM_ASSIGN_OR_RETURN(std::string id, ParseName(req.parent(), "parent"));
  CRM_ASSIGN_OR_RETURN(int32_t page_size, PageSize(req.page_size(), "page_size"));
  CRM_ASSIGN_OR_RETURN(int64_t offset, ParsePageToken(req.page_token(), req.parent()));
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  CRM_ASSIGN_OR_RETURN(CustomerState state, LoadVisible(caller, id, req.parent()));
  v1::ListCustomerEventsResponse resp;
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions()));
  const std::string prefix = rows::HistoryPrefix(id);
  for (it->Seek(rows::History(id, offset + 1));
       it->Valid() && it->key().starts_with(prefix) && resp.events_size() < page_size; it->Next()) {
    CRM_ASSIGN_OR_RETURN(EventEnvelope env, eventlog::DecodeEnvelope(it->value().ToString()));
    CRM_ASSIGN_OR_RETURN(CustomerEvent ev, UnpackCustomerEvent(env));
    auto* out = resp.add_events();
    out->set_event_id(env.event_id());
    out->set_event_type(env.event_type());
    out->set_version(env.aggregate_version());
    *out->mutable_occurred_at() = env.occurred_at();
    *out->mutable_recorded_at() = env.recorded_at();
    *out->mutable_actor() = env.actor();
    out->set_correlation_id(env.correlation_id());
    for (auto& f : ChangedFields(ev)) out->add_changed_fields(f);
    out->set_hash_hex(eventlog::HexHash(env.hash()));
  }
  CRM_RETURN_IF_ERROR(FromRocks(it->status(), "read history"));
  const int64_t last = offset + resp.events_size();
  if (last < state.version()) resp.set_next_page_token(PageToken(last, req.parent()));
  return resp;
}

absl::StatusOr<v1::ListFollowUpsResponse> CustomerQueries::ListFollowUps(
    const Caller& caller, const v1::ListFollowUpsRequest& req, absl::Time deadline) const {
  CRM_ASSIGN_OR_RETURN(std::string id, ParseName(req.parent(), "parent"));
  CRM_ASSIGN_OR_RETURN(int32_t page_size, PageSize(req.page_size(), "page_size"));
  CRM_ASSIGN_OR_RETURN(int64_t offset, ParsePageToken(req.page_token(), req.parent()));
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  CRM_ASSIGN_OR_RETURN(CustomerState state, LoadVisible(caller, id, req.parent()));
  v1::ListFollowUpsResponse resp;
  // A survivor shows its merged customers' follow-ups too: walk each customer's time-ordered
  // rows backwards and merge them, newest first.
  std::vector<std::string> ids{id};
  for (const auto& m : state.merges()) ids.push_back(m.merged_id());
  std::vector<std::unique_ptr<rocksdb::Iterator>> its;
  std::vector<std::string> prefixes;
  for (const auto& cid : ids) {
    prefixes.push_back(rows::FollowUpPrefix(cid));
    its.emplace_back(db_->db()->NewIterator(rocksdb::ReadOptions()));
    its.back()->SeekForPrev(prefixes.back() + std::string(9, '\xff'));
  }
  auto valid = [&](size_t k) { return its[k]->Valid() && its[k]->key().starts_with(prefixes[k]); };
  int64_t i = 0;
  bool more = false;
  while (true) {
    int best = -1;
    for (size_t k = 0; k < its.size(); ++k) {
      if (!valid(k)) continue;
      // Compare the 8-byte time keys after each prefix.
      const rocksdb::Slice key = its[k]->key();
      const absl::string_view t(key.data() + prefixes[k].size(), std::min<size_t>(8, key.size() - prefixes[k].size()));
      if (best < 0) {
        best = static_cast<int>(k);
        continue;
      }
      const rocksdb::Slice bkey = its[best]->key();
      const absl::string_view bt(bkey.data() + prefixes[best].size(), std::min<size_t>(8, bkey.size() - prefixes[best].size()));
      if (t > bt) best = static_cast<int>(k);
    }
    if (best < 0) break;
    if (resp.follow_ups_size() >= page_size) {
      more = true;
      break;
    }
    if (i++ >= offset &&
        !resp.add_follow_ups()->ParseFromArray(its[best]->value().data(), static_cast<int>(its[best]->value().size()))) {
      return absl::DataLossError("undecodable follow-up");
    }
    its[best]->Prev();
  }
  for (auto& it : its) CRM_RETURN_IF_ERROR(FromRocks(it->status(), "read follow-ups"));
  if (more) resp.set_next_page_token(PageToken(offset + resp.follow_ups_size(), req.parent()));
  return resp;
}

absl::StatusOr<v1::PoolPolicy> CustomerQueries::GetPoolPolicy(const Caller&, const v1::GetPoolPolicyRequest& req,
                                                             absl::Time deadline) const {
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  CRM_ASSIGN_OR_RETURN(CustomerSettings s, ReadSettings(db_->db()));
  return EffectiveSettings(s).pool_policy();
}

absl::StatusOr<v1::ListChannelCostsResponse> CustomerQueries::ListChannelCosts(const Caller& caller,
                                                                              const v1::ListChannelCostsRequest&,
                                                                              absl::Time) const {
  CRM_ASSIGN_OR_RETURN(CustomerSettings s, ReadSettings(db_->db()));
  v1::ListChannelCostsResponse resp;
  *resp.mutable_costs() = s.channel_costs();
  return resp;
}

absl::StatusOr<v1::ListIndustriesResponse> CustomerQueries::ListIndustries(const Caller&,
                                                                          const v1::ListIndustriesRequest&,
                                                                          absl::Time) const {
  CRM_ASSIGN_OR_RETURN(CustomerSettings s, ReadSettings(db_->db()));
  v1::ListIndustriesResponse resp;
  *resp.mutable_industries() = EffectiveSettings(s).industries();
  return resp;
}

absl::StatusOr<CustomerSettings> CustomerQueries::Settings() const {
  CRM_ASSIGN_OR_RETURN(CustomerSettings stored, ReadSettings(db_->db()));
  return EffectiveSettings(stored);
}

v1::Lead CustomerQueries::LeadToApi(const LeadState& s) const {
  v1::Lead l;
  CopySameNamed(s.profile(), &l);
  CopySameNamed(s, &l);
  l.set_name(absl::StrCat("leads/", s.id()));
  l.set_in_pool(s.owner_id().empty() && (s.status() == v1::LEAD_STATUS_OPEN || s.status() == v1::LEAD_STATUS_QUALIFIED));
  if (!s.customer_id().empty()) l.set_customer(absl::StrCat("customers/", s.customer_id()));
  l.set_etag(std::to_string(s.version()));
  return l;
}

absl::StatusOr<v1::Lead> CustomerQueries::GetLead(const Caller& caller, const v1::GetLeadRequest& req,
                                                 absl::Time deadline) const {
  CRM_ASSIGN_OR_RETURN(std::string id, ParseName(req.name(), "name", "leads"));
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  CRM_ASSIGN_OR_RETURN(auto lead, ReadLead(db_->db(), id));
  if (!lead.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
  if (!CanSee(caller, *lead)) return absl::PermissionDeniedError("the lead belongs to another owner or team");
  return LeadToApi(*lead);
}

absl::StatusOr<v1::ListLeadsResponse> CustomerQueries::ListLeads(const Caller& caller,
                                                                const v1::ListLeadsRequest& req,
                                                                absl::Time deadline) const {
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

absl::StatusOr<v1::FindDuplicatesResponse> CustomerQueries::FindDuplicates(const Caller& caller,
                                                                          const v1::FindDuplicatesRequest& req,
                                                                          absl::Time deadline) const {
  int32_t max = req.max_results() == 0 ? 20 : req.max_results();
  if (max < 0 || max > 200) return InvalidFieldError("max_results", "must be between 0 and 200");
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  v1::FindDuplicatesResponse resp;
  std::string self;
  std::string name;
  if (!req.customer().empty()) {
    if (!req.display_name().empty() || !req.phone().empty() || !req.email().empty()) {
      return InvalidFieldError("customer", "give either customer or a probe (display_name, phone, email), not both");
    }
    CRM_ASSIGN_OR_RETURN(self, ParseName(req.customer(), "customer"));
    CRM_ASSIGN_OR_RETURN(CustomerState s, LoadVisible(caller, self, req.customer()));
    resp.set_normalized_phone(s.normalized_phone());
    resp.set_normalized_email(s.normalized_email());
    resp.set_normalized_company_name(CompanyNameKey(s));
  } else {
    if (req.display_name().empty() && req.phone().empty() && req.email().empty()) {
      return InvalidFieldError("display_name", "give customer or at least one of display_name, phone, email");
    }
    CRM_RETURN_IF_ERROR(CheckText(req.display_name(), "display_name", 200, false));
    if (!req.phone().empty()) {
      auto p = NormalizePhone(req.phone());
      if (!p.ok()) return InvalidFieldError("phone", p.status().message());
      resp.set_normalized_phone(*p);
    }
    if (!req.email().empty()) {
      auto e = NormalizeEmail(req.email());
      if (!e.ok()) return InvalidFieldError("email", e.status().message());
      resp.set_normalized_email(*e);
    }
    resp.set_normalized_company_name(NormalizeCompanyName(req.display_name()));
  }
  // Strongest evidence first: phone, email, then the company name.
  std::map<std::string, std::vector<std::string>> matched;  // id -> matched_on
  std::vector<std::string> order;
  const std::pair<std::string, const char*> keys[] = {
      {resp.normalized_phone().empty() ? "" : rows::PhonePrefix(resp.normalized_phone()), "phone"},
      {resp.normalized_email().empty() ? "" : rows::EmailPrefix(resp.normalized_email()), "email"},
      {resp.normalized_company_name().empty() ? "" : rows::CompanyNamePrefix(resp.normalized_company_name()),
       "company_name"}};
  for (const auto& [prefix, what] : keys) {
    if (prefix.empty()) continue;
    CRM_ASSIGN_OR_RETURN(std::vector<std::string> ids, ReadHolders(db_->db(), prefix));
    for (const auto& id : ids) {
      if (id == self) continue;
      auto& on = matched[id];
      if (on.empty()) order.push_back(id);
      on.push_back(what);
    }
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](const std::string& a, const std::string& b) { return matched[a].size() > matched[b].size(); });
  for (const auto& id : order) {
    if (resp.matches_size() >= max) break;
    CRM_ASSIGN_OR_RETURN(auto s, ReadCustomer(db_->db(), rocksdb::ReadOptions(), id));
    if (!s.has_value() || !IsLive(*s)) continue;
    v1::DuplicateMatch* m = resp.add_matches();
    for (const auto& on : matched[id]) m->add_matched_on(on);
    m->set_visible(CanSee(caller, *s));
    if (m->visible()) {
      *m->mutable_customer() = ToApi(*s);
    } else {  // enough to know whom to ask, nothing more
      v1::Customer* c = m->mutable_customer();
      c->set_name(absl::StrCat("customers/", id));
      c->set_customer_number(s->customer_number());
      c->set_display_name(s->profile().display_name());
      c->set_owner_id(s->profile().owner_id());
      c->set_team_id(s->profile().team_id());
      c->set_in_pool(s->in_pool());
    }
  }
  return resp;
}

absl::StatusOr<std::vector<std::map<std::string, int64_t>>> CustomerQueries::EvaluateTagRules(
    const std::vector<RuleWindow>& rules, absl::Time now, int64_t* scanned) const {
  std::vector<std::map<std::string, int64_t>> measure(rules.size());
  if (rules.empty()) return measure;  // no enabled rule: no scan
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions()));
  const rocksdb::Slice root(rows::kHistoryRoot);
  for (it->Seek(root); it->Valid() && it->key().starts_with(root); it->Next()) {
    ++*scanned;
    CRM_ASSIGN_OR_RETURN(common::v1::EventEnvelope env,
                         eventlog::DecodeEnvelope(absl::string_view(it->value().data(), it->value().size())));
    const absl::Time at = projection::OccurredAt(env);
    for (size_t i = 0; i < rules.size(); ++i) {
      if (env.event_type() != rules[i].rule.event_type() || at < rules[i].from || at > now) continue;
      absl::optional<int64_t> c = RuleContribution(rules[i].rule, env.payload(), env.event_type());
      if (c.has_value()) {
        int64_t& m = measure[i][env.aggregate_id()];
        m = money::SaturatingAdd(m, *c);
      }
    }
  }
  CRM_RETURN_IF_ERROR(FromRocks(it->status(), "read history"));
  // A merged customer's events count for its survivor.
  std::map<std::string, std::string> survivor;  // id -> whom its events count for
  std::vector<std::map<std::string, int64_t>> out(rules.size());
  for (size_t i = 0; i < rules.size(); ++i) {
    for (const auto& [id, m] : measure[i]) {
      auto known = survivor.find(id);
      if (known == survivor.end()) {
        CRM_ASSIGN_OR_RETURN(auto s, ReadCustomer(db_->db(), rocksdb::ReadOptions(), id));
        known = survivor.emplace(id, !s.has_value() ? "" : s->merged_into().empty() ? id : s->merged_into()).first;
      }
      if (!known->second.empty()) {
        int64_t& total = out[i][known->second];
        total = money::SaturatingAdd(total, m);
      }
    }
  }
  return out;
}

absl::StatusOr<v1::ListTagRulesResponse> CustomerQueries::ListTagRules(const Caller&, const v1::ListTagRulesRequest&,
                                                                      absl::Time) const {
  CRM_ASSIGN_OR_RETURN(CustomerSettings s, ReadSettings(db_->db()));
  v1::ListTagRulesResponse resp;
  *resp.mutable_rules() = s.tag_rules();
  return resp;
}

absl::StatusOr<v1::PreviewTagRuleResponse> CustomerQueries::PreviewTagRule(const Caller& caller,
                                                                          const v1::PreviewTagRuleRequest& req,
                                                                          absl::Time) const {
  CRM_RETURN_IF_ERROR(ValidateTagRule(req.rule(), "rule"));
  if (req.days() < 0 || req.days() > 3650) return InvalidFieldError("days", "must be 0 to 3650");
  const int32_t max = req.max_results() == 0 ? 100 : req.max_results();
  if (max < 0 || max > 1000) return InvalidFieldError("max_results", "must be 0 to 1000");
  const absl::Time now = clock_->Now();
  absl::Time from = absl::InfinitePast();
  if (req.days() > 0) from = now - absl::Hours(24) * req.days();
  if (req.rule().window_days() > 0) from = std::max(from, now - absl::Hours(24) * req.rule().window_days());
  v1::PreviewTagRuleResponse resp;
  int64_t scanned = 0;
  CRM_ASSIGN_OR_RETURN(auto measures, EvaluateTagRules({{req.rule(), from}}, now, &scanned));
  const auto& measure = measures.front();
  resp.set_events_scanned(scanned);
  std::vector<std::pair<int64_t, CustomerState>> hits;
  std::set<std::string> hit_ids;
  for (const auto& [id, m] : measure) {
    if (m < req.rule().threshold()) continue;
    CRM_ASSIGN_OR_RETURN(auto s, ReadCustomer(db_->db(), rocksdb::ReadOptions(), id));
    if (!s.has_value() || !IsLive(*s)) continue;
    hit_ids.insert(id);
    hits.emplace_back(m, *std::move(s));
  }
  std::sort(hits.begin(), hits.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second.id() < b.second.id();
  });
  resp.set_total_hits(static_cast<int32_t>(hits.size()));
  for (const auto& [m, s] : hits) {
    if (resp.hits_size() >= max) break;
    v1::TagRuleHit* h = resp.add_hits();
    h->set_customer(absl::StrCat("customers/", s.id()));
    h->set_display_name(s.profile().display_name());
    h->set_owner_id(s.profile().owner_id());
    h->set_measure(m);
    h->set_already_tagged(HasRuleTag(s, req.rule().id()));
  }
  CRM_ASSIGN_OR_RETURN(auto tagged, TaggedByRule());
  int32_t untag = 0;
  for (const auto& id : tagged[req.rule().id()]) untag += hit_ids.count(id) ? 0 : 1;
  resp.set_would_untag(untag);
  return resp;
}

absl::Status CustomerQueries::Export(const Caller& caller, const v1::ExportCustomersRequest& req,
                                    absl::Time deadline, absl::FunctionRef<bool(v1::ExportCustomersResponse)> emit) const {
  std::vector<const ColumnSpec*> columns;
  for (int i = 0; i < req.columns_size(); ++i) {
    const ColumnSpec* spec = FindColumn(req.columns(i));
    if (spec == nullptr) {
      return InvalidFieldError(absl::StrCat("columns[", i, "]"), absl::StrCat("'", req.columns(i), "' is not a column"));
    }
    columns.push_back(spec);
  }
  if (columns.empty()) {
    for (const auto& c : CustomerColumns()) columns.push_back(&c);
  }
  CRM_ASSIGN_OR_RETURN(ListQuery query, ParseListQuery(req.filter(), req.order_by(), req.show_deleted()));
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  CRM_ASSIGN_OR_RETURN(CustomerSettings settings, Settings());
  const rocksdb::Snapshot* snap = db_->db()->GetSnapshot();
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  auto release = absl::MakeCleanup([&] { db_->db()->ReleaseSnapshot(snap); });

  v1::ExportCustomersResponse chunk;
  for (const ColumnSpec* c : columns) chunk.add_columns(req.field_names() ? c->field : c->label);
  int64_t rows = 0;
  CRM_RETURN_IF_ERROR(WalkCustomers(db_->db(), ro, caller, query, "", std::numeric_limits<int64_t>::max(),
                                    std::numeric_limits<int64_t>::max(),
                                    [&](CustomerState&& s, absl::string_view) -> absl::StatusOr<bool> {
                                      const v1::Customer c = ToApi(s);
                                      v1::ExportRow* row = chunk.add_rows();
                                      for (const ColumnSpec* col : columns) {
                                        row->add_cells(FormatCell(col->field, c, settings, zone_));
                                      }
                                      ++rows;
                                      if (chunk.rows_size() >= kExportChunk) {
                                        if (!emit(std::move(chunk))) return absl::CancelledError("the client went away");
                                        chunk.Clear();
                                      }
                                      return true;
                                    })
                          .status());
  chunk.set_total_rows(rows);
  if (!emit(std::move(chunk))) return absl::CancelledError("the client went away");
  return absl::OkStatus();
}

// The customers holding rule tags, by rule id (from the g/ index).
absl::StatusOr<std::map<std::string, std::set<std::string>>> CustomerQueries::TaggedByRule() const {
  rocksdb::DB* db = db_->db();
  std::map<std::string, std::set<std::string>> out;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek("g/"); it->Valid() && it->key().starts_with("g/"); it->Next()) {
    absl::string_view k(it->key().data() + 2, it->key().size() - 2);
    const size_t slash = k.rfind('/');
    if (slash == absl::string_view::npos) continue;
    out[std::string(k.substr(0, slash))].insert(std::string(k.substr(slash + 1)));
  }
  CRM_RETURN_IF_ERROR(FromRocks(it->status(), "read rule tag index"));
  return out;
}

}  // namespace crm::customers
