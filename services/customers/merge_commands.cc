// CustomerEngine's duplicate search (查重) and merge/unmerge commands.
#include <algorithm>
#include <map>
#include <memory>

#include "absl/strings/str_cat.h"
#include "libs/common/grpc_status.h"
#include "libs/common/ids.h"
#include "libs/common/status_macros.h"
#include "services/customers/customer_engine.h"
#include "services/customers/customer_projections.h"
#include "services/customers/engine_util.h"

namespace crm::customers {

using namespace internal;  // NOLINT: the engine's own helpers

namespace {

struct MergePair {
  std::string survivor, merged, correlation;
  bool replayed = false;  // both sides carry this request_id already
};

// Parses the two names and checks the request id: a request_id already used for exactly these
// two customers is a replay, for any other customer an error.
absl::StatusOr<MergePair> ParsePair(rocksdb::DB* db, const std::string& survivor, const std::string& merged,
                                    const std::string& request_id, Clock* clock) {
  MergePair p;
  CRM_ASSIGN_OR_RETURN(p.survivor, ParseName(survivor, "survivor"));
  CRM_ASSIGN_OR_RETURN(p.merged, ParseName(merged, "merged"));
  if (p.survivor == p.merged) return InvalidFieldError("merged", "must differ from survivor");
  CRM_RETURN_IF_ERROR(CheckRequestId(request_id));
  p.correlation = request_id.empty() ? NewUuidV7(clock->Now()) : request_id;
  if (!request_id.empty()) {
    CRM_ASSIGN_OR_RETURN(std::vector<std::string> used, ReadHolders(db, rows::RequestPrefix(request_id)));
    for (const auto& id : used) {
      if (id != p.survivor && id != p.merged) return InvalidFieldError("request_id", "was already used for another resource");
    }
    p.replayed = used.size() == 2;
  }
  return p;
}

}  // namespace

void CustomerEngine::MergeCustomers(const Caller& caller, const v1::MergeCustomersRequest& req,
                                    Callback<v1::MergeCustomersResponse> done) {
  auto pair = ParsePair(db_->db(), req.survivor(), req.merged(), req.request_id(), options_.clock);
  if (!pair.ok()) return done(pair.status());
  auto survivor_etag = ParseEtag(req.survivor_etag(), "survivor_etag");
  if (!survivor_etag.ok()) return done(survivor_etag.status());
  auto merged_etag = ParseEtag(req.merged_etag(), "merged_etag");
  if (!merged_etag.ok()) return done(merged_etag.status());
  MergeFrom cmd;
  cmd.take_from_merged.assign(req.take_from_merged().begin(), req.take_from_merged().end());
  cmd.expected_version = *survivor_etag;
  cmd.merged_expected_version = *merged_etag;
  TwoStep(caller, pair->survivor, pair->merged, pair->correlation, pair->replayed, std::move(cmd), std::move(done));
}

void CustomerEngine::UnmergeCustomers(const Caller& caller, const v1::UnmergeCustomersRequest& req,
                                      Callback<v1::MergeCustomersResponse> done) {
  auto pair = ParsePair(db_->db(), req.survivor(), req.merged(), req.request_id(), options_.clock);
  if (!pair.ok()) return done(pair.status());
  TwoStep(caller, pair->survivor, pair->merged, pair->correlation, pair->replayed, absl::nullopt, std::move(done));
}

void CustomerEngine::TwoStep(const Caller& caller, const std::string& survivor, const std::string& merged,
                             const std::string& correlation, bool replayed, absl::optional<MergeFrom> merge,
                             Callback<v1::MergeCustomersResponse> done) {
  auto reply = [this, caller, survivor, merged](const std::string& token) -> absl::StatusOr<v1::MergeCustomersResponse> {
    v1::MergeCustomersResponse resp;
    CRM_ASSIGN_OR_RETURN(auto s, ReadCustomer(db_->db(), rocksdb::ReadOptions(), survivor));
    CRM_ASSIGN_OR_RETURN(auto m, ReadCustomer(db_->db(), rocksdb::ReadOptions(), merged));
    if (s.has_value() && CanSee(caller, *s)) *resp.mutable_survivor() = queries_.ToApi(*s);
    if (m.has_value() && CanSee(caller, *m)) *resp.mutable_merged() = queries_.ToApi(*m);
    resp.mutable_survivor()->set_consistency_token(token);
    return resp;
  };
  // Hold both customers (the store takes them in sorted order, so two merges of one pair cannot
  // wait on each other).
  store_->Acquire({survivor, merged}, [=, this, merge = std::move(merge),
                                       done = std::move(done)](absl::StatusOr<kernel::Lease> lease) mutable {
    if (!lease.ok()) return done(lease.status());
    if (replayed) return done(reply(""));
    // The step that exposes data goes first: the survivor's merge, or the merged customer's
    // return. The other side's step may then hold the same phone/email for a moment.
    const bool merging = merge.has_value();
    const std::string one = merging ? survivor : merged, two = merging ? merged : survivor;
    DecideFn first_step;
    if (merging) {
      first_step = [this, caller, merged, cmd = *std::move(merge)](const CustomerState* cur) mutable
          -> absl::StatusOr<Decided> {
        auto m = ReadCustomer(db_->db(), rocksdb::ReadOptions(), merged);
        if (!m.ok()) return m.status();
        if (!m->has_value()) return absl::NotFoundError("merged customer not found");
        cmd.merged = **m;
        for (const auto& c : cmd.merged.contacts()) cmd.contact_ids[c.id()] = DerivedId(absl::StrCat(merged, "/", c.id()), cur ? cur->id() : "");
        Decided d;
        CRM_ASSIGN_OR_RETURN(d.events, Decide(cur, caller, cmd));
        return d;
      };
    } else {
      first_step = [this, caller, survivor, merged](const CustomerState* cur) -> absl::StatusOr<Decided> {
        // Both sides are checked before the first write, so an unmerge does not stop halfway.
        auto s = ReadCustomer(db_->db(), rocksdb::ReadOptions(), survivor);
        if (!s.ok()) return s.status();
        if (!s->has_value() || (*s)->purged()) return absl::NotFoundError("survivor customer not found");
        const bool recorded = std::any_of((*s)->merges().begin(), (*s)->merges().end(),
                                          [&](const v1::MergeRecord& r) { return r.merged_id() == merged; });
        if (!recorded && (cur == nullptr || cur->merged_into() != survivor)) {
          return WithErrorInfo(absl::FailedPreconditionError(absl::StrCat("customers/", merged,
                                                                          " is not merged into customers/", survivor)),
                               "NOT_MERGED", {});
        }
        if (!CanEdit(caller, **s)) return absl::PermissionDeniedError("you may not change the survivor customer");
        Decided d;
        CRM_ASSIGN_OR_RETURN(d.events, Decide(cur, caller, Unmerge{survivor}));
        return d;
      };
    }
    store_->ExecuteHeld<CustomerKind>(
        *lease, CustomerCommand(caller, common::v1::ACTOR_SOURCE_API, {.id = one}, std::move(first_step), correlation, two),
        [=, this, lease = *lease, done = std::move(done)](absl::StatusOr<Written> w) mutable {
          // Held until this call returns, not until the log drops the callback (maybe after the
          // writer is gone).
          const kernel::Lease held = std::move(lease);
          if (!w.ok()) return done(w.status());
          const std::string first_token = w->token;
          DecideFn second_step = [caller, merging, survivor, merged](const CustomerState* cur) -> absl::StatusOr<Decided> {
            Decided d;
            if (merging) {
              CRM_ASSIGN_OR_RETURN(d.events, Decide(cur, caller, MarkMerged{survivor}));
            } else {
              CRM_ASSIGN_OR_RETURN(d.events, Decide(cur, caller, UndoMerge{merged}));
            }
            return d;
          };
          store_->ExecuteHeld<CustomerKind>(
              held, CustomerCommand(caller, common::v1::ACTOR_SOURCE_API, {.id = two}, std::move(second_step), correlation, one),
              [reply, first_token, done = std::move(done)](absl::StatusOr<Written> w2) mutable {
                if (!w2.ok()) return done(w2.status());
                done(reply(w2->token.empty() ? first_token : w2->token));
              });
        });
  }, caller.deadline);
}

}  // namespace crm::customers
