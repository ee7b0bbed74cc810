// Every service's request validation: the domain's decisions on commands whose contents come
// from the fuzzer (customers, leads, tag rules, opportunities and pipelines, contracts, tasks,
// task rules, ticket types, ticket values, SLA policies), as a rep, a manager or an admin.
// Refusals must carry a code a client can act on; no input may crash, leak or hit UB.
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "fuzz/fuzz_input.h"
#include "libs/topics/default_pipeline.h"
#include "services/customers/customer.h"
#include "services/customers/lead.h"
#include "services/opportunities/contract.h"
#include "services/opportunities/opportunity.h"
#include "services/tasks/rule.h"
#include "services/tasks/task.h"
#include "services/tickets/domain_testing.h"
#include "services/tickets/sla_policy.h"
#include "services/tickets/ticket.h"
#include "services/tickets/ticket_type.h"

namespace {

using crm::Caller;
using crm::fuzz::CheckRefusal;
using crm::fuzz::Input;

Caller CallerFrom(uint8_t b) {
  static const char* kRoles[] = {"rep", "manager", "admin", "service"};
  return {"u1", kRoles[b % 4], b & 4 ? "t1" : ""};
}

// The fields a mask may name, chosen by the bits of one byte (none: every field).
std::vector<std::string> PathsFrom(uint8_t bits, const std::vector<std::string>& all) {
  std::vector<std::string> out;
  for (size_t i = 0; i < all.size() && i < 8; ++i) {
    if (bits & (1u << i)) out.push_back(all[i]);
  }
  return out;
}

// A customer the caller's team owns, as an admin created it with a valid profile.
crm::customers::CustomerState SeedCustomer() {
  namespace c = crm::customers;
  c::CustomerProfile seed;
  seed.set_display_name("华为技术");
  seed.set_owner_id("u1");
  seed.set_team_id("t1");
  auto created = c::Decide(nullptr, {"admin", "admin", ""}, c::CreateCustomer{seed, "C2026112900001", c::EffectiveSettings({})});
  if (!created.ok()) std::abort();
  c::CustomerState state;
  for (const auto& e : *created) c::Apply(state, e, 1, absl::FromUnixSeconds(1'800'000'000), "admin");
  return state;
}

void Customers(Input& in, const Caller& caller) {
  namespace c = crm::customers;
  const uint8_t op = in.Byte() % 6;
  if (op == 0) {
    const std::string phone = in.Short();
    CheckRefusal(c::NormalizePhone(phone).status(), "NormalizePhone");
    CheckRefusal(c::NormalizeEmail(in.Rest()).status(), "NormalizeEmail");
    return;
  }
  if (op == 1) {
    crm::customers::v1::TagRule rule;
    if (in.Parse(rule)) CheckRefusal(c::ValidateTagRule(rule, "rule"), "ValidateTagRule");
    return;
  }
  static const c::CustomerState kSeed = SeedCustomer();
  const c::CustomerSettings settings = c::EffectiveSettings({});
  if (op == 4) {
    c::Contact contact;
    if (in.Parse(contact)) {
      CheckRefusal(c::Decide(&kSeed, caller, c::AddContact{contact}).status(), "Decide(AddContact)");
    }
    return;
  }
  if (op == 5) {
    const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
    const absl::Time when = now - absl::Seconds(in.Byte() * 3600) + absl::Seconds(in.Byte() * 3600);
    crm::customers::v1::FollowUpRecorded f;
    if (in.Parse(f)) {
      CheckRefusal(c::Decide(&kSeed, caller, c::RecordFollowUp{f, when, now}).status(), "Decide(RecordFollowUp)");
    }
    return;
  }
  const uint8_t bits = in.Byte();
  c::CustomerProfile profile;
  if (!in.Parse(profile)) return;
  if (op == 2) {
    CheckRefusal(c::Decide(nullptr, caller, c::CreateCustomer{profile, "C2026112900001", settings}).status(),
                 "Decide(CreateCustomer)");
    return;
  }
  CheckRefusal(c::Decide(&kSeed, caller, c::UpdateCustomer{profile, PathsFrom(bits, c::EditableFields()), settings})
                   .status(),
               "Decide(UpdateCustomer)");
}

void Leads(Input& in, const Caller& caller) {
  namespace c = crm::customers;
  c::LeadProfile profile;
  if (!in.Parse(profile)) return;
  CheckRefusal(c::Decide(nullptr, caller, c::CreateLead{profile, "", "", c::EffectiveSettings({})}).status(),
               "Decide(CreateLead)");
}

void Opportunities(Input& in, const Caller& caller) {
  namespace o = crm::opportunities;
  const uint8_t op = in.Byte() % 3;
  if (op == 0) {
    const std::string date = in.Short();
    CheckRefusal(crm::ParseClientDate(date, "expected_close_date").status(), "ParseClientDate");
    o::Pipeline p;
    if (in.Parse(p)) CheckRefusal(o::ValidatePipeline(p, "pipeline"), "ValidatePipeline");
    return;
  }
  if (op == 1) {
    o::OpportunityProfile profile;
    if (!in.Parse(profile)) return;
    o::CreateOpportunity cmd;
    cmd.profile = profile;
    cmd.pipeline = crm::topics::opportunities::DefaultPipeline();
    CheckRefusal(o::Decide(nullptr, caller, cmd).status(), "Decide(CreateOpportunity)");
    return;
  }
  o::ContractTerms terms;
  if (!in.Parse(terms)) return;
  CheckRefusal(o::Decide(nullptr, caller, o::DraftContract{terms, true, "u1", "t1"}).status(), "Decide(DraftContract)");
}

void Tasks(Input& in, const Caller& caller) {
  namespace t = crm::tasks;
  if (in.Byte() % 2 == 0) {
    t::TaskProfile profile;
    if (!in.Parse(profile)) return;
    CheckRefusal(t::Decide(nullptr, caller, t::CreateTask{profile}).status(), "Decide(CreateTask)");
    return;
  }
  t::RuleDefinition rule;
  if (in.Parse(rule)) CheckRefusal(t::ValidateRule(rule, "rule"), "ValidateRule");
}

void Tickets(Input& in, const Caller& caller) {
  namespace k = crm::tickets;
  const uint8_t op = in.Byte() % 3;
  if (op == 0) {
    k::v1::TicketTypeDefinition d;
    if (in.Parse(d)) CheckRefusal(k::ValidateDefinition(d, "ticket_type"), "ValidateDefinition");
    return;
  }
  if (op == 1) {
    k::v1::SlaPolicy p;
    if (in.Parse(p)) CheckRefusal(k::ValidatePolicy(p, "policy"), "ValidatePolicy");
    return;
  }
  // Values for the 售后维修 form (one field of every type).
  const std::string title = in.Short();
  k::v1::TicketValuesChanged values;
  if (!in.Parse(values)) return;
  k::CreateTicket cmd;
  cmd.type_id = "repair";
  cmd.type.set_number(1);
  *cmd.type.mutable_definition() = k::testing::RepairDefinition();
  cmd.title = title;
  cmd.values = k::FormValues(values.values().begin(), values.values().end());
  CheckRefusal(k::Decide(nullptr, caller, cmd).status(), "Decide(CreateTicket)");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  const uint8_t service = in.Byte();
  const Caller caller = CallerFrom(in.Byte());
  switch (service % 5) {
    case 0: Customers(in, caller); break;
    case 1: Leads(in, caller); break;
    case 2: Opportunities(in, caller); break;
    case 3: Tasks(in, caller); break;
    default: Tickets(in, caller); break;
  }
  return 0;
}
