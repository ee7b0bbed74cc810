#include "services/customers/customers_service.h"

namespace crm::customers {
namespace {

Caller ToCaller(const Claims& c) { return Caller{c.sub, c.role, c.team}; }

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
  engine_->AfterToken(req->min_consistency_token(), "min_consistency_token", scope->deadline,
                      [this, reactor, req, resp, fn, caller = ToCaller(scope->claims),
                       deadline = scope->deadline](absl::Status ready) {
                        if (!ready.ok()) return runtime_->Finish(reactor, ready);
                        auto result = fn(caller, *req, deadline);
                        if (result.ok()) *resp = *std::move(result);
                        runtime_->Finish(reactor, result.status());
                      });
  return reactor;
}

template <typename Req, typename Fn>
grpc::ServerUnaryReactor* CustomersService::Write(grpc::CallbackServerContext* ctx, const Req* req,
                                                  v1::Customer* resp, Fn fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::StatusOr<server::CallScope> scope = runtime_->Begin(*ctx);
  if (!scope.ok()) {
    server::Runtime::Refuse(reactor, scope.status());
    return reactor;
  }
  // Finishes on the log writer's thread once the events are durable and applied.
  fn(ToCaller(scope->claims), *req, [this, reactor, resp](absl::StatusOr<v1::Customer> r) {
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

}  // namespace crm::customers
