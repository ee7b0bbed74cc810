#ifndef CRM_LIBS_EVENTLOG_LOG_TESTING_H_
#define CRM_LIBS_EVENTLOG_LOG_TESTING_H_

// What tests of the service engines share (tests only): the events one aggregate has in the
// log, read from the log itself rather than from a projection, so a test of a command sees
// what it wrote even where no read model lists it.
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/eventlog/envelope.h"
#include "libs/eventlog/log.h"

namespace crm::eventlog::testing {

// The event types of `aggregate_id` in `topic`, in log order (one aggregate lives in one
// partition). An error when the topic cannot be read or a record does not decode.
inline absl::StatusOr<std::vector<std::string>> EventTypesOf(Log& log, absl::string_view topic,
                                                             absl::string_view aggregate_id) {
  auto partitions = log.PartitionCount(topic);
  if (!partitions.ok()) return partitions.status();
  std::vector<Position> from;
  for (int32_t p = 0; p < *partitions; ++p) from.push_back({p, 0});
  auto records = ReadToEnd(log, topic, from);
  if (!records.ok()) return records.status();
  std::vector<std::string> out;
  for (const auto& r : *records) {
    auto env = DecodeEnvelope(r.value);
    if (!env.ok()) return env.status();
    if (env->aggregate_id() == aggregate_id) out.push_back(env->event_type());
  }
  return out;
}

}  // namespace crm::eventlog::testing

#endif  // CRM_LIBS_EVENTLOG_LOG_TESTING_H_
