#ifndef CRM_LIBS_COMMON_PROTO_TIME_H_
#define CRM_LIBS_COMMON_PROTO_TIME_H_

// absl::Time <-> google.protobuf.Timestamp, at nanosecond precision; the time a user types;
// the times a client may send.
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/time_util.h"

namespace crm {

inline google::protobuf::Timestamp ToProto(absl::Time t) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

// Exact for every Timestamp: seconds and nanos apart, since nanoseconds since 1970 in 64 bits
// wrap outside 1677-2262 (year 10000 came out as 1816).
inline absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

// The times a client may send, as Timestamps, as_of, time ranges and dates: from
// 1970-01-01T00:00:00Z up to (not including) 2200-01-01T00:00:00Z. Inside it every time stays
// exact as nanoseconds since 1970 (absl::ToUnixNanos, the index keys) with room for what is
// added to it (SLA targets, reminders, retention), and sort keys of times need no sign.
inline constexpr int64_t kClientTimeMinSeconds = 0;
inline constexpr int64_t kClientTimeEndSeconds = 7258118400;  // 2200-01-01T00:00:00Z

// `t` checked: INVALID_ARGUMENT naming `field` unless its nanos are 0..999999999 and it lies
// in the range above.
absl::StatusOr<absl::Time> ClientTime(const google::protobuf::Timestamp& t, absl::string_view field);
// The same for an optional field: `fallback` when `has` is false.
absl::StatusOr<absl::Time> OptionalClientTime(bool has, const google::protobuf::Timestamp& t, absl::string_view field,
                                              absl::Time fallback);

// A range [start, end) a client sent in two required fields (null: not set), each a
// ClientTime; INVALID_ARGUMENT naming the field that is missing or bad, or `end_field` when
// end is not after start.
struct TimeRange {
  absl::Time start, end;
};
absl::StatusOr<TimeRange> ClientTimeRange(const google::protobuf::Timestamp* start, absl::string_view start_field,
                                          const google::protobuf::Timestamp* end, absl::string_view end_field);

// A date yyyy-MM-dd a client sent: a real day (not 2024-02-30) of a year in the range above;
// INVALID_ARGUMENT naming `field` otherwise.
absl::StatusOr<absl::CivilDay> ParseClientDate(absl::string_view text, absl::string_view field);

// A date yyyy-MM-dd read back from the log: what ParseClientDate's predecessor accepted, any
// real day of any four-digit year. Events written before the range was checked keep such
// dates (2999-12-31), and whatever acts on them later (the contract scheduler)
// must not fail on them for ever. INVALID_ARGUMENT naming `field` for anything else.
absl::StatusOr<absl::CivilDay> ParseStoredDate(absl::string_view text, absl::string_view field);

// A time as users give it: a day yyyy-MM-dd (its midnight in China Standard Time, UTC+8) or
// an RFC 3339 time, in the range above; nullopt for anything else.
std::optional<google::protobuf::Timestamp> ParseDayOrTime(absl::string_view text);

}  // namespace crm

#endif  // CRM_LIBS_COMMON_PROTO_TIME_H_
