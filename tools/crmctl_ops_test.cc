#include "tools/crmctl_ops.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "crm/customers/v1/customers_events.pb.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "libs/common/clock.h"
#include "libs/eventlog/embedded_log.h"
#include "libs/eventlog/envelope.h"
#include "libs/projection/projection_db.h"
#include "libs/projection/rebuild.h"
#include "rocksdb/db.h"
#include "services/customers/customer_engine.h"

namespace crm::ctl {
namespace {

namespace fs = std::filesystem;
using eventlog::EventEnvelope;

class VerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           absl::StrCat("verify_test_", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "scratch");
    auto log = eventlog::OpenEmbeddedLog({.path = (dir_ / "log").string()});
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = *std::move(log);
    ASSERT_TRUE(log_->CreateTopic(customers::kTopic, customers::kPartitions).ok());
    auto w = log_->OpenWriter(customers::kTopic);
    ASSERT_TRUE(w.ok());
    writer_ = *std::move(w);
  }
  void TearDown() override {
    writer_.reset();
    log_.reset();
    fs::remove_all(dir_);
  }

  // A customer's event at `version`, chained to `prev_hash`; `tamper` edits it after sealing.
  EventEnvelope Event(const std::string& id, int64_t version, const std::string& prev_hash,
                      const std::string& event_id = "") {
    EventEnvelope e;
    e.set_event_id(event_id.empty() ? absl::StrCat("0190f1c4-0000-7000-8000-", id, "-", version) : event_id);
    e.set_aggregate_type("customer");
    e.set_aggregate_id(id);
    e.set_aggregate_version(version);
    *e.mutable_recorded_at() = google::protobuf::util::TimeUtil::SecondsToTimestamp(1767225600 + version);
    customers::v1::CustomerUpdated u;
    u.add_changed_fields("notes");
    u.mutable_profile()->set_notes(absl::StrCat("v", version));
    e.set_event_type(customers::v1::CustomerUpdated::descriptor()->full_name());
    e.mutable_payload()->PackFrom(u);
    eventlog::StreamSealer(version - 1, prev_hash, "/crm/customers").Seal(e);
    return e;
  }
  void Append(const EventEnvelope& e) {
    ASSERT_TRUE(writer_->AppendSync(e.aggregate_id(), {{e.SerializeAsString(), {}}}).ok());
  }

  fs::path dir_;
  std::unique_ptr<eventlog::Log> log_;
  std::unique_ptr<eventlog::Writer> writer_;
};

TEST_F(VerifyTest, FindsBrokenChainsGapsAndRepeatedIds) {
  EventEnvelope a1 = Event("a", 1, ""), a2 = Event("a", 2, a1.hash());
  Append(a1);
  Append(a2);
  int problems = 0;
  nlohmann::json ok = VerifyChains(*log_, customers::kTopic, &problems);
  EXPECT_EQ(problems, 0) << ok.dump();
  EXPECT_EQ(ok["events"], 2);
  EXPECT_EQ(ok["aggregates"], 1);

  EventEnvelope b1 = Event("b", 1, "");
  Append(b1);
  Append(Event("b", 3, b1.hash()));  // version 2 missing
  EventEnvelope c1 = Event("c", 1, "");
  EventEnvelope c2 = Event("c", 2, c1.hash());
  c2.mutable_actor()->set_user_id("mallory");  // changed after sealing
  Append(c1);
  Append(c2);
  Append(Event("d", 1, "", a1.event_id()));  // an event id used before
  problems = 0;
  nlohmann::json bad = VerifyChains(*log_, customers::kTopic, &problems);
  EXPECT_EQ(problems, 3) << bad.dump(2);
  const std::string all = bad["problems"].dump();
  EXPECT_NE(all.find("customer/b v3: expected version 2"), std::string::npos) << all;
  EXPECT_NE(all.find("customer/c v2"), std::string::npos) << all;
  EXPECT_NE(all.find("seen before"), std::string::npos) << all;
}

TEST_F(VerifyTest, FindsAProjectionThatDiffersFromARebuild) {
  EventEnvelope a1 = Event("a", 1, "");
  Append(a1);
  writer_.reset();
  const projection::ProjectionSpec spec = customers::CustomerEngine::Spec(customers::kTopic, customers::kPartitions);
  ASSERT_TRUE(projection::Rebuild(*log_, spec, (dir_ / "customers").string()).ok());

  int problems = 0;
  nlohmann::json same = VerifyProjections(*log_, dir_.string(), {"customers"}, (dir_ / "scratch" / "1").string(),
                                          &problems);
  EXPECT_EQ(problems, 0) << same.dump(2);
  ASSERT_EQ(same.size(), 1u);
  EXPECT_TRUE(same[0]["equal"].get<bool>());

  {  // a row the log does not explain
    auto db = projection::ProjectionDb::Open({.path = (dir_ / "customers").string()});
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->db()->Put(rocksdb::WriteOptions(), "c/forged", "x").ok());
  }
  problems = 0;
  nlohmann::json differs = VerifyProjections(*log_, dir_.string(), {"customers"}, (dir_ / "scratch" / "2").string(),
                                             &problems);
  EXPECT_EQ(problems, 1) << differs.dump(2);
  EXPECT_FALSE(differs[0]["equal"].get<bool>());
}

// A data folder whose projections were deleted held nothing to compare and verified as clean.
TEST_F(VerifyTest, CountsAMissingProjectionFolderAsAProblem) {
  Append(Event("a", 1, ""));
  writer_.reset();
  const projection::ProjectionSpec spec = customers::CustomerEngine::Spec(customers::kTopic, customers::kPartitions);
  ASSERT_TRUE(projection::Rebuild(*log_, spec, (dir_ / "customers").string()).ok());

  int problems = 0;
  nlohmann::json rows = VerifyProjections(*log_, dir_.string(), {"customers", "tasks"},
                                          (dir_ / "scratch" / "1").string(), &problems);
  EXPECT_EQ(problems, 1) << rows.dump(2);
  ASSERT_EQ(rows.size(), 2u) << rows.dump(2);
  EXPECT_TRUE(rows[0]["equal"].get<bool>()) << rows.dump(2);
  EXPECT_EQ(rows[1]["projection"], "tasks");
  EXPECT_NE(rows[1]["error"].get<std::string>().find("tasks projections are missing"), std::string::npos)
      << rows.dump(2);

  fs::remove_all(dir_ / "customers");
  problems = 0;
  rows = VerifyProjections(*log_, dir_.string(), {"customers"}, (dir_ / "scratch" / "2").string(), &problems);
  EXPECT_EQ(problems, 1) << rows.dump(2);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_TRUE(rows[0].contains("error")) << rows.dump(2);
}

}  // namespace
}  // namespace crm::ctl
