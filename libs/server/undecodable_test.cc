#include "libs/server/undecodable.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "crm/customers/v1/customers_service.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/client_unary_call.h"
#include "gtest/gtest.h"
#include "libs/common/grpc_status.h"

namespace crm::server {
namespace {

using customers::v1::CustomerService;

// GetCustomer answers with the name it was asked for; the other methods are not implemented.
class Service final : public CustomerService::CallbackService {
  grpc::ServerUnaryReactor* GetCustomer(grpc::CallbackServerContext* ctx, const customers::v1::GetCustomerRequest* req,
                                        customers::v1::Customer* resp) override {
    resp->set_name(req->name());
    auto* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }
};

// Records the status each call sends, as the metrics interceptor sees it.
class Recorder {
 public:
  class Factory final : public grpc::experimental::ServerInterceptorFactoryInterface {
   public:
    explicit Factory(Recorder* r) : r_(r) {}
    grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo*) override {
      return new Interceptor(r_);
    }

   private:
    Recorder* r_;
  };
  std::vector<grpc::StatusCode> codes() {
    absl::MutexLock l(&mu_);
    return codes_;
  }

 private:
  class Interceptor final : public grpc::experimental::Interceptor {
   public:
    explicit Interceptor(Recorder* r) : r_(r) {}
    void Intercept(grpc::experimental::InterceptorBatchMethods* m) override {
      if (m->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
        absl::MutexLock l(&r_->mu_);
        r_->codes_.push_back(m->GetSendStatus().error_code());
      }
      m->Proceed();
    }

   private:
    Recorder* r_;
  };
  absl::Mutex mu_;
  std::vector<grpc::StatusCode> codes_ ABSL_GUARDED_BY(mu_);
};

class UndecodableTest : public ::testing::Test {
 protected:
  void Start(bool with_interceptor) {
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(&service_);
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> f;
    if (with_interceptor) f.push_back(UndecodableRequestInterceptorFactory());
    f.push_back(std::make_unique<Recorder::Factory>(&recorder_));
    b.experimental().SetInterceptorCreators(std::move(f));
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  // Calls `method` with `bytes` as the request, as a client with a wrong or broken schema would.
  grpc::Status CallRaw(const std::string& method, const std::string& bytes, std::string* reply = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Slice slice(bytes);
    grpc::ByteBuffer req(&slice, 1), resp;
    grpc::Status s = grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
        channel_.get(), grpc::internal::RpcMethod(method.c_str(), grpc::internal::RpcMethod::NORMAL_RPC), &ctx, req,
        &resp);
    if (reply != nullptr) {
      std::vector<grpc::Slice> slices;
      (void)resp.Dump(&slices);
      reply->clear();
      for (const auto& sl : slices) reply->append(reinterpret_cast<const char*>(sl.begin()), sl.size());
    }
    return s;
  }

  static constexpr char kGet[] = "/crm.customers.v1.CustomerService/GetCustomer";
  // Field 1 (name, a proto3 string) holding two bytes that are not UTF-8.
  const std::string kBadUtf8 = std::string("\x0a\x02\xff\xfe", 4);
  // A field 1 that claims 100 bytes and has 3: no protobuf at all.
  const std::string kGarbage = std::string("\x0a\x64" "abc", 5);

  Service service_;
  Recorder recorder_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

// What the interceptor is for: gRPC 1.51 answers undecodable requests as if the method did not
// exist. Should a gRPC upgrade fix that, this test says the interceptor can go.
TEST_F(UndecodableTest, WithoutItGrpcAnswersUnimplementedWithNoMessage) {
  Start(false);
  for (const std::string& bytes : {kBadUtf8, kGarbage}) {
    grpc::Status s = CallRaw(kGet, bytes);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED);
    EXPECT_EQ(s.error_message(), "");
  }
}

TEST_F(UndecodableTest, InvalidUtf8AndGarbageGetInvalidArgumentNamingTheRequestType) {
  Start(true);
  for (const std::string& bytes : {kBadUtf8, kGarbage}) {
    grpc::Status s = CallRaw(kGet, bytes);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(s.error_message().find("not a valid crm.customers.v1.GetCustomerRequest message"), std::string::npos)
        << s.error_message();
    auto info = GetErrorInfo(FromGrpcStatus(s));
    ASSERT_TRUE(info.has_value());
    EXPECT_EQ(info->reason(), "UNDECODABLE_REQUEST");
  }
  // The interceptor after it (metrics) counts what the client got.
  EXPECT_EQ(recorder_.codes(),
            (std::vector<grpc::StatusCode>{grpc::StatusCode::INVALID_ARGUMENT, grpc::StatusCode::INVALID_ARGUMENT}));
}

TEST_F(UndecodableTest, LeavesDecodableRequestsAndTheServicesOwnAnswersAlone) {
  Start(true);
  customers::v1::GetCustomerRequest get;
  get.set_name("customers/c1");
  std::string reply;
  ASSERT_TRUE(CallRaw(kGet, get.SerializeAsString(), &reply).ok());
  customers::v1::Customer c;
  ASSERT_TRUE(c.ParseFromString(reply));
  EXPECT_EQ(c.name(), "customers/c1");
  // A method the service does not implement: UNIMPLEMENTED stays, the request was fine.
  grpc::Status s = CallRaw("/crm.customers.v1.CustomerService/ListCustomers", "");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  s = CallRaw("/crm.customers.v1.CustomerService/NoSuchMethod", kGarbage);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

}  // namespace
}  // namespace crm::server
