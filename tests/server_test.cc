// The gRPC runtime around a real service, over loopback: admission, deadlines, auth, and
// google.rpc details on the wire.
#include <filesystem>
#include <thread>

#include "crm/customers/v1/customers_service.grpc.pb.h"
#include "gtest/gtest.h"
#include "libs/common/grpc_status.h"
#include "libs/eventlog/embedded_log.h"
#include "libs/projection/projection_db.h"
#include "services/customers/customers_service.h"
#include "tests/test_util.h"

namespace crm {
namespace {

using customers::v1::CustomerService;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/server-", getpid(), "-", counter_++);
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    log_ = *eventlog::OpenEmbeddedLog({.path = dir_ + "/log"});
    db_ = *projection::ProjectionDb::Open({.path = dir_ + "/proj"});
    engine_ = *customers::CustomerEngine::Open(log_.get(), db_.get(), {.clock = SystemClock::Get()});
    auth_ = std::make_unique<server::Authenticator>(key_, SystemClock::Get());
    metrics_ = *server::Metrics::Start("");
    server::RuntimeOptions ro;
    ro.listen = "127.0.0.1:0";
    ro.max_inflight = 2;
    ro.max_wait = absl::Seconds(3);
    runtime_ = std::make_unique<server::Runtime>(ro, auth_.get(), metrics_.get());
    service_ = std::make_unique<customers::CustomersService>(engine_.get(), runtime_.get());
    ASSERT_TRUE(runtime_->Start({service_.get()}).ok());
    stub_ = CustomerService::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", runtime_->port()),
                                                         grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    runtime_->Shutdown();
    std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<grpc::ClientContext> Ctx(const std::string& role = "admin",
                                           absl::Duration deadline = absl::Seconds(10)) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("authorization",
                     "Bearer " + *MintToken(key_, {"u1", role, "east", absl::Now() + absl::Hours(1)}));
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + deadline));
    return ctx;
  }
  // A token for a log position far ahead of anything written.
  static std::string FutureToken() {
    common::v1::ConsistencyToken t;
    auto* p = t.add_positions();
    p->set_topic(customers::kTopic);
    p->set_partition(0);
    p->set_offset(1 << 30);
    return projection::EncodeToken(t);
  }

  static inline int counter_ = 0;
  const std::string key_ = std::string(40, 's');
  std::string dir_;
  std::unique_ptr<eventlog::Log> log_;
  std::unique_ptr<projection::ProjectionDb> db_;
  std::unique_ptr<customers::CustomerEngine> engine_;
  std::unique_ptr<server::Authenticator> auth_;
  std::unique_ptr<server::Metrics> metrics_;
  std::unique_ptr<server::Runtime> runtime_;
  std::unique_ptr<customers::CustomersService> service_;
  std::unique_ptr<CustomerService::Stub> stub_;
};

TEST_F(ServerTest, ReadWaitingForAFutureTokenEndsAtTheClientDeadline) {
  customers::v1::GetCustomerRequest req;
  req.set_name("customers/0190f1c4-0000-7000-8000-000000000000");
  req.set_min_consistency_token(FutureToken());
  customers::v1::Customer resp;
  const absl::Time start = absl::Now();
  auto s = stub_->GetCustomer(Ctx("admin", absl::Milliseconds(300)).get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST_F(ServerTest, RequestsBeyondTheInflightBoundAreResourceExhaustedAtOnce) {
  // Two reads park on a future token (max_inflight = 2); the third is refused immediately.
  std::vector<std::thread> parked;
  for (int i = 0; i < 2; ++i) {
    parked.emplace_back([&] {
      customers::v1::GetCustomerRequest req;
      req.set_name("customers/0190f1c4-0000-7000-8000-000000000000");
      req.set_min_consistency_token(FutureToken());
      customers::v1::Customer resp;
      stub_->GetCustomer(Ctx("admin", absl::Seconds(2)).get(), req, &resp);
    });
  }
  absl::SleepFor(absl::Milliseconds(300));
  customers::v1::ListCustomersRequest req;
  customers::v1::ListCustomersResponse resp;
  const absl::Time start = absl::Now();
  auto s = stub_->ListCustomers(Ctx().get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
  for (auto& t : parked) t.join();
  // Capacity comes back once they finish: the server releases a slot when its own deadline
  // timer finishes the call, which can be a few milliseconds after the client gave up.
  bool ok = false;
  for (int i = 0; i < 50 && !ok; ++i) {
    ok = stub_->ListCustomers(Ctx().get(), req, &resp).ok();
    if (!ok) absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(ok);
}

TEST_F(ServerTest, CallsWithoutAValidTokenAreUnauthenticated) {
  customers::v1::ListCustomersRequest req;
  customers::v1::ListCustomersResponse resp;
  grpc::ClientContext none;
  EXPECT_EQ(stub_->ListCustomers(&none, req, &resp).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext wrong_key;
  wrong_key.AddMetadata("authorization",
                        "Bearer " + *MintToken(std::string(40, 'x'), {"u1", "admin", "", absl::Now() + absl::Hours(1)}));
  EXPECT_EQ(stub_->ListCustomers(&wrong_key, req, &resp).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext expired;
  expired.AddMetadata("authorization",
                      "Bearer " + *MintToken(key_, {"u1", "admin", "", absl::Now() - absl::Seconds(1)}));
  EXPECT_EQ(stub_->ListCustomers(&expired, req, &resp).error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

// Each request's fields, invalid, over the wire: INVALID_ARGUMENT with BadRequest naming it.
TEST_F(ServerTest, BadInputNamesTheFieldOnTheWire) {
  customers::v1::CreateCustomerRequest made_req;
  made_req.mutable_customer()->set_display_name("ok");
  customers::v1::Customer made;
  ASSERT_TRUE(stub_->CreateCustomer(Ctx().get(), made_req, &made).ok());

  auto field_of = [](const grpc::Status& s) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    auto bad = GetBadRequest(FromGrpcStatus(s));
    return bad && bad->field_violations_size() ? bad->field_violations(0).field() : std::string("<none>");
  };
  customers::v1::Customer c;
  {
    customers::v1::CreateCustomerRequest r;
    r.mutable_customer()->set_display_name("x");
    r.mutable_customer()->set_phone("999");
    EXPECT_EQ(field_of(stub_->CreateCustomer(Ctx().get(), r, &c)), "customer.phone");
    r.mutable_customer()->clear_phone();
    r.mutable_customer()->add_tags("");
    EXPECT_EQ(field_of(stub_->CreateCustomer(Ctx().get(), r, &c)), "customer.tags");
  }
  {
    customers::v1::UpdateCustomerRequest r;
    r.mutable_customer()->set_name("nope");
    EXPECT_EQ(field_of(stub_->UpdateCustomer(Ctx().get(), r, &c)), "customer.name");
    r.mutable_customer()->set_name(made.name());
    r.mutable_customer()->set_email("bad@");
    r.mutable_update_mask()->add_paths("email");
    EXPECT_EQ(field_of(stub_->UpdateCustomer(Ctx().get(), r, &c)), "customer.email");
    r.set_request_id("has space");
    EXPECT_EQ(field_of(stub_->UpdateCustomer(Ctx().get(), r, &c)), "request_id");
  }
  {
    customers::v1::DeleteCustomerRequest r;
    r.set_name("customers/xyz");
    EXPECT_EQ(field_of(stub_->DeleteCustomer(Ctx().get(), r, &c)), "name");
    r.set_name(made.name());
    r.set_reason(std::string(501, 'r'));
    EXPECT_EQ(field_of(stub_->DeleteCustomer(Ctx().get(), r, &c)), "reason");
  }
  {
    customers::v1::UndeleteCustomerRequest r;
    r.set_name("");
    EXPECT_EQ(field_of(stub_->UndeleteCustomer(Ctx().get(), r, &c)), "name");
    r.set_name(made.name());
    r.set_etag("v1");
    EXPECT_EQ(field_of(stub_->UndeleteCustomer(Ctx().get(), r, &c)), "etag");
  }
  {
    customers::v1::ListCustomerEventsRequest r;
    customers::v1::ListCustomerEventsResponse resp;
    r.set_parent("customers");
    EXPECT_EQ(field_of(stub_->ListCustomerEvents(Ctx().get(), r, &resp)), "parent");
    r.set_parent(made.name());
    r.set_page_size(-5);
    EXPECT_EQ(field_of(stub_->ListCustomerEvents(Ctx().get(), r, &resp)), "page_size");
    r.set_page_size(0);
    r.set_page_token("@@");
    EXPECT_EQ(field_of(stub_->ListCustomerEvents(Ctx().get(), r, &resp)), "page_token");
  }
  {
    customers::v1::ListCustomersRequest r;
    customers::v1::ListCustomersResponse resp;
    r.set_filter("owner_id =");
    EXPECT_EQ(field_of(stub_->ListCustomers(Ctx().get(), r, &resp)), "filter");
  }
}

}  // namespace
}  // namespace crm
