// crm-compat-log: moves an embedded log to and from a text dump that does not depend on
// RocksDB's file format, for tests/compat_test.py. Not shipped.
//
//   crm-compat-log dump DIR TOPIC...   prints every record of the topics that exist in the log
//                                      at DIR (<data-dir>/log), in partition and offset order
//   crm-compat-log load DIR            appends the dump read from stdin to a new log at DIR
//   crm-compat-log checksums DB        prints the projection database DB's checksum per key
//                                      prefix (projection::PrefixChecksums), one "prefix sum"
//                                      line each, the prefix in base64
//
// The dump is one line per item, fields separated by one space, bytes in base64:
//   T <topic> <partitions>
//   R <topic> <partition> <offset> <timestamp_ms> <key> <value> <header count> [<hkey> <hvalue>]...
// `load` appends each record on its own and fails (exit 1) unless it lands at the partition
// and offset the dump gives: the replayed log then holds the same bytes at the same positions.
// Records holding an event envelope are appended with the stream condition the service's
// writer uses ("<aggregate type>/<id>" at version - 1), so the log's stream rows are written as
// the original writer wrote them. The log stamps its own record timestamps: they are in the
// dump for the record, and `load` does not (cannot) restore them.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "libs/eventlog/embedded_log.h"
#include "libs/eventlog/envelope.h"
#include "libs/eventlog/log.h"
#include "libs/projection/projection_db.h"
#include "libs/projection/rebuild.h"

namespace {

using crm::eventlog::Record;

int Fail(const std::string& why) {
  std::fprintf(stderr, "crm-compat-log: %s\n", why.c_str());
  return 1;
}

std::string B64(const std::string& s) { return absl::Base64Escape(s); }

int Dump(const std::string& dir, const std::vector<std::string>& topics) {
  auto log = crm::eventlog::OpenEmbeddedLog({.path = dir});
  if (!log.ok()) return Fail(std::string(log.status().message()));
  for (const std::string& topic : topics) {
    absl::StatusOr<int32_t> parts = (*log)->PartitionCount(topic);
    if (absl::IsNotFound(parts.status())) continue;
    if (!parts.ok()) return Fail(std::string(parts.status().message()));
    std::printf("T %s %d\n", topic.c_str(), *parts);
    std::vector<crm::eventlog::Position> from;
    for (int32_t p = 0; p < *parts; ++p) from.push_back({.partition = p, .offset = 0});
    auto records = crm::eventlog::ReadToEnd(**log, topic, from);
    if (!records.ok()) return Fail(std::string(records.status().message()));
    std::stable_sort(records->begin(), records->end(), [](const Record& a, const Record& b) {
      return std::tie(a.partition, a.offset) < std::tie(b.partition, b.offset);
    });
    for (const Record& r : *records) {
      std::string line = absl::StrCat("R ", topic, " ", r.partition, " ", r.offset, " ", r.timestamp_ms, " ",
                                      B64(r.key), " ", B64(r.value), " ", r.headers.size());
      for (const auto& h : r.headers) absl::StrAppend(&line, " ", B64(h.key), " ", B64(h.value));
      std::printf("%s\n", line.c_str());
    }
  }
  return std::fflush(stdout) == 0 ? 0 : Fail("cannot write the dump");
}

int Load(const std::string& dir) {
  auto log = crm::eventlog::OpenEmbeddedLog({.path = dir});
  if (!log.ok()) return Fail(std::string(log.status().message()));
  std::map<std::string, std::unique_ptr<crm::eventlog::Writer>> writers;
  std::string line;
  int64_t n = 0;
  while (std::getline(std::cin, line)) {
    ++n;
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    const std::string where = absl::StrCat("line ", n);
    if (f.size() == 3 && f[0] == "T") {
      int32_t parts = 0;
      if (!absl::SimpleAtoi(f[2], &parts)) return Fail(where + ": bad partition count");
      if (absl::Status s = (*log)->CreateTopic(f[1], parts); !s.ok()) return Fail(where + ": " + s.ToString());
      auto w = (*log)->OpenWriter(f[1]);
      if (!w.ok()) return Fail(where + ": " + w.status().ToString());
      writers[f[1]] = std::move(*w);
      continue;
    }
    int32_t partition = 0;
    int64_t offset = 0, headers = 0;
    if (f.size() < 8 || f[0] != "R" || !absl::SimpleAtoi(f[2], &partition) || !absl::SimpleAtoi(f[3], &offset) ||
        !absl::SimpleAtoi(f[7], &headers) || headers < 0 || f.size() != 8 + 2 * static_cast<size_t>(headers)) {
      return Fail(where + ": not a record line");
    }
    auto w = writers.find(f[1]);
    if (w == writers.end()) return Fail(where + ": record of a topic not declared before");
    std::string key;
    crm::eventlog::Message m;
    bool ok = absl::Base64Unescape(f[5], &key) && absl::Base64Unescape(f[6], &m.value);
    for (int64_t i = 0; ok && i < headers; ++i) {
      crm::eventlog::Header h;
      ok = absl::Base64Unescape(f[8 + 2 * i], &h.key) && absl::Base64Unescape(f[9 + 2 * i], &h.value);
      m.headers.push_back(std::move(h));
    }
    if (!ok) return Fail(where + ": bad base64");
    absl::StatusOr<crm::eventlog::Appended> got = absl::UnknownError("no answer");
    absl::Notification done;
    auto callback = [&](absl::StatusOr<crm::eventlog::Appended> a) {
      got = std::move(a);
      done.Notify();
    };
    std::vector<crm::eventlog::Message> msgs;
    msgs.push_back(std::move(m));
    if (auto env = crm::eventlog::DecodeEnvelope(msgs[0].value); env.ok() && env->aggregate_version() > 0) {
      const int64_t at = env->aggregate_version() - 1;
      w->second->AppendExpecting(key, std::move(msgs), absl::StrCat(env->aggregate_type(), "/", env->aggregate_id()),
                                 at == 0 ? crm::eventlog::ExpectedVersion::NoStream()
                                         : crm::eventlog::ExpectedVersion::Exact(at),
                                 callback);
    } else {
      w->second->Append(key, std::move(msgs), callback);
    }
    if (!done.WaitForNotificationWithTimeout(absl::Seconds(30))) return Fail(where + ": append timed out");
    if (!got.ok()) return Fail(where + ": " + got.status().ToString());
    if (got->partition != partition || got->offsets.size() != 1 || got->offsets[0] != offset) {
      return Fail(absl::StrCat(where, ": landed at ", got->partition, "/",
                               got->offsets.empty() ? -1 : got->offsets[0], ", the dump says ", partition, "/",
                               offset));
    }
  }
  return 0;
}

int Checksums(const std::string& path) {
  auto db = crm::projection::ProjectionDb::Open({.path = path});
  if (!db.ok()) return Fail(std::string(db.status().message()));
  auto sums = crm::projection::PrefixChecksums(**db);
  if (!sums.ok()) return Fail(std::string(sums.status().message()));
  for (const auto& [prefix, sum] : *sums) std::printf("%s %s\n", B64(prefix).c_str(), sum.c_str());
  return std::fflush(stdout) == 0 ? 0 : Fail("cannot write the checksums");
}

}  // namespace

int main(int argc, char** argv) {
  const std::string verb = argc > 1 ? argv[1] : "";
  if (verb == "dump" && argc >= 4) return Dump(argv[2], std::vector<std::string>(argv + 3, argv + argc));
  if (verb == "load" && argc == 3) return Load(argv[2]);
  if (verb == "checksums" && argc == 3) return Checksums(argv[2]);
  std::fprintf(stderr, "usage: crm-compat-log dump DIR TOPIC... | load DIR < dump | checksums DB\n");
  return 2;
}
