#include "services/registry/registry.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/clock.h"
#include "libs/common/temp_dir_testing.h"
#include "libs/eventlog/embedded_log.h"
#include "libs/server/engine_host.h"
#include "libs/server/kernel_metrics.h"
#include "libs/server/metrics.h"
#include "libs/topics/topics.h"
#include "services/customers/customer_engine.h"
#include "services/tickets/ticket_engine.h"

namespace crm::registry {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

std::vector<std::string> Names(std::span<const server::ServiceModule* const> modules) {
  std::vector<std::string> names;
  for (const server::ServiceModule* m : modules) names.push_back(m->name);
  return names;
}

TEST(RegistryTest, ListsEveryServiceInCrmdsOrder) {
  EXPECT_THAT(Names(Modules()),
              ElementsAre("customers", "opportunities", "tasks", "tickets", "analytics", "integration"));
  EXPECT_THAT(Names(CrmdModules()), ElementsAre("customers", "opportunities", "tasks", "tickets", "analytics"));
}

TEST(RegistryTest, FindsEachModuleByItsNameAndNothingElse) {
  for (const server::ServiceModule* m : Modules()) EXPECT_EQ(FindModule(m->name), m) << m->name;
  EXPECT_EQ(FindModule(""), nullptr);
  EXPECT_EQ(FindModule("crm-customers"), nullptr);
  EXPECT_EQ(FindModule("Customers"), nullptr);
}

TEST(RegistryTest, EveryServiceTopicIsOwnedByExactlyOneModule) {
  std::map<std::string, std::vector<std::string>> owners;
  for (const server::ServiceModule* m : Modules()) {
    if (!m->owns.empty()) owners[m->owns].push_back(m->name);
  }
  for (const std::string& topic : topics::ServiceTopics()) {
    EXPECT_EQ(owners[topic].size(), 1u) << topic;
  }
  // And no module owns a topic that is not a service topic.
  EXPECT_EQ(owners.size(), topics::ServiceTopics().size());
}

TEST(RegistryTest, CrmdSealsEveryServiceTopicInOrder) {
  EXPECT_THAT(server::OwnedTopics(CrmdModules()), ElementsAreArray(topics::ServiceTopics()));
}

TEST(RegistryTest, EveryFollowedTopicExistsAndIsAnothers) {
  const std::vector<std::string>& all = topics::AllTopics();
  for (const server::ServiceModule* m : Modules()) {
    std::set<std::string> seen;
    for (const std::string& t : m->follows) {
      EXPECT_NE(std::find(all.begin(), all.end(), t), all.end()) << m->name << " follows " << t;
      EXPECT_NE(t, m->owns) << m->name;
      EXPECT_TRUE(seen.insert(t).second) << m->name << " follows " << t << " twice";
    }
  }
}

TEST(RegistryTest, OwnedAndFollowedTopicsAreTheEnginesSources) {
  // EngineModule reads them from the engine's spec: check a few against the engines.
  EXPECT_EQ(FindModule("customers")->owns, topics::kCustomers);
  EXPECT_THAT(FindModule("customers")->follows, ElementsAre(topics::kOpportunities, topics::kTasks));
  EXPECT_THAT(FindModule("tasks")->follows, ElementsAre(topics::kCustomers, topics::kOpportunities, topics::kTickets));
  EXPECT_EQ(FindModule("analytics")->owns, "");
  EXPECT_THAT(FindModule("analytics")->follows,
              ElementsAre(topics::kCustomers, topics::kOpportunities, topics::kTasks, topics::kTickets));
  for (const server::ServiceModule* m : Modules()) {
    if (!m->spec) continue;
    std::vector<std::string> topics_of_spec = m->spec().Topics();
    std::vector<std::string> declared;
    if (!m->owns.empty()) declared.push_back(m->owns);
    declared.insert(declared.end(), m->follows.begin(), m->follows.end());
    EXPECT_EQ(topics_of_spec, declared) << m->name;
  }
}

TEST(RegistryTest, ModulesWithProjectionsHaveASpecAndTheOthersNone) {
  for (const server::ServiceModule* m : Modules()) {
    EXPECT_EQ(static_cast<bool>(m->spec), m->kafka.projections) << m->name;
    EXPECT_TRUE(static_cast<bool>(m->open)) << m->name;
  }
}

int PortOf(const std::string& address) {
  int port = -1;
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) return -1;
  return port;
}

TEST(RegistryTest, KafkaMainsDefaultToDistinctPorts) {
  std::map<int, std::string> used;  // port -> who
  auto use = [&](const std::string& who, const std::string& address) {
    const int port = PortOf(address);
    ASSERT_GT(port, 0) << who << ": " << address;
    auto [it, inserted] = used.emplace(port, who);
    EXPECT_TRUE(inserted) << who << " and " << it->second << " both default to port " << port;
  };
  for (const server::ServiceModule* m : Modules()) {
    use(m->name + " --listen", m->kafka.listen);
    use(m->name + " --metrics-listen", m->kafka.metrics_listen);
    if (m->dashboard && !m->kafka.dashboard_listen.empty()) use(m->name + " --dashboard-listen", m->kafka.dashboard_listen);
    EXPECT_EQ(m->dashboard, !m->kafka.dashboard_listen.empty()) << m->name;
  }
}

TEST(RegistryTest, CrmdHasOneDashboardForItsOneFlag) {
  int dashboards = 0;
  for (const server::ServiceModule* m : CrmdModules()) dashboards += m->dashboard ? 1 : 0;
  EXPECT_EQ(dashboards, 1);
}

// crmd's composition on an embedded log: every crmd module opens, serves its gRPC services,
// and hands out its engine.
TEST(RegistryTest, CrmdModulesOpenTogetherOnOneLog) {
  const std::string dir = NewTestDir("registry");
  auto log = eventlog::OpenEmbeddedLog({.path = dir + "/log"});
  ASSERT_TRUE(log.ok()) << log.status();
  auto metrics = server::Metrics::Start("");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  server::Authenticator auth(std::string(48, 'k'), SystemClock::Get());
  server::Runtime runtime({.listen = "127.0.0.1:0"}, &auth, metrics->get());
  auto set = server::ModuleSet::Open(CrmdModules(), log->get(), &runtime,
                                     {.dir = dir, .clock = SystemClock::Get(), .metrics = metrics->get(),
                                      .scheduler_interval = absl::ZeroDuration()});
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ((*set)->services().size(), 2u + 3u + 2u + 3u + 1u);
  EXPECT_NE(server::EngineOf<customers::CustomerEngine>((*set)->host("customers")), nullptr);
  EXPECT_NE(server::EngineOf<tickets::TicketEngine>((*set)->host("tickets")), nullptr);
  EXPECT_EQ(server::EngineOf<tickets::TicketEngine>((*set)->host("customers")), nullptr);
  EXPECT_EQ((*set)->host("integration"), nullptr);
  ASSERT_TRUE(runtime.Start((*set)->services()).ok());
  EXPECT_EQ((*set)->dashboard_port(), 0);
  ASSERT_TRUE((*set)->StartDashboard("127.0.0.1:0").ok());
  EXPECT_GT((*set)->dashboard_port(), 0);
  (*set)->StartLoops();
  // Every service with a write kernel exports its counters (crm_kernel_*) under its name.
  std::vector<std::string> exported;
  for (const auto& [service, counters] : (*metrics)->kernel().Read()) exported.push_back(service);
  EXPECT_THAT(exported, ElementsAre("customers", "opportunities", "tasks", "tickets"));
  runtime.Shutdown();
  set->reset();
  EXPECT_TRUE((*metrics)->kernel().Read().empty()) << "a closed engine is no longer read";
  for (const server::ServiceModule* m : CrmdModules()) {
    EXPECT_TRUE(std::filesystem::exists(dir + "/" + m->name)) << m->name;
  }
}

}  // namespace
}  // namespace crm::registry
