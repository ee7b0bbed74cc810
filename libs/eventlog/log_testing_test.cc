// FaultyLog: the decorator the crash tests stop a command with must refuse exactly the append
// it was asked to, write nothing for it, and let every other append through.
#include "libs/eventlog/log_testing.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "libs/common/temp_dir_testing.h"
#include "libs/eventlog/embedded_log.h"

namespace crm::eventlog::testing {
namespace {

constexpr char kTopic[] = "faulty-test";

// An envelope of `event_type` for `id`, as a message.
Message EventMessage(const std::string& id, const std::string& event_type) {
  common::v1::EventEnvelope env;
  env.set_event_id(absl::StrCat(id, "-", event_type));
  env.set_event_type(event_type);
  env.set_aggregate_type("x");
  env.set_aggregate_id(id);
  env.set_aggregate_version(1);
  env.mutable_recorded_at()->set_seconds(1767225600);
  env.mutable_payload()->set_type_url("type.googleapis.com/crm.test.v1.Nothing");
  return Message{env.SerializeAsString(), {}};
}

absl::Status AppendAndWait(Writer& w, const std::string& key, Message m, bool expecting) {
  absl::Notification n;
  absl::Status out;
  auto done = [&](absl::StatusOr<Appended> a) {
    out = a.status();
    n.Notify();
  };
  if (expecting) {
    w.AppendExpecting(key, {std::move(m)}, "x/" + key, ExpectedVersion::NoStream(), done);
  } else {
    w.Append(key, {std::move(m)}, done);
  }
  EXPECT_TRUE(n.WaitForNotificationWithTimeout(absl::Seconds(10)));
  return out;
}

TEST(FaultyLogTest, RefusesOnlyTheNthMatchingAppendAndWritesNothingForIt) {
  const std::string dir = NewTestDir("faulty-log");
  {
    auto base = OpenEmbeddedLog({.path = dir});
    ASSERT_TRUE(base.ok()) << base.status();
    ASSERT_TRUE((*base)->CreateTopic(kTopic, 1).ok());
    FaultyLog faulty(**base, EventTypeIs("t.Second"), 2);
    auto w = faulty.OpenWriter(kTopic);
    ASSERT_TRUE(w.ok()) << w.status();
    EXPECT_TRUE(AppendAndWait(**w, "a", EventMessage("a", "t.Second"), false).ok());  // 1st match: written
    EXPECT_TRUE(AppendAndWait(**w, "b", EventMessage("b", "t.First"), false).ok());   // no match
    const absl::Status refused = AppendAndWait(**w, "c", EventMessage("c", "t.Second"), true);  // 2nd match
    EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
    EXPECT_EQ(faulty.refused(), 1);
    EXPECT_TRUE(AppendAndWait(**w, "d", EventMessage("d", "t.Second"), false).ok());  // later: written
    EXPECT_EQ(*EventTypesOf(**base, kTopic, "a"), std::vector<std::string>{"t.Second"});
    EXPECT_EQ(*EventTypesOf(**base, kTopic, "b"), std::vector<std::string>{"t.First"});
    EXPECT_TRUE(EventTypesOf(**base, kTopic, "c")->empty()) << "the refused append wrote nothing";
    EXPECT_EQ(*EventTypesOf(**base, kTopic, "d"), std::vector<std::string>{"t.Second"});
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace crm::eventlog::testing
