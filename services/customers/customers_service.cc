#include "services/customers/customers_service.h"

#include "libs/common/grpc_status.h"
#include "libs/common/status_macros.h"
#include "libs/server/blocking_stream.h"
#include "libs/server/serve.h"

namespace crm::customers {
using server::ToCaller;

CRM_SERVE_WRITE_ON((&engine_->customer_commands()), CustomersService, CreateCustomer, v1::CreateCustomerRequest, v1::Customer, Create)
CRM_SERVE_WRITE_ON((&engine_->customer_commands()), CustomersService, UpdateCustomer, v1::UpdateCustomerRequest, v1::Customer, Update)
CRM_SERVE_WRITE_ON((&engine_->customer_commands()), CustomersService, DeleteCustomer, v1::DeleteCustomerRequest, v1::Customer, Delete)
CRM_SERVE_WRITE_ON((&engine_->customer_commands()), CustomersService, UndeleteCustomer, v1::UndeleteCustomerRequest, v1::Customer, Undelete)
CRM_SERVE_QUERY(CustomersService, GetCustomer, v1::GetCustomerRequest, v1::Customer, Get)
CRM_SERVE_QUERY(CustomersService, ListCustomers, v1::ListCustomersRequest, v1::ListCustomersResponse, List)
CRM_SERVE_QUERY(CustomersService, ListCustomerEvents, v1::ListCustomerEventsRequest, v1::ListCustomerEventsResponse, History)
CRM_SERVE_WRITE_ON((&engine_->customer_commands()), CustomersService, AddContact, v1::AddContactRequest, v1::Customer, AddContact)
CRM_SERVE_WRITE_ON((&engine_->customer_commands()), CustomersService, UpdateContact, v1::UpdateContactRequest, v1::Customer, UpdateContact)
CRM_SERVE_WRITE_ON((&engine_->customer_commands()), CustomersService, RemoveContact, v1::RemoveContactRequest, v1::Customer, RemoveContact)
CRM_SERVE_WRITE_ON((&engine_->customer_commands()), CustomersService, CreateFollowUp, v1::CreateFollowUpRequest, v1::FollowUp, CreateFollowUp)
CRM_SERVE_WRITE_ON((&engine_->customer_commands()), CustomersService, ReleaseCustomer, v1::ReleaseCustomerRequest, v1::Customer, Release)
CRM_SERVE_WRITE_ON((&engine_->customer_commands()), CustomersService, ClaimCustomer, v1::ClaimCustomerRequest, v1::Customer, Claim)
CRM_SERVE_WRITE_ON((&engine_->settings()), CustomersService, UpdatePoolPolicy, v1::UpdatePoolPolicyRequest, v1::PoolPolicy, UpdatePoolPolicy)
CRM_SERVE_WRITE_ON((&engine_->settings()), CustomersService, SetIndustries, v1::SetIndustriesRequest, v1::ListIndustriesResponse, SetIndustries)
CRM_SERVE_WRITE_ON((&engine_->settings()), CustomersService, SetChannelCost, v1::SetChannelCostRequest, v1::ChannelCost, SetChannelCost)
CRM_SERVE_QUERY(CustomersService, ListFollowUps, v1::ListFollowUpsRequest, v1::ListFollowUpsResponse, ListFollowUps)
CRM_SERVE_QUERY(CustomersService, GetPoolPolicy, v1::GetPoolPolicyRequest, v1::PoolPolicy, GetPoolPolicy)
CRM_SERVE_QUERY(CustomersService, ListIndustries, v1::ListIndustriesRequest, v1::ListIndustriesResponse, ListIndustries)
CRM_SERVE_QUERY(CustomersService, ListChannelCosts, v1::ListChannelCostsRequest, v1::ListChannelCostsResponse,
               ListChannelCosts)
CRM_SERVE_QUERY(CustomersService, ListTagRules, v1::ListTagRulesRequest, v1::ListTagRulesResponse, ListTagRules)
CRM_SERVE_WRITE_ON((&engine_->settings()), CustomersService, SetTagRules, v1::SetTagRulesRequest, v1::ListTagRulesResponse, SetTagRules)
CRM_SERVE_QUERY(CustomersService, PreviewTagRule, v1::PreviewTagRuleRequest, v1::PreviewTagRuleResponse, PreviewTagRule)
CRM_SERVE_QUERY(CustomersService, FindDuplicates, v1::FindDuplicatesRequest, v1::FindDuplicatesResponse, FindDuplicates)
CRM_SERVE_WRITE(CustomersService, MergeCustomers, v1::MergeCustomersRequest, v1::MergeCustomersResponse, MergeCustomers)
CRM_SERVE_WRITE(CustomersService, UnmergeCustomers, v1::UnmergeCustomersRequest, v1::MergeCustomersResponse, UnmergeCustomers)

using ImportStream = server::BlockingBidiStream<v1::ImportCustomersRequest, v1::ImportCustomersResponse>;
using ExportStream = server::BlockingWriteStream<v1::ExportCustomersResponse>;

namespace {

// One ImportCustomers stream: options first, then batches of rows, each answered once
// durable, and a last answer with `done` when the client has closed its side.
absl::Status RunImport(CustomerEngine* engine, const Caller& caller, ImportStream* stream) {
  v1::ImportCustomersRequest req;
  if (!stream->Read(&req)) return InvalidFieldError("options", "the stream closed before its first message");
  if (!req.has_options()) return InvalidFieldError("options", "is required in the first message");
  CRM_ASSIGN_OR_RETURN(std::unique_ptr<CustomerEngine::Import> import, engine->StartImport(caller, req.options()));
  bool first = true;
  for (;;) {
    CRM_ASSIGN_OR_RETURN(v1::ImportCustomersResponse resp, import->Apply(req.rows()));
    if (first) {
      resp.MergeFrom(import->header());
      first = false;
    }
    if (!stream->Write(resp)) return absl::CancelledError("the client went away");
    req.Clear();
    if (!stream->Read(&req)) break;
    if (req.has_options()) return InvalidFieldError("options", "is allowed in the first message only");
  }
  v1::ImportCustomersResponse last;
  *last.mutable_counts() = import->counts();
  last.set_import_id(import->header().import_id());
  last.set_dry_run(import->header().dry_run());
  last.set_done(true);
  if (!stream->Write(last)) return absl::CancelledError("the client went away");
  return absl::OkStatus();
}

}  // namespace

grpc::ServerBidiReactor<v1::ImportCustomersRequest, v1::ImportCustomersResponse>* CustomersService::ImportCustomers(
    grpc::CallbackServerContext* ctx) {
  using Refused = server::RefusedBidiStream<v1::ImportCustomersRequest, v1::ImportCustomersResponse>;
  absl::StatusOr<server::StreamScope> scope =
      runtime_->BeginStream(ctx, CRM_METHOD_ACCESS(v1::ImportCustomersRequest, ImportCustomers));
  if (!scope.ok()) return new Refused(scope.status());
  absl::StatusOr<std::unique_ptr<server::SlotPool::Slot>> slot = imports_.Take(scope->claims.sub);
  if (!slot.ok()) return new Refused(slot.status());  // scope->call gives its slot back as it goes
  return ImportStream::Start(
      scope->call, runtime_->stream_idle_timeout(),
      [engine = engine_, caller = ToCaller(scope->claims, absl::InfiniteFuture())](ImportStream* s) { return RunImport(engine, caller, s); },
      [slot = std::shared_ptr<server::SlotPool::Slot>(*std::move(slot))] {});
}

grpc::ServerWriteReactor<v1::ExportCustomersResponse>* CustomersService::ExportCustomers(
    grpc::CallbackServerContext* ctx, const v1::ExportCustomersRequest* req) {
  using Refused = server::RefusedWriteStream<v1::ExportCustomersResponse>;
  absl::StatusOr<server::StreamScope> scope =
      runtime_->BeginStream(ctx, CRM_METHOD_ACCESS(v1::ExportCustomersRequest, ExportCustomers));
  if (!scope.ok()) return new Refused(scope.status());
  absl::StatusOr<std::unique_ptr<server::SlotPool::Slot>> slot = exports_.Take(scope->claims.sub);
  if (!slot.ok()) return new Refused(slot.status());
  return ExportStream::Start(
      scope->call, runtime_->stream_idle_timeout(),
      [queries = queries_, caller = ToCaller(scope->claims, absl::InfiniteFuture()), req = *req, deadline = scope->deadline](ExportStream* s) {
        return queries->Export(caller, req, deadline,
                              [s](const v1::ExportCustomersResponse& chunk) { return s->Write(chunk); });
      },
      [slot = std::shared_ptr<server::SlotPool::Slot>(*std::move(slot))] {});
}

CRM_SERVE_WRITE_ON((&engine_->leads()), LeadsService, CreateLead, v1::CreateLeadRequest, v1::Lead, CreateLead)
CRM_SERVE_WRITE_ON((&engine_->leads()), LeadsService, UpdateLead, v1::UpdateLeadRequest, v1::Lead, UpdateLead)
CRM_SERVE_WRITE_ON((&engine_->leads()), LeadsService, AssignLead, v1::AssignLeadRequest, v1::Lead, AssignLead)
CRM_SERVE_WRITE_ON((&engine_->leads()), LeadsService, ClaimLead, v1::ClaimLeadRequest, v1::Lead, ClaimLead)
CRM_SERVE_WRITE_ON((&engine_->leads()), LeadsService, ReleaseLead, v1::ReleaseLeadRequest, v1::Lead, ReleaseLead)
CRM_SERVE_WRITE_ON((&engine_->leads()), LeadsService, QualifyLead, v1::QualifyLeadRequest, v1::Lead, QualifyLead)
CRM_SERVE_WRITE_ON((&engine_->leads()), LeadsService, DisqualifyLead, v1::DisqualifyLeadRequest, v1::Lead, DisqualifyLead)
CRM_SERVE_WRITE(LeadsService, ConvertLead, v1::ConvertLeadRequest, v1::ConvertLeadResponse, ConvertLead)
CRM_SERVE_QUERY(LeadsService, GetLead, v1::GetLeadRequest, v1::Lead, GetLead)
CRM_SERVE_QUERY(LeadsService, ListLeads, v1::ListLeadsRequest, v1::ListLeadsResponse, ListLeads)


}  // namespace crm::customers
