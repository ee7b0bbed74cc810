// The process managers of the customers service's two-aggregate commands: a merge, an unmerge
// and a conversion that created its customer are two appends (docs/architecture.md §3). The
// first one's projection leaves a pm/ row (customer_projections.h, PendingStep) and the second
// one's takes it away; what is left after a crash between them is written here, through the
// kernel, before the engine takes commands. Contract: CustomerEngine::CompletePendingSteps.
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/common/status_macros.h"
#include "libs/projection/pending_rows.h"
#include "libs/server/logging.h"
#include "services/customers/customer_engine.h"
#include "services/customers/customer_projections.h"
#include "services/customers/engine_util.h"

namespace crm::customers {

using namespace internal;  // NOLINT: the engine's own helpers

namespace {

// The first step's actor writes the second step. The step is not authorised again: the command
// was, when its first step was decided (so the decisions below run as kScheduler).
Caller ActorOf(const common::v1::EventEnvelope& first) {
  return Caller{first.actor().user_id(), first.actor().role(), first.actor().team_id()};
}

bool Records(const absl::optional<CustomerState>& survivor, const std::string& merged) {
  return survivor.has_value() && !survivor->purged() &&
         std::any_of(survivor->merges().begin(), survivor->merges().end(),
                     [&](const v1::MergeRecord& r) { return r.merged_id() == merged; });
}

}  // namespace

absl::StatusOr<CustomerEngine::PendingRun> CustomerEngine::CompletePendingSteps(absl::Time deadline) {
  absl::MutexLock pass(&pending_mu_);
  std::vector<std::pair<std::string, PendingStep>> steps;
  // Round robin from where the last pass stopped: rows left pending (superseded) never keep
  // the ones after them waiting.
  CRM_ASSIGN_OR_RETURN(
      pending_cursor_,
      projection::ScanPendingRows(db_->db(), rows::kPendingSteps, pending_cursor_,
                                  static_cast<size_t>(std::max(options_.pending_steps_per_pass, 1)),
                                  [&](absl::string_view suffix, absl::string_view value) -> absl::Status {
                                    CRM_ASSIGN_OR_RETURN(PendingStep p, ParsePendingStep(value));
                                    if (p.count > 0) steps.emplace_back(absl::StrCat(rows::kPendingSteps, suffix), std::move(p));
                                    return absl::OkStatus();
                                  }));
  if (steps.empty()) return PendingRun();

  // Shared with the steps' callbacks, which may outlive this call (past `deadline`).
  struct Tally {
    absl::Mutex mu;
    int64_t left ABSL_GUARDED_BY(mu) = 0;
    PendingRun run ABSL_GUARDED_BY(mu);
  };
  auto tally = std::make_shared<Tally>();
  {
    absl::MutexLock l(&tally->mu);
    tally->left = static_cast<int64_t>(steps.size());
  }
  for (auto& [key, step] : steps) {
    CompleteStep(key, std::move(step), common::v1::ACTOR_SOURCE_SYSTEM, [tally, key = key](absl::StatusOr<bool> wrote) {
      absl::MutexLock l(&tally->mu);
      --tally->left;
      if (!wrote.ok()) {
        ++tally->run.failed;
        if (tally->run.error.ok()) tally->run.error = wrote.status();
        server::LogWarn(absl::StrCat("customers: pending step ", key, " not completed: ", wrote.status().ToString()));
      } else if (*wrote) {
        ++tally->run.completed;
      } else {
        ++tally->run.unchanged;
      }
    });
  }
  absl::MutexLock l(&tally->mu);
  tally->mu.AwaitWithDeadline(absl::Condition(
                                  +[](int64_t* left) { return *left == 0; }, &tally->left),
                              deadline);
  PendingRun run = tally->run;
  run.unfinished = tally->left;
  if (run.unfinished > 0) {
    server::LogWarn(absl::StrCat("customers: ", run.unfinished, " pending steps still in flight at the deadline"));
  }
  return run;
}

void CustomerEngine::CompleteStep(const std::string& key, PendingStep step, common::v1::ActorSource source,
                                  Callback<bool> done) {
  const std::vector<std::string> parts =
      absl::StrSplit(absl::string_view(key).substr(std::strlen(rows::kPendingSteps)), '/');
  if (parts.size() == 2 && parts[0] == "convert") {
    const std::string lead = parts[1];
    return store_->Acquire({lead}, [this, lead, step = std::move(step), source,
                                    done = std::move(done)](absl::StatusOr<kernel::Lease> lease) mutable {
      if (!lease.ok()) return done(lease.status());
      CompleteConversion(*std::move(lease), lead, step, source,
                         [done = std::move(done)](absl::StatusOr<kernel::Written<LeadState>> w) mutable {
                           if (!w.ok()) return done(w.status());
                           done(!w->token.empty());
                         });
    });
  }
  if (parts.size() != 3 || (parts[0] != "merge" && parts[0] != "unmerge")) {
    return done(absl::DataLossError(absl::StrCat("unknown pending step ", key)));
  }
  const bool merging = parts[0] == "merge";
  const std::string survivor = parts[1], merged = parts[2];
  DecideFn decide;
  if (merging) {
    // The merged customer's CustomerMergedInto, unless the survivor no longer holds the merge
    // (unmerged since, or purged) or the merged customer is gone or merged (here or elsewhere).
    decide = [this, survivor, merged](const CustomerState* cur) -> absl::StatusOr<Decided> {
      Decided d;
      CRM_ASSIGN_OR_RETURN(auto s, ReadCustomer(db_->db(), rocksdb::ReadOptions(), survivor));
      if (!Records(s, merged) || cur == nullptr || cur->purged() || !cur->merged_into().empty()) return d;
      CRM_ASSIGN_OR_RETURN(d.events, Decide(cur, kScheduler, MarkMerged{survivor}));
      return d;
    };
  } else {
    // The survivor's CustomerMergeUndone (none once it no longer records the merge), unless the
    // merged customer was merged into it again.
    decide = [this, survivor, merged](const CustomerState* cur) -> absl::StatusOr<Decided> {
      Decided d;
      CRM_ASSIGN_OR_RETURN(auto m, ReadCustomer(db_->db(), rocksdb::ReadOptions(), merged));
      if ((m.has_value() && m->merged_into() == survivor) || cur == nullptr || cur->purged()) return d;
      CRM_ASSIGN_OR_RETURN(d.events, Decide(cur, kScheduler, UndoMerge{merged}));
      return d;
    };
  }
  const std::string one = merging ? survivor : merged, two = merging ? merged : survivor;
  auto cmd = CustomerCommand(ActorOf(step.first), source, {.id = two}, std::move(decide), step.first.correlation_id(), one);
  cmd.cause.causation_id = step.first.event_id();
  store_->Acquire({survivor, merged}, [this, cmd = std::move(cmd),
                                       done = std::move(done)](absl::StatusOr<kernel::Lease> lease) mutable {
    if (!lease.ok()) return done(lease.status());
    store_->ExecuteHeld<CustomerKind>(*std::move(lease), std::move(cmd),
                                      [done = std::move(done)](absl::StatusOr<Written> w) mutable {
                                        if (!w.ok()) return done(w.status());
                                        done(!w->token.empty());
                                      });
  });
}

void CustomerEngine::CompleteConversion(kernel::Lease lease, const std::string& lead_id, const PendingStep& step,
                                        common::v1::ActorSource source,
                                        Callback<kernel::Written<LeadState>> done) {
  v1::LeadConverted converted;
  if (!step.first.payload().UnpackTo(&converted)) {
    return done(absl::DataLossError("a pending conversion without its LeadConverted"));
  }
  kernel::Command<LeadState, LeadEvent> cmd;
  cmd.caller = ActorOf(step.first);
  cmd.id = lead_id;
  cmd.cause.source = source;
  cmd.cause.correlation_id = step.first.correlation_id();
  // The CustomerCreated it completes: its projection takes the pm/ row away (ApplyLeadRecord).
  cmd.cause.causation_id = step.first.event_id();
  cmd.decide = [converted](const LeadState* cur) -> absl::StatusOr<std::vector<LeadEvent>> {
    // Converted already (by this step, or into another customer since), gone or disqualified:
    // nothing to write.
    if (cur == nullptr || cur->status() == v1::LEAD_STATUS_CONVERTED ||
        cur->status() == v1::LEAD_STATUS_DISQUALIFIED) {
      return std::vector<LeadEvent>{};
    }
    return Decide(cur, kScheduler, customers::ConvertLead{converted});
  };
  store_->ExecuteHeld<LeadKind>(std::move(lease), std::move(cmd), std::move(done));
}

}  // namespace crm::customers
