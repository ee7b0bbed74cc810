#include "libs/projection/token_gate.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/common/grpc_status.h"
#include "libs/projection/projection_db.h"

namespace crm::projection {

TokenGate::TokenGate(eventlog::Log* log, std::vector<std::string> topics) : log_(log), topics_(std::move(topics)) {}

absl::StatusOr<std::vector<int64_t>> TokenGate::Ends(const std::string& topic, bool fresh) {
  {
    absl::MutexLock l(&mu_);
    auto it = ends_.find(topic);
    if (it != ends_.end() && !fresh) return it->second;
  }
  absl::StatusOr<std::vector<int64_t>> ends = log_->EndOffsets(topic);
  if (absl::IsNotFound(ends.status())) {
    ends = std::vector<int64_t>();  // nothing written there yet: every offset is past the end
  } else if (!ends.ok()) {
    return ClientSafe(absl::UnavailableError("cannot read the log's end to check the consistency token; retry"));
  }
  absl::MutexLock l(&mu_);
  std::vector<int64_t>& cached = ends_[topic];
  // Ends only grow; a slower reader's older answer must not move the cache back.
  if (cached.size() < ends->size()) cached.resize(ends->size(), 0);
  for (size_t p = 0; p < ends->size(); ++p) cached[p] = std::max(cached[p], (*ends)[p]);
  return cached;
}

absl::StatusOr<common::v1::ConsistencyToken> TokenGate::Check(const std::string& token, absl::string_view field) {
  if (token.size() > kMaxTokenBytes) {
    return InvalidFieldError(field, absl::StrCat("is ", token.size(), " bytes long; a consistency token has at most ",
                                                 kMaxTokenBytes));
  }
  absl::StatusOr<common::v1::ConsistencyToken> decoded = DecodeToken(token);
  if (!decoded.ok()) return InvalidFieldError(field, decoded.status().message());
  std::map<std::pair<std::string, int32_t>, int64_t> highest;
  for (const auto& p : decoded->positions()) {
    if (std::find(topics_.begin(), topics_.end(), p.topic()) == topics_.end()) {
      return InvalidFieldError(field, absl::StrCat("names a topic this service does not follow (it follows ",
                                                   absl::StrJoin(topics_, ", "), ")"));
    }
    int64_t& offset = highest[{p.topic(), p.partition()}];
    offset = std::max(offset, p.offset());
  }
  common::v1::ConsistencyToken out;
  for (const auto& [where, offset] : highest) {
    const auto& [topic, partition] = where;
    absl::StatusOr<std::vector<int64_t>> ends = Ends(topic, false);
    if (ends.ok() && (static_cast<size_t>(partition) >= ends->size() || offset >= (*ends)[partition])) {
      ends = Ends(topic, true);  // past what was seen last: the log may have grown since
    }
    if (!ends.ok()) return ends.status();
    if (ends->empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat(field, " names ", topic, ", where this log holds nothing yet: it was not issued by this deployment"));
    }
    if (static_cast<size_t>(partition) >= ends->size()) {
      return InvalidFieldError(field, absl::StrCat("names partition ", partition, " of ", topic, ", which has ",
                                                   ends->size(), " partitions"));
    }
    if (offset >= (*ends)[partition]) {
      return absl::FailedPreconditionError(absl::StrCat(
          field, " names offset ", offset, " of ", topic, "/", partition, ", beyond the end of this log (",
          (*ends)[partition], "): it was not issued by this deployment"));
    }
    auto* pos = out.add_positions();
    pos->set_topic(topic);
    pos->set_partition(partition);
    pos->set_offset(offset);
  }
  return out;
}

}  // namespace crm::projection
