#ifndef CRM_LIBS_COMMON_REQUEST_H_
#define CRM_LIBS_COMMON_REQUEST_H_

// Request parsing and proto plumbing every service engine shares: resource names, etags,
// request ids, page tokens, derived ids, and copying between API and state messages.
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"
#include "libs/common/proto_time.h"

namespace crm {

// Copies every field of `from` into the field of `to` with the same name and type (the API
// messages mirror the state's names). Unset message fields are cleared.
void CopySameNamed(const google::protobuf::Message& from, google::protobuf::Message* to);
// The fields of `m` (among `names`) that are set: AIP-134's "no mask means every field set".
std::vector<std::string> SetFields(const google::protobuf::Message& m, const std::vector<std::string>& names);

// The expected version `etag` asks for: 0 (any) when empty, kEtagNothingWritten (libs/common/
// etag.h) for "0", else the version. INVALID_ARGUMENT naming `field` unless it is empty or a
// version this service issued.
absl::StatusOr<int64_t> ParseEtag(const std::string& etag, absl::string_view field);
// The id of "<collection>/{uuid}"; INVALID_ARGUMENT naming `field` otherwise.
absl::StatusOr<std::string> ParseName(const std::string& name, absl::string_view field,
                                      absl::string_view collection);
absl::Status CheckRequestId(const std::string& rid, absl::string_view field = "request_id");

// The resource a command addresses, with its expected version and where they came from
// (kernel::TargetCommand, libs/kernel/target_command.h, turns it into the store's command).
struct Target {
  std::string id;
  int64_t etag = 0;  // as ParseEtag reads it: 0 any, kEtagNothingWritten none written yet
  std::string request_id;  // the request's idempotency key, checked; empty when none
  std::string etag_field;  // the request field of `etag`, named when it is stale
};
absl::StatusOr<Target> ParseTarget(const std::string& request_id, const std::string& name,
                                   absl::string_view name_field, const std::string& etag,
                                   absl::string_view etag_field, absl::string_view collection);

// A UUID-shaped id derived from a name (RFC 9562 version 8, SHA-256): a retried request
// with the same request_id creates the same sub-resource id.
std::string DerivedId(absl::string_view a, absl::string_view b);
// The day of `t` in `zone` as yyyymmdd.
std::string Day(absl::Time t, absl::TimeZone zone);

// Page tokens carry the offset and a fingerprint of the query they belong to.
std::string PageToken(int64_t offset, const std::string& fingerprint);
absl::StatusOr<int64_t> ParsePageToken(const std::string& token, const std::string& fingerprint);
// An AIP-160 filter of terms `field = value` (or `field:value` for the fields in
// `has_fields`, e.g. a tag among the tags) joined by AND. A value is a double-quoted string
// (with \" and \\ escapes) or a word without spaces, quotes or parentheses. The terms in order;
// INVALID_ARGUMENT naming "filter" and the position (in characters, from 1) of the first text
// that is not part of such a filter (`owner_id = "w1" OR 1=1` fails at the OR), and for fields
// outside `allowed`, an empty value or a field named twice.
struct FilterTerm {
  std::string field, value;
  char op = '=';  // '=' or ':'
};
absl::StatusOr<std::vector<FilterTerm>> ParseFilterTerms(const std::string& text,
                                                        const std::vector<std::string>& allowed,
                                                        const std::vector<std::string>& has_fields = {});

// An AIP-132 order_by of one field, "<field>" or "<field> desc" (or asc): the field (default
// `fallback` when empty) and the direction. INVALID_ARGUMENT naming "order_by" and the position
// of anything after that, and for a field outside `allowed`.
struct OrderBy {
  std::string field;
  bool desc = false;
};
absl::StatusOr<OrderBy> ParseOrderBy(const std::string& text, const std::vector<std::string>& allowed,
                                     const std::string& fallback);
// A sort key of `t` that orders as time does (non-negative times, as records have).
std::string TimeSortKey(const google::protobuf::Timestamp& t);

// 0 means 50; at most 1000; INVALID_ARGUMENT naming `field` when negative.
absl::StatusOr<int32_t> PageSize(int32_t requested, absl::string_view field);

}  // namespace crm

#endif  // CRM_LIBS_COMMON_REQUEST_H_
