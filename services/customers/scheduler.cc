// CustomerEngine's scheduler (docs/architecture.md §3): the time-driven facts of customers (return
// to the pool, purge from the recycle bin), the behaviour tag rules' pass, and the process
// managers' pending steps, as of an injectable time.
#include <algorithm>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/common/completions.h"
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

int32_t ReturnDays(const v1::PoolPolicy& p, const std::string& team) {
  auto it = p.team_return_after_days().find(team);
  return it != p.team_return_after_days().end() ? it->second : p.return_after_days();
}

}  // namespace

absl::StatusOr<CustomerEngine::SchedulerRun> CustomerEngine::RunScheduler(absl::Time now) {
  SchedulerRun run;
  CRM_ASSIGN_OR_RETURN(PendingRun pending, CompletePendingSteps(absl::Now() + options_.pending_steps_budget));
  run.completed_steps = pending.completed;
  CRM_ASSIGN_OR_RETURN(CustomerSettings stored, ReadSettings(db_->db()));
  const v1::PoolPolicy policy = EffectiveSettings(stored).pool_policy();

  // Candidates: the idle index up to the shortest positive return period of any team.
  int32_t min_days = policy.return_after_days() > 0 ? policy.return_after_days() : 0;
  for (const auto& [team, d] : policy.team_return_after_days()) {
    if (d > 0 && (min_days == 0 || d < min_days)) min_days = d;
  }
  auto scan = [&](absl::string_view prefix, absl::Time until, std::vector<std::string>* ids) -> absl::Status {
    std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions()));
    const rocksdb::Slice p(prefix.data(), prefix.size());
    for (it->Seek(p); it->Valid() && it->key().starts_with(p); it->Next()) {
      absl::string_view k(it->key().data() + prefix.size(), it->key().size() - prefix.size());
      if (k.size() < 9 || rows::TimeFromKey(k.substr(0, 8)) > until) break;
      ids->emplace_back(k.substr(8));
    }
    return FromRocks(it->status(), "scan scheduler index");
  };
  std::vector<std::string> idle, expired;
  if (min_days > 0) CRM_RETURN_IF_ERROR(scan(rows::kIdlePrefix, now - absl::Hours(24) * min_days, &idle));
  CRM_RETURN_IF_ERROR(scan(rows::kPurgePrefix, now - kRecycleBinRetention, &expired));

  std::vector<std::pair<std::string, DecideFn>> returns, purges;
  for (const std::string& id : idle) {
    returns.emplace_back(id, [now, policy](const CustomerState* cur) -> absl::StatusOr<Decided> {
      Decided d;
      if (cur == nullptr) return d;
      const int32_t days = ReturnDays(policy, cur->profile().team_id());
      CRM_ASSIGN_OR_RETURN(d.events, Decide(cur, kScheduler, ReturnIdleToPool{now, days}));
      d.occurred_at = LastActivity(*cur) + absl::Hours(24) * days;  // the due time
      return d;
    });
  }
  for (const std::string& id : expired) {
    purges.emplace_back(id, [now](const CustomerState* cur) -> absl::StatusOr<Decided> {
      Decided d;
      if (cur == nullptr) return d;
      CRM_ASSIGN_OR_RETURN(d.events, Decide(cur, kScheduler, PurgeDeleted{now}));
      d.occurred_at = FromProto(cur->delete_time()) + kRecycleBinRetention;
      return d;
    });
  }
  CRM_RETURN_IF_ERROR(RunBatch(std::move(returns), &run.returned_to_pool));
  CRM_RETURN_IF_ERROR(RunBatch(std::move(purges), &run.purged));
  CRM_RETURN_IF_ERROR(RunTagRules(now, stored, &run));
  return run;
}

absl::Status CustomerEngine::RunBatch(std::vector<std::pair<std::string, DecideFn>> jobs, int64_t* written) {
  Completions batch(static_cast<int>(jobs.size()));
  for (auto& [id, decide] : jobs) {
    Execute(kScheduler, common::v1::ACTOR_SOURCE_SYSTEM, {.id = id}, std::move(decide),
            [done = batch.handle()](absl::StatusOr<Written> w) { done.Done(w.status(), w.ok() && !w->token.empty()); });
  }
  absl::Status status = batch.Wait(absl::Now() + options_.batch_timeout);
  *written += batch.written();
  return status;
}

absl::Status CustomerEngine::RunTagRules(absl::Time now, const CustomerSettings& settings, SchedulerRun* run) {
  CRM_ASSIGN_OR_RETURN(auto tagged, queries_.TaggedByRule());
  std::vector<std::pair<std::string, DecideFn>> tag, untag;
  auto job = [&](const v1::TagRule& rule, bool meets, int64_t measure) {
    return [rule, meets, measure](const CustomerState* cur) -> absl::StatusOr<Decided> {
      Decided d;
      CRM_ASSIGN_OR_RETURN(d.events, Decide(cur, kScheduler, ApplyRuleTag{rule, meets, measure}));
      return d;
    };
  };
  std::set<std::string> enabled;
  std::vector<CustomerQueries::RuleWindow> windows;
  for (const v1::TagRule& rule : settings.tag_rules()) {
    if (!rule.enabled()) continue;
    enabled.insert(rule.id());
    windows.push_back({rule, rule.window_days() > 0 ? now - absl::Hours(24) * rule.window_days() : absl::InfinitePast()});
  }
  int64_t scanned = 0;
  CRM_ASSIGN_OR_RETURN(auto measures, queries_.EvaluateTagRules(windows, now, &scanned));
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
