#ifndef CRM_SERVICES_OPPORTUNITIES_OPPORTUNITIES_SERVICE_H_
#define CRM_SERVICES_OPPORTUNITIES_OPPORTUNITIES_SERVICE_H_

#include "crm/opportunities/v1/opportunities_service.grpc.pb.h"
#include "libs/server/runtime.h"
#include "services/opportunities/opportunity_engine.h"

namespace crm::opportunities {

#define CRM_OPP_RPC(Rpc, Req, Resp) \
  grpc::ServerUnaryReactor* Rpc(grpc::CallbackServerContext* ctx, const v1::Req* req, v1::Resp* resp) override;

// gRPC faces of OpportunityEngine: proto in, proto out, absl::Status -> grpc::Status. No rules.
// `engine` and `runtime` must outlive them.
class OpportunitiesService final : public v1::OpportunityService::CallbackService {
 public:
  OpportunitiesService(OpportunityEngine* engine, server::Runtime* runtime) : engine_(engine), runtime_(runtime) {}
  CRM_OPP_RPC(CreateOpportunity, CreateOpportunityRequest, Opportunity)
  CRM_OPP_RPC(GetOpportunity, GetOpportunityRequest, Opportunity)
  CRM_OPP_RPC(UpdateOpportunity, UpdateOpportunityRequest, Opportunity)
  CRM_OPP_RPC(ListOpportunities, ListOpportunitiesRequest, ListOpportunitiesResponse)
  CRM_OPP_RPC(DeleteOpportunity, DeleteOpportunityRequest, Opportunity)
  CRM_OPP_RPC(UndeleteOpportunity, UndeleteOpportunityRequest, Opportunity)
  CRM_OPP_RPC(MoveOpportunityStage, MoveOpportunityStageRequest, Opportunity)
  CRM_OPP_RPC(WinOpportunity, WinOpportunityRequest, Opportunity)
  CRM_OPP_RPC(LoseOpportunity, LoseOpportunityRequest, Opportunity)
  CRM_OPP_RPC(ReopenOpportunity, ReopenOpportunityRequest, Opportunity)
  CRM_OPP_RPC(ListEvents, ListEventsRequest, ListEventsResponse)
  CRM_OPP_RPC(GetSalesSettings, GetSalesSettingsRequest, SalesSettings)
  CRM_OPP_RPC(SetPipelines, SetPipelinesRequest, SalesSettings)
  CRM_OPP_RPC(SetContractPolicy, SetContractPolicyRequest, SalesSettings)

 private:
  OpportunityEngine* engine_;
  server::Runtime* runtime_;
};

class QuotesService final : public v1::QuoteService::CallbackService {
 public:
  QuotesService(OpportunityEngine* engine, server::Runtime* runtime) : engine_(engine), runtime_(runtime) {}
  CRM_OPP_RPC(CreateQuote, CreateQuoteRequest, Quote)
  CRM_OPP_RPC(GetQuote, GetQuoteRequest, Quote)
  CRM_OPP_RPC(ListQuotes, ListQuotesRequest, ListQuotesResponse)
  CRM_OPP_RPC(ReviseQuote, ReviseQuoteRequest, Quote)
  CRM_OPP_RPC(SendQuote, SendQuoteRequest, Quote)
  CRM_OPP_RPC(AcceptQuote, AcceptQuoteRequest, AcceptQuoteResponse)
  CRM_OPP_RPC(RejectQuote, RejectQuoteRequest, Quote)

 private:
  OpportunityEngine* engine_;
  server::Runtime* runtime_;
};

class ContractsService final : public v1::ContractService::CallbackService {
 public:
  ContractsService(OpportunityEngine* engine, server::Runtime* runtime) : engine_(engine), runtime_(runtime) {}
  CRM_OPP_RPC(CreateContract, CreateContractRequest, Contract)
  CRM_OPP_RPC(GetContract, GetContractRequest, Contract)
  CRM_OPP_RPC(ListContracts, ListContractsRequest, ListContractsResponse)
  CRM_OPP_RPC(UpdateContract, UpdateContractRequest, Contract)
  CRM_OPP_RPC(SubmitContract, SubmitContractRequest, Contract)
  CRM_OPP_RPC(ApproveContract, ApproveContractRequest, Contract)
  CRM_OPP_RPC(RejectContract, RejectContractRequest, Contract)
  CRM_OPP_RPC(TerminateContract, TerminateContractRequest, Contract)
  CRM_OPP_RPC(SetPaymentPlan, SetPaymentPlanRequest, Contract)
  CRM_OPP_RPC(RecordPayment, RecordPaymentRequest, Contract)
  CRM_OPP_RPC(CorrectPayment, CorrectPaymentRequest, Contract)
  CRM_OPP_RPC(VoidPayment, VoidPaymentRequest, Contract)
  CRM_OPP_RPC(GetReceivable, GetReceivableRequest, Receivable)
  CRM_OPP_RPC(GetCustomerReceivables, GetCustomerReceivablesRequest, CustomerReceivables)

 private:
  OpportunityEngine* engine_;
  server::Runtime* runtime_;
};

#undef CRM_OPP_RPC

}  // namespace crm::opportunities

#endif  // CRM_SERVICES_OPPORTUNITIES_OPPORTUNITIES_SERVICE_H_
