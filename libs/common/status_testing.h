#ifndef CRM_LIBS_COMMON_STATUS_TESTING_H_
#define CRM_LIBS_COMMON_STATUS_TESTING_H_

// What tests of the service engines share (tests only): the fields an INVALID_ARGUMENT's
// google.rpc.BadRequest names, what an ABORTED's google.rpc.ErrorInfo says, and an engine's
// asynchronous command run to its answer.
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "libs/common/caller.h"
#include "libs/common/grpc_status.h"

namespace crm::testing {

// Every field named, in order; none for another error.
inline std::vector<std::string> FieldsOf(const absl::Status& s) {
  std::vector<std::string> out;
  if (auto bad = GetBadRequest(s)) {
    for (const auto& v : bad->field_violations()) out.push_back(v.field());
  }
  return out;
}

// The first field named, "" when none.
inline std::string FieldOf(const absl::Status& s) {
  auto fields = FieldsOf(s);
  return fields.empty() ? "" : fields[0];
}

// "<reason> <value of key 1> <value of key 2>..." of an ABORTED answer's ErrorInfo (an absent
// key reads ""), e.g. "ETAG_MISMATCH etag" for a stale etag; "" for any other code or an
// ABORTED without ErrorInfo.
inline std::string AbortedInfo(const absl::Status& s,
                               std::initializer_list<absl::string_view> keys = {"field"}) {
  auto info = GetErrorInfo(s);
  if (s.code() != absl::StatusCode::kAborted || !info.has_value()) return "";
  std::string out = info->reason();
  for (absl::string_view key : keys) {
    auto it = info->metadata().find(std::string(key));
    absl::StrAppend(&out, " ", it == info->metadata().end() ? "" : it->second);
  }
  return out;
}

// Runs `engine->*fn(caller, req, done)` and waits for `done`'s answer.
template <typename Engine, typename Req, typename Resp>
absl::StatusOr<Resp> Call(Engine* engine,
                          void (Engine::*fn)(const Caller&, const Req&, absl::AnyInvocable<void(absl::StatusOr<Resp>)>),
                          const Caller& caller, const Req& req) {
  absl::Notification n;
  absl::StatusOr<Resp> out = absl::UnknownError("no answer");
  (engine->*fn)(caller, req, [&](absl::StatusOr<Resp> r) {
    out = std::move(r);
    n.Notify();
  });
  n.WaitForNotification();
  return out;
}

}  // namespace crm::testing

#endif  // CRM_LIBS_COMMON_STATUS_TESTING_H_
