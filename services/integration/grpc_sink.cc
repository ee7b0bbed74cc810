#include "services/integration/grpc_sink.h"

#include <algorithm>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "libs/common/grpc_status.h"
#include "libs/common/token.h"

namespace crm::integration {

GrpcCommandSink::GrpcCommandSink(Options options)
    : options_(std::move(options)),
      customers_(customers::v1::CustomerService::NewStub(
          grpc::CreateChannel(options_.customers_address, grpc::InsecureChannelCredentials()))),
      contracts_(opportunities::v1::ContractService::NewStub(
          grpc::CreateChannel(options_.opportunities_address, grpc::InsecureChannelCredentials()))) {}

absl::StatusOr<std::string> GrpcCommandSink::Token() {
  absl::MutexLock l(&mu_);
  const absl::Duration lifetime = std::min(absl::Hours(12), options_.max_token_lifetime);
  const absl::Time now = absl::Now();
  if (now + lifetime / 2 < token_exp_) return token_;
  const absl::Time exp = now + lifetime;
  absl::StatusOr<std::string> t = MintToken(
      options_.signing_key, {.sub = "crm-integration", .role = "service", .team = "", .exp = exp, .iat = now});
  if (!t.ok()) return t.status();
  token_ = *t;
  token_exp_ = exp;
  return token_;
}

// Runs `call(context)` with the token and deadline; the service's status, details kept.
template <typename Call>
absl::Status GrpcCommandSink::Invoke(Call call) {
  absl::StatusOr<std::string> token = Token();
  if (!token.ok()) return token.status();
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", absl::StrCat("Bearer ", *token));
  ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(options_.deadline));
  return FromGrpcStatus(call(&ctx));
}

absl::Status GrpcCommandSink::Execute(const InboundCommand& command) {
  return std::visit(
      [&](const auto& req) -> absl::Status {
        using R = std::decay_t<decltype(req)>;
        if constexpr (std::is_same_v<R, customers::v1::CreateCustomerRequest>) {
          customers::v1::Customer out;
          return Invoke([&](grpc::ClientContext* c) { return customers_->CreateCustomer(c, req, &out); });
        } else if constexpr (std::is_same_v<R, customers::v1::UpdateCustomerRequest>) {
          customers::v1::Customer out;
          return Invoke([&](grpc::ClientContext* c) { return customers_->UpdateCustomer(c, req, &out); });
        } else if constexpr (std::is_same_v<R, customers::v1::CreateFollowUpRequest>) {
          customers::v1::FollowUp out;
          return Invoke([&](grpc::ClientContext* c) { return customers_->CreateFollowUp(c, req, &out); });
        } else if constexpr (std::is_same_v<R, opportunities::v1::RecordPaymentRequest>) {
          opportunities::v1::GetContractRequest get;
          get.set_name(req.name());
          opportunities::v1::Contract contract;
          if (auto s = Invoke([&](grpc::ClientContext* c) { return contracts_->GetContract(c, get, &contract); });
              !s.ok()) {
            return s;
          }
          const std::string have = contract.amount().currency().empty() ? "CNY" : contract.amount().currency();
          if (have != command.currency) {
            return InvalidFieldError("data.currency", absl::StrCat("is ", command.currency, " but contract ", req.name(),
                                                                   " is in ", have));
          }
          opportunities::v1::Contract out;
          return Invoke([&](grpc::ClientContext* c) { return contracts_->RecordPayment(c, req, &out); });
        } else if constexpr (std::is_same_v<R, opportunities::v1::ApproveContractRequest>) {
          opportunities::v1::Contract out;
          return Invoke([&](grpc::ClientContext* c) { return contracts_->ApproveContract(c, req, &out); });
        } else {
          static_assert(std::is_same_v<R, opportunities::v1::RejectContractRequest>);
          opportunities::v1::Contract out;
          return Invoke([&](grpc::ClientContext* c) { return contracts_->RejectContract(c, req, &out); });
        }
      },
      command.request);
}

}  // namespace crm::integration
