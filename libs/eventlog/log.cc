#include "libs/eventlog/log.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"

namespace crm::eventlog {

absl::StatusOr<Appended> Writer::AppendSync(std::string key, std::vector<Message> messages,
                                            const AwaitOptions& options) {
  return AwaitCallback<absl::StatusOr<Appended>>(
      [&](AppendCallback done) { Append(std::move(key), std::move(messages), std::move(done)); }, options);
}

absl::Status ValidateExpectation(absl::string_view stream, const ExpectedVersion& expected) {
  if (expected.kind() == ExpectedVersion::Kind::kAny) return absl::OkStatus();
  if (stream.empty()) return absl::InvalidArgumentError("a conditional append needs a stream name");
  if (expected.kind() == ExpectedVersion::Kind::kExact && expected.version() < 1) {
    return absl::InvalidArgumentError(absl::StrCat("stream ", stream, ": expected version ", expected.version(),
                                                   " is below 1 (a stream without events is NoStream)"));
  }
  return absl::OkStatus();
}

int32_t PartitionForKey(absl::string_view key, int32_t partitions) {
  // Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2).
  const uint32_t m = 0x5bd1e995;
  const int r = 24;
  const auto* data = reinterpret_cast<const uint8_t*>(key.data());
  const size_t len = key.size();
  uint32_t h = 0x9747b28c ^ static_cast<uint32_t>(len);
  const size_t len4 = len / 4;
  for (size_t i = 0; i < len4; ++i) {
    const size_t i4 = i * 4;
    uint32_t k = data[i4] | (data[i4 + 1] << 8) | (data[i4 + 2] << 16) |
                 (static_cast<uint32_t>(data[i4 + 3]) << 24);
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }
  switch (len % 4) {
    case 3: h ^= static_cast<uint32_t>(data[(len & ~3u) + 2]) << 16; [[fallthrough]];
    case 2: h ^= static_cast<uint32_t>(data[(len & ~3u) + 1]) << 8; [[fallthrough]];
    case 1: h ^= data[len & ~3u]; h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return static_cast<int32_t>((h & 0x7fffffff) % static_cast<uint32_t>(partitions));
}

absl::StatusOr<std::vector<Record>> ReadToEnd(Log& log, absl::string_view topic,
                                              std::vector<Position> from, absl::Duration timeout) {
  CRM_ASSIGN_OR_RETURN(std::vector<int64_t> ends, log.EndOffsets(topic));
  std::map<int32_t, int64_t> want;  // partition -> end
  std::vector<Position> start;
  for (const Position& p : from) {
    if (p.partition < 0 || p.partition >= static_cast<int32_t>(ends.size())) {
      return absl::InvalidArgumentError("partition out of range");
    }
    if (p.offset < ends[p.partition]) {
      want[p.partition] = ends[p.partition];
      start.push_back(p);
    }
  }
  std::vector<Record> out;
  if (want.empty()) return out;
  CRM_ASSIGN_OR_RETURN(auto sub, log.Subscribe(topic, start));
  const absl::Time deadline = absl::Now() + timeout;
  while (!want.empty()) {
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat("reading ", topic, " to its end timed out"));
    }
    CRM_ASSIGN_OR_RETURN(std::vector<Record> batch, sub->Poll(4096, absl::Milliseconds(200)));
    for (Record& rec : batch) {
      auto it = want.find(rec.partition);
      if (it != want.end() && rec.offset < it->second) out.push_back(std::move(rec));
    }
    for (auto it = want.begin(); it != want.end();) {
      it = sub->Position(it->first) >= it->second ? want.erase(it) : std::next(it);
    }
  }
  return out;
}

}  // namespace crm::eventlog
