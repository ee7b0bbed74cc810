#include "services/customers/customers_service.h"

#include "libs/common/grpc_status.h"
#include "libs/common/status_macros.h"
#include "libs/server/blocking_stream.h"

namespace crm::customers {
namespace {

Caller ToCaller(const Claims& c) { return Caller{c.sub, c.role, c.team}; }

template <typename Req>
std::string TokenOf(const Req& req) {
  if constexpr (requires { req.min_consistency_token(); }) {
    return req.min_consistency_token();
  } else {
    return "";
  }
}

// Runs a read once min_consistency_token is reached, without holding a gRPC thread while
// waiting; the read runs where the wait ends (at once when the token is reached already).
template <typename Req, typename Resp, typename Fn>
grpc::ServerUnaryReactor* ServeRead(server::Runtime* runtime, CustomerEngine* engine,
                                    grpc::CallbackServerContext* ctx, const Req* req, Resp* resp, Fn fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::StatusOr<server::CallScope> scope = runtime->Begin(*ctx);
  if (!scope.ok()) {
    server::Runtime::Refuse(reactor, scope.status());
    return reactor;
  }
  engine->AfterToken(TokenOf(*req), "min_consistency_token", scope->deadline,
                     [runtime, reactor, req, resp, fn, caller = ToCaller(scope->claims),
                      deadline = scope->deadline](absl::Status ready) {
                       if (!ready.ok()) return runtime->Finish(reactor, ready);
                       auto result = fn(caller, *req, deadline);
                       if (result.ok()) *resp = *std::move(result);
                       runtime->Finish(reactor, result.status());
                     });
  return reactor;
}

// Starts a command; the call finishes on the log writer's thread once the events are durable
// and applied.
template <typename Req, typename Resp, typename Fn>
grpc::ServerUnaryReactor* ServeWrite(server::Runtime* runtime, grpc::CallbackServerContext* ctx, const Req* req,
                                     Resp* resp, Fn fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::StatusOr<server::CallScope> scope = runtime->Begin(*ctx);
  if (!scope.ok()) {
    server::Runtime::Refuse(reactor, scope.status());
    return reactor;
  }
  fn(ToCaller(scope->claims), *req, [runtime, reactor, resp](absl::StatusOr<Resp> r) {
    if (r.ok()) *resp = *std::move(r);
    runtime->Finish(reactor, r.status());
  });
  return reactor;
}

}  // namespace

#define CRM_CUSTOMERS_WRITE(Rpc, Req, Resp, Method)                                             \
  grpc::ServerUnaryReactor* CRM_SERVICE::Rpc(grpc::CallbackServerContext* ctx, const Req* req, \
                                                  Resp* resp) {                                    \
    return ServeWrite(runtime_, ctx, req, resp, [this](const Caller& c, const auto& r, auto d) {                 \
      engine_->Method(c, r, std::move(d));                                                        \
    });                                                                                           \
  }
#define CRM_CUSTOMERS_READ(Rpc, Req, Resp, Method)                                              \
  grpc::ServerUnaryReactor* CRM_SERVICE::Rpc(grpc::CallbackServerContext* ctx, const Req* req, \
                                                  Resp* resp) {                                    \
    return ServeRead(runtime_, engine_, ctx, req, resp, [this](const Caller& c, const auto& r, absl::Time deadline) {     \
      return engine_->Method(c, r, deadline);                                                     \
    });                                                                                           \
  }

#define CRM_SERVICE CustomersService
CRM_CUSTOMERS_WRITE(CreateCustomer, v1::CreateCustomerRequest, v1::Customer, Create)
CRM_CUSTOMERS_WRITE(UpdateCustomer, v1::UpdateCustomerRequest, v1::Customer, Update)
CRM_CUSTOMERS_WRITE(DeleteCustomer, v1::DeleteCustomerRequest, v1::Customer, Delete)
CRM_CUSTOMERS_WRITE(UndeleteCustomer, v1::UndeleteCustomerRequest, v1::Customer, Undelete)
CRM_CUSTOMERS_READ(GetCustomer, v1::GetCustomerRequest, v1::Customer, Get)
CRM_CUSTOMERS_READ(ListCustomers, v1::ListCustomersRequest, v1::ListCustomersResponse, List)
CRM_CUSTOMERS_READ(ListCustomerEvents, v1::ListCustomerEventsRequest, v1::ListCustomerEventsResponse, History)
CRM_CUSTOMERS_WRITE(AddContact, v1::AddContactRequest, v1::Customer, AddContact)
CRM_CUSTOMERS_WRITE(UpdateContact, v1::UpdateContactRequest, v1::Customer, UpdateContact)
CRM_CUSTOMERS_WRITE(RemoveContact, v1::RemoveContactRequest, v1::Customer, RemoveContact)
CRM_CUSTOMERS_WRITE(CreateFollowUp, v1::CreateFollowUpRequest, v1::FollowUp, CreateFollowUp)
CRM_CUSTOMERS_WRITE(ReleaseCustomer, v1::ReleaseCustomerRequest, v1::Customer, Release)
CRM_CUSTOMERS_WRITE(ClaimCustomer, v1::ClaimCustomerRequest, v1::Customer, Claim)
CRM_CUSTOMERS_WRITE(UpdatePoolPolicy, v1::UpdatePoolPolicyRequest, v1::PoolPolicy, UpdatePoolPolicy)
CRM_CUSTOMERS_WRITE(SetIndustries, v1::SetIndustriesRequest, v1::ListIndustriesResponse, SetIndustries)
CRM_CUSTOMERS_READ(ListFollowUps, v1::ListFollowUpsRequest, v1::ListFollowUpsResponse, ListFollowUps)
CRM_CUSTOMERS_READ(GetPoolPolicy, v1::GetPoolPolicyRequest, v1::PoolPolicy, GetPoolPolicy)
CRM_CUSTOMERS_READ(ListIndustries, v1::ListIndustriesRequest, v1::ListIndustriesResponse, ListIndustries)
CRM_CUSTOMERS_READ(ListTagRules, v1::ListTagRulesRequest, v1::ListTagRulesResponse, ListTagRules)
CRM_CUSTOMERS_WRITE(SetTagRules, v1::SetTagRulesRequest, v1::ListTagRulesResponse, SetTagRules)
CRM_CUSTOMERS_READ(PreviewTagRule, v1::PreviewTagRuleRequest, v1::PreviewTagRuleResponse, PreviewTagRule)
CRM_CUSTOMERS_READ(FindDuplicates, v1::FindDuplicatesRequest, v1::FindDuplicatesResponse, FindDuplicates)
CRM_CUSTOMERS_WRITE(MergeCustomers, v1::MergeCustomersRequest, v1::MergeCustomersResponse, MergeCustomers)
CRM_CUSTOMERS_WRITE(UnmergeCustomers, v1::UnmergeCustomersRequest, v1::MergeCustomersResponse, UnmergeCustomers)
#undef CRM_SERVICE

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

// One of `max` slots of a kind of stream, or RESOURCE_EXHAUSTED.
absl::Status TakeSlot(std::atomic<int>& used, int max, absl::string_view what) {
  if (used.fetch_add(1) < max) return absl::OkStatus();
  used.fetch_sub(1);
  return absl::ResourceExhaustedError(absl::StrCat(max, " ", what, " are running; retry when one has finished"));
}

}  // namespace

grpc::ServerBidiReactor<v1::ImportCustomersRequest, v1::ImportCustomersResponse>* CustomersService::ImportCustomers(
    grpc::CallbackServerContext* ctx) {
  absl::StatusOr<server::CallScope> scope = runtime_->Begin(*ctx);
  if (!scope.ok()) {
    return new server::RefusedBidiStream<v1::ImportCustomersRequest, v1::ImportCustomersResponse>(scope.status());
  }
  if (absl::Status s = TakeSlot(imports_, kMaxImports, "imports"); !s.ok()) {
    runtime_->EndStream();
    return new server::RefusedBidiStream<v1::ImportCustomersRequest, v1::ImportCustomersResponse>(s);
  }
  return ImportStream::Start(
      [engine = engine_, caller = ToCaller(scope->claims)](ImportStream* s) { return RunImport(engine, caller, s); },
      [this] {
        imports_.fetch_sub(1);
        runtime_->EndStream();
      });
}

grpc::ServerWriteReactor<v1::ExportCustomersResponse>* CustomersService::ExportCustomers(
    grpc::CallbackServerContext* ctx, const v1::ExportCustomersRequest* req) {
  absl::StatusOr<server::CallScope> scope = runtime_->Begin(*ctx);
  if (!scope.ok()) return new server::RefusedWriteStream<v1::ExportCustomersResponse>(scope.status());
  if (absl::Status s = TakeSlot(exports_, kMaxExports, "exports"); !s.ok()) {
    runtime_->EndStream();
    return new server::RefusedWriteStream<v1::ExportCustomersResponse>(s);
  }
  return ExportStream::Start(
      [engine = engine_, caller = ToCaller(scope->claims), req = *req, deadline = scope->deadline](ExportStream* s) {
        return engine->Export(caller, req, deadline,
                              [s](const v1::ExportCustomersResponse& chunk) { return s->Write(chunk); });
      },
      [this] {
        exports_.fetch_sub(1);
        runtime_->EndStream();
      });
}

#define CRM_SERVICE LeadsService
CRM_CUSTOMERS_WRITE(CreateLead, v1::CreateLeadRequest, v1::Lead, CreateLead)
CRM_CUSTOMERS_WRITE(UpdateLead, v1::UpdateLeadRequest, v1::Lead, UpdateLead)
CRM_CUSTOMERS_WRITE(AssignLead, v1::AssignLeadRequest, v1::Lead, AssignLead)
CRM_CUSTOMERS_WRITE(ClaimLead, v1::ClaimLeadRequest, v1::Lead, ClaimLead)
CRM_CUSTOMERS_WRITE(ReleaseLead, v1::ReleaseLeadRequest, v1::Lead, ReleaseLead)
CRM_CUSTOMERS_WRITE(QualifyLead, v1::QualifyLeadRequest, v1::Lead, QualifyLead)
CRM_CUSTOMERS_WRITE(DisqualifyLead, v1::DisqualifyLeadRequest, v1::Lead, DisqualifyLead)
CRM_CUSTOMERS_WRITE(ConvertLead, v1::ConvertLeadRequest, v1::ConvertLeadResponse, ConvertLead)
CRM_CUSTOMERS_READ(GetLead, v1::GetLeadRequest, v1::Lead, GetLead)
CRM_CUSTOMERS_READ(ListLeads, v1::ListLeadsRequest, v1::ListLeadsResponse, ListLeads)
#undef CRM_SERVICE

#undef CRM_CUSTOMERS_WRITE
#undef CRM_CUSTOMERS_READ

}  // namespace crm::customers
