// What the customers service takes from the opportunities topic (docs/architecture.md §1: customers react
// to opportunities): a won opportunity (成交) makes its customer a deal customer. Depends on the
// opportunities' event schemas only.
#include "absl/strings/str_cat.h"
#include "crm/opportunities/v1/opportunities_events.pb.h"
#include "libs/common/status_macros.h"
#include "libs/eventlog/envelope.h"
#include "libs/projection/pending_rows.h"
#include "libs/server/logging.h"
#include "libs/topics/contracts.h"
#include "services/customers/customer_engine.h"
#include "services/customers/customer_projections.h"
#include "services/customers/engine_util.h"

namespace crm::customers {

namespace ov1 = crm::opportunities::v1;
using namespace internal;  // NOLINT: the engine's own helpers

absl::Status ApplyOpportunitiesRecordForCustomers(projection::ProjectionDb& db, const eventlog::Record& record,
                                                  projection::Batch& b) {
  CRM_ASSIGN_OR_RETURN(common::v1::EventEnvelope e, eventlog::DecodeEnvelope(record.value));
  if (e.aggregate_type() != topics::opportunities::kOpportunity.type) return absl::OkStatus();
  const std::string opp_key = rows::OpportunityCustomer(e.aggregate_id());
  if (e.event_type() == ov1::OpportunityCreated::descriptor()->full_name()) {
    ov1::OpportunityCreated c;
    if (!e.payload().UnpackTo(&c)) return absl::DataLossError("bad payload of OpportunityCreated");
    b.Put(opp_key, c.profile().customer_id());
  } else if (e.event_type() == ov1::OpportunityCustomerChanged::descriptor()->full_name()) {
    ov1::OpportunityCustomerChanged c;
    if (!e.payload().UnpackTo(&c)) return absl::DataLossError("bad payload of OpportunityCustomerChanged");
    b.Put(opp_key, c.to_customer_id());
  } else if (e.event_type() == ov1::OpportunityWon::descriptor()->full_name()) {
    // Pending until a customer event caused by it exists (a rebuild reads the customers topic
    // first, so then the win is never pending).
    ov1::OpportunityWon w;
    if (!e.payload().UnpackTo(&w)) return absl::DataLossError("bad payload of OpportunityWon");
    std::string unused;
    absl::Status done = db.Get(b, rows::CausedBy(e.event_id()), &unused);
    if (!done.ok() && !absl::IsNotFound(done)) return done;
    if (done.ok()) return absl::OkStatus();
    v1::PendingDeal p;
    CRM_RETURN_IF_ERROR(db.Get(b, opp_key, p.mutable_customer_id()));
    p.mutable_deal()->set_opportunity_id(e.aggregate_id());
    p.mutable_deal()->set_amount_minor(w.amount().amount_minor());
    p.mutable_deal()->set_currency(w.amount().currency());
    b.Put(absl::StrCat(rows::kPendingWins, e.event_id()), p.SerializeAsString());
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> CustomerEngine::ReconcileWins() {
  // OpportunityWon event id, deal.
  CRM_ASSIGN_OR_RETURN(auto pending,
                       projection::ReadPendingRows<v1::PendingDeal>(db_->db(), rows::kPendingWins, "pending deal"));
  std::vector<std::pair<std::string, DecideFn>> jobs;
  for (auto& [cause, p] : pending) {
    // A merged customer's deal counts for its survivor.
    std::string id = p.customer_id();
    for (int hops = 0; hops < 16; ++hops) {
      CRM_ASSIGN_OR_RETURN(auto s, ReadCustomer(db_->db(), rocksdb::ReadOptions(), id));
      if (!s.has_value() || s->merged_into().empty()) break;
      id = s->merged_into();
    }
    jobs.emplace_back(id, [cause = cause, deal = p.deal()](const CustomerState* cur) -> absl::StatusOr<Decided> {
      Decided d;
      d.causation_id = cause;
      // A customer in the recycle bin keeps the deal pending until it comes back.
      CRM_ASSIGN_OR_RETURN(d.events, Decide(cur, kScheduler, RecordDealWon{deal}));
      return d;
    });
  }
  int64_t written = 0;
  CRM_RETURN_IF_ERROR(RunBatch(std::move(jobs), &written));
  return written;
}

}  // namespace crm::customers
