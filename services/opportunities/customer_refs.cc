#include "services/opportunities/customer_refs.h"

#include "absl/strings/str_cat.h"
#include "crm/customers/v1/customers_events.pb.h"
#include "libs/common/request.h"
#include "libs/common/status_macros.h"
#include "libs/eventlog/envelope.h"
#include "libs/topics/contracts.h"

namespace crm::opportunities {

std::string ConversionOpportunityId(const std::string& lead_id) { return DerivedId("lead-conversions", lead_id); }

namespace {

namespace cv1 = crm::customers::v1;

// A conversion asking for an opportunity that does not exist yet becomes a pending row (a
// rebuild reads the opportunities topic first, so the row appears only when it is pending).
absl::Status ApplyLeadRecord(projection::ProjectionDb& db, const common::v1::EventEnvelope& e,
                             projection::Batch& batch) {
  if (!eventlog::Is<cv1::LeadConverted>(e)) return absl::OkStatus();
  CRM_ASSIGN_OR_RETURN(auto c, eventlog::PayloadAs<cv1::LeadConverted>(e));
  if (!c.opportunity_requested()) return absl::OkStatus();
  std::string unused;
  absl::Status exists = db.Get(batch, absl::StrCat("o/", ConversionOpportunityId(e.aggregate_id())), &unused);
  if (exists.ok()) return absl::OkStatus();
  if (!absl::IsNotFound(exists)) return exists;
  v1::LeadConversionRef ref;
  ref.set_lead_id(e.aggregate_id());
  ref.set_customer_id(c.customer_id());
  ref.set_name(c.opportunity_name());
  ref.set_amount_minor(c.expected_amount_minor());
  ref.set_currency(c.currency());
  ref.set_owner_id(e.actor().user_id());
  ref.set_team_id(e.actor().team_id());
  ref.set_cause_event_id(e.event_id());
  batch.Put(absl::StrCat(kPendingConversions, e.aggregate_id()), ref.SerializeAsString());
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyCustomerRecord(projection::ProjectionDb& db, const eventlog::Record& record,
                                 projection::Batch& batch) {
  CRM_ASSIGN_OR_RETURN(common::v1::EventEnvelope e, eventlog::DecodeEnvelope(record.value));
  if (e.aggregate_type() == topics::customers::kLead.type) return ApplyLeadRecord(db, e, batch);
  return ApplyCustomerEvent(db, e, batch);
}

}  // namespace crm::opportunities
