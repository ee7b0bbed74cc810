#include "libs/eventlog/mock_cluster.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "absl/strings/str_cat.h"

namespace crm::eventlog {

absl::StatusOr<std::unique_ptr<MockCluster>> MockCluster::Start(int brokers) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (rk == nullptr) return absl::InternalError(absl::StrCat("mock cluster handle: ", err));
  rd_kafka_mock_cluster_t* m = rd_kafka_mock_cluster_new(rk, brokers);
  if (m == nullptr) {
    rd_kafka_destroy(rk);
    return absl::InternalError("rd_kafka_mock_cluster_new failed");
  }
  return std::unique_ptr<MockCluster>(new MockCluster(rk, m));
}

MockCluster::~MockCluster() {
  rd_kafka_mock_cluster_destroy(mcluster_);
  rd_kafka_destroy(rk_);
}

std::string MockCluster::bootstrap_servers() const {
  return rd_kafka_mock_cluster_bootstraps(mcluster_);
}

absl::Status MockCluster::CreateTopic(const std::string& topic, int partitions, int replication) {
  rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mcluster_, topic.c_str(), partitions,
                                                     replication);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InternalError(absl::StrCat("mock topic ", topic, ": ", rd_kafka_err2str(e)));
  }
  return absl::OkStatus();
}

}  // namespace crm::eventlog
