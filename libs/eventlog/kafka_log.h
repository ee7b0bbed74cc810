#ifndef CRM_LIBS_EVENTLOG_KAFKA_LOG_H_
#define CRM_LIBS_EVENTLOG_KAFKA_LOG_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/eventlog/log.h"

namespace crm::eventlog {

struct KafkaLogOptions {
  // host:port,... of the Kafka cluster. Required.
  std::string bootstrap_servers;
  // A writer of topic T uses transactional.id "<prefix>.<T>", so a newer writer of the same
  // topic fences an older one. Default: "crm-writer".
  std::string transactional_id_prefix = "crm-writer";
  // client.id of every client. Default: "crm".
  std::string client_id = "crm";
  // How long an append may wait for the cluster before its outcome is unknown and the
  // partition goes into recovery. Also how long closing a writer keeps writing what is
  // queued; appends still queued then are answered UNAVAILABLE. Default: 10 s.
  absl::Duration append_timeout = absl::Seconds(10);
  // Most appends in one transaction (group commit). Default: 1000.
  size_t max_group_appends = 1000;
  // Extra librdkafka properties for every client (e.g. security.protocol); they override our
  // tuning but INVALID_ARGUMENT for transactional.id, enable.idempotence, acks,
  // isolation.level and the consumer's auto-commit settings. Default: none.
  std::map<std::string, std::string> extra;
};

// The Kafka backend (docs/architecture.md §2) on librdkafka. A writer is a transactional (hence idempotent,
// acks=all) producer: it puts every append queued while the previous transaction committed
// into one transaction, so a multi-event append is atomic and acknowledgements are durable.
// Readers use read_committed consumers with manually assigned positions; nothing is committed
// to consumer groups. When a commit's outcome stays unknown, the writer re-creates its
// producer (which resolves the open transaction on the broker) and re-reads the tail of the
// affected partitions to learn which appends landed before it takes more writes.
absl::StatusOr<std::unique_ptr<Log>> OpenKafkaLog(const KafkaLogOptions& options);

// librdkafka properties given as "KEY=VALUE" (the --kafka-property flags) as a map for
// KafkaLogOptions::extra. INVALID_ARGUMENT quoting the first one without a key and '='.
absl::StatusOr<std::map<std::string, std::string>> ParseKafkaProperties(const std::vector<std::string>& key_values);

}  // namespace crm::eventlog

#endif  // CRM_LIBS_EVENTLOG_KAFKA_LOG_H_
