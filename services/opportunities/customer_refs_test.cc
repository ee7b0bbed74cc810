// The opportunities service's view of customers, kept from real customers-topic records.
#include "services/opportunities/customer_refs.h"

#include <unistd.h>

#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "crm/customers/v1/customers_events.pb.h"
#include "gtest/gtest.h"
#include "libs/eventlog/embedded_log.h"
#include "libs/eventlog/envelope.h"
#include "libs/projection/follower.h"
#include "libs/common/temp_dir_testing.h"

namespace crm::opportunities {
namespace {

namespace cv1 = crm::customers::v1;

class CustomerRefsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = NewTestDir("refs");
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    log_ = *eventlog::OpenEmbeddedLog({.path = dir_ + "/log"});
    ASSERT_TRUE(log_->CreateTopic(topics::kCustomers, 4).ok());
    writer_ = *log_->OpenWriter(topics::kCustomers);
    db_ = *projection::ProjectionDb::Open({.path = dir_ + "/proj"});
    projection::Follower::Options o;
    o.topic = topics::kCustomers;
    o.poll_timeout = absl::Milliseconds(20);
    o.retry_after = absl::Milliseconds(20);
    follower_ = *projection::Follower::Start(log_.get(), db_.get(), o,
                                             [this](const eventlog::Record& r, projection::Batch& b) {
                                               return ApplyCustomerRecord(*db_, r, b);
                                             });
  }
  void TearDown() override {
    follower_.reset();
    db_.reset();
    writer_.reset();
    log_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Appends one event of aggregate `type`/`id` as the customers service would, and waits until
  // the view has it.
  void Emit(const std::string& id, const google::protobuf::Message& payload, const std::string& type = "customer") {
    common::v1::EventEnvelope e;
    e.set_event_id(absl::StrCat("ev-", ++seq_));
    e.set_event_type(payload.GetDescriptor()->full_name());
    e.set_aggregate_type(type);
    e.set_aggregate_id(id);
    e.mutable_payload()->PackFrom(payload);
    e.mutable_recorded_at()->set_seconds(1767225600 + seq_);
    *e.mutable_occurred_at() = e.recorded_at();
    Append(id, chains_.try_emplace(id, 0, "", "/crm/customers").first->second.Seal(e).value);
  }
  void Append(const std::string& key, const std::string& value) {
    auto a = writer_->AppendSync(key, {{value, {}}});
    ASSERT_TRUE(a.ok()) << a.status();
    common::v1::ConsistencyToken t;
    auto* p = t.add_positions();
    p->set_topic(topics::kCustomers);
    p->set_partition(a->partition);
    p->set_offset(a->offsets.back());
    ASSERT_TRUE(db_->WaitFor(t, absl::Now() + absl::Seconds(10)).ok()) << follower_->status();
  }
  CustomerView View(const std::string& id) { return *ReadCustomerView(db_->db(), id); }

  int seq_ = 0;
  std::map<std::string, eventlog::StreamSealer> chains_;
  std::string dir_;
  std::unique_ptr<eventlog::Log> log_;
  std::unique_ptr<eventlog::Writer> writer_;
  std::unique_ptr<projection::ProjectionDb> db_;
  std::unique_ptr<projection::Follower> follower_;
};

TEST_F(CustomerRefsTest, FollowsOwnershipPoolRecycleBinMergesAndPurges) {
  EXPECT_FALSE(View("c1").exists);
  cv1::CustomerCreated created;
  created.mutable_profile()->set_owner_id("u1");
  created.mutable_profile()->set_team_id("east");
  Emit("c1", created);
  CustomerView v = View("c1");
  EXPECT_TRUE(v.exists);
  EXPECT_EQ(v.owner_id, "u1");
  EXPECT_EQ(v.team_id, "east");

  Emit("c1", cv1::FollowUpRecorded());  // changes nothing here
  Emit("c1", cv1::CustomerReturnedToPool());
  EXPECT_EQ(View("c1").owner_id, "");
  cv1::CustomerClaimed claimed;
  claimed.set_owner_id("u2");
  claimed.set_team_id("east");
  Emit("c1", claimed);
  EXPECT_EQ(View("c1").owner_id, "u2");
  cv1::CustomerUpdated moved;
  moved.mutable_profile()->set_team_id("west");
  moved.mutable_profile()->set_owner_id("ignored: not in changed_fields");
  moved.add_changed_fields("team_id");
  Emit("c1", moved);
  EXPECT_EQ(View("c1").team_id, "west");
  EXPECT_EQ(View("c1").owner_id, "u2");

  Emit("c1", cv1::CustomerDeleted());
  EXPECT_TRUE(View("c1").deleted);
  Emit("c1", cv1::CustomerUndeleted());
  EXPECT_FALSE(View("c1").deleted);
  cv1::CustomerMergedInto merged;
  merged.set_survivor_id("c2");
  Emit("c1", merged);
  EXPECT_EQ(View("c1").merged_into, "c2");
  Emit("c1", cv1::CustomerUnmerged());
  EXPECT_EQ(View("c1").merged_into, "");
  Emit("c1", cv1::CustomerDeleted());
  Emit("c1", cv1::CustomerPurged());
  EXPECT_FALSE(View("c1").exists);
}

TEST_F(CustomerRefsTest, LeadsAndSettingsAreNotCustomers) {
  cv1::LeadCreated lead;
  Emit("l1", lead, "lead");
  EXPECT_FALSE(View("l1").exists);
  EXPECT_TRUE(follower_->status().ok());
}

TEST_F(CustomerRefsTest, ARecordThatIsNotAnEnvelopeHaltsTheViewVisibly) {
  ASSERT_TRUE(writer_->AppendSync("c9", {{"not a protobuf envelope \xff\xff", {}}}).ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (follower_->status().ok() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(follower_->status().code(), absl::StatusCode::kDataLoss) << follower_->status();
}

}  // namespace
}  // namespace crm::opportunities
