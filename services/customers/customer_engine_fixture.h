#ifndef CRM_SERVICES_CUSTOMERS_CUSTOMER_ENGINE_FIXTURE_H_
#define CRM_SERVICES_CUSTOMERS_CUSTOMER_ENGINE_FIXTURE_H_

// The engine test fixture (tests only): an embedded log and projections in a temporary
// directory, a manual clock, and synchronous wrappers of the engine's commands.
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "libs/common/grpc_status.h"
#include "libs/eventlog/embedded_log.h"
#include "services/customers/customer_engine.h"
#include "libs/common/temp_dir_testing.h"

namespace crm::customers::enginetest {

inline const Caller kRep{"u1", "rep", "east"};
inline const Caller kRep2{"u2", "rep", "east"};
inline const Caller kManager{"m1", "manager", "east"};
inline const Caller kAdmin{"a1", "admin", ""};

class CustomerEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = NewTestDir("engine");
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    log_ = *eventlog::OpenEmbeddedLog({.path = dir_ + "/log"});
    Open();
  }
  void TearDown() override {
    engine_.reset();
    db_.reset();
    log_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Open(const std::string& proj = "proj") {
    engine_.reset();
    db_.reset();
    int64_t rebuilt = 0;
    db_ = *CustomerEngine::OpenProjections(*log_, dir_ + "/" + proj, {.clock = &clock_}, &rebuilt);
    auto e = CustomerEngine::Open(log_.get(), db_.get(), {.clock = &clock_});
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = std::move(*e);
  }

  template <typename Req>
  absl::StatusOr<v1::Customer> Sync(void (CustomerEngine::*fn)(const Caller&, const Req&, CustomerEngine::Done),
                                    const Caller& c, const Req& req) {
    absl::Notification n;
    absl::StatusOr<v1::Customer> out;
    (engine_.get()->*fn)(c, req, [&](absl::StatusOr<v1::Customer> r) {
      out = std::move(r);
      n.Notify();
    });
    n.WaitForNotification();
    return out;
  }

  absl::StatusOr<v1::Customer> Create(const Caller& c, const std::string& name, const std::string& phone,
                                      const std::string& email = "", const std::string& rid = "") {
    v1::CreateCustomerRequest req;
    req.mutable_customer()->set_display_name(name);
    req.mutable_customer()->set_phone(phone);
    req.mutable_customer()->set_email(email);
    req.set_request_id(rid);
    return Sync(&CustomerEngine::Create, c, req);
  }

  absl::StatusOr<v1::Customer> Get(const Caller& c, const std::string& name) {
    v1::GetCustomerRequest req;
    req.set_name(name);
    return engine_->Get(c, req, absl::Now() + absl::Seconds(5));
  }

  static std::string FieldOf(const absl::Status& s) {
    auto bad = GetBadRequest(s);
    return bad && bad->field_violations_size() ? bad->field_violations(0).field() : "";
  }

  ManualClock clock_{absl::FromUnixSeconds(1767225600)};  // 2026-01-01 08:00 in Beijing
  std::string dir_;
  std::unique_ptr<eventlog::Log> log_;
  std::unique_ptr<projection::ProjectionDb> db_;
  std::unique_ptr<CustomerEngine> engine_;
};

}  // namespace crm::customers::enginetest

#endif  // CRM_SERVICES_CUSTOMERS_CUSTOMER_ENGINE_FIXTURE_H_
