#ifndef CRM_SERVICES_CUSTOMERS_CUSTOMERS_SERVICE_H_
#define CRM_SERVICES_CUSTOMERS_CUSTOMERS_SERVICE_H_

#include <atomic>

#include "crm/customers/v1/customers_service.grpc.pb.h"
#include "libs/server/runtime.h"
#include "libs/server/serve.h"
#include "services/customers/customer_engine.h"

namespace crm::customers {

// gRPC faces of CustomerEngine: commands to its command side, reads to its query side
// (CustomerQueries); proto in, proto out, absl::Status -> grpc::Status. No rules.
class CustomersService final : public v1::CustomerService::CallbackService {
 public:
  // `engine` and `runtime` must outlive the service.
  CustomersService(CustomerEngine* engine, server::Runtime* runtime)
      : engine_(engine), queries_(&engine->queries()), runtime_(runtime) {}

  grpc::ServerUnaryReactor* CreateCustomer(grpc::CallbackServerContext* ctx,
                                           const v1::CreateCustomerRequest* req,
                                           v1::Customer* resp) override;
  grpc::ServerUnaryReactor* GetCustomer(grpc::CallbackServerContext* ctx,
                                        const v1::GetCustomerRequest* req,
                                        v1::Customer* resp) override;
  grpc::ServerUnaryReactor* UpdateCustomer(grpc::CallbackServerContext* ctx,
                                           const v1::UpdateCustomerRequest* req,
                                           v1::Customer* resp) override;
  grpc::ServerUnaryReactor* ListCustomers(grpc::CallbackServerContext* ctx,
                                          const v1::ListCustomersRequest* req,
                                          v1::ListCustomersResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteCustomer(grpc::CallbackServerContext* ctx,
                                           const v1::DeleteCustomerRequest* req,
                                           v1::Customer* resp) override;
  grpc::ServerUnaryReactor* UndeleteCustomer(grpc::CallbackServerContext* ctx,
                                             const v1::UndeleteCustomerRequest* req,
                                             v1::Customer* resp) override;
  grpc::ServerUnaryReactor* ListCustomerEvents(grpc::CallbackServerContext* ctx,
                                               const v1::ListCustomerEventsRequest* req,
                                               v1::ListCustomerEventsResponse* resp) override;
  grpc::ServerUnaryReactor* AddContact(grpc::CallbackServerContext* ctx, const v1::AddContactRequest* req,
                                       v1::Customer* resp) override;
  grpc::ServerUnaryReactor* UpdateContact(grpc::CallbackServerContext* ctx,
                                          const v1::UpdateContactRequest* req, v1::Customer* resp) override;
  grpc::ServerUnaryReactor* RemoveContact(grpc::CallbackServerContext* ctx,
                                          const v1::RemoveContactRequest* req, v1::Customer* resp) override;
  grpc::ServerUnaryReactor* CreateFollowUp(grpc::CallbackServerContext* ctx,
                                           const v1::CreateFollowUpRequest* req, v1::FollowUp* resp) override;
  grpc::ServerUnaryReactor* ListFollowUps(grpc::CallbackServerContext* ctx,
                                          const v1::ListFollowUpsRequest* req,
                                          v1::ListFollowUpsResponse* resp) override;
  grpc::ServerUnaryReactor* ReleaseCustomer(grpc::CallbackServerContext* ctx,
                                            const v1::ReleaseCustomerRequest* req, v1::Customer* resp) override;
  grpc::ServerUnaryReactor* ClaimCustomer(grpc::CallbackServerContext* ctx,
                                          const v1::ClaimCustomerRequest* req, v1::Customer* resp) override;
  grpc::ServerUnaryReactor* GetPoolPolicy(grpc::CallbackServerContext* ctx,
                                          const v1::GetPoolPolicyRequest* req, v1::PoolPolicy* resp) override;
  grpc::ServerUnaryReactor* UpdatePoolPolicy(grpc::CallbackServerContext* ctx,
                                             const v1::UpdatePoolPolicyRequest* req,
                                             v1::PoolPolicy* resp) override;
  grpc::ServerUnaryReactor* ListIndustries(grpc::CallbackServerContext* ctx,
                                           const v1::ListIndustriesRequest* req,
                                           v1::ListIndustriesResponse* resp) override;
  grpc::ServerUnaryReactor* SetChannelCost(grpc::CallbackServerContext* ctx, const v1::SetChannelCostRequest* req,
                                           v1::ChannelCost* resp) override;
  grpc::ServerUnaryReactor* ListChannelCosts(grpc::CallbackServerContext* ctx, const v1::ListChannelCostsRequest* req,
                                             v1::ListChannelCostsResponse* resp) override;
  grpc::ServerUnaryReactor* SetIndustries(grpc::CallbackServerContext* ctx,
                                          const v1::SetIndustriesRequest* req,
                                          v1::ListIndustriesResponse* resp) override;
  grpc::ServerUnaryReactor* ListTagRules(grpc::CallbackServerContext* ctx, const v1::ListTagRulesRequest* req,
                                         v1::ListTagRulesResponse* resp) override;
  grpc::ServerUnaryReactor* SetTagRules(grpc::CallbackServerContext* ctx, const v1::SetTagRulesRequest* req,
                                        v1::ListTagRulesResponse* resp) override;
  grpc::ServerUnaryReactor* PreviewTagRule(grpc::CallbackServerContext* ctx, const v1::PreviewTagRuleRequest* req,
                                           v1::PreviewTagRuleResponse* resp) override;
  grpc::ServerUnaryReactor* FindDuplicates(grpc::CallbackServerContext* ctx, const v1::FindDuplicatesRequest* req,
                                           v1::FindDuplicatesResponse* resp) override;
  grpc::ServerUnaryReactor* MergeCustomers(grpc::CallbackServerContext* ctx, const v1::MergeCustomersRequest* req,
                                           v1::MergeCustomersResponse* resp) override;
  grpc::ServerUnaryReactor* UnmergeCustomers(grpc::CallbackServerContext* ctx,
                                             const v1::UnmergeCustomersRequest* req,
                                             v1::MergeCustomersResponse* resp) override;
  // Bulk import and export, each on a thread of its own (libs/server/blocking_stream.h).
  grpc::ServerBidiReactor<v1::ImportCustomersRequest, v1::ImportCustomersResponse>* ImportCustomers(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerWriteReactor<v1::ExportCustomersResponse>* ExportCustomers(grpc::CallbackServerContext* ctx,
                                                                         const v1::ExportCustomersRequest* req) override;

  // Streams running at once (each holds a thread), in all and for one user; more get
  // RESOURCE_EXHAUSTED. A stream idle for the runtime's stream_idle_timeout is cancelled.
  static constexpr int kMaxImports = 4;
  static constexpr int kMaxImportsPerUser = 1;
  static constexpr int kMaxExports = 8;
  static constexpr int kMaxExportsPerUser = 2;

 private:
  CustomerEngine* engine_;
  const CustomerQueries* queries_;
  server::Runtime* runtime_;
  server::SlotPool imports_{kMaxImports, kMaxImportsPerUser, "imports"};
  server::SlotPool exports_{kMaxExports, kMaxExportsPerUser, "exports"};
};

// gRPC face of the engine's leads (线索).
class LeadsService final : public v1::LeadService::CallbackService {
 public:
  // `engine` and `runtime` must outlive the service.
  LeadsService(CustomerEngine* engine, server::Runtime* runtime)
      : engine_(engine), queries_(&engine->queries()), runtime_(runtime) {}

#define CRM_LEADS_RPC(Rpc, Req, Resp) \
  grpc::ServerUnaryReactor* Rpc(grpc::CallbackServerContext* ctx, const v1::Req* req, v1::Resp* resp) override;
  CRM_LEADS_RPC(CreateLead, CreateLeadRequest, Lead)
  CRM_LEADS_RPC(GetLead, GetLeadRequest, Lead)
  CRM_LEADS_RPC(UpdateLead, UpdateLeadRequest, Lead)
  CRM_LEADS_RPC(ListLeads, ListLeadsRequest, ListLeadsResponse)
  CRM_LEADS_RPC(AssignLead, AssignLeadRequest, Lead)
  CRM_LEADS_RPC(ClaimLead, ClaimLeadRequest, Lead)
  CRM_LEADS_RPC(ReleaseLead, ReleaseLeadRequest, Lead)
  CRM_LEADS_RPC(QualifyLead, QualifyLeadRequest, Lead)
  CRM_LEADS_RPC(DisqualifyLead, DisqualifyLeadRequest, Lead)
  CRM_LEADS_RPC(ConvertLead, ConvertLeadRequest, ConvertLeadResponse)
#undef CRM_LEADS_RPC

 private:
  CustomerEngine* engine_;
  const CustomerQueries* queries_;
  server::Runtime* runtime_;
};

}  // namespace crm::customers

#endif  // CRM_SERVICES_CUSTOMERS_CUSTOMERS_SERVICE_H_
