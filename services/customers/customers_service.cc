#include "services/customers/customers_service.h"

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

}  // namespace

template <typename Req, typename Resp, typename Fn>
grpc::ServerUnaryReactor* CustomersService::Read(grpc::CallbackServerContext* ctx, const Req* req,
                                                 Resp* resp, Fn fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::StatusOr<server::CallScope> scope = runtime_->Begin(*ctx);
  if (!scope.ok()) {
    server::Runtime::Refuse(reactor, scope.status());
    return reactor;
  }
  // Wait for min_consistency_token without holding a gRPC thread; the read runs where the
  // wait ends (at once when the token is reached already).
  engine_->AfterToken(TokenOf(*req), "min_consistency_token", scope->deadline,
                      [this, reactor, req, resp, fn, caller = ToCaller(scope->claims),
                       deadline = scope->deadline](absl::Status ready) {
                        if (!ready.ok()) return runtime_->Finish(reactor, ready);
                        auto result = fn(caller, *req, deadline);
                        if (result.ok()) *resp = *std::move(result);
                        runtime_->Finish(reactor, result.status());
                      });
  return reactor;
}

template <typename Req, typename Resp, typename Fn>
grpc::ServerUnaryReactor* CustomersService::Write(grpc::CallbackServerContext* ctx, const Req* req,
                                                  Resp* resp, Fn fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::StatusOr<server::CallScope> scope = runtime_->Begin(*ctx);
  if (!scope.ok()) {
    server::Runtime::Refuse(reactor, scope.status());
    return reactor;
  }
  // Finishes on the log writer's thread once the events are durable and applied.
  fn(ToCaller(scope->claims), *req, [this, reactor, resp](absl::StatusOr<Resp> r) {
    if (r.ok()) *resp = *std::move(r);
    runtime_->Finish(reactor, r.status());
  });
  return reactor;
}

grpc::ServerUnaryReactor* CustomersService::CreateCustomer(grpc::CallbackServerContext* ctx,
                                                           const v1::CreateCustomerRequest* req,
                                                           v1::Customer* resp) {
  return Write(ctx, req, resp, [this](const Caller& c, const auto& r, CustomerEngine::Done d) {
    engine_->Create(c, r, std::move(d));
  });
}

grpc::ServerUnaryReactor* CustomersService::UpdateCustomer(grpc::CallbackServerContext* ctx,
                                                           const v1::UpdateCustomerRequest* req,
                                                           v1::Customer* resp) {
  return Write(ctx, req, resp, [this](const Caller& c, const auto& r, CustomerEngine::Done d) {
    engine_->Update(c, r, std::move(d));
  });
}

grpc::ServerUnaryReactor* CustomersService::DeleteCustomer(grpc::CallbackServerContext* ctx,
                                                           const v1::DeleteCustomerRequest* req,
                                                           v1::Customer* resp) {
  return Write(ctx, req, resp, [this](const Caller& c, const auto& r, CustomerEngine::Done d) {
    engine_->Delete(c, r, std::move(d));
  });
}

grpc::ServerUnaryReactor* CustomersService::UndeleteCustomer(grpc::CallbackServerContext* ctx,
                                                             const v1::UndeleteCustomerRequest* req,
                                                             v1::Customer* resp) {
  return Write(ctx, req, resp, [this](const Caller& c, const auto& r, CustomerEngine::Done d) {
    engine_->Undelete(c, r, std::move(d));
  });
}

grpc::ServerUnaryReactor* CustomersService::GetCustomer(grpc::CallbackServerContext* ctx,
                                                        const v1::GetCustomerRequest* req,
                                                        v1::Customer* resp) {
  return Read(ctx, req, resp, [this](const Caller& c, const auto& r, absl::Time deadline) {
    return engine_->Get(c, r, deadline);
  });
}

grpc::ServerUnaryReactor* CustomersService::ListCustomers(grpc::CallbackServerContext* ctx,
                                                          const v1::ListCustomersRequest* req,
                                                          v1::ListCustomersResponse* resp) {
  return Read(ctx, req, resp, [this](const Caller& c, const auto& r, absl::Time deadline) {
    return engine_->List(c, r, deadline);
  });
}

grpc::ServerUnaryReactor* CustomersService::ListCustomerEvents(
    grpc::CallbackServerContext* ctx, const v1::ListCustomerEventsRequest* req,
    v1::ListCustomerEventsResponse* resp) {
  return Read(ctx, req, resp, [this](const Caller& c, const auto& r, absl::Time deadline) {
    return engine_->History(c, r, deadline);
  });
}

#define CRM_CUSTOMERS_WRITE(Rpc, Req, Resp, Method)                                             \
  grpc::ServerUnaryReactor* CustomersService::Rpc(grpc::CallbackServerContext* ctx, const Req* req, \
                                                  Resp* resp) {                                    \
    return Write(ctx, req, resp, [this](const Caller& c, const auto& r, auto d) {                 \
      engine_->Method(c, r, std::move(d));                                                        \
    });                                                                                           \
  }
#define CRM_CUSTOMERS_READ(Rpc, Req, Resp, Method)                                              \
  grpc::ServerUnaryReactor* CustomersService::Rpc(grpc::CallbackServerContext* ctx, const Req* req, \
                                                  Resp* resp) {                                    \
    return Read(ctx, req, resp, [this](const Caller& c, const auto& r, absl::Time deadline) {     \
      return engine_->Method(c, r, deadline);                                                     \
    });                                                                                           \
  }

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

#undef CRM_CUSTOMERS_WRITE
#undef CRM_CUSTOMERS_READ

}  // namespace crm::customers
