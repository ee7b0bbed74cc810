#include "libs/common/proto_time.h"

#include "absl/strings/str_cat.h"
#include "libs/common/grpc_status.h"

namespace crm {
namespace {

bool InRange(const google::protobuf::Timestamp& t) {
  return t.nanos() >= 0 && t.nanos() <= 999999999 && t.seconds() >= kClientTimeMinSeconds &&
         t.seconds() < kClientTimeEndSeconds;
}

}  // namespace

absl::StatusOr<absl::Time> ClientTime(const google::protobuf::Timestamp& t, absl::string_view field) {
  if (!InRange(t)) {
    return InvalidFieldError(field, "must be a time from 1970-01-01T00:00:00Z up to 2200-01-01T00:00:00Z");
  }
  return FromProto(t);
}

absl::StatusOr<absl::Time> OptionalClientTime(bool has, const google::protobuf::Timestamp& t, absl::string_view field,
                                              absl::Time fallback) {
  if (!has) return fallback;
  return ClientTime(t, field);
}

absl::StatusOr<TimeRange> ClientTimeRange(const google::protobuf::Timestamp* start, absl::string_view start_field,
                                          const google::protobuf::Timestamp* end, absl::string_view end_field) {
  if (start == nullptr) return InvalidFieldError(start_field, "is required");
  if (end == nullptr) return InvalidFieldError(end_field, "is required");
  absl::StatusOr<absl::Time> from = ClientTime(*start, start_field);
  if (!from.ok()) return from.status();
  absl::StatusOr<absl::Time> to = ClientTime(*end, end_field);
  if (!to.ok()) return to.status();
  if (*to <= *from) return InvalidFieldError(end_field, absl::StrCat("must be after ", start_field));
  return TimeRange{*from, *to};
}

absl::StatusOr<absl::CivilDay> ParseStoredDate(absl::string_view text, absl::string_view field) {
  absl::CivilDay day;
  if (text.size() != 10 || !absl::ParseCivilTime(text, &day)) {
    return InvalidFieldError(field, "must be a date as yyyy-MM-dd");
  }
  return day;
}

absl::StatusOr<absl::CivilDay> ParseClientDate(absl::string_view text, absl::string_view field) {
  absl::CivilDay day;
  // ParseCivilTime normalises (2024-02-30 becomes 2024-03-01): only a day that prints back as
  // the text is one.
  if (text.size() != 10 || !absl::ParseCivilTime(text, &day) || absl::FormatCivilTime(day) != text) {
    return InvalidFieldError(field, "must be a date as yyyy-MM-dd");
  }
  if (day.year() < 1970 || day.year() >= 2200) return InvalidFieldError(field, "must be a date in 1970-2199");
  return day;
}

std::optional<google::protobuf::Timestamp> ParseDayOrTime(absl::string_view text) {
  google::protobuf::Timestamp t;
  if (absl::StatusOr<absl::CivilDay> day = ParseClientDate(text, ""); day.ok()) {
    t = ToProto(absl::FromCivil(*day, absl::FixedTimeZone(8 * 3600)));
  } else if (!google::protobuf::util::TimeUtil::FromString(std::string(text), &t)) {
    return std::nullopt;
  }
  if (!InRange(t)) return std::nullopt;
  return t;
}

}  // namespace crm
