#include "libs/server/undecodable.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "libs/common/grpc_status.h"

namespace crm::server {
namespace {

using grpc::experimental::InterceptionHookPoints;

// "/crm.customers.v1.CustomerService/CreateCustomer" -> "crm.customers.v1.CreateCustomerRequest",
// or "" when this binary has no descriptor for the method.
std::string RequestType(absl::string_view method) {
  if (!method.empty() && method.front() == '/') method.remove_prefix(1);
  std::string name(method);
  if (const size_t slash = name.rfind('/'); slash != std::string::npos) name[slash] = '.';
  const google::protobuf::MethodDescriptor* m =
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(name);
  return m == nullptr ? "" : m->input_type()->full_name();
}

class UndecodableRequestInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit UndecodableRequestInterceptor(const char* method) : method_(method) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() == nullptr) {
      undecodable_ = true;
    }
    if (undecodable_ && methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status sent = methods->GetSendStatus();
      // Only gRPC's own answer: never a status the service chose.
      if (sent.error_code() == grpc::StatusCode::UNIMPLEMENTED && sent.error_message().empty()) {
        const std::string type = RequestType(method_);
        methods->ModifySendStatus(ToGrpcStatus(WithErrorInfo(
            absl::InvalidArgumentError(absl::StrCat(
                "the request is not a valid ", type.empty() ? "request" : type,
                " message: it is not protobuf of that type, or a string field is not valid UTF-8")),
            "UNDECODABLE_REQUEST", {{"method", method_}})));
      }
    }
    methods->Proceed();
  }

 private:
  const char* method_;  // owned by the server's method table, which outlives the call
  bool undecodable_ = false;
};

class Factory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override {
    using Type = grpc::experimental::ServerRpcInfo::Type;
    if (info->type() != Type::UNARY && info->type() != Type::SERVER_STREAMING) return nullptr;
    return new UndecodableRequestInterceptor(info->method());
  }
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> UndecodableRequestInterceptorFactory() {
  return std::make_unique<Factory>();
}

}  // namespace crm::server
