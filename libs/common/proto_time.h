#ifndef CRM_LIBS_COMMON_PROTO_TIME_H_
#define CRM_LIBS_COMMON_PROTO_TIME_H_

// absl::Time <-> google.protobuf.Timestamp, at nanosecond precision.
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

}  // namespace crm

#endif  // CRM_LIBS_COMMON_PROTO_TIME_H_
