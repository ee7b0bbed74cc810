#include "libs/server/service_module.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crm::server {
namespace {

using ::testing::ElementsAre;

// A host that records when it opens and closes.
class RecordingHost final : public ServiceHost {
 public:
  RecordingHost(std::string name, std::vector<std::string>* events) : name_(std::move(name)), events_(events) {
    events_->push_back("open " + name_);
  }
  ~RecordingHost() override { events_->push_back("close " + name_); }
  std::vector<grpc::Service*> services() override { return {}; }
  void StartLoops() override { events_->push_back("loops " + name_); }

 private:
  std::string name_;
  std::vector<std::string>* events_;
};

ServiceModule Recording(const std::string& name, std::vector<std::string>* events, std::vector<std::string>* dirs) {
  ServiceModule m{.name = name, .owns = name == "b" ? "" : "topic." + name};
  m.open = [name, events, dirs](eventlog::Log*, Runtime*, HostOptions o,
                                const ModuleFlags*) -> absl::StatusOr<std::unique_ptr<ServiceHost>> {
    dirs->push_back(o.dir);
    return std::make_unique<RecordingHost>(name, events);
  };
  return m;
}

TEST(ModuleSetTest, OpensInOrderAndClosesInReverse) {
  std::vector<std::string> events, dirs;
  const ServiceModule a = Recording("a", &events, &dirs), b = Recording("b", &events, &dirs),
                      c = Recording("c", &events, &dirs);
  const std::vector<const ServiceModule*> modules = {&a, &b, &c};
  auto set = ModuleSet::Open(modules, nullptr, nullptr, {.dir = "/data"});
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_THAT(dirs, ElementsAre("/data/a", "/data/b", "/data/c"));
  EXPECT_NE((*set)->host("b"), nullptr);
  EXPECT_EQ((*set)->host("d"), nullptr);
  (*set)->StartLoops();
  set->reset();
  EXPECT_THAT(events, ElementsAre("open a", "open b", "open c", "loops a", "loops b", "loops c", "close c", "close b",
                                  "close a"));
  EXPECT_THAT(OwnedTopics(modules), ElementsAre("topic.a", "topic.c"));
}

TEST(ModuleSetTest, AFailingModuleClosesThoseOpenedAndReturnsItsError) {
  std::vector<std::string> events, dirs;
  const ServiceModule a = Recording("a", &events, &dirs), b = Recording("b", &events, &dirs),
                      d = Recording("d", &events, &dirs);
  ServiceModule broken{.name = "broken"};
  broken.open = [](eventlog::Log*, Runtime*, HostOptions, const ModuleFlags*)
      -> absl::StatusOr<std::unique_ptr<ServiceHost>> { return absl::DataLossError("broken: the log lost records"); };
  const std::vector<const ServiceModule*> modules = {&a, &b, &broken, &d};
  auto set = ModuleSet::Open(modules, nullptr, nullptr, {.dir = "/data"});
  EXPECT_EQ(set.status(), absl::DataLossError("broken: the log lost records"));
  EXPECT_THAT(events, ElementsAre("open a", "open b", "close b", "close a"));
}

TEST(ModuleSetTest, WithoutADashboardModuleStartDashboardIsNotFound) {
  std::vector<std::string> events, dirs;
  const ServiceModule a = Recording("a", &events, &dirs);
  const std::vector<const ServiceModule*> modules = {&a};
  auto set = ModuleSet::Open(modules, nullptr, nullptr, {.dir = "/data"});
  ASSERT_TRUE(set.ok());
  EXPECT_EQ((*set)->StartDashboard("127.0.0.1:0").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ((*set)->dashboard_port(), 0);
}

}  // namespace
}  // namespace crm::server
