#ifndef CRM_SERVICES_INTEGRATION_GRPC_SINK_H_
#define CRM_SERVICES_INTEGRATION_GRPC_SINK_H_

#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "crm/customers/v1/customers_service.grpc.pb.h"
#include "crm/opportunities/v1/opportunities_service.grpc.pb.h"
#include "libs/common/token.h"
#include "services/integration/inbound.h"

namespace crm::integration {

// Carries inbound commands to the customers and opportunities services over gRPC, as the
// user `crm-integration` with role `service` (a token signed with the services' key, renewed
// before it expires), so the events they write say source "integration". A payment's
// currency is checked against its contract's first (RecordPayment takes minor units only).
class GrpcCommandSink : public CommandSink {
 public:
  struct Options {
    std::string customers_address;      // host:port of CustomerService. Required.
    std::string opportunities_address;  // host:port of ContractService. Required.
    std::string signing_key;            // Required.
    absl::Duration deadline = absl::Seconds(10);
    // The services' --max-token-lifetime: the sink's tokens live 12 hours, or this when
    // shorter. Default: kDefaultMaxTokenLifetime.
    absl::Duration max_token_lifetime = kDefaultMaxTokenLifetime;
  };
  explicit GrpcCommandSink(Options options);

  absl::Status Execute(const InboundCommand& command) override;

 private:
  // A valid bearer token, minted again when half its lifetime is left.
  absl::StatusOr<std::string> Token();
  template <typename Call>
  absl::Status Invoke(Call call);

  const Options options_;
  std::unique_ptr<customers::v1::CustomerService::Stub> customers_;
  std::unique_ptr<opportunities::v1::ContractService::Stub> contracts_;
  absl::Mutex mu_;
  std::string token_ ABSL_GUARDED_BY(mu_);
  absl::Time token_exp_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace crm::integration

#endif  // CRM_SERVICES_INTEGRATION_GRPC_SINK_H_
