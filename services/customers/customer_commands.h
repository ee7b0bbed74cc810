#ifndef CRM_SERVICES_CUSTOMERS_CUSTOMER_COMMANDS_H_
#define CRM_SERVICES_CUSTOMERS_CUSTOMER_COMMANDS_H_

#include <map>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "crm/customers/v1/customers_service.pb.h"
#include "libs/common/caller.h"
#include "libs/common/clock.h"
#include "libs/common/request.h"
#include "libs/kernel/aggregate_store.h"
#include "libs/projection/day_numbers.h"
#include "libs/projection/projection_db.h"
#include "services/customers/customer.h"
#include "services/customers/customer_queries.h"

namespace crm::customers {

// The customer commands of the customers service (create, update, delete, undelete, contacts,
// follow-ups, the public pool's release and claim), each one command on one customer through
// the service's AggregateStore (docs/architecture.md §3): a repeated request_id answers with
// the customer as it is, a stale etag is ABORTED (ETAG_MISMATCH naming the etag's field) unless
// the decision refused first (customer.h's Decide), a phone or email another customer holds is
// ALREADY_EXISTS. Each answers with the API customer after the command. Execute and Command are
// the customer write path the service's other parts (process managers, scheduler, reactions,
// import) share. Thread-safe; `done` runs on the log writer's thread, or on the caller's when
// nothing is appended.
class CustomerCommands {
 public:
  template <typename T>
  using Callback = absl::AnyInvocable<void(absl::StatusOr<T>)>;
  using Done = Callback<v1::Customer>;
  // What a command decided: the events, their business time (default now), the event of
  // another service it reacts to, and what to undo once it is settled (kernel::Decision).
  using Decided = kernel::Decision<CustomerEvent>;
  using DecideFn = absl::AnyInvocable<absl::StatusOr<Decided>(const CustomerState*)>;
  // The state after a write and its consistency token ("" when nothing was written).
  using Written = kernel::Written<CustomerState>;

  // Every pointer must outlive the commands. Customer numbers and daily claim limits use the
  // date in `zone`.
  CustomerCommands(kernel::AggregateStore* store, projection::ProjectionDb* db, const CustomerQueries* queries,
                   Clock* clock, absl::TimeZone zone);

  void Create(const Caller& caller, const v1::CreateCustomerRequest& req, Done done);
  void Update(const Caller& caller, const v1::UpdateCustomerRequest& req, Done done);
  void Delete(const Caller& caller, const v1::DeleteCustomerRequest& req, Done done);
  void Undelete(const Caller& caller, const v1::UndeleteCustomerRequest& req, Done done);
  void AddContact(const Caller& caller, const v1::AddContactRequest& req, Done done);
  void UpdateContact(const Caller& caller, const v1::UpdateContactRequest& req, Done done);
  void RemoveContact(const Caller& caller, const v1::RemoveContactRequest& req, Done done);
  void CreateFollowUp(const Caller& caller, const v1::CreateFollowUpRequest& req, Callback<v1::FollowUp> done);
  void Release(const Caller& caller, const v1::ReleaseCustomerRequest& req, Done done);
  void Claim(const Caller& caller, const v1::ClaimCustomerRequest& req, Done done);

  // The kernel command for `decide` on customer `target.id` (kernel::TargetCommand: its request
  // id and etag too): the customer's unique keys (phone, email) held, `correlation` (default:
  // the request id) in the envelopes, `shares_keys_with` (the other side of a merge) no
  // conflicting holder.
  kernel::Command<CustomerState, CustomerEvent> Command(const Caller& caller, common::v1::ActorSource source,
                                                        const Target& target, DecideFn decide,
                                                        const std::string& correlation = "",
                                                        const std::string& shares_keys_with = "",
                                                        bool fresh_id = false);
  // Runs `decide` on customer `target.id` through the store (after the commands before it on
  // the customer). A repeated request_id answers with the current state without deciding again;
  // `fresh_id` (a create under an id just picked): with the customer an earlier attempt created.
  // Then a version other than target.etag's is ABORTED, unless `decide` refused.
  void Execute(const Caller& caller, common::v1::ActorSource source, const Target& target, DecideFn decide,
               Callback<Written> done, const std::string& correlation = "", bool fresh_id = false);
  // The next customer number (the day's sequence).
  absl::StatusOr<std::string> AllocateNumber();

 private:
  // A DecideFn of a pure Decide overload.
  template <typename Cmd>
  static DecideFn Plain(const Caller& caller, Cmd cmd);
  // Execute answering with the API customer.
  void ExecuteCustomer(const Caller& caller, const Target& target, DecideFn decide, Done done, bool fresh_id = false);

  kernel::AggregateStore* const store_;
  projection::ProjectionDb* const db_;
  const CustomerQueries* const queries_;
  Clock* const clock_;
  const absl::TimeZone zone_;
  projection::DayNumbers numbers_;

  // A rep's claims per day, committed and in flight ("user/yyyymmdd" -> count), loaded from
  // the projection on first use. Held from counting through taking the new claim, so
  // concurrent claims by one rep cannot pass the daily limit together.
  absl::Mutex claims_mu_;
  std::map<std::string, int32_t> claims_today_ ABSL_GUARDED_BY(claims_mu_);
};

}  // namespace crm::customers

#endif  // CRM_SERVICES_CUSTOMERS_CUSTOMER_COMMANDS_H_
