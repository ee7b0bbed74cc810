#include "services/integration/public_relay.h"

#include <filesystem>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "crm/customers/v1/customers_events.pb.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "libs/common/wait_testing.h"
#include "libs/eventlog/embedded_log.h"
#include "libs/eventlog/envelope.h"
#include "nlohmann/json.hpp"
#include "services/integration/public_event.h"

namespace crm::integration {
namespace {

namespace fs = std::filesystem;
using eventlog::EventEnvelope;
using google::protobuf::util::TimeUtil;
using nlohmann::json;

constexpr char kCustomers[] = "crm.customers.events.v1";

class PublicRelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / absl::StrCat("relay_test_", ::testing::UnitTest::GetInstance()->random_seed(),
                                                    "_", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto log = eventlog::OpenEmbeddedLog({.path = (dir_ / "log").string()});
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = *std::move(log);
    ASSERT_TRUE(log_->CreateTopic(kCustomers, 8).ok());
    auto w = log_->OpenWriter(kCustomers);
    ASSERT_TRUE(w.ok());
    writer_ = *std::move(w);
  }
  void TearDown() override {
    writer_.reset();
    log_.reset();
    fs::remove_all(dir_);
  }

  // Appends the next version of customer `id`: created first, then updated.
  void Write(const std::string& id) {
    const int64_t v = ++versions_[id];
    EventEnvelope e;
    e.set_event_id(absl::StrCat("0190f1c4-0000-7000-8000-", id, "-", v));
    e.set_aggregate_type("customer");
    e.set_aggregate_id(id);
    e.set_aggregate_version(v);
    *e.mutable_recorded_at() = TimeUtil::SecondsToTimestamp(1767225600 + v);
    *e.mutable_occurred_at() = TimeUtil::SecondsToTimestamp(1767225000 + v);
    e.mutable_actor()->set_user_id("u1");
    e.mutable_actor()->set_role("rep");
    e.mutable_actor()->set_source(common::v1::ACTOR_SOURCE_API);
    e.set_correlation_id("0190f1c4-1111-7000-8000-000000000000");
    if (v == 1) {
      customers::v1::CustomerCreated c;
      c.set_customer_number(absl::StrCat("C20260101", id));
      c.mutable_profile()->set_display_name(absl::StrCat("上海星辰科技 ", id));
      e.set_event_type(customers::v1::CustomerCreated::descriptor()->full_name());
      e.mutable_payload()->PackFrom(c);
    } else {
      customers::v1::CustomerUpdated u;
      u.add_changed_fields("notes");
      u.mutable_profile()->set_notes(absl::StrCat("call ", v));
      e.set_event_type(customers::v1::CustomerUpdated::descriptor()->full_name());
      e.mutable_payload()->PackFrom(u);
    }
    // Each event alone in its chain: the relay does not check hashes.
    ASSERT_TRUE(writer_->AppendSync(id, {eventlog::StreamSealer(v - 1, "", "/crm/customers").Seal(e)}).ok());
  }

  std::unique_ptr<PublicEventsRelay> StartRelay() {
    auto r = PublicEventsRelay::Start(log_.get(), {.dir = (dir_ / "relay").string(), .topics = {kCustomers},
                                                   .retry_after = absl::Milliseconds(50)});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *std::move(r) : nullptr;
  }

  std::vector<eventlog::Record> PublicRecords() {
    std::vector<eventlog::Position> from;
    for (int p = 0; p < 8; ++p) from.push_back({p, 0});
    auto recs = eventlog::ReadToEnd(*log_, kPublicTopic, from);
    EXPECT_TRUE(recs.ok()) << recs.status();
    return recs.ok() ? *recs : std::vector<eventlog::Record>{};
  }

  // Every source event exactly once on the public topic, each aggregate's in version order.
  void ExpectEachOnceInOrder() {
    std::vector<eventlog::Record> recs = PublicRecords();
    std::map<std::string, int64_t> last;
    std::set<std::string> ids;
    for (const eventlog::Record& r : recs) {
      json ce = json::parse(r.value);
      EXPECT_TRUE(ids.insert(ce["id"].get<std::string>()).second) << "published twice: " << ce["id"];
      const std::string agg = ce["crmaggregateid"];
      EXPECT_EQ(r.key, agg);
      EXPECT_EQ(ce["crmaggregateversion"].get<int64_t>(), last[agg] + 1) << agg;
      last[agg] = ce["crmaggregateversion"].get<int64_t>();
    }
    EXPECT_EQ(last, versions_);
  }

  fs::path dir_;
  std::unique_ptr<eventlog::Log> log_;
  std::unique_ptr<eventlog::Writer> writer_;
  std::map<std::string, int64_t> versions_;
};

TEST_F(PublicRelayTest, PublishesStructuredCloudEvents) {
  Write("c1");
  Write("c1");
  auto relay = StartRelay();
  ASSERT_TRUE(relay->WaitCaughtUp(absl::Seconds(10)).ok());
  std::vector<eventlog::Record> recs = PublicRecords();
  ASSERT_EQ(recs.size(), 2u);
  std::map<std::string, std::string> headers;
  for (const auto& h : recs[0].headers) headers[h.key] = h.value;
  EXPECT_EQ(headers["content-type"], "application/cloudevents+json; charset=UTF-8");
  EXPECT_EQ(headers[kPositionHeader], absl::StrCat(kCustomers, "/", eventlog::PartitionForKey("c1", 8), "/0"));
  json ce = json::parse(recs[0].value);
  EXPECT_EQ(ce["specversion"], "1.0");
  EXPECT_EQ(ce["type"], "crm.customers.v1.CustomerCreated");
  EXPECT_EQ(ce["source"], "/crm/customers");
  EXPECT_EQ(ce["subject"], "customers/c1");
  EXPECT_EQ(ce["time"], "2026-01-01T00:00:01Z");
  EXPECT_EQ(ce["crmoccurredat"], "2025-12-31T23:50:01Z");
  EXPECT_EQ(ce["crmactor"], "u1");
  EXPECT_EQ(ce["crmactorsource"], "api");
  EXPECT_EQ(ce["datacontenttype"], "application/json");
  EXPECT_EQ(ce["dataschema"], "urn:crm-backbone:events:v1:crm.customers.v1.CustomerCreated");
  EXPECT_EQ(ce["data"]["profile"]["display_name"], "上海星辰科技 c1");
  EXPECT_EQ(ce["data"]["customer_number"], "C20260101c1");
  EXPECT_TRUE(ce.contains("traceparent"));
  json update = json::parse(recs[1].value);
  EXPECT_EQ(update["data"]["changed_fields"], json::array({"notes"}));
}

TEST_F(PublicRelayTest, FollowsNewEventsAndRestartsWithoutRepublishing) {
  for (int i = 0; i < 20; ++i) Write(absl::StrCat("c", i % 7));
  auto relay = StartRelay();
  ASSERT_TRUE(relay->WaitCaughtUp(absl::Seconds(10)).ok());
  for (int i = 0; i < 20; ++i) Write(absl::StrCat("c", i % 5));
  ASSERT_TRUE(relay->WaitCaughtUp(absl::Seconds(10)).ok());
  relay.reset();
  relay = StartRelay();
  for (int i = 0; i < 5; ++i) Write(absl::StrCat("d", i));
  ASSERT_TRUE(relay->WaitCaughtUp(absl::Seconds(10)).ok());
  EXPECT_EQ(relay->published(), 5);
  EXPECT_EQ(PublicRecords().size(), 45u);
  ExpectEachOnceInOrder();
}

// A crash after the public records were appended but before their positions were stored:
// the store is put back to what it held before the appends. The restarted relay reads the
// public topic past the stored ends and publishes none of those events again.
TEST_F(PublicRelayTest, CrashBeforeStoringPositionsPublishesNothingTwice) {
  for (int i = 0; i < 10; ++i) Write(absl::StrCat("c", i % 3));
  auto relay = StartRelay();
  ASSERT_TRUE(relay->WaitCaughtUp(absl::Seconds(10)).ok());
  relay.reset();
  fs::copy(dir_ / "relay", dir_ / "relay-before", fs::copy_options::recursive);
  relay = StartRelay();
  for (int i = 0; i < 10; ++i) Write(absl::StrCat("c", i % 4));
  ASSERT_TRUE(relay->WaitCaughtUp(absl::Seconds(10)).ok());
  relay.reset();
  fs::remove_all(dir_ / "relay");
  fs::rename(dir_ / "relay-before", dir_ / "relay");
  relay = StartRelay();
  Write("c9");
  ASSERT_TRUE(relay->WaitCaughtUp(absl::Seconds(10)).ok());
  EXPECT_EQ(relay->published(), 1);
  EXPECT_EQ(PublicRecords().size(), 21u);
  ExpectEachOnceInOrder();

  // The store lost altogether: the whole public topic is read back.
  relay.reset();
  fs::remove_all(dir_ / "relay");
  relay = StartRelay();
  ASSERT_TRUE(relay->WaitCaughtUp(absl::Seconds(10)).ok());
  EXPECT_EQ(relay->published(), 0);
  ExpectEachOnceInOrder();
}

// A record on a service topic that is no event halts the relay there, visibly: skipping it
// would hide it from every consumer.
TEST_F(PublicRelayTest, ARecordThatIsNoEventHaltsTheRelay) {
  Write("c1");
  ASSERT_TRUE(writer_->AppendSync("c1", {{.value = "not an envelope"}}).ok());
  Write("c1");
  auto relay = StartRelay();
  ASSERT_TRUE(crm::testing::WaitUntil("the relay to halt", absl::Seconds(10), [&] { return !relay->status().ok(); },
                                      [&] { return relay->status().ToString(); }));
  EXPECT_EQ(relay->status().code(), absl::StatusCode::kDataLoss) << relay->status();
  EXPECT_NE(relay->status().message().find(absl::StrCat(kCustomers, "/")), std::string::npos);
  EXPECT_EQ(PublicRecords().size(), 0u);  // the poll's batch holds the bad record: none of it
}

TEST(PublicEventTest, AnUnknownTypeGoesOutAsBase64) {
  EventEnvelope e;
  e.set_event_id("e1");
  e.set_event_type("crm.future.v1.SomethingNew");
  e.set_aggregate_type("thing");
  e.set_aggregate_id("t1");
  e.set_aggregate_version(1);
  *e.mutable_recorded_at() = TimeUtil::SecondsToTimestamp(1767225600);
  e.mutable_payload()->set_type_url("type.googleapis.com/crm.future.v1.SomethingNew");
  e.mutable_payload()->set_value("\x08\x01");
  eventlog::Record r{.topic = "crm.future.events.v1", .partition = 2, .offset = 7, .key = "t1",
                     .value = e.SerializeAsString()};
  auto body = PublicEventJson(r);
  ASSERT_TRUE(body.ok()) << body.status();
  json ce = json::parse(*body);
  EXPECT_EQ(ce["datacontenttype"], "application/protobuf");
  EXPECT_EQ(ce["data_base64"], "CAE=");
  EXPECT_EQ(ce["crmposition"], "crm.future.events.v1/2/7");
  EXPECT_FALSE(ce.contains("data"));
}

// Every service's events go out as JSON `data`, as their schemas in docs/events/ say. The
// types are named here only as strings: the relay must know them without its callers
// linking their protos (tasks' and tickets' went out as data_base64 when nothing did).
TEST(PublicEventTest, EveryServicesEventsGoOutAsJson) {
  for (const char* type : {"crm.customers.v1.CustomerCreated", "crm.opportunities.v1.OpportunityCreated",
                           "crm.tasks.v1.TaskCreated", "crm.tasks.v1.RuleCreated", "crm.tickets.v1.TicketCreated",
                           "crm.tickets.v1.SlaBreached"}) {
    EventEnvelope e;
    e.set_event_id("e1");
    e.set_event_type(type);
    e.set_aggregate_type("thing");
    e.set_aggregate_id("t1");
    e.set_aggregate_version(1);
    *e.mutable_recorded_at() = TimeUtil::SecondsToTimestamp(1767225600);
    e.mutable_payload()->set_type_url(absl::StrCat("type.googleapis.com/", type));
    eventlog::Record r{.topic = "crm.x.events.v1", .partition = 0, .offset = 1, .key = "t1",
                       .value = e.SerializeAsString()};
    auto body = PublicEventJson(r);
    ASSERT_TRUE(body.ok()) << type << ": " << body.status();
    json ce = json::parse(*body);
    EXPECT_EQ(ce["datacontenttype"], "application/json") << type;
    EXPECT_EQ(ce["dataschema"], absl::StrCat("urn:crm-backbone:events:v1:", type));
    EXPECT_TRUE(ce.contains("data")) << type;
    EXPECT_FALSE(ce.contains("data_base64")) << type;
  }
}

TEST(PublicEventTest, PositionsRoundTrip) {
  auto p = ParsePosition("crm.tasks.events.v1/3/42");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->topic, "crm.tasks.events.v1");
  EXPECT_EQ(p->partition, 3);
  EXPECT_EQ(p->offset, 42);
  EXPECT_FALSE(ParsePosition("crm.tasks.events.v1/3").has_value());
  EXPECT_FALSE(ParsePosition("crm.tasks.events.v1/x/1").has_value());
  EXPECT_FALSE(ParsePosition("/1/2").has_value());
}

}  // namespace
}  // namespace crm::integration
