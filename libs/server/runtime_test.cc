// The runtime's admission over loopback, around a handler whose time the test sets.
#include "libs/server/runtime.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "crm/customers/v1/customers_service.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "libs/common/clock.h"
#include "libs/common/wait_testing.h"
#include "libs/server/serve.h"

namespace crm::server {
namespace {

using customers::v1::CustomerService;

// GetCustomer, admitted by the runtime, answers `code` `delay_ms` after admission.
class SlowService final : public CustomerService::CallbackService {
 public:
  explicit SlowService(Runtime* runtime) : runtime_(runtime) {}
  std::atomic<int> delay_ms{50};
  std::atomic<absl::StatusCode> code{absl::StatusCode::kOk};

  grpc::ServerUnaryReactor* GetCustomer(grpc::CallbackServerContext* ctx, const customers::v1::GetCustomerRequest*,
                                        customers::v1::Customer*) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    auto scope = runtime_->BeginUnary(*ctx, reactor, CRM_METHOD_ACCESS(customers::v1::GetCustomerRequest, GetCustomer));
    if (!scope.ok()) {
      Runtime::Refuse(reactor, scope.status());
      return reactor;
    }
    std::thread([call = scope->call, delay = absl::Milliseconds(delay_ms.load()), code = code.load()] {
      absl::SleepFor(delay);
      call->Finish(code == absl::StatusCode::kOk ? absl::OkStatus() : absl::Status(code, "as the test set"));
    }).detach();
    return reactor;
  }

 private:
  Runtime* runtime_;
};

class RuntimeAdmissionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    metrics_ = *Metrics::Start("");
    RuntimeOptions ro;
    ro.listen = "127.0.0.1:0";
    ro.max_inflight = 8;
    runtime_ = std::make_unique<Runtime>(ro, &auth_, metrics_.get());
    service_ = std::make_unique<SlowService>(runtime_.get());
    ASSERT_TRUE(runtime_->Start({service_.get()}).ok());
    stub_ = CustomerService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", runtime_->port()), grpc::InsecureChannelCredentials()));
    method_ = customers::v1::GetCustomerRequest::descriptor()->file()->FindServiceByName("CustomerService")->FindMethodByName(
        "GetCustomer");
  }
  void TearDown() override {
    // The handler's threads answer within delay_ms; then the runtime may go.
    EXPECT_TRUE(crm::testing::WaitUntil("every slot back", absl::Seconds(5), [&] { return runtime_->inflight() == 0; },
                                        [&] { return runtime_->inflight(); }));
    runtime_->Shutdown();
  }
  grpc::Status Get(absl::Duration deadline) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + *MintToken(key_, {"u1", "admin", "", absl::Now() + absl::Hours(1)}));
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
    customers::v1::GetCustomerRequest req;
    customers::v1::Customer resp;
    return stub_->GetCustomer(&ctx, req, &resp);
  }
  // crm_admission_refused_total{reason=`reason`}.
  double Refused(const std::string& reason) {
    for (const auto& family : metrics_->registry().Collect()) {
      if (family.name != "crm_admission_refused_total") continue;
      for (const auto& metric : family.metric) {
        if (metric.label.size() == 1 && metric.label[0].value == reason) return metric.counter.value;
      }
    }
    return -1;
  }

  const std::string key_ = std::string(40, 'k');
  Authenticator auth_{key_, SystemClock::Get()};
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<Runtime> runtime_;
  std::unique_ptr<SlowService> service_;
  std::unique_ptr<CustomerService::Stub> stub_;
  const google::protobuf::MethodDescriptor* method_ = nullptr;
};

// A call whose deadline is shorter than its method's calls take was admitted, decided and
// answered after its client gave up, holding a slot meanwhile. Once GetCustomer is known to
// take about 50 ms, one with 10 ms left is refused RESOURCE_EXHAUSTED at admission while
// another is in flight (admitted, it would end DEADLINE_EXCEEDED); calls with time enough are
// served, and every slot comes back.
TEST_F(RuntimeAdmissionTest, CallsThatCannotMeetTheirDeadlineAreRefusedAtOnce) {
  ASSERT_NE(runtime_->load(method_), nullptr);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(Get(absl::Seconds(2)).ok());
  EXPECT_GE(runtime_->load(method_)->Estimate(), absl::Milliseconds(45));
  std::thread busy([&] { EXPECT_TRUE(Get(absl::Seconds(2)).ok()); });
  ASSERT_TRUE(crm::testing::WaitUntil("a call in flight", absl::Seconds(2), [&] { return runtime_->inflight() == 1; },
                                      [&] { return runtime_->inflight(); }));
  const double before = Refused("deadline");
  grpc::Status s = Get(absl::Milliseconds(10));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("retry later with backoff"));
  EXPECT_EQ(Refused("deadline"), before + 1);
  EXPECT_TRUE(Get(absl::Seconds(2)).ok());  // time enough: served beside the busy one
  busy.join();
  EXPECT_TRUE(crm::testing::WaitUntil("every slot back", absl::Seconds(2), [&] { return runtime_->inflight() == 0; },
                                      [&] { return runtime_->inflight(); }));
  EXPECT_EQ(runtime_->load(method_)->inflight(), 0);
  // Nothing in flight: the next call is admitted whatever the estimate (and ends at its
  // deadline), so a stale estimate cannot lock the method out.
  EXPECT_EQ(Get(absl::Milliseconds(10)).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
}

// Calls the server ends at their client's deadline (a read parked on a consistency token)
// took the client's time: a client that sends long-parked reads must not get everyone else's
// shorter calls refused.
TEST_F(RuntimeAdmissionTest, AnswersAtTheClientsDeadlineDoNotRaiseTheEstimate) {
  service_->delay_ms = 1;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(Get(absl::Seconds(2)).ok());
  const absl::Duration learned = runtime_->load(method_)->Estimate();
  EXPECT_LT(learned, absl::Milliseconds(40));
  service_->delay_ms = 300;
  service_->code = absl::StatusCode::kDeadlineExceeded;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Get(absl::Seconds(2)).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(runtime_->load(method_)->Estimate(), learned);
  std::thread parked([&] { Get(absl::Seconds(2)); });
  ASSERT_TRUE(crm::testing::WaitUntil("a parked call", absl::Seconds(2), [&] { return runtime_->inflight() == 1; },
                                      [&] { return runtime_->inflight(); }));
  service_->delay_ms = 1;
  service_->code = absl::StatusCode::kOk;
  EXPECT_TRUE(Get(absl::Milliseconds(100)).ok());
  parked.join();
}

}  // namespace
}  // namespace crm::server
