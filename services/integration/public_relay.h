#ifndef CRM_SERVICES_INTEGRATION_PUBLIC_RELAY_H_
#define CRM_SERVICES_INTEGRATION_PUBLIC_RELAY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/eventlog/log.h"
#include "rocksdb/db.h"
#include "libs/topics/topics.h"

namespace crm::integration {

// Republishes every event of the services' topics on crm.public.events.v1 as a structured
// CloudEvent (public_event.h), keyed by aggregate id, exactly once.
//
// How "exactly once" holds: the relay is the topic's single writer, and every public record
// names its original ("crm_position"). A batch is appended, waited for until durable, then
// its source positions are stored together with the public topic's end offsets. After a
// crash, the records appended past the stored ends are read back and their positions taken
// as published, so nothing is published twice; nothing is skipped, since a source record is
// taken as published only when its public record is read back. The store is a cache: lost,
// the whole public topic is read back. Thread-safe.
class PublicEventsRelay {
 public:
  struct Options {
    // Folder of the relay's RocksDB store. Required.
    std::string dir;
    // The topics to republish. Default: the four services' topics.
    std::vector<std::string> topics = crm::topics::ServiceTopics();
    // The public topic and its partitions (created when missing). Default: kPublicTopic, 8.
    std::string public_topic;
    int32_t partitions = crm::topics::kPartitions;
    // Records per source poll. Default: 1024.
    size_t batch_records = 1024;
    // Pause before retrying after an error (a source topic missing, the log unreachable).
    // Default: 1 s.
    absl::Duration retry_after = absl::Seconds(1);
  };

  // Opens the store, recovers what was published from the public topic and starts the
  // relay's thread. Fails when the public topic cannot be created or read, or another
  // writer holds it.
  static absl::StatusOr<std::unique_ptr<PublicEventsRelay>> Start(eventlog::Log* log, Options options);
  ~PublicEventsRelay();

  // Events published since Start.
  int64_t published() const;
  // OK while relaying; else the last error (retried every retry_after).
  absl::Status status() const;
  // The next source offset to publish from of every (topic, partition) relayed so far.
  std::map<std::pair<std::string, int32_t>, int64_t> positions() const;
  // Blocks until every topic is published up to its end offsets at the call, or `timeout`.
  absl::Status WaitCaughtUp(absl::Duration timeout) const;

 private:
  PublicEventsRelay(eventlog::Log* log, Options o) : log_(log), options_(std::move(o)) {}
  // Reads the public topic from the stored ends and takes the positions found as published.
  absl::Status Recover();
  void Run();
  // Subscribes to every source topic from the positions; runs until stopped or an error.
  absl::Status Relay();
  // Appends `records` (one source topic's poll), waits until durable, then stores positions.
  absl::Status Publish(const std::vector<eventlog::Record>& records);
  absl::Status Store(const std::map<int32_t, int64_t>& public_ends);

  eventlog::Log* log_;
  const Options options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::unique_ptr<eventlog::Writer> writer_;

  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  int64_t published_ ABSL_GUARDED_BY(mu_) = 0;
  // Next source offset per (topic, partition); end offsets of the public topic stored.
  std::map<std::pair<std::string, int32_t>, int64_t> next_ ABSL_GUARDED_BY(mu_);
  std::map<int32_t, int64_t> public_ends_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace crm::integration

#endif  // CRM_SERVICES_INTEGRATION_PUBLIC_RELAY_H_
