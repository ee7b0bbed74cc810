#include "tools/crmctl_ops.h"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/clock.h"
#include "libs/eventlog/embedded_log.h"
#include "libs/eventlog/envelope.h"
#include "libs/eventlog/kafka_log.h"
#include "libs/eventlog/wal_check.h"
#include "libs/projection/rebuild.h"
#include "nlohmann/json.hpp"
#include "services/integration/public_event.h"
#include "services/registry/registry.h"
#include "tools/crm_ops_verbs.h"
#include "tools/crmctl_common.h"
#include "libs/topics/topics.h"

namespace crm::ctl {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kProblemsFound = 4;
const std::vector<std::string>& kServiceTopics = topics::ServiceTopics();

// The projections of crmd's services, by their folder under the data folder.
std::vector<std::pair<std::string, projection::ProjectionSpec>> ServiceSpecs() {
  std::vector<std::pair<std::string, projection::ProjectionSpec>> specs;
  for (const server::ServiceModule* m : registry::Modules()) {
    if (m->spec) specs.emplace_back(std::string(m->name), m->spec());
  }
  return specs;
}

// A scratch folder made on first use and removed when it goes out of scope, so only verbs
// that open a read-only follower make one.
class TempDir {
 public:
  TempDir() = default;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const fs::path& path() {
    if (path_.empty()) {
      std::string t = (fs::temp_directory_path() / "crmctl-XXXXXX").string();
      if (mkdtemp(t.data()) != nullptr) path_ = t;
    }
    return path_;
  }

 private:
  fs::path path_;
};

// Set by SIGINT or SIGTERM while `tail --follow` runs, so it stops between polls and the
// scratch folder is removed.
volatile std::sig_atomic_t g_stop_follow = 0;
extern "C" void StopFollow(int) { g_stop_follow = 1; }

}  // namespace

struct OpsCommands::Flags {
  CLI::App* rebuild = nullptr;
  CLI::App* tail = nullptr;
  CLI::App* lag = nullptr;
  CLI::App* verify = nullptr;
  std::string data_dir = "data";
  std::string bootstrap;
  std::vector<std::string> kafka_properties;
  std::string topic;
  int64_t last = 10;
  bool from_beginning = false;
  bool follow = false;
  bool projections = false;
  std::string seal_key;
  std::string seal_dir;

  TempDir scratch;

  // The log: Kafka when --bootstrap-servers is given, else the data folder's embedded log as
  // a read-only follower, so crmd may be running.
  absl::StatusOr<std::unique_ptr<eventlog::Log>> OpenLog() {
    if (!bootstrap.empty()) {
      absl::StatusOr<std::map<std::string, std::string>> extra = eventlog::ParseKafkaProperties(kafka_properties);
      if (!extra.ok()) return extra.status();
      return eventlog::OpenKafkaLog({.bootstrap_servers = bootstrap, .client_id = "crmctl", .extra = *std::move(extra)});
    }
    if (!fs::exists(fs::path(data_dir) / "log")) {
      return absl::NotFoundError(absl::StrCat("no log at ", data_dir, "/log (give --data-dir or --bootstrap-servers)"));
    }
    return eventlog::OpenEmbeddedLog({.path = data_dir + "/log", .follower_dir = (scratch.path() / "log").string()});
  }
  void AddSource(CLI::App* cmd, const std::string& data_help) {
    cmd->add_option("--data-dir", data_dir, data_help)->capture_default_str();
    cmd->add_option("--bootstrap-servers", bootstrap, "Read Kafka instead of the embedded log")
        ->envname("KAFKA_BOOTSTRAP_SERVERS");
    cmd->add_option("--kafka-property", kafka_properties, "librdkafka property KEY=VALUE (repeatable)");
  }
};

void OpsCommands::Add(CLI::App& app) {
  f_ = std::make_shared<Flags>();
  Flags& f = *f_;
  auto verb = [&app](const char* name) {
    for (const OpsVerb& v : kOpsVerbs) {
      if (std::string_view(v.name) == name) return app.add_subcommand(v.name, v.help);
    }
    return app.add_subcommand(name);  // unreachable: every verb below is in kOpsVerbs
  };
  f.rebuild = verb("rebuild");
  f.rebuild->add_option("--data-dir", f.data_dir, "crmd's data folder")->capture_default_str();

  f.tail = verb("tail");
  f.tail->add_option("topic", f.topic, "e.g. crm.customers.events.v1, crm.inbound.v1.dlq")->required();
  f.AddSource(f.tail, "crmd's data folder (crmd may be running)");
  f.tail->add_option("-n,--last", f.last, "Records per partition from the end")->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  f.tail->add_flag("--from-beginning", f.from_beginning, "From the first record");
  f.tail->add_flag("-f,--follow", f.follow, "Keep printing new records until interrupted");

  f.lag = verb("lag");
  f.AddSource(f.lag, "The data folder holding the projections (crmd's, or a service's --data-dir)");

  f.verify = verb("verify");
  f.AddSource(f.verify, "crmd's data folder (with --bootstrap-servers and --projections: a service's --data-dir)");
  f.verify->add_flag("--projections", f.projections,
                     "Also rebuild each projection beside the live one and compare checksums (crmd or the service "
                     "stopped); a projection folder that is missing is a problem");
  f.verify->add_option("--seal-key", f.seal_key,
                       "Ed25519 public key (PEM; crmd's private seal key works too): check every record against the "
                       "latest seal, and a missing or altered seal")
      ->envname("CRM_SEAL_PUBLIC_KEY");
  f.verify->add_option("--seal-dir", f.seal_dir, "Folder of the latest seal (default <data-dir>/seals)");
}

bool OpsCommands::Parsed() const {
  return f_->rebuild->parsed() || f_->tail->parsed() || f_->lag->parsed() || f_->verify->parsed();
}

namespace {

int Rebuild(const std::string& data_dir) {
  auto log = eventlog::OpenEmbeddedLog({.path = data_dir + "/log"});
  if (!log.ok()) return Fail(absl::StrCat(log.status().message(), " (is crmd still running?)"));
  for (const auto& [service, spec] : ServiceSpecs()) {
    const absl::Time t0 = absl::Now();
    auto n = projection::RebuildAndSwap(**log, spec, data_dir + "/" + service);
    if (!n.ok()) return Fail(absl::StrCat(service, ": ", n.status().message()));
    const double secs = absl::ToDoubleSeconds(absl::Now() - t0);
    std::printf("%s: rebuilt from %lld events in %.2f s (%.0f events/s)\n", service.c_str(), static_cast<long long>(*n),
                secs, secs > 0 ? *n / secs : 0.0);
  }
  return 0;
}

void PrintRecord(const eventlog::Record& r, bool as_json) {
  absl::StatusOr<eventlog::EventEnvelope> e = eventlog::DecodeEnvelope(r.value);
  if (as_json) {
    if (e.ok()) {
      if (absl::StatusOr<std::string> ce = integration::PublicEventJson(r); ce.ok()) {
        std::cout << *ce << "\n";
        return;
      }
    }
    json headers = json::object();
    for (const auto& h : r.headers) headers[h.key] = h.value;
    json value = json::parse(r.value, nullptr, false);
    json out = {{"position", integration::PositionString(r)}, {"key", r.key}, {"headers", headers}};
    out["value"] = value.is_discarded() ? json(r.value) : value;
    std::cout << out.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    return;
  }
  if (e.ok()) {
    std::printf("%-32s %-24s %-40s %s/%s v%lld %s (%s)\n", integration::PositionString(r).c_str(),
                google::protobuf::util::TimeUtil::ToString(e->recorded_at()).substr(0, 19).c_str(),
                e->event_type().c_str(), e->aggregate_type().c_str(), e->aggregate_id().c_str(),
                static_cast<long long>(e->aggregate_version()), e->actor().user_id().c_str(),
                e->actor().role().c_str());
  } else {
    std::string v = r.value.size() > 160 ? r.value.substr(0, 160) + "…" : r.value;
    for (char& c : v) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    std::printf("%-32s %-24s %s\n", integration::PositionString(r).c_str(), r.key.c_str(), v.c_str());
  }
}

int Tail(OpsCommands::Flags& f, eventlog::Log& log, bool as_json) {
  absl::StatusOr<int32_t> n = log.PartitionCount(f.topic);
  if (absl::IsNotFound(n.status())) return Fail(absl::StrCat("no topic ", f.topic));
  if (!n.ok()) return Fail(std::string(n.status().message()));
  absl::StatusOr<std::vector<int64_t>> ends = log.EndOffsets(f.topic);
  if (!ends.ok()) return Fail(std::string(ends.status().message()));
  std::vector<eventlog::Position> from;
  for (int32_t p = 0; p < *n; ++p) from.push_back({p, f.from_beginning ? 0 : std::max<int64_t>(0, (*ends)[p] - f.last)});
  if (!f.follow) {
    absl::StatusOr<std::vector<eventlog::Record>> recs = eventlog::ReadToEnd(log, f.topic, from);
    if (!recs.ok()) return Fail(std::string(recs.status().message()));
    std::stable_sort(recs->begin(), recs->end(),
                     [](const auto& a, const auto& b) { return a.timestamp_ms < b.timestamp_ms; });
    for (const eventlog::Record& r : *recs) PrintRecord(r, as_json);
    return 0;
  }
  absl::StatusOr<std::unique_ptr<eventlog::Subscription>> sub = log.Subscribe(f.topic, from);
  if (!sub.ok()) return Fail(std::string(sub.status().message()));
  std::signal(SIGINT, StopFollow);
  std::signal(SIGTERM, StopFollow);
  while (g_stop_follow == 0) {
    absl::StatusOr<std::vector<eventlog::Record>> recs = (*sub)->Poll(256, absl::Milliseconds(500));
    if (!recs.ok()) return Fail(std::string(recs.status().message()));
    for (const eventlog::Record& r : *recs) PrintRecord(r, as_json);
    std::cout.flush();
    if (std::fflush(stdout) != 0) return Fail("cannot write to stdout");
  }
  return 0;
}

int Lag(OpsCommands::Flags& f, eventlog::Log& log, bool as_json) {
  json rows = json::array();
  for (const auto& [service, spec] : ServiceSpecs()) {
    const fs::path dir = fs::path(f.data_dir) / service;
    if (!fs::exists(dir / "CURRENT")) continue;
    auto db = projection::ProjectionDb::Open(
        {.path = dir.string(), .follower_dir = (f.scratch.path() / ("p-" + service)).string()});
    if (!db.ok()) return Fail(absl::StrCat(service, ": ", db.status().message()));
    for (const projection::Source& s : spec.sources) {
      absl::StatusOr<std::vector<int64_t>> ends = log.EndOffsets(s.topic);
      if (absl::IsNotFound(ends.status())) continue;
      if (!ends.ok()) return Fail(std::string(ends.status().message()));
      int64_t end = 0, applied = 0;
      for (int32_t p = 0; p < static_cast<int32_t>(ends->size()); ++p) {
        end += (*ends)[p];
        applied += (*db)->NextOffset(s.topic, p);
      }
      rows.push_back({{"projection", service}, {"topic", s.topic}, {"applied", applied}, {"end", end},
                      {"lag", end - applied}});
    }
  }
  if (rows.empty()) return Fail(absl::StrCat("no projections under ", f.data_dir));
  if (as_json) {
    std::cout << rows.dump(2) << "\n";
    return 0;
  }
  std::printf("%-14s %-30s %12s %12s %10s\n", "PROJECTION", "TOPIC", "APPLIED", "LOG END", "LAG");
  for (const json& r : rows) {
    std::printf("%-14s %-30s %12lld %12lld %10lld\n", r["projection"].get<std::string>().c_str(),
                r["topic"].get<std::string>().c_str(), static_cast<long long>(r["applied"].get<int64_t>()),
                static_cast<long long>(r["end"].get<int64_t>()), static_cast<long long>(r["lag"].get<int64_t>()));
  }
  std::printf("(on Kafka, end offsets count transaction markers: a caught-up projection may show a small lag)\n");
  return 0;
}

}  // namespace

json VerifyChains(eventlog::Log& log, const std::string& topic, int* problems, eventlog::SealCheck* seal) {
  json out = {{"topic", topic}, {"events", 0}, {"aggregates", 0}, {"problems", json::array()}};
  absl::StatusOr<int32_t> n = log.PartitionCount(topic);
  if (absl::IsNotFound(n.status())) return out;
  auto problem = [&](std::string what) {
    ++*problems;
    if (out["problems"].size() < 20) out["problems"].push_back(std::move(what));
  };
  if (!n.ok()) {
    problem(std::string(n.status().message()));
    return out;
  }
  std::vector<eventlog::Position> from;
  for (int32_t p = 0; p < *n; ++p) from.push_back({p, 0});
  absl::StatusOr<std::vector<eventlog::Record>> recs = eventlog::ReadToEnd(log, topic, from, absl::Minutes(30));
  if (!recs.ok()) {
    problem(std::string(recs.status().message()));
    return out;
  }
  struct Chain {
    int64_t version = 0;
    std::string hash;
  };
  std::map<std::string, Chain> chains;
  std::set<std::string> ids;
  for (const eventlog::Record& r : *recs) {
    if (seal != nullptr) seal->Add(r);
    absl::StatusOr<eventlog::EventEnvelope> e = eventlog::DecodeEnvelope(r.value);
    if (!e.ok()) {
      problem(absl::StrCat(integration::PositionString(r), ": ", e.status().message()));
      continue;
    }
    Chain& c = chains[absl::StrCat(e->aggregate_type(), "/", e->aggregate_id())];
    const std::string where = absl::StrCat(integration::PositionString(r), " ", e->aggregate_type(), "/",
                                           e->aggregate_id(), " v", e->aggregate_version());
    if (e->aggregate_version() != c.version + 1) {
      problem(absl::StrCat(where, ": expected version ", c.version + 1));
    }
    if (absl::Status s = eventlog::VerifyEnvelope(*e, c.hash); !s.ok()) problem(absl::StrCat(where, ": ", s.message()));
    if (!ids.insert(e->event_id()).second) problem(absl::StrCat(where, ": event id ", e->event_id(), " seen before"));
    c.version = e->aggregate_version();
    c.hash = e->hash();
  }
  out["events"] = recs->size();
  out["aggregates"] = chains.size();
  return out;
}

json VerifyProjections(eventlog::Log& log, const std::string& data_dir, const std::vector<std::string>& services,
                       const std::string& scratch_dir, int* problems) {
  const fs::path scratch(scratch_dir);
  std::error_code ec;
  fs::create_directories(scratch, ec);
  json out = json::array();
  for (const auto& [service, spec] : ServiceSpecs()) {
    if (std::find(services.begin(), services.end(), service) == services.end()) continue;
    json row = {{"projection", service}};
    const std::string live_path = data_dir + "/" + service;
    // A folder that is gone holds nothing to compare, and nothing wrong would show: it is a
    // problem of its own (a service opening it would rebuild it silently).
    if (!fs::exists(fs::path(live_path) / "CURRENT")) {
      ++*problems;
      row["error"] = absl::StrCat(service, " projections are missing: no database at ", live_path);
      out.push_back(row);
      continue;
    }
    auto live = projection::ProjectionDb::Open({.path = live_path});
    if (!live.ok()) {
      ++*problems;
      row["error"] = std::string(live.status().message());
      out.push_back(row);
      continue;
    }
    int64_t behind = 0;
    for (const projection::Source& s : spec.sources) {
      if (auto lag = projection::LagRecords(log, **live, s.topic); lag.ok()) behind += *lag;
    }
    const std::string fresh_path = (scratch / ("rebuild-" + service)).string();
    auto n = projection::Rebuild(log, spec, fresh_path);
    auto fresh = n.ok() ? projection::ProjectionDb::Open({.path = fresh_path})
                        : absl::StatusOr<std::unique_ptr<projection::ProjectionDb>>(n.status());
    absl::StatusOr<std::string> a = projection::Checksum(**live);
    absl::StatusOr<std::string> b = fresh.ok() ? projection::Checksum(**fresh) : fresh.status();
    row["live"] = a.ok() ? *a : std::string(a.status().message());
    row["rebuilt"] = b.ok() ? *b : std::string(b.status().message());
    row["behind"] = behind;
    row["equal"] = a.ok() && b.ok() && *a == *b;
    if (behind > 0) {
      row["note"] = "the live copy is behind the log: start crmd once (it catches up) and verify again";
    }
    if (!row["equal"].get<bool>()) ++*problems;
    out.push_back(row);
  }
  return out;
}

namespace {

using Checkpoints = std::map<std::pair<std::string, int32_t>, int64_t>;

// Every projection's checkpoints under the data folder, read as a follower before the log is
// opened: a record crmd appends and applies meanwhile is then in the log that is read after.
std::vector<std::pair<std::string, Checkpoints>> ReadCheckpoints(OpsCommands::Flags& f, json& findings, int* problems) {
  std::vector<std::pair<std::string, Checkpoints>> out;
  for (const auto& [service, spec] : ServiceSpecs()) {
    const fs::path dir = fs::path(f.data_dir) / service;
    if (!fs::exists(dir / "CURRENT")) continue;
    auto db = projection::ProjectionDb::Open(
        {.path = dir.string(), .follower_dir = (f.scratch.path() / ("c-" + service)).string()});
    if (!db.ok()) {
      ++*problems;
      findings.push_back(absl::StrCat(service, " projections: ", db.status().message()));
      continue;
    }
    out.emplace_back(service, (*db)->Checkpoints());
  }
  return out;
}

int Verify(OpsCommands::Flags& f, bool as_json) {
  int problems = 0;
  json report = {{"log", json::array()}, {"topics", json::array()}};
  json& findings = report["log"];
  auto problem = [&](std::string what) {
    ++problems;
    findings.push_back(std::move(what));
  };
  std::optional<eventlog::SealKey> key;
  if (!f.seal_key.empty()) {
    absl::StatusOr<eventlog::SealKey> k = eventlog::SealKey::LoadPublic(f.seal_key);
    if (!k.ok()) return Fail(std::string(k.status().message()));
    key = *std::move(k);
  }
  const std::vector<std::pair<std::string, Checkpoints>> checkpoints = ReadCheckpoints(f, findings, &problems);
  if (f.bootstrap.empty() && fs::exists(fs::path(f.data_dir) / "log")) {
    absl::StatusOr<std::vector<eventlog::WalDamage>> damage = eventlog::CheckWalFiles(f.data_dir + "/log");
    if (!damage.ok()) return Fail(std::string(damage.status().message()));
    for (const eventlog::WalDamage& d : *damage) problem(eventlog::DescribeWalDamage(d));
  }
  absl::StatusOr<std::unique_ptr<eventlog::Log>> log = f.OpenLog();
  if (absl::IsDataLoss(log.status())) {
    problem(std::string(log.status().message()));
  } else if (!log.ok()) {
    return Fail(std::string(log.status().message()));
  }
  std::optional<eventlog::OpenedSeal> seal;
  std::optional<eventlog::SealCheck> check;
  if (key.has_value()) {
    const std::string dir = f.seal_dir.empty() ? f.data_dir + "/seals" : f.seal_dir;
    absl::StatusOr<eventlog::OpenedSeal> s = eventlog::ReadLatestSeal(dir, *key);
    if (s.ok()) {
      seal = *std::move(s);
      check.emplace(seal->seal);
      report["seal"] = {{"sequence", seal->seal.sequence()},
                        {"sealed_at", google::protobuf::util::TimeUtil::ToString(seal->seal.sealed_at())},
                        {"key_id", seal->seal.key_id()}};
    } else {
      problem(std::string(s.status().message()));
    }
  }
  if (log.ok()) {
    for (const std::string& topic : kServiceTopics) {
      report["topics"].push_back(VerifyChains(**log, topic, &problems, check ? &*check : nullptr));
    }
    if (check.has_value()) {
      for (std::string& p : check->Finish()) problem(std::move(p));
      report["seal"]["unsealed_records"] = check->unsealed();
    }
    for (const auto& [service, ckpts] : checkpoints) {
      absl::StatusOr<std::vector<std::string>> past = projection::CheckpointsPastLogEnd(**log, ckpts);
      if (!past.ok()) return Fail(std::string(past.status().message()));
      for (const std::string& p : *past) {
        problem(absl::StrCat(service, " projections hold events the log no longer has: ", p));
      }
    }
  }
  if (f.projections) {
    json& rows = report["projections"] = json::array();
    if (f.bootstrap.empty()) {
      // crmd's data folder holds every service's projections; the owner's open below needs
      // no follower beside it, but frees its files.
      if (log.ok()) log->reset();
      auto owner = eventlog::OpenEmbeddedLog({.path = f.data_dir + "/log"});
      if (!owner.ok()) {
        ++problems;
        rows.push_back({{"error", absl::StrCat(owner.status().message(), " (stop crmd to verify projections)")}});
      } else {
        std::vector<std::string> every;
        for (const auto& [service, spec] : ServiceSpecs()) every.push_back(service);
        rows = VerifyProjections(**owner, f.data_dir, every, f.scratch.path().string(), &problems);
      }
    } else if (log.ok()) {
      // A service on Kafka keeps its own projections under its --data-dir, the others' are
      // elsewhere: compare those there are, and none at all is a problem.
      std::vector<std::string> present;
      for (const auto& [service, spec] : ServiceSpecs()) {
        if (fs::exists(fs::path(f.data_dir) / service)) present.push_back(service);
      }
      if (present.empty()) {
        ++problems;
        rows.push_back({{"error", absl::StrCat("no projections under ", f.data_dir,
                                               " (give a stopped service's --data-dir)")}});
      } else {
        rows = VerifyProjections(**log, f.data_dir, present, f.scratch.path().string(), &problems);
      }
    }
  }
  report["problems"] = problems;
  if (as_json) {
    std::cout << report.dump(2) << "\n";
  } else {
    for (const json& p : findings) std::printf("PROBLEM: %s\n", p.get<std::string>().c_str());
    if (report.contains("seal")) {
      std::printf("seal %lld of %s (key %s): %lld records after it are not sealed yet\n",
                  static_cast<long long>(report["seal"]["sequence"].get<int64_t>()),
                  report["seal"]["sealed_at"].get<std::string>().c_str(),
                  report["seal"]["key_id"].get<std::string>().substr(0, 16).c_str(),
                  static_cast<long long>(report["seal"].value("unsealed_records", int64_t{0})));
    }
    for (const json& t : report["topics"]) {
      std::printf("%-30s %10lld events %8lld aggregates  %s\n", t["topic"].get<std::string>().c_str(),
                  static_cast<long long>(t["events"].get<int64_t>()),
                  static_cast<long long>(t["aggregates"].get<int64_t>()),
                  t["problems"].empty() ? "chains and versions ok" : "PROBLEMS:");
      for (const json& p : t["problems"]) std::printf("    %s\n", p.get<std::string>().c_str());
    }
    for (const json& p : report.value("projections", json::array())) {
      if (p.contains("error")) {
        std::printf("projections: %s\n", p["error"].get<std::string>().c_str());
        continue;
      }
      std::printf("%-14s live %s, rebuilt %s: %s\n", p["projection"].get<std::string>().c_str(),
                  p["live"].get<std::string>().c_str(), p["rebuilt"].get<std::string>().c_str(),
                  p["equal"].get<bool>() ? "equal" : "DIFFERENT");
      if (p.contains("note")) std::printf("    %s\n", p["note"].get<std::string>().c_str());
    }
    std::printf(problems == 0 ? "verified: no problem\n" : "%d problem(s)\n", problems);
  }
  return problems == 0 ? 0 : kProblemsFound;
}

}  // namespace

int OpsCommands::Run(bool json_output) {
  Flags& f = *f_;
  if (f.rebuild->parsed()) return Rebuild(f.data_dir);
  // Followers of crmd's stores need a scratch folder; reading Kafka alone does not.
  const bool needs_scratch = f.bootstrap.empty() || f.lag->parsed() || f.projections;
  if (needs_scratch && f.scratch.path().empty()) return Fail("cannot create a temporary folder");
  // A damaged log is one of verify's findings (exit 4), not a failure to run.
  if (f.verify->parsed()) return Verify(f, json_output);
  absl::StatusOr<std::unique_ptr<eventlog::Log>> log = f.OpenLog();
  if (!log.ok()) return Fail(std::string(log.status().message()));
  if (f.tail->parsed()) return Tail(f, **log, json_output);
  return Lag(f, **log, json_output);
}

}  // namespace crm::ctl
