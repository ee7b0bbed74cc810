// crm-devbroker: a Kafka-protocol broker for development and tests: librdkafka's mock cluster
// on 127.0.0.1 (in memory; everything is lost when it stops).
#include <cstdio>
#include <fstream>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/eventlog/mock_cluster.h"
#include "libs/server/process.h"
#include "libs/server/runtime.h"
#include "libs/topics/topics.h"

int main(int argc, char** argv) {
  crm::server::RestrictNewFileModes();
  crm::server::BlockTerminationSignals();
  CLI::App app{"crm-devbroker: librdkafka mock cluster on loopback, for development and tests"};
  int brokers = 3;
  // The mock cluster has no CreateTopics: every topic of the system is made here (the
  // services' topics, and crm-integration's public, inbound and dead-letter topics).
  std::vector<std::string> topics;
  for (const std::string& t : crm::topics::AllTopics()) topics.push_back(absl::StrCat(t, ":", crm::topics::kPartitions));
  std::string bootstrap_file;
  app.add_option("--brokers", brokers, "Number of brokers")->capture_default_str()->check(CLI::Range(1, 9));
  app.add_option("--topic", topics, "name:partitions to create (repeatable)")->capture_default_str();
  app.add_option("--bootstrap-file", bootstrap_file, "Also write the bootstrap address to this file");
  CLI11_PARSE(app, argc, argv);

  auto cluster = crm::eventlog::MockCluster::Start(brokers);
  if (!cluster.ok()) crm::server::ExitWithError(std::string(cluster.status().message()));
  for (const std::string& t : topics) {
    std::pair<std::string, std::string> parts = absl::StrSplit(t, absl::MaxSplits(':', 1));
    int partitions = 0;
    if (parts.first.empty() || !absl::SimpleAtoi(parts.second, &partitions) || partitions < 1) {
      crm::server::ExitWithError("--topic must be name:partitions, e.g. crm.customers.events.v1:8");
    }
    if (auto s = (*cluster)->CreateTopic(parts.first, partitions, std::min(brokers, 3)); !s.ok()) {
      crm::server::ExitWithError(std::string(s.message()));
    }
  }
  const std::string bootstrap = (*cluster)->bootstrap_servers();
  if (!bootstrap_file.empty()) {
    std::ofstream(bootstrap_file + ".tmp") << bootstrap << "\n";
    std::rename((bootstrap_file + ".tmp").c_str(), bootstrap_file.c_str());
  }
  std::printf("bootstrap: %s\n", bootstrap.c_str());
  std::fflush(stdout);
  crm::server::WaitForTerminationSignal();
  return 0;
}
