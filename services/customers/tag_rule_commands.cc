// CustomerEngine's behaviour tag rules: admin settings, preview, and the scheduler's pass.
#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "libs/common/grpc_status.h"
#include "libs/common/money.h"
#include "libs/common/status_macros.h"
#include "libs/eventlog/envelope.h"
#include "libs/projection/aggregate_writer.h"
#include "services/customers/customer_engine.h"
#include "services/customers/customer_projections.h"
#include "services/customers/engine_util.h"

namespace crm::customers {

using namespace internal;  // NOLINT: the engine's own helpers
using projection::FromRocks;

namespace {

// The customers holding rule tags, by rule id (from the g/ index).
absl::StatusOr<std::map<std::string, std::set<std::string>>> TaggedByRule(rocksdb::DB* db) {
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

}  // namespace

absl::StatusOr<std::vector<std::map<std::string, int64_t>>> CustomerEngine::EvaluateTagRules(
    const std::vector<RuleWindow>& rules, absl::Time now, int64_t* scanned) {
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

absl::StatusOr<v1::ListTagRulesResponse> CustomerEngine::ListTagRules(const Caller&, const v1::ListTagRulesRequest&,
                                                                      absl::Time) {
  CRM_ASSIGN_OR_RETURN(CustomerSettings s, ReadSettings(db_->db()));
  v1::ListTagRulesResponse resp;
  *resp.mutable_rules() = s.tag_rules();
  return resp;
}

void CustomerEngine::SetTagRules(const Caller& caller, const v1::SetTagRulesRequest& req,
                                 Callback<v1::ListTagRulesResponse> done) {
  std::vector<v1::TagRule> rules(req.rules().begin(), req.rules().end());
  ExecuteSettings(
      caller, [caller, rules = std::move(rules)](const CustomerSettings& s) { return DecideSettings(s, caller, rules); },
      [done = std::move(done)](absl::StatusOr<CustomerSettings> s) mutable {
        if (!s.ok()) return done(s.status());
        v1::ListTagRulesResponse resp;
        *resp.mutable_rules() = s->tag_rules();
        done(std::move(resp));
      });
}

absl::StatusOr<v1::PreviewTagRuleResponse> CustomerEngine::PreviewTagRule(const Caller& caller,
                                                                          const v1::PreviewTagRuleRequest& req,
                                                                          absl::Time) {
  CRM_RETURN_IF_ERROR(ValidateTagRule(req.rule(), "rule"));
  if (req.days() < 0 || req.days() > 3650) return InvalidFieldError("days", "must be 0 to 3650");
  const int32_t max = req.max_results() == 0 ? 100 : req.max_results();
  if (max < 0 || max > 1000) return InvalidFieldError("max_results", "must be 0 to 1000");
  const absl::Time now = options_.clock->Now();
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
  CRM_ASSIGN_OR_RETURN(auto tagged, TaggedByRule(db_->db()));
  int32_t untag = 0;
  for (const auto& id : tagged[req.rule().id()]) untag += hit_ids.count(id) ? 0 : 1;
  resp.set_would_untag(untag);
  return resp;
}

absl::Status CustomerEngine::RunTagRules(absl::Time now, const CustomerSettings& settings, SchedulerRun* run) {
  CRM_ASSIGN_OR_RETURN(auto tagged, TaggedByRule(db_->db()));
  std::vector<std::pair<std::string, DecideFn>> tag, untag;
  auto job = [&](const v1::TagRule& rule, bool meets, int64_t measure) {
    return [rule, meets, measure](const CustomerState* cur) -> absl::StatusOr<Decided> {
      Decided d;
      CRM_ASSIGN_OR_RETURN(d.events, Decide(cur, kScheduler, ApplyRuleTag{rule, meets, measure}));
      return d;
    };
  };
  std::set<std::string> enabled;
  std::vector<RuleWindow> windows;
  for (const v1::TagRule& rule : settings.tag_rules()) {
    if (!rule.enabled()) continue;
    enabled.insert(rule.id());
    windows.push_back({rule, rule.window_days() > 0 ? now - absl::Hours(24) * rule.window_days() : absl::InfinitePast()});
  }
  int64_t scanned = 0;
  CRM_ASSIGN_OR_RETURN(auto measures, EvaluateTagRules(windows, now, &scanned));
  for (size_t i = 0; i < windows.size(); ++i) {
    const v1::TagRule& rule = windows[i].rule;
    const auto& measure = measures[i];
    const std::set<std::string>& has = tagged[rule.id()];
    for (const auto& [id, m] : measure) {
      if (m >= rule.threshold() && !has.count(id)) tag.emplace_back(id, job(rule, true, m));
    }
    for (const auto& id : has) {
      auto it = measure.find(id);
      const int64_t m = it == measure.end() ? 0 : it->second;
      if (m < rule.threshold()) untag.emplace_back(id, job(rule, false, m));
    }
  }
  // Rules switched off or removed take their tags back.
  for (const auto& [rule_id, ids] : tagged) {
    if (enabled.count(rule_id)) continue;
    v1::TagRule gone;
    gone.set_id(rule_id);
    for (const auto& id : ids) untag.emplace_back(id, job(gone, false, 0));
  }
  CRM_RETURN_IF_ERROR(RunBatch(std::move(tag), &run->tagged));
  return RunBatch(std::move(untag), &run->untagged);
}

}  // namespace crm::customers
