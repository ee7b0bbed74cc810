#ifndef CRM_LIBS_SERVER_SERVE_H_
#define CRM_LIBS_SERVER_SERVE_H_

// The gRPC faces of the service engines: unary reads that wait for their
// min_consistency_token without holding a thread, and commands that finish once durable.
#include <memory>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "libs/common/caller.h"
#include "libs/common/grpc_status.h"
#include "libs/server/runtime.h"

namespace crm::server {

// The caller of a call whose work must start by `deadline` (a unary call's, capped at the
// runtime's max_wait); a stream's rows pass absl::InfiniteFuture(): the stream's idle timeout
// bounds them.
inline Caller ToCaller(const Claims& c, absl::Time deadline) { return Caller{c.sub, c.role, c.team, deadline}; }

template <typename Req>
std::string TokenOf(const Req& req) {
  if constexpr (requires { req.min_consistency_token(); }) {
    return req.min_consistency_token();
  } else {
    return "";
  }
}

// Runs a read of the method `access` describes (the runtime checks the caller's role first)
// once min_consistency_token is reached, without holding a gRPC thread while waiting; the
// read runs where the wait ends (at once when the token is reached already).
// `engine` has AfterToken(token, field, deadline, done), which calls `done` exactly once by
// `deadline`; `fn(caller, req, deadline)` returns StatusOr<Resp>. A call the runtime ended
// meanwhile (shutdown) is not read: its request and response may be gone.
template <typename Engine, typename Req, typename Resp, typename Fn>
grpc::ServerUnaryReactor* ServeRead(Runtime* runtime, const MethodAccess& access, Engine* engine,
                                    grpc::CallbackServerContext* ctx, const Req* req, Resp* resp, Fn fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::StatusOr<UnaryScope> scope = runtime->BeginUnary(*ctx, reactor, access);
  if (!scope.ok()) {
    Runtime::Refuse(reactor, scope.status());
    return reactor;
  }
  engine->AfterToken(TokenOf(*req), "min_consistency_token", scope->deadline,
                     [call = scope->call, req, resp, fn, caller = ToCaller(scope->claims, scope->deadline),
                      deadline = scope->deadline](absl::Status ready) {
                       if (!call->Claim()) return;
                       if (!ready.ok()) return call->Answer(ready);
                       auto result = fn(caller, *req, deadline);
                       if (result.ok()) *resp = *std::move(result);
                       call->Answer(result.status());
                     });
  return reactor;
}

// Starts a command of the method `access` describes (the runtime checks the caller's role
// first), `fn(caller, req, done)`; the call finishes where `done` is called (the
// log writer's thread once the events are durable and applied). `fn` must copy from `req`
// what it keeps: the runtime may end the call (shutdown) before `done` runs. A `done` dropped
// without being called answers INTERNAL (see UnaryCall).
template <typename Req, typename Resp, typename Fn>
grpc::ServerUnaryReactor* ServeWrite(Runtime* runtime, const MethodAccess& access, grpc::CallbackServerContext* ctx,
                                     const Req* req, Resp* resp, Fn fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::StatusOr<UnaryScope> scope = runtime->BeginUnary(*ctx, reactor, access);
  if (!scope.ok()) {
    Runtime::Refuse(reactor, scope.status());
    return reactor;
  }
  fn(ToCaller(scope->claims, scope->deadline), *req, [call = scope->call, resp](absl::StatusOr<Resp> r) {
    if (!call->Claim()) return;
    if (r.ok()) *resp = *std::move(r);
    call->Answer(r.status());
  });
  return reactor;
}

// Slots for one kind of heavy stream (bulk imports, exports): at most `total` at once and at
// most `per_user` for one user, so that one user's stalled or abandoned streams cannot keep
// everyone else out. A slot goes back when its Slot is destroyed. Thread-safe; must outlive
// its slots.
class SlotPool {
 public:
  class Slot {
   public:
    Slot(SlotPool* pool, std::string user) : pool_(pool), user_(std::move(user)) {}
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { pool_->Give(user_); }

   private:
    SlotPool* pool_;
    std::string user_;
  };

  // `what` names the streams in errors ("imports").
  SlotPool(int total, int per_user, std::string what) : total_(total), per_user_(per_user), what_(std::move(what)) {}

  // A slot for `user`, or RESOURCE_EXHAUSTED saying which limit was reached (ClientSafe: the
  // client learns which limit, not an incident id).
  absl::StatusOr<std::unique_ptr<Slot>> Take(const std::string& user) {
    absl::MutexLock l(&mu_);
    if (used_ >= total_) {
      return ClientSafe(
          absl::ResourceExhaustedError(absl::StrCat(total_, " ", what_, " are running; retry when one has finished")));
    }
    int& mine = by_user_[user];
    if (mine >= per_user_) {
      return ClientSafe(absl::ResourceExhaustedError(
          absl::StrCat("you have ", mine, " ", what_, " running, the most one user may; retry when one has finished")));
    }
    ++mine;
    ++used_;
    return std::make_unique<Slot>(this, user);
  }

  int used() const {
    absl::MutexLock l(&mu_);
    return used_;
  }

 private:
  void Give(const std::string& user) {
    absl::MutexLock l(&mu_);
    --used_;
    auto it = by_user_.find(user);
    if (--it->second == 0) by_user_.erase(it);
  }

  const int total_;
  const int per_user_;
  const std::string what_;
  mutable absl::Mutex mu_;
  int used_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, int> by_user_ ABSL_GUARDED_BY(mu_);
};

}  // namespace crm::server

// Defines Service::Rpc as a command (engine_->Method(caller, req, done)) or a read
// (engine_->Method(caller, req, deadline)) for a service class with engine_ and runtime_. The
// rpc's access option is looked up once, on the first call, from the request type and the
// rpc's name (CRM_METHOD_ACCESS).
#define CRM_METHOD_ACCESS(Req, Rpc)                                              \
  []() -> const ::crm::server::MethodAccess& {                                   \
    static const ::crm::server::MethodAccess access(Req::descriptor(), #Rpc);    \
    return access;                                                               \
  }()
// A command served by `Writer` (an expression of the service: its engine, or one of the
// engine's command handlers).
#define CRM_SERVE_WRITE_ON(Writer, Service, Rpc, Req, Resp, Method)                                      \
  grpc::ServerUnaryReactor* Service::Rpc(grpc::CallbackServerContext* ctx, const Req* req, Resp* resp) {   \
    return ::crm::server::ServeWrite(runtime_, CRM_METHOD_ACCESS(Req, Rpc), ctx, req, resp,                 \
                                     [this](const Caller& c, const auto& r, auto d) {                       \
                                       Writer->Method(c, r, std::move(d));                                  \
                                     });                                                                    \
  }
#define CRM_SERVE_WRITE(Service, Rpc, Req, Resp, Method) CRM_SERVE_WRITE_ON(engine_, Service, Rpc, Req, Resp, Method)
// A read served by the service's member `Reader` (its engine, or a query side with the same
// AfterToken and read methods).
#define CRM_SERVE_READ_ON(Reader, Service, Rpc, Req, Resp, Method)                                        \
  grpc::ServerUnaryReactor* Service::Rpc(grpc::CallbackServerContext* ctx, const Req* req, Resp* resp) {   \
    return ::crm::server::ServeRead(runtime_, CRM_METHOD_ACCESS(Req, Rpc), Reader, ctx, req, resp,          \
                                    [this](const Caller& c, const auto& r, absl::Time deadline) {           \
                                      return Reader->Method(c, r, deadline);                                \
                                    });                                                                     \
  }
#define CRM_SERVE_READ(Service, Rpc, Req, Resp, Method) CRM_SERVE_READ_ON(engine_, Service, Rpc, Req, Resp, Method)
#define CRM_SERVE_QUERY(Service, Rpc, Req, Resp, Method) CRM_SERVE_READ_ON(queries_, Service, Rpc, Req, Resp, Method)

#endif  // CRM_LIBS_SERVER_SERVE_H_
