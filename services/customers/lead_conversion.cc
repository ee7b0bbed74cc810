// CustomerEngine's lead conversion (线索转化): the customer side, then the lead's LeadConverted.
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
#include "libs/kernel/target_command.h"
#include "libs/projection/index_walk.h"
#include "services/customers/customer_engine.h"
#include "services/customers/customer_list.h"
#include "services/customers/customer_projections.h"
#include "services/customers/engine_util.h"

namespace crm::customers {

using namespace internal;  // NOLINT: the engine's own helpers
using projection::FromRocks;


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
  const Target lead_target = *t;
  const std::string lead_id = t->id;
  auto reply = [this, caller](const LeadState& l, const std::string& token,
                              bool created) -> absl::StatusOr<v1::ConvertLeadResponse> {
    v1::ConvertLeadResponse resp;
    *resp.mutable_lead() = queries_.LeadToApi(l);
    resp.mutable_lead()->set_consistency_token(token);
    resp.set_customer_created(created);
    CRM_ASSIGN_OR_RETURN(auto c, ReadCustomer(db_->db(), rocksdb::ReadOptions(), l.customer_id()));
    if (c.has_value() && CanSee(caller, *c)) *resp.mutable_customer() = queries_.ToApi(*c);
    return resp;
  };
  // The lead is held from the check through its LeadConverted; the customer's own lease is taken
  // inside it (always lead, then customer: nothing takes them the other way round).
  auto convert = [this, caller, lead_target, target, converted, reply, done = std::move(done)](
                     kernel::Lease lease, absl::Status earlier) mutable {
    if (!earlier.ok()) return done(earlier);
    // A first command that records nothing: it answers a repeated request_id (or refuses one
    // used for another resource) and hands the lead over as the store read it.
    auto loaded = std::make_shared<absl::optional<LeadState>>();
    // Its etag is checked by the store after the decision, as every command's.
    auto check = kernel::TargetCommand<LeadState, LeadEvent>(
        caller, lead_target, [loaded, caller](const LeadState* cur) -> absl::StatusOr<std::vector<LeadEvent>> {
          CRM_RETURN_IF_ERROR(CheckConvertible(cur, caller));
          *loaded = *cur;
          return std::vector<LeadEvent>{};
        });
    store_->ExecuteHeld<LeadKind>(
        lease, std::move(check),
        [this, caller, lease, lead_target, target, converted, reply, loaded,
         done = std::move(done)](absl::StatusOr<kernel::Written<LeadState>> checked) mutable {
          kernel::Lease held = std::move(lease);  // released when this call returns, unless passed on
          const std::string& lead_id = lead_target.id;
          if (!checked.ok()) return done(checked.status());
          if (!loaded->has_value()) {  // a repeat: answered without deciding
            if (checked->state.status() == v1::LEAD_STATUS_CONVERTED) {
              // Created by this conversion when the customer names the lead.
              auto c = ReadCustomer(db_->db(), rocksdb::ReadOptions(), checked->state.customer_id());
              if (!c.ok()) return done(c.status());
              return done(reply(checked->state, "", c->has_value() && (*c)->lead_id() == lead_id));
            }
            // The request id changed the lead before, by another command: convert it now.
            if (absl::Status s = CheckConvertible(&checked->state, caller); !s.ok()) return done(s);
            if (absl::Status s = kernel::CheckExpected(kernel::ExpectedFromEtag(lead_target.etag),
                                                       checked->state.version(), LeadKind::kType,
                                                       lead_target.etag_field);
                !s.ok()) {
              return done(s);
            }
            *loaded = checked->state;
          }
          ConvertHeld(caller, std::move(held), **loaded, lead_target, target, converted, std::move(reply),
                      std::move(done));
        });
  };
  store_->Acquire({lead_id}, [this, lead_id, convert = std::move(convert)](absl::StatusOr<kernel::Lease> lease) mutable {
    if (!lease.ok()) return convert(kernel::Lease(), lease.status());
    auto pending = ReadPendingStep(db_->db(), rows::PendingConversion(lead_id));
    if (!pending.ok()) return convert(kernel::Lease(), pending.status());
    if (!pending->has_value()) return convert(*std::move(lease), absl::OkStatus());
    // An earlier conversion of this lead stopped between its writes and its process manager has
    // not run yet: it completes first, as it was asked, and this request is answered after it
    // (a repeat of that request's id with its result).
    CompleteConversion(*lease, lead_id, **pending, common::v1::ACTOR_SOURCE_SYSTEM,
                       [lease = *lease, convert = std::move(convert)](
                           absl::StatusOr<kernel::Written<LeadState>> w) mutable {
                         convert(std::move(lease), w.status());
                       });
  }, caller.deadline);
}

void CustomerEngine::ConvertHeld(const Caller& caller, kernel::Lease lease, const LeadState& lead,
                                 const Target& lead_target, const std::string& target,
                                 v1::LeadConverted converted, ConvertReply reply,
                                 Callback<v1::ConvertLeadResponse> done) {
  const std::string lead_id = lead.id();
  // The customer: named, else the live holder of the lead's phone or email, else a new one
  // whose id derives from the lead (so a retry after a crash finds it).
  std::string cid = target;
  for (const std::string& prefix : {lead.normalized_phone().empty() ? "" : rows::PhonePrefix(lead.normalized_phone()),
                                    lead.normalized_email().empty() ? "" : rows::EmailPrefix(lead.normalized_email())}) {
    if (!cid.empty() || prefix.empty()) continue;
    auto holders = ReadHolders(db_->db(), prefix);
    if (!holders.ok()) return done(holders.status());
    if (!holders->empty()) cid = holders->front();
  }
  if (cid.empty()) cid = DerivedId(lead_id, "customer");
  auto settings = queries_.Settings();
  if (!settings.ok()) return done(settings.status());
  auto created = std::make_shared<bool>(false);
  auto created_now = std::make_shared<bool>(false);  // a CustomerCreated in this append
  const bool named = !target.empty();
  v1::LeadConverted second = converted;
  second.set_customer_id(cid);
  second.set_customer_created(true);
  DecideFn decide = [this, caller, lead, lead_id, named, created, created_now, second,
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
      auto& created_event = std::get<v1::CustomerCreated>(events->front());
      created_event.set_lead_id(lead_id);
      // The second step rides with the first, for the process manager (process_managers.cc).
      *created_event.mutable_lead_conversion() = second;
      CRM_RETURN_IF_ERROR(add(std::move(events)));
      *created = true;
      *created_now = true;
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
  const std::string& rid = lead_target.request_id;
  const std::string correlation = rid.empty() ? NewUuidV7(options_.clock->Now()) : rid;
  Execute(caller, common::v1::ACTOR_SOURCE_API, {.id = cid}, std::move(decide),
          [this, caller, lease = std::move(lease), lead_id, cid, lead_target, correlation, converted, created, created_now,
           reply = std::move(reply), done = std::move(done)](absl::StatusOr<Written> w) mutable {
            // Held until this call returns, not until the log drops the callback (maybe after
            // the writer is gone).
            const kernel::Lease held = std::move(lease);
            if (!w.ok()) return done(w.status());
            if (*created_now) {
              // The pm/ row the CustomerCreated left (committed with it) is the second step: the
              // process manager's own code writes it, so the two paths cannot differ.
              auto pending = ReadPendingStep(db_->db(), rows::PendingConversion(lead_id));
              if (!pending.ok()) return done(pending.status());
              if (!pending->has_value()) return done(absl::InternalError("the conversion's second step is not pending"));
              return CompleteConversion(held, lead_id, **pending, common::v1::ACTOR_SOURCE_API,
                                        [reply = std::move(reply), done = std::move(done)](
                                            absl::StatusOr<kernel::Written<LeadState>> lw) mutable {
                                          if (!lw.ok()) return done(lw.status());
                                          done(reply(lw->state, lw->token, true));
                                        });
            }
            converted.set_customer_id(cid);
            converted.set_customer_created(*created);
            // Without the request id: the check above held it; the lead, held since, is at the
            // etag's version still, which the store checks again.
            Target lead_only = lead_target;
            lead_only.request_id.clear();
            auto convert = kernel::TargetCommand<LeadState, LeadEvent>(
                caller, lead_only,
                [caller, converted](const LeadState* cur) {
                  return Decide(cur, caller, customers::ConvertLead{converted});
                });
            convert.cause.correlation_id = correlation;
            store_->ExecuteHeld<LeadKind>(
                held, std::move(convert),
                [created, reply = std::move(reply),
                 done = std::move(done)](absl::StatusOr<kernel::Written<LeadState>> lw) mutable {
                  if (!lw.ok()) return done(lw.status());
                  done(reply(lw->state, lw->token, *created));
                });
          },
          correlation);
}

}  // namespace crm::customers
