// The gRPC runtime around a real service, over loopback: admission, deadlines, auth, and
// google.rpc details on the wire.
#include <set>
#include <thread>

#include "absl/synchronization/notification.h"
#include "grpcpp/generic/generic_stub.h"

#include "crm/customers/v1/customers_service.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/wait_testing.h"
#include "libs/common/grpc_status.h"
#include "libs/projection/projection_db.h"
#include "libs/testing/engine_harness.h"
#include "services/customers/customers_service.h"
#include "tests/test_util.h"

namespace crm {
namespace {

using customers::v1::CustomerService;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto h = crm::testing::EngineHarness::Create({.name = "server", .clock = SystemClock::Get()});
    ASSERT_TRUE(h.ok()) << h.status();
    h_ = *std::move(h);
    eventlog::Log& log = h_->log();
    // A topic the projections follow but never apply: a token naming its record is valid
    // (the log has it) and never reached, so reads with it park until their deadline.
    ASSERT_TRUE(log.CreateTopic(kParking, 1).ok());
    ASSERT_TRUE((*log.OpenWriter(kParking))->AppendSync("k", {{"v", {}}}).ok());
    const absl::Status opened = h_->Open(crm::testing::Service::kCustomers);
    ASSERT_TRUE(opened.ok()) << opened;
    h_->db(crm::testing::Service::kCustomers)->AcceptTokens(&log, {customers::kTopic, kParking});
    auth_ = std::make_unique<server::Authenticator>(key_, SystemClock::Get());
    metrics_ = *server::Metrics::Start("");
    server::RuntimeOptions ro;
    ro.max_inflight = 2;
    ro.max_wait = absl::Seconds(3);
    StartRuntime(ro);
  }
  void TearDown() override {
    runtime_->Shutdown();
  }
  void StartRuntime(server::RuntimeOptions ro) {
    if (runtime_ != nullptr) runtime_->Shutdown();
    ro.listen = "127.0.0.1:0";
    runtime_ = std::make_unique<server::Runtime>(ro, auth_.get(), metrics_.get());
    service_ = std::make_unique<customers::CustomersService>(h_->customers(), runtime_.get());
    ASSERT_TRUE(runtime_->Start({service_.get()}).ok());
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", runtime_->port()), grpc::InsecureChannelCredentials());
    stub_ = CustomerService::NewStub(channel_);
  }
  std::unique_ptr<grpc::ClientContext> Ctx(const std::string& role = "admin",
                                           absl::Duration deadline = absl::Seconds(10)) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("authorization",
                     "Bearer " + *MintToken(key_, {"u1", role, "east", absl::Now() + absl::Hours(1)}));
    if (deadline != absl::InfiniteDuration()) ctx->set_deadline(absl::ToChronoTime(absl::Now() + deadline));
    return ctx;
  }
  // An import stream of `user` (an admin) that has sent its options and nothing more.
  std::unique_ptr<grpc::ClientReaderWriter<customers::v1::ImportCustomersRequest, customers::v1::ImportCustomersResponse>>
  OpenImport(grpc::ClientContext* ctx, const std::string& user) {
    ctx->AddMetadata("authorization",
                     "Bearer " + *MintToken(key_, {user, "admin", "", absl::Now() + absl::Hours(1)}));
    auto stream = stub_->ImportCustomers(ctx);
    customers::v1::ImportCustomersRequest options;
    options.mutable_options()->add_columns("display_name");
    EXPECT_TRUE(stream->Write(options));
    return stream;
  }
  static std::string TokenAt(const std::string& topic, int64_t offset) {
    common::v1::ConsistencyToken t;
    auto* p = t.add_positions();
    p->set_topic(topic);
    p->set_partition(0);
    p->set_offset(offset);
    return projection::EncodeToken(t);
  }
  // A token the log has and the projections never reach.
  static std::string ParkingToken() { return TokenAt(kParking, 0); }
  // A read that waits on ParkingToken(); returns its status.
  grpc::Status ParkedRead(absl::Duration client_deadline) {
    customers::v1::GetCustomerRequest req;
    req.set_name("customers/0190f1c4-0000-7000-8000-000000000000");
    req.set_min_consistency_token(ParkingToken());
    customers::v1::Customer resp;
    return stub_->GetCustomer(Ctx("admin", client_deadline).get(), req, &resp);
  }
  bool Serving() {
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
    auto s = grpc::health::v1::Health::NewStub(channel_)->Check(&ctx, req, &resp);
    return s.ok() && resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
  }

  static constexpr char kParking[] = "parking";
  const std::string key_ = std::string(40, 's');
  std::unique_ptr<crm::testing::EngineHarness> h_;  // outlives the runtime and the service
  std::unique_ptr<server::Authenticator> auth_;
  std::unique_ptr<server::Metrics> metrics_;
  std::unique_ptr<server::Runtime> runtime_;
  std::unique_ptr<customers::CustomersService> service_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<CustomerService::Stub> stub_;
};

TEST_F(ServerTest, ReadWaitingForATokenEndsAtTheClientDeadline) {
  const absl::Time start = absl::Now();
  EXPECT_EQ(ParkedRead(absl::Milliseconds(300)).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

// A client without a deadline still waits no longer than the server's cap (max_wait = 3 s).
TEST_F(ServerTest, ReadWaitingForATokenEndsAtTheServersCapWithoutAClientDeadline) {
  const absl::Time start = absl::Now();
  EXPECT_EQ(ParkedRead(absl::InfiniteDuration()).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(absl::Now() - start, absl::Seconds(6));
}

// A token naming an offset the log never wrote (10^12) was waited on until the deadline, one
// slot per read: a burst of them held every slot. Now it is refused before any wait.
TEST_F(ServerTest, TokensThisLogNeverIssuedAreRefusedAtOnce) {
  customers::v1::GetCustomerRequest req;
  req.set_name("customers/0190f1c4-0000-7000-8000-000000000000");
  customers::v1::Customer resp;
  req.set_min_consistency_token(TokenAt(customers::kTopic, 1'000'000'000'000));
  const absl::Time start = absl::Now();
  auto s = stub_->GetCustomer(Ctx("admin", absl::Seconds(30)).get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  req.set_min_consistency_token(TokenAt("crm.unknown.events.v1", 0));
  EXPECT_EQ(stub_->GetCustomer(Ctx().get(), req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // Both slots (max_inflight = 2) are free again at once.
  customers::v1::ListCustomersRequest list;
  customers::v1::ListCustomersResponse listed;
  EXPECT_TRUE(stub_->ListCustomers(Ctx().get(), list, &listed).ok());
  EXPECT_TRUE(stub_->ListCustomers(Ctx().get(), list, &listed).ok());
}

TEST_F(ServerTest, RequestsBeyondTheInflightBoundAreResourceExhaustedAtOnce) {
  // Two reads park on a token (max_inflight = 2); the third is refused immediately.
  std::vector<std::thread> parked;
  for (int i = 0; i < 2; ++i) parked.emplace_back([&] { ParkedRead(absl::Seconds(2)); });
  EXPECT_TRUE(crm::testing::WaitUntil("two parked reads", absl::Seconds(2), [&] { return runtime_->inflight() >= 2; },
                                      [&] { return runtime_->inflight(); }));
  customers::v1::ListCustomersRequest req;
  customers::v1::ListCustomersResponse resp;
  const absl::Time start = absl::Now();
  auto s = stub_->ListCustomers(Ctx().get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  // The runtime's own refusal says what to do; it is no incident (an id, a log line per call).
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("requests in flight"));
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

// Every slot held and none released for stuck_after: health says NOT_SERVING, so a load
// balancer stops sending calls this server can only refuse; SERVING again once calls finish.
TEST_F(ServerTest, HealthIsNotServingWhileEverySlotIsStuck) {
  server::RuntimeOptions ro;
  ro.max_inflight = 2;
  ro.max_wait = absl::Seconds(4);
  ro.watchdog_interval = absl::Milliseconds(100);
  ro.stuck_after = absl::Seconds(1);
  StartRuntime(ro);
  EXPECT_TRUE(Serving());
  std::vector<std::thread> parked;
  for (int i = 0; i < 2; ++i) parked.emplace_back([&] { ParkedRead(absl::InfiniteDuration()); });
  // Health, once it says `serving` within 3 s (false if it never does).
  auto becomes = [&](bool serving) {
    for (int i = 0; i < 30; ++i) {
      absl::SleepFor(absl::Milliseconds(100));
      if (Serving() == serving) return true;
    }
    return false;
  };
  EXPECT_TRUE(becomes(false)) << "health stayed SERVING with every slot stuck";
  for (auto& t : parked) t.join();
  EXPECT_TRUE(becomes(true));
}

// Calls that would outlive the drain limit are answered UNAVAILABLE by the runtime, and
// Shutdown() returns: SIGTERM once hung in Server::Shutdown behind reads no one answered.
TEST_F(ServerTest, ShutdownEndsWithinTheDrainLimitWhateverCallsAreWaiting) {
  server::RuntimeOptions ro;
  ro.max_inflight = 8;
  ro.max_wait = absl::Minutes(10);
  ro.drain_timeout = absl::Milliseconds(500);
  StartRuntime(ro);
  std::vector<grpc::Status> got(4);
  std::vector<std::thread> parked;
  for (int i = 0; i < 4; ++i) parked.emplace_back([&, i] { got[i] = ParkedRead(absl::InfiniteDuration()); });
  ASSERT_TRUE(crm::testing::WaitUntil("four parked reads", absl::Seconds(5), [&] { return runtime_->inflight() >= 4; },
                                      [&] { return runtime_->inflight(); }));
  ASSERT_EQ(runtime_->inflight(), 4);
  const absl::Time start = absl::Now();
  runtime_->Shutdown();
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  for (auto& t : parked) t.join();
  for (const grpc::Status& s : got) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
    EXPECT_THAT(s.error_message(), ::testing::HasSubstr("shutting down"));
  }
  EXPECT_EQ(runtime_->inflight(), 0);
}

// Method names clients make up must not become label values.
TEST_F(ServerTest, UnknownMethodsShareOneMetricsSeries) {
  grpc::GenericStub generic(channel_);
  for (int i = 0; i < 50; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    grpc::ByteBuffer resp;
    grpc::Status got;
    absl::Notification done;
    generic.UnaryCall(&ctx, absl::StrCat("/made.up.Service", i, "/Method", i), grpc::StubOptions(), nullptr, &resp,
                      [&](grpc::Status s) {
                        got = s;
                        done.Notify();
                      });
    done.WaitForNotification();
    EXPECT_EQ(got.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  }
  customers::v1::ListCustomersRequest req;
  customers::v1::ListCustomersResponse resp;
  ASSERT_TRUE(stub_->ListCustomers(Ctx().get(), req, &resp).ok());
  std::set<std::string> methods;
  for (const auto& family : metrics_->registry().Collect()) {
    if (family.name != "grpc_server_handled_total") continue;
    for (const auto& metric : family.metric) {
      for (const auto& label : metric.label) {
        if (label.name == "grpc_method") methods.insert(label.value);
      }
    }
  }
  EXPECT_EQ(methods, (std::set<std::string>{"ListCustomers", "unknown"}));
}

// Bulk streams: an import that sends its options and then nothing held one of two global
// slots for good, so two stalled imports blocked every other user. Now a user holds at most
// one import, and an idle stream is cancelled, giving its slot back.
TEST_F(ServerTest, StalledImportsHoldNoSlotBeyondTheirUserAndTheIdleTimeout) {
  server::RuntimeOptions ro;
  ro.max_inflight = 16;
  ro.stream_idle_timeout = absl::Milliseconds(700);
  StartRuntime(ro);
  grpc::ClientContext stalled_ctx;
  auto stalled = OpenImport(&stalled_ctx, "alice");
  customers::v1::ImportCustomersResponse first;
  ASSERT_TRUE(stalled->Read(&first));  // the server took it: the header came back
  // Alice's second import is refused; Bob's is served.
  grpc::ClientContext second_ctx;
  auto second = OpenImport(&second_ctx, "alice");
  customers::v1::ImportCustomersResponse r;
  while (second->Read(&r)) {
  }
  const grpc::Status refused = second->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), ::testing::HasSubstr("the most one user may"));
  grpc::ClientContext bob_ctx;
  auto bob = OpenImport(&bob_ctx, "bob");
  EXPECT_TRUE(bob->Read(&r));
  bob->WritesDone();
  while (bob->Read(&r)) {
  }
  EXPECT_TRUE(bob->Finish().ok());
  // Alice's stalled stream is cancelled once idle; her next import is served.
  const absl::Time start = absl::Now();
  while (stalled->Read(&r)) {
  }
  EXPECT_FALSE(stalled->Finish().ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  bool served = false;
  for (int i = 0; i < 50 && !served; ++i) {
    grpc::ClientContext again_ctx;
    auto again = OpenImport(&again_ctx, "alice");
    served = again->Read(&r);
    again->WritesDone();
    while (again->Read(&r)) {
    }
    served = again->Finish().ok();
    if (!served) absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(served);
}

// A user's import slot is free by the time the client hears that the import ended: the next
// import started on that answer is served, every time. (It was given back after the status
// was sent, so a quick client was refused for the import it had just finished.)
TEST_F(ServerTest, AnImportsSlotIsFreeWhenItsClientHearsTheEnd) {
  server::RuntimeOptions ro;
  ro.max_inflight = 16;
  StartRuntime(ro);
  for (int i = 0; i < 30; ++i) {
    grpc::ClientContext ctx;
    auto stream = OpenImport(&ctx, "alice");
    stream->WritesDone();
    customers::v1::ImportCustomersResponse r;
    while (stream->Read(&r)) {
    }
    const grpc::Status s = stream->Finish();
    ASSERT_TRUE(s.ok()) << "import " << i << ": " << s.error_message();
  }
}

// The permission matrix (the rpcs' access options) is checked by the runtime before the
// service sees a call, and a refused call holds no slot. (Tokens with a role that is none of
// the four are refused earlier, by authentication.)
TEST_F(ServerTest, RolesTheMethodDoesNotAdmitAreRefusedBeforeTheService) {
  auto reason_of = [](const grpc::Status& s) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
    auto info = GetErrorInfo(FromGrpcStatus(s));
    return info ? info->reason() : std::string("<none>");
  };
  customers::v1::UpdatePoolPolicyRequest policy;
  policy.mutable_policy()->set_return_after_days(30);
  customers::v1::PoolPolicy got;
  for (const char* role : {"rep", "manager", "service"}) {
    EXPECT_EQ(reason_of(stub_->UpdatePoolPolicy(Ctx(role).get(), policy, &got)), "ROLE_NOT_ADMITTED") << role;
  }
  auto by_admin = stub_->UpdatePoolPolicy(Ctx("admin").get(), policy, &got);
  EXPECT_TRUE(by_admin.ok()) << by_admin.error_message();
  customers::v1::ListChannelCostsRequest costs;
  customers::v1::ListChannelCostsResponse listed;
  EXPECT_EQ(reason_of(stub_->ListChannelCosts(Ctx("rep").get(), costs, &listed)), "ROLE_NOT_ADMITTED");
  EXPECT_TRUE(stub_->ListChannelCosts(Ctx("manager").get(), costs, &listed).ok());
  EXPECT_EQ(runtime_->inflight(), 0);
  customers::v1::ListCustomersRequest list;
  customers::v1::ListCustomersResponse customers;
  EXPECT_TRUE(stub_->ListCustomers(Ctx("rep").get(), list, &customers).ok());
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
