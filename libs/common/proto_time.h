#ifndef CRM_LIBS_COMMON_PROTO_TIME_H_
#define CRM_LIBS_COMMON_PROTO_TIME_H_

// absl::Time <-> google.protobuf.Timestamp, at nanosecond precision; the time a user types.
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/time_util.h"

namespace crm {

inline google::protobuf::Timestamp ToProto(absl::Time t) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

inline absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixNanos(google::protobuf::util::TimeUtil::TimestampToNanoseconds(t));
}

// A time as users give it: a day yyyy-MM-dd (its midnight in China Standard Time, UTC+8) or
// an RFC 3339 time; nullopt for anything else.
inline std::optional<google::protobuf::Timestamp> ParseDayOrTime(absl::string_view text) {
  absl::CivilDay day;
  if (text.size() == 10 && absl::ParseCivilTime(text, &day)) {
    return ToProto(absl::FromCivil(day, absl::FixedTimeZone(8 * 3600)));
  }
  google::protobuf::Timestamp t;
  if (google::protobuf::util::TimeUtil::FromString(std::string(text), &t)) return t;
  return std::nullopt;
}

}  // namespace crm

#endif  // CRM_LIBS_COMMON_PROTO_TIME_H_
