#ifndef CRM_LIBS_SERVER_SERVE_H_
#define CRM_LIBS_SERVER_SERVE_H_

// The gRPC faces of the service engines: unary reads that wait for their
// min_consistency_token without holding a thread, and commands that finish once durable.
#include <atomic>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "libs/common/caller.h"
#include "libs/server/runtime.h"

namespace crm::server {

inline Caller ToCaller(const Claims& c) { return Caller{c.sub, c.role, c.team}; }

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
// `engine` has AfterToken(token, field, deadline, done); `fn(caller, req, deadline)` returns
// StatusOr<Resp>.
template <typename Engine, typename Req, typename Resp, typename Fn>
grpc::ServerUnaryReactor* ServeRead(Runtime* runtime, Engine* engine, grpc::CallbackServerContext* ctx,
                                    const Req* req, Resp* resp, Fn fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::StatusOr<CallScope> scope = runtime->Begin(*ctx);
  if (!scope.ok()) {
    Runtime::Refuse(reactor, scope.status());
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

// Starts a command, `fn(caller, req, done)`; the call finishes where `done` is called (the
// log writer's thread once the events are durable and applied).
template <typename Req, typename Resp, typename Fn>
grpc::ServerUnaryReactor* ServeWrite(Runtime* runtime, grpc::CallbackServerContext* ctx, const Req* req, Resp* resp,
                                     Fn fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::StatusOr<CallScope> scope = runtime->Begin(*ctx);
  if (!scope.ok()) {
    Runtime::Refuse(reactor, scope.status());
    return reactor;
  }
  fn(ToCaller(scope->claims), *req, [runtime, reactor, resp](absl::StatusOr<Resp> r) {
    if (r.ok()) *resp = *std::move(r);
    runtime->Finish(reactor, r.status());
  });
  return reactor;
}

// One of `max` slots of a kind of stream, or RESOURCE_EXHAUSTED.
inline absl::Status TakeSlot(std::atomic<int>& used, int max, absl::string_view what) {
  if (used.fetch_add(1) < max) return absl::OkStatus();
  used.fetch_sub(1);
  return absl::ResourceExhaustedError(absl::StrCat(max, " ", what, " are running; retry when one has finished"));
}

}  // namespace crm::server

// Defines Service::Rpc as a command (engine_->Method(caller, req, done)) or a read
// (engine_->Method(caller, req, deadline)) for a service class with engine_ and runtime_.
#define CRM_SERVE_WRITE(Service, Rpc, Req, Resp, Method)                                                   \
  grpc::ServerUnaryReactor* Service::Rpc(grpc::CallbackServerContext* ctx, const Req* req, Resp* resp) {   \
    return ::crm::server::ServeWrite(runtime_, ctx, req, resp,                                              \
                                     [this](const Caller& c, const auto& r, auto d) {                       \
                                       engine_->Method(c, r, std::move(d));                                 \
                                     });                                                                    \
  }
#define CRM_SERVE_READ(Service, Rpc, Req, Resp, Method)                                                    \
  grpc::ServerUnaryReactor* Service::Rpc(grpc::CallbackServerContext* ctx, const Req* req, Resp* resp) {   \
    return ::crm::server::ServeRead(runtime_, engine_, ctx, req, resp,                                      \
                                    [this](const Caller& c, const auto& r, absl::Time deadline) {           \
                                      return engine_->Method(c, r, deadline);                               \
                                    });                                                                     \
  }

#endif  // CRM_LIBS_SERVER_SERVE_H_
