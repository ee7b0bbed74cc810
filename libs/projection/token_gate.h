#ifndef CRM_LIBS_PROJECTION_TOKEN_GATE_H_
#define CRM_LIBS_PROJECTION_TOKEN_GATE_H_

// The check a client's min_consistency_token passes before any server waits on it. A token
// is an opaque string the client hands back, so it may be forged, truncated or from another
// deployment; waiting on whatever it names would let one caller hold server slots with
// offsets the log never reaches, or cost every commit a scan of a huge token.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "crm/common/v1/envelope.pb.h"
#include "libs/eventlog/log.h"

namespace crm::projection {

class TokenGate {
 public:
  // Longest token accepted, in encoded bytes. One position takes about 40 bytes, and a service
  // follows at most a few topics of 8 partitions each. Default: 4096.
  static constexpr size_t kMaxTokenBytes = 4096;

  // `log` must outlive the gate; `topics` are the topics the service's projections follow.
  TokenGate(eventlog::Log* log, std::vector<std::string> topics);

  // The token as the service may wait on it: one position per topic-partition (the highest
  // offset named), in a canonical order. Errors, each naming `field`:
  //  - INVALID_ARGUMENT: not a token, longer than kMaxTokenBytes, a topic this service does not
  //    follow, a partition the topic does not have;
  //  - FAILED_PRECONDITION: an offset the log has not reached (a token of another deployment or
  //    a forged one: no write this log acknowledged has it);
  //  - UNAVAILABLE: the log's end could not be read.
  // Thread-safe. Reads the log's end offsets only when a position is past what it saw last.
  absl::StatusOr<common::v1::ConsistencyToken> Check(const std::string& token, absl::string_view field);

 private:
  // The end offsets of `topic`, re-read from the log when `fresh` or not read yet.
  absl::StatusOr<std::vector<int64_t>> Ends(const std::string& topic, bool fresh);

  eventlog::Log* const log_;
  const std::vector<std::string> topics_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::vector<int64_t>> ends_ ABSL_GUARDED_BY(mu_);
};

}  // namespace crm::projection

#endif  // CRM_LIBS_PROJECTION_TOKEN_GATE_H_
