#ifndef CRM_LIBS_EVENTLOG_MOCK_CLUSTER_H_
#define CRM_LIBS_EVENTLOG_MOCK_CLUSTER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

typedef struct rd_kafka_s rd_kafka_t;
typedef struct rd_kafka_mock_cluster_s rd_kafka_mock_cluster_t;

namespace crm::eventlog {

// librdkafka's mock cluster: a real Kafka-protocol broker set on 127.0.0.1, in memory
// (docs/benchmarks.md, "The mock cluster", lists what it does not do). For tests and
// crm-devbroker only.
class MockCluster {
 public:
  // Starts `brokers` brokers on ephemeral loopback ports.
  static absl::StatusOr<std::unique_ptr<MockCluster>> Start(int brokers);
  ~MockCluster();

  // host:port,... to give clients as bootstrap.servers.
  std::string bootstrap_servers() const;
  absl::Status CreateTopic(const std::string& topic, int partitions, int replication);
  // For fault injection through rdkafka_mock.h.
  rd_kafka_mock_cluster_t* c_ptr() const { return mcluster_; }

 private:
  MockCluster(rd_kafka_t* rk, rd_kafka_mock_cluster_t* m) : rk_(rk), mcluster_(m) {}
  rd_kafka_t* rk_;
  rd_kafka_mock_cluster_t* mcluster_;
};

}  // namespace crm::eventlog

#endif  // CRM_LIBS_EVENTLOG_MOCK_CLUSTER_H_
