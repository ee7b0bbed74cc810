#include "services/opportunities/opportunities_service.h"

#include "libs/server/serve.h"

namespace crm::opportunities {

CRM_SERVE_WRITE(OpportunitiesService, CreateOpportunity, v1::CreateOpportunityRequest, v1::Opportunity, CreateOpportunity)
CRM_SERVE_READ(OpportunitiesService, GetOpportunity, v1::GetOpportunityRequest, v1::Opportunity, GetOpportunity)
CRM_SERVE_WRITE(OpportunitiesService, UpdateOpportunity, v1::UpdateOpportunityRequest, v1::Opportunity, UpdateOpportunity)
CRM_SERVE_READ(OpportunitiesService, ListOpportunities, v1::ListOpportunitiesRequest, v1::ListOpportunitiesResponse,
               ListOpportunities)
CRM_SERVE_WRITE(OpportunitiesService, DeleteOpportunity, v1::DeleteOpportunityRequest, v1::Opportunity, DeleteOpportunity)
CRM_SERVE_WRITE(OpportunitiesService, UndeleteOpportunity, v1::UndeleteOpportunityRequest, v1::Opportunity,
                UndeleteOpportunity)
CRM_SERVE_WRITE(OpportunitiesService, MoveOpportunityStage, v1::MoveOpportunityStageRequest, v1::Opportunity, MoveStage)
CRM_SERVE_WRITE(OpportunitiesService, WinOpportunity, v1::WinOpportunityRequest, v1::Opportunity, Win)
CRM_SERVE_WRITE(OpportunitiesService, LoseOpportunity, v1::LoseOpportunityRequest, v1::Opportunity, Lose)
CRM_SERVE_WRITE(OpportunitiesService, ReopenOpportunity, v1::ReopenOpportunityRequest, v1::Opportunity, Reopen)
CRM_SERVE_READ(OpportunitiesService, ListEvents, v1::ListEventsRequest, v1::ListEventsResponse, ListEvents)
CRM_SERVE_READ(OpportunitiesService, GetSalesSettings, v1::GetSalesSettingsRequest, v1::SalesSettings, GetSettings)
CRM_SERVE_WRITE(OpportunitiesService, SetPipelines, v1::SetPipelinesRequest, v1::SalesSettings, SetPipelines)
CRM_SERVE_WRITE(OpportunitiesService, SetContractPolicy, v1::SetContractPolicyRequest, v1::SalesSettings,
                SetContractPolicy)

CRM_SERVE_WRITE(QuotesService, CreateQuote, v1::CreateQuoteRequest, v1::Quote, CreateQuote)
CRM_SERVE_READ(QuotesService, GetQuote, v1::GetQuoteRequest, v1::Quote, GetQuote)
CRM_SERVE_READ(QuotesService, ListQuotes, v1::ListQuotesRequest, v1::ListQuotesResponse, ListQuotes)
CRM_SERVE_WRITE(QuotesService, ReviseQuote, v1::ReviseQuoteRequest, v1::Quote, ReviseQuote)
CRM_SERVE_WRITE(QuotesService, SendQuote, v1::SendQuoteRequest, v1::Quote, SendQuote)
CRM_SERVE_WRITE(QuotesService, AcceptQuote, v1::AcceptQuoteRequest, v1::AcceptQuoteResponse, AcceptQuote)
CRM_SERVE_WRITE(QuotesService, RejectQuote, v1::RejectQuoteRequest, v1::Quote, RejectQuote)

CRM_SERVE_WRITE(ContractsService, CreateContract, v1::CreateContractRequest, v1::Contract, CreateContract)
CRM_SERVE_READ(ContractsService, GetContract, v1::GetContractRequest, v1::Contract, GetContract)
CRM_SERVE_READ(ContractsService, ListContracts, v1::ListContractsRequest, v1::ListContractsResponse, ListContracts)
CRM_SERVE_WRITE(ContractsService, UpdateContract, v1::UpdateContractRequest, v1::Contract, UpdateContract)
CRM_SERVE_WRITE(ContractsService, SubmitContract, v1::SubmitContractRequest, v1::Contract, SubmitContract)
CRM_SERVE_WRITE(ContractsService, ApproveContract, v1::ApproveContractRequest, v1::Contract, ApproveContract)
CRM_SERVE_WRITE(ContractsService, RejectContract, v1::RejectContractRequest, v1::Contract, RejectContract)
CRM_SERVE_WRITE(ContractsService, TerminateContract, v1::TerminateContractRequest, v1::Contract, TerminateContract)
CRM_SERVE_WRITE(ContractsService, SetPaymentPlan, v1::SetPaymentPlanRequest, v1::Contract, SetPaymentPlan)
CRM_SERVE_WRITE(ContractsService, RecordPayment, v1::RecordPaymentRequest, v1::Contract, RecordPayment)
CRM_SERVE_WRITE(ContractsService, CorrectPayment, v1::CorrectPaymentRequest, v1::Contract, CorrectPayment)
CRM_SERVE_WRITE(ContractsService, VoidPayment, v1::VoidPaymentRequest, v1::Contract, VoidPayment)
CRM_SERVE_READ(ContractsService, GetReceivable, v1::GetReceivableRequest, v1::Receivable, GetReceivable)
CRM_SERVE_READ(ContractsService, GetCustomerReceivables, v1::GetCustomerReceivablesRequest, v1::CustomerReceivables,
               GetCustomerReceivables)

}  // namespace crm::opportunities
