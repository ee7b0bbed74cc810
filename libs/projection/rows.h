#ifndef CRM_LIBS_PROJECTION_ROWS_H_
#define CRM_LIBS_PROJECTION_ROWS_H_

// Row-key shapes and row plumbing every service's projection shares.
#include <string>
#include <type_traits>
#include <variant>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/types/optional.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "crm/common/v1/envelope.pb.h"
#include "google/protobuf/message.h"
#include "libs/projection/projection_db.h"

namespace crm::projection {

// 8 bytes big-endian of the nanoseconds since the epoch with the sign bit flipped: keys that
// sort by time.
std::string TimeKey(absl::Time t);
absl::Time TimeFromKey(absl::string_view eight_bytes);

// h/<id>/<be64 version>: an aggregate's envelopes in version order (history, time travel).
std::string HistoryPrefix(absl::string_view id);
std::string History(absl::string_view id, int64_t version);
// r/<correlation id>/<id>: "" per aggregate a request changed (request_id idempotency).
std::string RequestPrefix(absl::string_view request_id);
std::string Request(absl::string_view request_id, absl::string_view id);
// What follows RequestPrefix(request_id) in the r/ rows, in key order, at most `limit` of them:
// the ids of the aggregates the request changed, in one prefix seek. A request id may contain
// '/', so an entry can also be "<rest of a longer request id>/<id>".
absl::StatusOr<std::vector<std::string>> RequestHolders(rocksdb::DB* db, const std::string& request_id, size_t limit);
// Whether request `request_id` changed aggregate `id` (its r/ row exists): one point read.
absl::StatusOr<bool> HasRequestRow(rocksdb::DB* db, const std::string& request_id, const std::string& id);

// The ids (36-character UUIDs) that follow `prefix` in the keys of `db`: index rows
// "<prefix><id>".
absl::StatusOr<std::vector<std::string>> ReadIds(rocksdb::DB* db, const std::string& prefix,
                                                 const rocksdb::ReadOptions& ro = rocksdb::ReadOptions());

// The (8-byte time key, rest) pairs of the index rows "<prefix><TimeKey><rest>" whose time is
// in [from, to), in key order; infinite bounds scan from the start or to the end.
absl::Status ScanTimed(rocksdb::DB* db, const std::string& prefix, absl::Time from, absl::Time to,
                       std::vector<std::pair<std::string, std::string>>* out,
                       const rocksdb::ReadOptions& ro = rocksdb::ReadOptions());

// Folds the history rows of aggregate `id` in version order through `fold`: those recorded up
// to `until` and, when `max_version` > 0, up to that version (time travel, "as known then").
// Returns the number of events folded.
absl::StatusOr<int64_t> FoldHistory(rocksdb::DB* db, absl::string_view id, absl::Time until, int64_t max_version,
                                    absl::FunctionRef<absl::Status(const common::v1::EventEnvelope&)> fold);

// The bytes of `m` with map entries in key order: a row that does not depend on how the
// message was built (a rebuild must write the very bytes the live fold wrote).
std::string DeterministicBytes(const google::protobuf::Message& m);

// Reads `key` as the batch would leave it into `msg`; false when absent.
template <typename M>
absl::StatusOr<bool> ReadRow(ProjectionDb& db, Batch& b, const std::string& key, M* msg) {
  std::string raw;
  absl::Status got = db.Get(b, key, &raw);
  if (absl::IsNotFound(got)) return false;
  if (!got.ok()) return got;
  if (!msg->ParseFromString(raw)) return absl::DataLossError(absl::StrCat("undecodable row ", key));
  return true;
}

// Reads the committed row `key` into `msg`; false when absent.
template <typename M>
absl::StatusOr<bool> ReadRow(rocksdb::DB* db, const rocksdb::ReadOptions& ro, const std::string& key, M* msg) {
  std::string raw;
  rocksdb::Status s = db->Get(ro, key, &raw);
  if (s.IsNotFound()) return false;
  if (!s.ok()) return FromRocks(s, absl::StrCat("read ", key));
  if (!msg->ParseFromString(raw)) return absl::DataLossError(absl::StrCat("undecodable row ", key));
  return true;
}

// The committed state row `key`; nullopt when absent.
template <typename State>
absl::StatusOr<absl::optional<State>> ReadStateRow(rocksdb::DB* db, const std::string& key) {
  State s;
  auto found = ReadRow(db, rocksdb::ReadOptions(), key, &s);
  if (!found.ok()) return found.status();
  if (!*found) return absl::optional<State>();
  return absl::optional<State>(std::move(s));
}

namespace internal {

template <typename Variant>
struct EventUnpacker;

// The payload of `e` as the one of the messages M... its event_type names.
template <typename... M>
struct EventUnpacker<std::variant<M...>> {
  static absl::StatusOr<std::variant<M...>> Unpack(const common::v1::EventEnvelope& e) {
    absl::StatusOr<std::variant<M...>> out =
        absl::DataLossError(absl::StrCat("unknown ", e.aggregate_type(), " event type ", e.event_type()));
    auto try_one = [&](auto tag) {
      using Msg = typename decltype(tag)::type;
      if (e.event_type() != Msg::descriptor()->full_name()) return false;
      Msg msg;
      if (!e.payload().UnpackTo(&msg)) {
        out = absl::DataLossError(absl::StrCat("bad payload of ", e.event_type()));
      } else {
        out = std::variant<M...>(std::move(msg));
      }
      return true;
    };
    (try_one(std::type_identity<M>{}) || ...);
    return out;
  }
};

}  // namespace internal

// The payload of `e` as the alternative of `Variant` (a std::variant of event messages, an
// aggregate's events) that its event_type names; DATA_LOSS for another type or a payload that
// does not parse. The variant is the one list of an aggregate's events.
template <typename Variant>
absl::StatusOr<Variant> UnpackEvent(const common::v1::EventEnvelope& e) {
  return internal::EventUnpacker<Variant>::Unpack(e);
}

}  // namespace crm::projection

#endif  // CRM_LIBS_PROJECTION_ROWS_H_
