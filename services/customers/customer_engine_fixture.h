#ifndef CRM_SERVICES_CUSTOMERS_CUSTOMER_ENGINE_FIXTURE_H_
#define CRM_SERVICES_CUSTOMERS_CUSTOMER_ENGINE_FIXTURE_H_

// The customers engine test fixture (tests only): the engine on the shared harness
// (libs/testing/engine_harness.h), and the commands most tests start from.
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "libs/common/caller_testing.h"
#include "libs/common/status_testing.h"
#include "libs/eventlog/log_testing.h"
#include "libs/testing/engine_harness.h"
#include "services/customers/customer_engine.h"

namespace crm::customers::enginetest {

using crm::testing::kAdmin;
using crm::testing::kManager;
using crm::testing::kRep;
using crm::testing::kRep2;
using crm::testing::Service;

class CustomerEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto h = crm::testing::EngineHarness::Create({.name = "engine"});
    ASSERT_TRUE(h.ok()) << h.status();
    h_ = *std::move(h);
    Open();
  }
  // (Re)opens the engine on projections in <dir>/<proj>: a new name rebuilds them from the log.
  void Open(const std::string& proj = "") {
    const absl::Status s = h_->Open(Service::kCustomers, proj);
    ASSERT_TRUE(s.ok()) << s;
  }

  // Reopens the engine on a log that refuses (UNAVAILABLE, nothing written) the first append
  // holding an event of `event_type` (a full name), as if the process died just before it.
  void RefuseNext(const std::string& event_type) {
    h_->Close(Service::kCustomers);
    h_->UseLog(std::make_unique<eventlog::testing::FaultyLog>(log(), eventlog::testing::EventTypeIs(event_type)));
    Open();
  }
  // The restart after such a crash: the log reopened from its folder and the engine on
  // projections built afresh from it in <dir>/<proj>.
  void Restart(const std::string& proj) {
    const absl::Status s = h_->ReopenLog();
    ASSERT_TRUE(s.ok()) << s;
    Open(proj);
  }

  // A restart during which the log refuses the first append of `event_type` again: a crash
  // while the restart completes what the first crash interrupted.
  void RestartRefusing(const std::string& proj, const std::string& event_type) {
    const absl::Status s = h_->ReopenLog();
    ASSERT_TRUE(s.ok()) << s;
    h_->UseLog(std::make_unique<eventlog::testing::FaultyLog>(log(), eventlog::testing::EventTypeIs(event_type)));
    Open(proj);
  }

  CustomerEngine* engine() const { return h_->customers(); }
  projection::ProjectionDb* db() const { return h_->db(Service::kCustomers); }
  eventlog::Log& log() const { return h_->log(); }
  ManualClock& clock() const { return h_->clock(); }
  const std::string& dir() const { return h_->dir(); }

  template <typename Fn, typename Req>
  auto Sync(Fn fn, const Caller& c, const Req& req) {
    return h_->Sync(fn, c, req);
  }

  absl::StatusOr<v1::Customer> Create(const Caller& c, const std::string& name, const std::string& phone,
                                      const std::string& email = "", const std::string& rid = "") {
    v1::CreateCustomerRequest req;
    req.mutable_customer()->set_display_name(name);
    req.mutable_customer()->set_phone(phone);
    req.mutable_customer()->set_email(email);
    req.set_request_id(rid);
    return Sync(&CustomerCommands::Create, c, req);
  }

  absl::StatusOr<v1::Customer> Get(const Caller& c, const std::string& name) {
    v1::GetCustomerRequest req;
    req.set_name(name);
    return engine()->queries().Get(c, req, absl::Now() + absl::Seconds(5));
  }

  static std::string FieldOf(const absl::Status& s) { return crm::testing::FieldOf(s); }

  std::unique_ptr<crm::testing::EngineHarness> h_;
};

}  // namespace crm::customers::enginetest

#endif  // CRM_SERVICES_CUSTOMERS_CUSTOMER_ENGINE_FIXTURE_H_
