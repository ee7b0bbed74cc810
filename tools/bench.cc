// crm-bench: load generator. Workloads:
//   create   durable CreateCustomer over gRPC with N concurrent clients (callback API, so one
//            client thread drives them all), against an in-process server on the embedded
//            log or the in-process Kafka mock cluster, or against --target.
//   rebuild  writes --events CustomerCreated events into the embedded log, then rebuilds the
//            customers projections from offset 0 and reports events/s.
//   reads    --events/2 customers with a follow-up each: FindDuplicates latency (by phone, by
//            company name) and PreviewTagRule over every event.
//   update   durable UpdateCustomer over --customers customers created first, each updated round
//            robin (the write kernel's state cache), in-process or against --target.
//   stage    durable MoveOpportunityStage over gRPC against an in-process crmd (customers and
//            opportunities on the embedded log), 50 opportunities per client moved round robin.
//   opp-rebuild  writes --events opportunity events (created + 4 stage changes each) and
//            rebuilds the opportunities projections from them.
//   import   a generated --rows CSV (GB18030, 12 columns, 1% repeated phones, 0.5% bad phones)
//            through crmctl's import code and the ImportCustomers stream into an in-process
//            server; --runs fresh servers, rows/s per run and the median, peak RSS of the
//            process (client and server together).
// Prints a table and, with --json, one JSON object per run; the load workloads add the write
// kernel's work per command of each service they drove (tools/bench_common.h, KernelWork).
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <type_traits>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "crm/customers/v1/customers_service.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/grpcpp.h"
#include "libs/common/clock.h"
#include "libs/common/ids.h"
#include "libs/eventlog/embedded_log.h"
#include "libs/eventlog/seal.h"
#include "libs/eventlog/envelope.h"
#include "libs/eventlog/kafka_log.h"
#include "libs/eventlog/mock_cluster.h"
#include "libs/common/csv.h"
#include "libs/server/listener.h"
#include "libs/server/process.h"
#include "libs/server/runtime.h"
#include "libs/topics/contracts.h"
#include "libs/topics/events.h"
#include "services/customers/customers_service.h"
#include "tools/bench_analytics.h"
#include "tools/bench_common.h"
#include "tools/bench_crmd.h"
#include "tools/bench_day.h"
#include "tools/bench_journal.h"
#include "tools/bench_peer.h"
#include "tools/bench_sales.h"
#include "tools/bench_tasks.h"
#include "tools/bench_tickets.h"
#include "tools/crmctl_bulk.h"

namespace {

using crm::bench::Cpu;
using crm::bench::Percentile;
using crm::bench::Print;
using crm::bench::Result;
using crm::customers::v1::CreateCustomerRequest;
using crm::customers::v1::Customer;

// An in-process server: log + engine + gRPC runtime on 127.0.0.1:0.
struct LocalServer {
  std::string dir;
  std::unique_ptr<crm::eventlog::MockCluster> mock;
  std::unique_ptr<crm::eventlog::Log> log;
  std::unique_ptr<crm::projection::ProjectionDb> db;
  std::unique_ptr<crm::customers::CustomerEngine> engine;
  std::unique_ptr<crm::server::Authenticator> auth;
  std::unique_ptr<crm::server::Runtime> runtime;
  std::unique_ptr<crm::customers::CustomersService> service;
  std::unique_ptr<crm::eventlog::Sealer> sealer;
  std::string key = std::string(48, 'k');
  // Seal the log as crmd --seal-key does (a throwaway key, crmd's default interval).
  bool seal = false;

  std::map<std::string, std::string> kafka_config;

  absl::Status Start(const std::string& backend, const std::string& base) {
    dir = absl::StrCat(base, "/crm-bench-", getpid());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    if (backend == "kafka") {
      auto m = crm::eventlog::MockCluster::Start(3);
      if (!m.ok()) return m.status();
      mock = std::move(*m);
      if (auto s = mock->CreateTopic(crm::customers::kTopic, crm::customers::kPartitions, 3); !s.ok()) return s;
      crm::eventlog::KafkaLogOptions o;
      o.bootstrap_servers = mock->bootstrap_servers();
      o.extra = kafka_config;
      auto l = crm::eventlog::OpenKafkaLog(o);
      if (!l.ok()) return l.status();
      log = std::move(*l);
    } else {
      auto l = crm::eventlog::OpenEmbeddedLog({.path = dir + "/log"});
      if (!l.ok()) return l.status();
      log = std::move(*l);
    }
    auto d = crm::projection::ProjectionDb::Open({.path = dir + "/customers"});
    if (!d.ok()) return d.status();
    db = std::move(*d);
    auto e = crm::customers::CustomerEngine::Open(log.get(), db.get(), {.clock = crm::SystemClock::Get()});
    if (!e.ok()) return e.status();
    engine = std::move(*e);
    if (seal) {
      auto k = crm::eventlog::SealKey::LoadPrivate(dir + "/seal.key", /*create=*/true);
      if (!k.ok()) return k.status();
      auto sl = crm::eventlog::Sealer::Start(log.get(), *k,
                                             {.topics = {crm::customers::kTopic}, .dir = dir + "/seals",
                                              .interval = absl::Seconds(5)});
      if (!sl.ok()) return sl.status();
      sealer = std::move(*sl);
    }
    auth = std::make_unique<crm::server::Authenticator>(key, crm::SystemClock::Get());
    crm::server::RuntimeOptions ro;
    ro.listen = "127.0.0.1:0";
    ro.max_inflight = 1 << 16;
    runtime = std::make_unique<crm::server::Runtime>(ro, auth.get(), nullptr);
    service = std::make_unique<crm::customers::CustomersService>(engine.get(), runtime.get());
    return runtime->Start({service.get()});
  }
  ~LocalServer() {
    if (runtime) runtime->Shutdown();
    service.reset();
    engine.reset();
    sealer.reset();
    db.reset();
    log.reset();
    mock.reset();
    if (!dir.empty()) std::filesystem::remove_all(dir);
  }
};

// Sends `req` as one asynchronous unary call with a 30 s deadline (and `token` as its bearer
// token unless empty): `start(ctx, req, resp, callback)` is the stub's async method; `done`
// gets the status, and the response too when it takes `(status, response)`.
template <typename Resp, typename Req, typename Start, typename Done>
void SendUnary(Req req, const std::string& token, Start start, Done done, absl::Duration deadline = absl::Seconds(30)) {
  struct Call {
    grpc::ClientContext ctx;
    Req req;
    Resp resp;
  };
  auto* call = new Call();
  call->req = std::move(req);
  if (!token.empty()) call->ctx.AddMetadata("authorization", "Bearer " + token);
  call->ctx.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  start(&call->ctx, &call->req, &call->resp, [call, done = std::move(done)](grpc::Status s) mutable {
    if constexpr (std::is_invocable_v<Done&, const grpc::Status&, const Resp&>) {
      done(s, call->resp);
      delete call;
    } else {
      delete call;
      done(s);
    }
  });
}

// Starts durable CreateCustomer calls, each for a new customer (its number's phone and name).
// With a `journal` path, each also carries a request_id and is journalled as the day's
// creates are (tools/bench_journal.h), so that `--workload day-check` finds every
// acknowledged create once and no create refused for certain.
class CreateCaller {
 public:
  CreateCaller(const std::string& target, std::string token, const std::string& journal = "")
      : stub_(crm::customers::v1::CustomerService::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()))),
        token_(std::move(token)),
        journal_(journal) {}
  bool journal_failed(const std::string& path) const { return journal_.failed(path); }
  // The gRPC deadline of the calls started from now on. Default: 30 s.
  void set_deadline(absl::Duration d) { deadline_ = d; }

  void operator()(int, std::function<void(const grpc::Status&)> done) {
    const int64_t n = seq_.fetch_add(1);
    CreateCustomerRequest req;
    req.mutable_customer()->set_display_name(crm::bench::DisplayName(n));
    req.mutable_customer()->set_phone(crm::bench::Phone(n));
    auto send = [this](auto... a) { stub_->async()->CreateCustomer(a...); };
    if (!journal_.enabled()) return SendUnary<Customer>(std::move(req), token_, send, std::move(done), deadline_);
    req.set_request_id(crm::NewUuidV7(absl::Now()));
    std::string request_id = req.request_id();
    journal_.CreateSent(n, request_id);
    SendUnary<Customer>(std::move(req), token_, send,
                        [this, n, request_id = std::move(request_id), done = std::move(done)](
                            const grpc::Status& s, const Customer& r) {
                          journal_.CreateAnswered(n, request_id, s, r.name(), r.etag());
                          done(s);
                        },
                        deadline_);
  }

 private:
  std::unique_ptr<crm::customers::v1::CustomerService::Stub> stub_;
  const std::string token_;
  crm::bench::Journal journal_;
  absl::Duration deadline_ = absl::Seconds(30);
  std::atomic<int64_t> seq_{static_cast<int64_t>(getpid()) * 100000000LL % 900000000LL};
};

// Starts gRPC health checks: the least work a call to the server can be (no auth, no log, no
// store), so their rate is what gRPC alone carries on this machine at the same concurrency.
class EmptyCaller {
 public:
  explicit EmptyCaller(const std::string& target)
      : stub_(grpc::health::v1::Health::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()))) {}

  void operator()(int, std::function<void(const grpc::Status&)> done) {
    SendUnary<grpc::health::v1::HealthCheckResponse>(
        grpc::health::v1::HealthCheckRequest(), "", [this](auto... a) { stub_->async()->Check(a...); },
        std::move(done));
  }

 private:
  std::unique_ptr<grpc::health::v1::Health::Stub> stub_;
};

// Durable UpdateCustomer calls over a fixed set of customers, each changing its notes: from its
// second write on, a customer's state comes from the write kernel's cache
// (kernel::StoreOptions::cached_states) instead of its row. Client c updates customers c,
// c + clients, c + 2 * clients, ... round robin, so no two clients wait for one customer.
class UpdateCaller {
 public:
  UpdateCaller(const std::string& target, std::string token, int clients)
      : stub_(crm::customers::v1::CustomerService::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()))),
        token_(std::move(token)),
        clients_(clients),
        cursor_(static_cast<size_t>(clients), 0) {}

  // Creates the `n` customers (n >= clients), at most 64 creates in flight; the first
  // failure's status otherwise.
  absl::Status Setup(int64_t n) {
    names_.assign(static_cast<size_t>(n), "");
    absl::Mutex mu;
    int64_t inflight = 0;
    grpc::Status failed;
    const std::string run = absl::StrCat(getpid(), "-", absl::ToUnixMillis(absl::Now()) % 100000);
    for (int64_t i = 0; i < n; ++i) {
      {
        absl::MutexLock l(&mu);
        mu.Await(absl::Condition(+[](int64_t* k) { return *k < 64; }, &inflight));
        ++inflight;
      }
      CreateCustomerRequest req;
      // No phone or email: nothing unique, so runs against one server cannot collide.
      req.mutable_customer()->set_display_name(absl::StrCat("热点客户 ", run, " ", i));
      SendUnary<Customer>(std::move(req), token_, [this](auto... a) { stub_->async()->CreateCustomer(a...); },
                          [&, i](const grpc::Status& s, const Customer& c) {
                            absl::MutexLock l(&mu);
                            if (s.ok()) {
                              names_[static_cast<size_t>(i)] = c.name();
                            } else if (failed.ok()) {
                              failed = s;
                            }
                            --inflight;
                          });
    }
    absl::MutexLock l(&mu);
    mu.Await(absl::Condition(+[](int64_t* k) { return *k == 0; }, &inflight));
    if (!failed.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(failed.error_code()),
                          absl::StrCat("creating the customers to update: ", failed.error_message()));
    }
    return absl::OkStatus();
  }

  void operator()(int client, std::function<void(const grpc::Status&)> done) {
    // A client's calls run one after another, so its cursor needs no lock.
    const int64_t k = cursor_[static_cast<size_t>(client)]++;
    const int64_t mine = (static_cast<int64_t>(names_.size()) - client + clients_ - 1) / clients_;
    const size_t index = static_cast<size_t>(client + clients_ * (k % mine));
    crm::customers::v1::UpdateCustomerRequest req;
    req.mutable_customer()->set_name(names_[index]);
    req.mutable_customer()->set_notes(absl::StrCat("跟进记录 ", k));
    req.mutable_update_mask()->add_paths("notes");
    SendUnary<Customer>(std::move(req), token_, [this](auto... a) { stub_->async()->UpdateCustomer(a...); },
                        std::move(done));
  }

 private:
  std::unique_ptr<crm::customers::v1::CustomerService::Stub> stub_;
  const std::string token_;
  const int clients_;
  std::vector<std::string> names_;
  std::vector<int64_t> cursor_;
};

// Keeps `clients` CreateCustomer calls in flight for `duration`.
Result RunCreate(CreateCaller& caller, int clients, absl::Duration duration, absl::Duration warmup,
                 const crm::bench::KernelSource& kernel = nullptr) {
  Result r = crm::bench::RunClosedLoop(clients, duration, warmup, std::ref(caller), kernel);
  r.workload = "create";
  return r;
}

// Overload of a server process: the peak of durable creates with `clients` in a closed loop,
// then an open loop offering `factor` times that peak, each call with a deadline of `patience`.
// Prints both, goodput (OK within `patience`) as a share of the peak, and how fast the calls the
// server shed were refused.
// With `journal`, every create of both runs is journalled for `--workload day-check`.
int RunOverload(const std::string& target, const std::string& token, int clients, absl::Duration duration,
                absl::Duration warmup, double factor, absl::Duration patience, bool json, const std::string& journal) {
  CreateCaller caller(target, token, journal);  // one caller for both runs: phones stay unique
  if (caller.journal_failed(journal)) {
    std::fprintf(stderr, "error: --journal: cannot open %s\n", journal.c_str());
    return 2;
  }
  Result peak = RunCreate(caller, clients, duration, warmup);
  peak.backend = "peak";
  crm::bench::Print(peak, json);
  if (peak.errors > 0 || peak.ops == 0) {
    std::fprintf(stderr, "error: the peak run had %lld errors\n", static_cast<long long>(peak.errors));
    return 1;
  }
  const double peak_rate = peak.ops / peak.seconds;
  // Unanswered calls the client may hold: far past any in-flight limit, so a server that
  // sheds load answers long before the client runs out.
  constexpr int64_t kMaxOutstanding = 100000;
  // A client that waits `patience` tells the server so, as a real client's deadline does: the
  // server may then refuse at once what it cannot answer in time, and drops what expired.
  caller.set_deadline(patience);
  crm::bench::OpenLoopResult o = crm::bench::RunOpenLoop(factor * peak_rate, duration, patience, kMaxOutstanding,
                                                         std::ref(caller));
  const double goodput = o.ok / o.seconds;
  std::printf(json ? "{\"workload\":\"overload\",\"clients\":%d,\"peak\":%.1f,\"offered\":%.1f,\"sent\":%lld,"
                     "\"ok\":%lld,\"ok_late\":%lld,\"patience_ms\":%.0f,\"rejected\":%lld,\"expired\":%lld,"
                     "\"other_errors\":%lld,"
                     "\"not_sent\":%lld,\"goodput\":%.1f,"
                     "\"goodput_share\":%.3f,\"ok_p50_ms\":%.3f,\"ok_p99_ms\":%.3f,\"rejected_p50_ms\":%.3f,"
                     "\"rejected_p99_ms\":%.3f,\"rejected_max_ms\":%.3f,\"client_cpu_seconds\":%.2f}\n"
                   : "overload after a peak at %d clients of %.1f/s: offered %.1f/s; sent %lld: ok %lld, "
                     "late %lld (OK after %.0f ms), RESOURCE_EXHAUSTED %lld, DEADLINE_EXCEEDED %lld, other errors %lld, "
                     "not sent %lld\n"
                     "  goodput %.1f/s = %.3f of peak; ok p50 %.3f ms p99 %.3f ms; "
                     "refused p50 %.3f ms p99 %.3f ms max %.3f ms; client cpu %.2f s\n",
              clients, peak_rate, o.rate, static_cast<long long>(o.sent), static_cast<long long>(o.ok),
              static_cast<long long>(o.ok_late), o.patience_ms, static_cast<long long>(o.rejected),
              static_cast<long long>(o.expired), static_cast<long long>(o.other), static_cast<long long>(o.not_sent),
              goodput, goodput / peak_rate, o.ok_p50_ms, o.ok_p99_ms, o.rejected_p50_ms, o.rejected_p99_ms,
              o.rejected_max_ms, o.cpu_s);
  if (!o.first_other.empty()) std::fprintf(stderr, "first other error: %s\n", o.first_other.c_str());
  return o.other > 0 || o.not_sent > 0 ? 1 : 0;
}

// Writes `events` CustomerCreated envelopes into an embedded log (many appends in flight so
// group commit packs them), then times a rebuild of the customers projections.
// With `follow_ups`, every customer gets a FollowUpRecorded (every third by phone) as its
// version 2, so `events` is twice the customers.
absl::StatusOr<Result> RunRebuild(int64_t events, const std::string& base, const std::string& log_dir,
                                  bool follow_ups = false, bool keep_projections = false) {
  const bool keep = !log_dir.empty();
  const std::string dir = keep ? log_dir : absl::StrCat(base, "/crm-bench-rebuild-", getpid());
  const bool reuse = keep && std::filesystem::exists(dir + "/log");
  if (!reuse) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  std::filesystem::remove_all(dir + "/customers");
  Result r;
  if (!reuse) {
    auto log = crm::eventlog::OpenEmbeddedLog({.path = dir + "/log"});
    if (!log.ok()) return log.status();
    if (auto s = (*log)->CreateTopic(crm::customers::kTopic, crm::customers::kPartitions); !s.ok()) return s;
    auto writer = (*log)->OpenWriter(crm::customers::kTopic);
    if (!writer.ok()) return writer.status();
    absl::Mutex mu;
    int64_t inflight = 0, done = 0;
    absl::Status failed;
    const auto ts = google::protobuf::util::TimeUtil::GetCurrentTime();
    const absl::Time now = absl::Now();
    const int64_t customers = follow_ups ? events / 2 : events;
    for (int64_t i = 0; i < customers; ++i) {
      crm::customers::v1::CustomerCreated ev;
      ev.set_customer_number(absl::StrFormat("C20260101%07d", i + 1));
      ev.mutable_profile()->set_kind(crm::customers::v1::CUSTOMER_KIND_COMPANY);
      ev.mutable_profile()->set_display_name(absl::StrCat("客户 ", i));
      ev.mutable_profile()->set_phone(absl::StrFormat("13%09d", i));
      ev.mutable_profile()->set_owner_id(absl::StrCat("rep", i % 50));
      ev.mutable_profile()->set_team_id(absl::StrCat("team", i % 5));
      ev.mutable_profile()->set_lifecycle_status(crm::customers::v1::LIFECYCLE_STATUS_POTENTIAL);
      ev.set_normalized_phone(absl::StrFormat("13%09d", i));
      crm::eventlog::EventEnvelope env;
      const std::string id = crm::NewUuidV7(now);
      env.set_event_id(crm::NewUuidV7(now));
      env.set_event_type(ev.GetDescriptor()->full_name());
      env.set_aggregate_type(crm::topics::customers::kCustomer.type);
      env.set_aggregate_id(id);
      *env.mutable_occurred_at() = ts;
      *env.mutable_recorded_at() = ts;
      env.mutable_actor()->set_user_id("bench");
      env.mutable_actor()->set_role("service");
      env.set_correlation_id(env.event_id());
      env.mutable_payload()->PackFrom(ev);
      crm::eventlog::StreamSealer sealer(0, "", "/crm/customers");
      std::vector<crm::eventlog::Message> batch{sealer.Seal(env)};
      {
        absl::MutexLock l(&mu);
        mu.Await(absl::Condition(+[](int64_t* n) { return *n < 20000; }, &inflight));
        ++inflight;
      }
      if (follow_ups) {
        crm::customers::v1::FollowUpRecorded fu;
        fu.set_follow_up_id(crm::NewUuidV7(now));
        fu.set_channel(i % 3 == 0 ? crm::customers::v1::FOLLOW_UP_CHANNEL_PHONE : crm::customers::v1::FOLLOW_UP_CHANNEL_VISIT);
        fu.set_summary("咨询报价");
        crm::eventlog::EventEnvelope env2 = env;
        env2.set_event_id(crm::NewUuidV7(now));
        env2.set_event_type(fu.GetDescriptor()->full_name());
        env2.mutable_payload()->PackFrom(fu);
        batch.push_back(sealer.Seal(env2));
      }
      (*writer)->Append(id, std::move(batch),
                        [&](absl::StatusOr<crm::eventlog::Appended> a) {
                          absl::MutexLock l(&mu);
                          --inflight;
                          ++done;
                          if (!a.ok() && failed.ok()) failed = a.status();
                        });
    }
    absl::MutexLock l(&mu);
    mu.Await(absl::Condition(+[](int64_t* n) { return *n == 0; }, &inflight));
    if (!failed.ok()) return failed;
  }
  auto log = crm::eventlog::OpenEmbeddedLog({.path = dir + "/log"});
  if (!log.ok()) return log.status();
  const Cpu cpu0 = Cpu::Now();
  const absl::Time t0 = absl::Now();
  auto n = crm::customers::CustomerEngine::Rebuild(**log, crm::customers::kTopic, dir + "/customers");
  if (!n.ok()) return n.status();
  r.seconds = absl::ToDoubleSeconds(absl::Now() - t0);
  const Cpu cpu1 = Cpu::Now();
  r.workload = "rebuild";
  r.backend = "embedded";
  r.ops = *n;
  r.cpu_s = (cpu1.user + cpu1.sys) - (cpu0.user + cpu0.sys);
  r.rss_mib = cpu1.max_rss_kib / 1024;
  log->reset();
  if (keep_projections) return r;
  if (keep) {
    std::filesystem::remove_all(dir + "/customers");
  } else {
    std::filesystem::remove_all(dir);
  }
  return r;
}


// The read side over a large customer base: writes `events` (customers with one follow-up
// each) unless --log-dir holds them already, rebuilds the projections, then times
// FindDuplicates probes by phone and by company name, and PreviewTagRule over every event.
absl::Status RunReads(int64_t events, const std::string& base, std::string log_dir, int probes, bool json) {
  const bool temp = log_dir.empty();
  if (temp) log_dir = absl::StrCat(base, "/crm-bench-reads-", getpid());
  auto built = RunRebuild(events, base, log_dir, /*follow_ups=*/true, /*keep_projections=*/true);
  if (!built.ok()) return built.status();
  const int64_t customers = events / 2;
  auto log = crm::eventlog::OpenEmbeddedLog({.path = log_dir + "/log"});
  if (!log.ok()) return log.status();
  auto db = crm::projection::ProjectionDb::Open({.path = log_dir + "/customers"});
  if (!db.ok()) return db.status();
  crm::SystemClock clock;
  auto engine = crm::customers::CustomerEngine::Open(log->get(), db->get(), {.clock = &clock});
  if (!engine.ok()) return engine.status();
  const crm::customers::Caller admin{"bench", "admin", ""};
  const absl::Time deadline = absl::InfiniteFuture();
  std::vector<double> by_phone, by_name;
  uint64_t x = 88172645463325252ull;  // xorshift: the same probes every run
  for (int i = 0; i < probes; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const int64_t k = static_cast<int64_t>(x % static_cast<uint64_t>(customers));
    crm::customers::v1::FindDuplicatesRequest req;
    req.set_phone(absl::StrFormat("13%09d", k));
    absl::Time t0 = absl::Now();
    auto r = (*engine)->queries().FindDuplicates(admin, req, deadline);
    by_phone.push_back(absl::ToDoubleMicroseconds(absl::Now() - t0));
    if (!r.ok() || r->matches_size() != 1) return absl::InternalError(absl::StrCat("phone probe ", k, " found ", r.ok() ? r->matches_size() : -1));
    crm::customers::v1::FindDuplicatesRequest byname;
    byname.set_display_name(absl::StrCat("客户 ", k, " 有限公司"));
    t0 = absl::Now();
    r = (*engine)->queries().FindDuplicates(admin, byname, deadline);
    by_name.push_back(absl::ToDoubleMicroseconds(absl::Now() - t0));
    if (!r.ok() || r->matches_size() != 1) return absl::InternalError(absl::StrCat("name probe ", k, " found ", r.ok() ? r->matches_size() : -1));
  }
  crm::customers::v1::PreviewTagRuleRequest preview;
  auto* rule = preview.mutable_rule();
  rule->set_id("phone-inquiry");
  rule->set_tag("电话咨询");
  rule->set_event_type(crm::topics::EventType<crm::customers::v1::FollowUpRecorded>());
  rule->set_measure(crm::customers::v1::TAG_RULE_MEASURE_COUNT);
  rule->set_match_field("channel");
  rule->set_match_value("FOLLOW_UP_CHANNEL_PHONE");
  rule->set_threshold(1);
  std::vector<double> preview_s;
  int64_t scanned = 0, hits = 0;
  const Cpu cpu0 = Cpu::Now();
  for (int i = 0; i < 3; ++i) {
    const absl::Time t0 = absl::Now();
    auto p = (*engine)->queries().PreviewTagRule(admin, preview, deadline);
    if (!p.ok()) return p.status();
    preview_s.push_back(absl::ToDoubleSeconds(absl::Now() - t0));
    scanned = p->events_scanned();
    hits = p->total_hits();
  }
  const Cpu cpu1 = Cpu::Now();
  const double p50_phone = Percentile(by_phone, 0.5), p99_phone = Percentile(by_phone, 0.99);
  const double p50_name = Percentile(by_name, 0.5), p99_name = Percentile(by_name, 0.99);
  const double med_preview = Percentile(preview_s, 0.5);
  if (json) {
    std::printf("{\"workload\":\"reads\",\"customers\":%lld,\"events\":%lld,\"probes\":%d,"
                "\"dup_phone_p50_us\":%.1f,\"dup_phone_p99_us\":%.1f,\"dup_name_p50_us\":%.1f,\"dup_name_p99_us\":%.1f,"
                "\"preview_median_s\":%.3f,\"preview_events\":%lld,\"preview_hits\":%lld,\"peak_rss_mib\":%ld}\n",
                static_cast<long long>(customers), static_cast<long long>(events), probes, p50_phone, p99_phone, p50_name,
                p99_name, med_preview, static_cast<long long>(scanned), static_cast<long long>(hits), cpu1.max_rss_kib / 1024);
  } else {
    std::printf("customers %lld, events %lld (rebuilt in %.1f s)\n", static_cast<long long>(customers),
                static_cast<long long>(events), built->seconds);
    std::printf("FindDuplicates by phone:        p50 %.1f us, p99 %.1f us (%d probes)\n", p50_phone, p99_phone, probes);
    std::printf("FindDuplicates by company name: p50 %.1f us, p99 %.1f us\n", p50_name, p99_name);
    std::printf("PreviewTagRule: median %.2f s over %lld events (%.0f events/s), %lld hits; cpu %.2f s for 3 runs; peak RSS %ld MiB\n",
                med_preview, static_cast<long long>(scanned), scanned / med_preview, static_cast<long long>(hits),
                (cpu1.user + cpu1.sys) - (cpu0.user + cpu0.sys), cpu1.max_rss_kib / 1024);
  }
  engine->reset();
  db->reset();
  log->reset();
  if (temp) std::filesystem::remove_all(log_dir);
  return absl::OkStatus();
}

// The import file: realistic rows of a Chinese sales team's spreadsheet, saved as Excel on
// Chinese Windows would (GB18030, CRLF).
absl::Status WriteImportCsv(const std::string& path, int64_t rows) {
  static const char* kStatus[] = {"潜在", "意向", "成交"};
  static const char* kIndustry[] = {"制造业", "批发和零售业", "信息技术/互联网", "建筑业", "教育"};
  std::string text = crm::csv::FormatRecord({"客户名称", "手机", "邮箱", "客户状态", "行业", "来源渠道", "标签", "地区",
                                             "地址", "联系人", "联系人手机", "备注"});
  for (int64_t i = 0; i < rows; ++i) {
    std::string phone = absl::StrFormat("13%09d", i);
    if (i % 100 == 99) phone = absl::StrFormat("13%09d", i - 50);  // a repeated phone: skipped
    if (i % 200 == 150) phone = "12345";                            // not a mobile: failed
    text += crm::csv::FormatRecord({absl::StrCat("华东机电设备", i, "号有限公司"), phone,
                                    absl::StrCat("buyer", i, "@example.com"), kStatus[i % 3], kIndustry[i % 5],
                                    "展会", "重点;华东", "江苏/苏州", absl::StrCat("苏州工业园区星湖街", i % 1000, "号"),
                                    absl::StrCat("联系人", i), absl::StrFormat("139%08d", i),
                                    absl::StrCat("年采购约 ", i % 1000, " 万元, 关注交期")});
  }
  auto out = crm::csv::EncodeGb18030(text);
  if (!out.ok()) return out.status();
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << *out;
  return f ? absl::OkStatus() : absl::InternalError(absl::StrCat("cannot write ", path));
}

absl::Status RunImport(int64_t rows, const std::string& backend, const std::string& base, int runs, bool json,
                       const std::string& keep_csv) {
  const std::string csv_path = keep_csv.empty() ? absl::StrCat(base, "/crm-bench-import-", getpid(), ".csv") : keep_csv;
  if (auto s = WriteImportCsv(csv_path, rows); !s.ok()) return s;
  std::vector<double> rates;
  for (int run = 0; run < runs; ++run) {
    LocalServer local;
    if (auto s = local.Start(backend, base); !s.ok()) return s;
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", local.runtime->port()),
                                       grpc::InsecureChannelCredentials());
    auto stub = crm::customers::v1::CustomerService::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization",
                    "Bearer " + *crm::MintToken(local.key, {"bench", "admin", "", absl::Now() + absl::Hours(1)}));
    crm::ctl::ImportFlags flags;
    flags.file = csv_path;
    flags.errors = absl::StrCat(local.dir, "/errors.csv");
    crm::ctl::ImportStats stats;
    const Cpu cpu0 = Cpu::Now();
    const int rc = crm::ctl::ImportCustomersCsv(stub.get(), &ctx, flags, &stats);
    const Cpu cpu1 = Cpu::Now();
    if (rc != 0 && rc != 3) return absl::InternalError(absl::StrCat("import exited ", rc));
    const double rate = stats.rows / stats.seconds;
    rates.push_back(rate);
    if (json) {
      std::printf("{\"workload\":\"import\",\"backend\":\"%s\",\"run\":%d,\"rows\":%lld,\"seconds\":%.3f,"
                  "\"rows_per_second\":%.0f,\"created\":%lld,\"skipped\":%lld,\"failed\":%lld,"
                  "\"cpu_seconds\":%.2f,\"peak_rss_mib\":%ld}\n",
                  backend.c_str(), run + 1, static_cast<long long>(stats.rows), stats.seconds, rate,
                  static_cast<long long>(stats.counts.created()), static_cast<long long>(stats.counts.skipped()),
                  static_cast<long long>(stats.counts.failed()), (cpu1.user + cpu1.sys) - (cpu0.user + cpu0.sys),
                  cpu1.max_rss_kib / 1024);
    } else {
      std::printf("import run %d (%s): %lld rows in %.2f s = %.0f rows/s; %lld created, %lld skipped, %lld failed; "
                  "cpu %.2f s; peak RSS %ld MiB\n",
                  run + 1, backend.c_str(), static_cast<long long>(stats.rows), stats.seconds, rate,
                  static_cast<long long>(stats.counts.created()), static_cast<long long>(stats.counts.skipped()),
                  static_cast<long long>(stats.counts.failed()), (cpu1.user + cpu1.sys) - (cpu0.user + cpu0.sys),
                  cpu1.max_rss_kib / 1024);
    }
  }
  if (keep_csv.empty()) std::filesystem::remove(csv_path);
  if (!json && runs > 0) std::printf("import median: %.0f rows/s over %d runs\n", Percentile(rates, 0.5), runs);
  return absl::OkStatus();
}

// The day and its check, against --target (and the per-service targets) or an in-process crmd.
int RunDayWorkload(const std::string& workload, const std::string& target, const std::string& token,
                   const std::string& opportunities_target, const std::string& tasks_target,
                   const std::string& tickets_target, const std::vector<int>& clients, double seconds, double warmup,
                   const std::string& dir, bool json, const std::vector<std::string>& journals,
                   crm::bench::DayOptions day, const crm::bench::DayCheckOptions& check,
                   const crm::bench::KernelSource& remote_kernel) {
  auto fail = [](const absl::Status& s, int code) {
    std::fprintf(stderr, "error: %s\n", std::string(s.message()).c_str());
    return code;
  };
  if (target.empty() && (!opportunities_target.empty() || !tasks_target.empty() || !tickets_target.empty())) {
    return fail(absl::InvalidArgumentError("--opportunities-target, --tasks-target and --tickets-target need --target"), 2);
  }
  if (!target.empty() && token.empty()) return fail(absl::InvalidArgumentError("--target needs --token"), 2);
  if (journals.size() > 1 && workload == "day") return fail(absl::InvalidArgumentError("day writes one --journal"), 2);
  // Phones are 13 and nine digits of the customer's number: a larger number would wrap onto
  // an earlier customer's phone.
  if (day.first_customer < 0 || day.first_customer + 10000000LL * static_cast<int64_t>(clients.size()) > 1000000000) {
    return fail(absl::InvalidArgumentError("--first-customer: phones are 13 and nine digits of the customer's number; "
                                           "keep it below 1,000,000,000 less 10,000,000 per --clients value"),
                2);
  }
  if (journals.empty() && workload == "day-check") return fail(absl::InvalidArgumentError("day-check needs --journal"), 2);
  if (workload == "day-check" && target.empty()) return fail(absl::InvalidArgumentError("day-check needs --target"), 2);
  auto channel = [](const std::string& addr) { return grpc::CreateChannel(addr, grpc::InsecureChannelCredentials()); };
  std::unique_ptr<crm::bench::InProcessCrmd> crmd;
  const std::string local_dir = absl::StrCat(dir, "/crm-bench-day-", getpid());
  crm::bench::DayTargets t;
  if (target.empty()) {
    std::filesystem::remove_all(local_dir);
    std::filesystem::create_directories(local_dir);
    auto c = crm::bench::InProcessCrmd::Start(local_dir, {"customers", "opportunities", "tasks", "tickets", "analytics"});
    if (!c.ok()) return fail(c.status(), 1);
    crmd = std::move(*c);
    t = {crmd->channel(), crmd->channel(), crmd->channel(), crmd->channel(), crmd->token(), crmd->kernel()};
  } else {
    auto ch = channel(target);
    t = {ch, opportunities_target.empty() ? ch : channel(opportunities_target),
         tasks_target.empty() ? ch : channel(tasks_target), tickets_target.empty() ? ch : channel(tickets_target), token,
         remote_kernel};
  }
  if (workload == "day-check") {
    auto c = crm::bench::CheckDay(t, journals, check);
    if (!c.ok()) return fail(c.status(), 2);
    for (const auto& p : c->problems) std::fprintf(stderr, "problem: %s\n", p.c_str());
    std::printf(json ? "{\"workload\":\"day-check\",\"versions\":%lld,\"follow_ups\":%lld,\"creates\":%lld,"
                       "\"writes\":%lld,\"resent\":%lld,\"changes_resent\":%lld,\"changes\":%lld,\"causes\":%lld,"
                       "\"problems\":%zu}\n"
                     : "day-check: %lld aggregates at or past their acknowledged version, %lld follow-ups, %lld "
                       "customer creates and %lld other writes (%lld creates and %lld changes sent again) each once; "
                       "%lld changes applied at most once; %lld automation causes each fired once; %zu problems\n",
                static_cast<long long>(c->versions_checked), static_cast<long long>(c->follow_ups_checked),
                static_cast<long long>(c->creates_checked), static_cast<long long>(c->writes_checked),
                static_cast<long long>(c->creates_resent), static_cast<long long>(c->changes_resent),
                static_cast<long long>(c->changes_checked), static_cast<long long>(c->causes_checked),
                c->problems.size());
    return c->problems.empty() ? 0 : 4;
  }
  if (!journals.empty()) day.journal = journals[0];
  for (int n : clients) {
    day.clients = n;
    day.duration = absl::Seconds(seconds);
    day.warmup = absl::Seconds(warmup);
    auto r = crm::bench::RunDay(t, day);
    if (!r.ok()) return fail(r.status(), 1);
    r->backend = target.empty() ? "embedded" : "target";
    Print(*r, json);
    day.first_customer += 10000000;
  }
  crmd.reset();
  if (target.empty()) std::filesystem::remove_all(local_dir);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  crm::server::RestrictNewFileModes();  // its logs and projections are a server's
  crm::server::SkipMutexDeadlockDetection();
  CLI::App app{"crm-bench: CRM backbone load generator"};
  std::string workload = "create", backend = "embedded", target, token, dir = "/var/tmp";
  std::vector<int> clients = {1, 64};
  double seconds = 10, warmup = 2;
  int64_t events = 1000000;
  bool json = false;
  std::vector<std::string> kafka_config;
  std::string log_dir;
  int probes = 2000;
  int64_t rows = 100000;
  int runs = 3;
  app.add_option("--workload", workload,
                 "create, update (repeated UpdateCustomer over --customers customers: the kernel's state cache), rebuild, reads (FindDuplicates, PreviewTagRule), import (CSV), stage (stage changes), "
                 "opp-rebuild, task-lag (cause event to automated task), rule-eval (tasks rebuild with the "
                 "default rules), ticket-create (durable CreateTicket), sla-eval (EvaluateSla over --tickets), "
                 "analytics (rebuild of every report's read models and each report over --events) or analytics-lag "
                 "(write to report), day (a mixed CRM day: 70% reads, 30% writes over all services) or day-check "
                 "(asks the services for every write a day's --journal says was acknowledged) or overload (against "
                 "--target: the create peak at --clients, then an open loop offering --overload times it)")
      ->check(CLI::IsMember({"day", "day-check", "overload", "create", "update", "rebuild", "reads", "import", "stage", "opp-rebuild", "task-lag", "rule-eval",
                             "ticket-create", "sla-eval", "analytics", "analytics-lag"}))
      ->capture_default_str();
  app.add_option("--backend", backend, "embedded or kafka (in-process mock cluster)")
      ->check(CLI::IsMember({"embedded", "kafka"}))->capture_default_str();
  app.add_option("--clients", clients, "Concurrent clients; several values run one after another")
      ->capture_default_str();
  app.add_option("--seconds", seconds, "Measured seconds per run")->capture_default_str();
  app.add_option("--warmup", warmup, "Unmeasured seconds before each run")->capture_default_str();
  app.add_option("--target", target, "host:port of a running server instead of an in-process one");
  app.add_option("--token", token, "Bearer token for --target");
  app.add_option("--events", events, "Events to write and rebuild (rebuild workload)")->capture_default_str();
  app.add_option("--dir", dir, "Where temporary data goes (a real disk: fsync matters)")->capture_default_str();
  app.add_flag("--json", json, "Print JSON lines instead of a table");
  app.add_option("--log-dir", log_dir, "rebuild: keep the written log here and reuse it on later runs");
  app.add_option("--kafka-config", kafka_config, "librdkafka property key=value for the Kafka backend (repeatable)");
  app.add_option("--probes", probes, "reads: FindDuplicates probes of each kind")->capture_default_str();
  app.add_option("--rows", rows, "import: rows of the generated CSV")->capture_default_str();
  app.add_option("--runs", runs, "import: runs, each on a fresh server; sla-eval: evaluations; analytics: rebuilds")->capture_default_str();
  int64_t tickets = 100000;
  app.add_option("--tickets", tickets, "sla-eval: tickets written and evaluated")->capture_default_str();
  std::string keep_csv;
  app.add_option("--csv", keep_csv, "import: write the generated CSV here and keep it (e.g. for crmctl; --runs 0 only writes it)");
  std::vector<std::string> journals;
  std::string opportunities_target, tasks_target, tickets_target;
  crm::bench::DayOptions day;
  app.add_option("--journal", journals,
                 "day and overload: write every acknowledged write here; day-check: the journals to check (repeatable)");
  crm::bench::DayCheckOptions check;
  bool no_resend = false;
  app.add_flag("--no-resend", no_resend,
               "day-check: do not send unanswered writes again nor wait for automation (while writes cannot succeed)");
  double settle_seconds = absl::ToDoubleSeconds(check.settle);
  app.add_option("--settle-seconds", settle_seconds,
                 "day-check: how long automation may take to catch up before a cause without its task is a problem")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--seed", day.seed, "day: seed of the clients' choices")->capture_default_str();
  app.add_option("--first-customer", day.first_customer,
                 "day: number of the first customer created (its phone is 13 and nine digits of it)")
      ->capture_default_str();
  app.add_option("--opportunities-target", opportunities_target, "day: the opportunities service, if not --target");
  app.add_option("--tasks-target", tasks_target, "day: the tasks service, if not --target");
  app.add_option("--tickets-target", tickets_target, "day: the tickets service, if not --target");
  bool floor = false;
  bool seal = false;
  app.add_flag("--seal", seal, "create: seal the in-process log as crmd --seal-key does, to measure the seals' cost");
  app.add_flag("--floor", floor,
               "create: first the same clients making empty calls (grpc.health.v1.Health/Check) to the same "
               "server, then the creates, and their ratio: what gRPC alone carries here");
  std::string peer, pg_bin;
  app.add_option("--peer", peer,
                 "create: after each run, the same work on a peer at the same concurrency, and the ratio "
                 "(postgres: PostgreSQL under pgbench)")
      ->check(CLI::IsMember({"postgres"}));
  app.add_option("--pg-bin", pg_bin, "--peer postgres: PostgreSQL's bin folder (default: the newest /usr/lib/postgresql/*/bin)");
  double overload = 2;
  app.add_option("--overload", overload,
                 "overload: offered load as a multiple of the measured peak (below 1: latency at part load)")
      ->check(CLI::Range(0.1, 100.0))->capture_default_str();
  double patience_ms = 1000;
  app.add_option("--patience-ms", patience_ms,
                 "overload: each open-loop call's gRPC deadline; an OK answer later than this after its scheduled "
                 "start is late, not goodput")
      ->check(CLI::Range(1.0, 60000.0))->capture_default_str();
  int64_t customers = 0;
  app.add_option("--customers", customers,
                 "update: customers created first and then updated round robin, each client its own share "
                 "(default: 64 per client; above the kernel's cache of 4096 states per service, updates read rows again)")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}));
  std::vector<std::string> metrics;
  app.add_option("--metrics", metrics,
                 "create, update and day against --target: host:port of the server's /metrics (crmd "
                 "--metrics-listen; repeatable, one per service process), to show the write kernel's work per "
                 "command (crm_kernel_* series) as the in-process runs do");
  app.footer(
      "After each create, update, stage, ticket-create, task-lag and day run, crm-bench shows what the write kernel "
      "of each service that ran commands did per command in the measured window (state reads, cache hits, "
      "request-id lookups, folds, seals, appends; JSON: \"kernel\"): read from the engines in-process, or "
      "from --metrics against --target. A create reads 1 state row; an update of a customer written before "
      "takes its state from the cache instead. See docs/benchmarks.md.");
  CLI11_PARSE(app, argc, argv);

  auto usage_error = [](const std::string& message) {
    std::fprintf(stderr, "error: %s\n", message.c_str());
    return 2;
  };
  if (app.count("--customers") > 0 && workload != "update") {
    return usage_error("--customers is an option of --workload update");
  }
  if (workload == "update") {
    const int most_clients = clients.empty() ? 0 : *std::max_element(clients.begin(), clients.end());
    if (customers > 0 && customers < most_clients) {
      return usage_error(absl::StrCat("--customers: each client updates its own customers; give at least --clients (",
                                      most_clients, ")"));
    }
    if (floor || !peer.empty()) return usage_error("--floor and --peer compare creates, not --workload update");
  }
  for (int c : clients) {
    if (c < 1 || c > 100000) return usage_error("--clients: each value from 1 to 100000");
  }
  crm::bench::KernelSource remote_kernel;
  if (!metrics.empty()) {
    if (target.empty()) {
      return usage_error("--metrics reads a running server's counters: give --target too (in-process engines are "
                         "read directly)");
    }
    if (workload != "create" && workload != "update" && workload != "day") {
      return usage_error("--metrics: only create, update and day against --target show a server's counters");
    }
    for (const std::string& a : metrics) {
      std::string host, port;
      if (auto s = crm::server::SplitAddress(a, &host, &port); !s.ok() || host.empty()) {
        return usage_error(absl::StrCat("--metrics: '", a, "' is not host:port"));
      }
    }
    remote_kernel = crm::bench::ScrapedKernel(metrics);
    if (auto probe = remote_kernel(); !probe.ok()) {
      return usage_error(absl::StrCat("--metrics: ", probe.status().message()));
    }
  } else if (!target.empty() && (workload == "create" || workload == "update" || workload == "day")) {
    std::fprintf(stderr, "note: give --metrics <the server's /metrics host:port> to see the write kernel's work "
                         "per command\n");
  }

  if (workload == "overload") {
    // In one process the client's completions and the server's calls share gRPC's threads,
    // so the server's refusals would queue behind the client: measure a server process.
    if (target.empty() || token.empty()) {
      std::fprintf(stderr, "error: overload measures a running crmd: give --target and --token "
                           "(tests/overload.py starts one)\n");
      return 2;
    }
    // Each run numbers its customers from the same start (its phones): one journal holds one run.
    if (journals.size() > 1 || (!journals.empty() && clients.size() > 1)) {
      std::fprintf(stderr, "error: overload writes one --journal, of one --clients value\n");
      return 2;
    }
    for (int c : clients) {
      if (int rc = RunOverload(target, token, c, absl::Seconds(seconds), absl::Seconds(warmup), overload,
                               absl::Milliseconds(patience_ms), json, journals.empty() ? "" : journals[0]);
          rc != 0) {
        return rc;
      }
    }
    return 0;
  }

  if (workload == "day" || workload == "day-check") {
    check.resend = !no_resend;
    check.settle = absl::Seconds(settle_seconds);
    return RunDayWorkload(workload, target, token, opportunities_target, tasks_target, tickets_target, clients,
                          seconds, warmup, dir, json, journals, day, check, remote_kernel);
  }

  if (workload == "import") {
    if (auto st = RunImport(rows, backend, dir, runs, json, keep_csv); !st.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(st.message()).c_str());
      return 1;
    }
    return 0;
  }

  if (workload == "reads") {
    if (auto st = RunReads(events, dir, log_dir, probes, json); !st.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(st.message()).c_str());
      return 1;
    }
    return 0;
  }

  if (workload == "stage") {
    for (int c : clients) {
      auto r = crm::bench::RunStageChanges(c, absl::Seconds(seconds), absl::Seconds(warmup), dir);
      if (!r.ok()) {
        std::fprintf(stderr, "error: %s\n", std::string(r.status().message()).c_str());
        return 1;
      }
      Print(*r, json);
    }
    return 0;
  }
  if (workload == "task-lag") {
    for (int c : clients) {
      auto r = crm::bench::RunTaskLag(c, absl::Seconds(seconds), absl::Seconds(warmup), dir);
      if (!r.ok()) {
        std::fprintf(stderr, "error: %s\n", std::string(r.status().message()).c_str());
        return 1;
      }
      Print(*r, json);
    }
    return 0;
  }
  if (workload == "analytics") {
    if (auto st = crm::bench::RunAnalytics(events, dir, log_dir, runs, json); !st.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(st.message()).c_str());
      return 1;
    }
    return 0;
  }
  if (workload == "analytics-lag") {
    for (int c : clients) {
      auto r = crm::bench::RunAnalyticsLag(c, absl::Seconds(seconds), absl::Seconds(warmup), dir);
      if (!r.ok()) {
        std::fprintf(stderr, "error: %s\n", std::string(r.status().message()).c_str());
        return 1;
      }
      Print(*r, json);
    }
    return 0;
  }
  if (workload == "ticket-create") {
    for (int c : clients) {
      auto r = crm::bench::RunTicketCreate(c, absl::Seconds(seconds), absl::Seconds(warmup), dir);
      if (!r.ok()) {
        std::fprintf(stderr, "error: %s\n", std::string(r.status().message()).c_str());
        return 1;
      }
      Print(*r, json);
    }
    return 0;
  }
  if (workload == "sla-eval") {
    auto r = crm::bench::RunSlaEvaluation(tickets, runs, dir, json);
    if (!r.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(r.status().message()).c_str());
      return 1;
    }
    return 0;
  }
  if (workload == "rule-eval") {
    int64_t fired = 0;
    auto r = crm::bench::RunRuleEvaluation(events, dir, log_dir, &fired);
    if (!r.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(r.status().message()).c_str());
      return 1;
    }
    std::printf(json ? "{\"workload\":\"rule-eval\",\"events\":%lld,\"tasks_decided\":%lld,\"seconds\":%.3f,"
                       "\"events_per_second\":%.0f,\"cpu_seconds\":%.2f,\"peak_rss_mib\":%ld}\n"
                     : "rule evaluation (tasks rebuild, 7 default rules): %lld events, %lld tasks decided, in %.2f s = "
                       "%.0f events/s (cpu %.2f s, peak RSS %ld MiB)\n",
                static_cast<long long>(r->ops), static_cast<long long>(fired), r->seconds, r->ops / r->seconds,
                r->cpu_s, r->rss_mib);
    return 0;
  }
  if (workload == "opp-rebuild") {
    auto r = crm::bench::RunOpportunitiesRebuild(events, dir, log_dir);
    if (!r.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(r.status().message()).c_str());
      return 1;
    }
    std::printf(json ? "{\"workload\":\"opp-rebuild\",\"events\":%lld,\"seconds\":%.3f,\"events_per_second\":%.0f,"
                       "\"cpu_seconds\":%.2f,\"peak_rss_mib\":%ld}\n"
                     : "rebuild of opportunities projections: %lld events in %.2f s = %.0f events/s (cpu %.2f s, "
                       "peak RSS %ld MiB)\n",
                static_cast<long long>(r->ops), r->seconds, r->ops / r->seconds, r->cpu_s, r->rss_mib);
    return 0;
  }
  if (workload == "rebuild") {
    auto r = RunRebuild(events, dir, log_dir);
    if (!r.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(r.status().message()).c_str());
      return 1;
    }
    if (json) {
      std::printf("{\"workload\":\"rebuild\",\"backend\":\"embedded\",\"events\":%lld,\"seconds\":%.3f,"
                  "\"events_per_second\":%.0f,\"cpu_seconds\":%.2f,\"peak_rss_mib\":%ld}\n",
                  static_cast<long long>(r->ops), r->seconds, r->ops / r->seconds, r->cpu_s, r->rss_mib);
    } else {
      std::printf("rebuild of customers projections: %lld events in %.2f s = %.0f events/s (cpu %.2f s, peak RSS %ld MiB)\n",
                  static_cast<long long>(r->ops), r->seconds, r->ops / r->seconds, r->cpu_s, r->rss_mib);
    }
    return 0;
  }
  std::unique_ptr<crm::bench::PostgresPeer> pg;
  if (!peer.empty()) {
    auto p = crm::bench::PostgresPeer::Start(dir, pg_bin);
    if (!p.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(p.status().message()).c_str());
      return 1;
    }
    pg = std::move(*p);
  }
  for (int c : clients) {
    auto local = std::make_unique<LocalServer>();
    local->seal = seal;
    for (const std::string& kv : kafka_config) {
      const size_t eq = kv.find('=');
      if (eq == std::string::npos) {
        std::fprintf(stderr, "error: --kafka-config wants key=value, not %s\n", kv.c_str());
        return 2;
      }
      local->kafka_config[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    std::string addr = target, tok = token;
    if (target.empty()) {
      if (auto s = local->Start(backend, dir); !s.ok()) {
        std::fprintf(stderr, "error: %s\n", std::string(s.message()).c_str());
        return 1;
      }
      addr = absl::StrCat("127.0.0.1:", local->runtime->port());
      tok = *crm::MintToken(local->key, {"bench", "admin", "", absl::Now() + absl::Hours(1)});
    }
    const std::string label = target.empty() ? backend : "target";
    Result empty;
    if (floor) {
      EmptyCaller empty_caller(addr);
      empty = crm::bench::RunClosedLoop(c, absl::Seconds(seconds), absl::Seconds(warmup), std::ref(empty_caller));
      empty.workload = "empty-call";
      empty.backend = label;
      Print(empty, json);
    }
    crm::bench::KernelSource kernel = remote_kernel;
    if (target.empty()) {
      kernel = [e = local->engine.get()]() -> absl::StatusOr<crm::server::KernelCounters> {
        return crm::server::KernelCounters{{"customers", e->WriteCounters()}};
      };
    }
    Result r;
    if (workload == "update") {
      UpdateCaller updater(addr, tok, c);
      if (auto s = updater.Setup(customers > 0 ? customers : 64LL * c); !s.ok()) {
        std::fprintf(stderr, "error: %s\n", std::string(s.message()).c_str());
        return 1;
      }
      r = crm::bench::RunClosedLoop(c, absl::Seconds(seconds), absl::Seconds(warmup), std::ref(updater), kernel);
      r.workload = "update";
    } else {
      CreateCaller caller(addr, tok);
      r = RunCreate(caller, c, absl::Seconds(seconds), absl::Seconds(warmup), kernel);
    }
    r.backend = label;
    Print(r, json);
    if (floor) {
      const double ours = r.ops / r.seconds, bare = empty.ops / empty.seconds;
      std::printf(json ? "{\"workload\":\"create-floor\",\"clients\":%d,\"backend\":\"%s\",\"creates_per_s\":%.1f,"
                         "\"empty_calls_per_s\":%.1f,\"ratio\":%.3f}\n"
                       : "floor at %d clients (%s): %.1f creates/s against %.1f empty calls/s = %.3f\n",
                  c, r.backend.c_str(), ours, bare, bare > 0 ? ours / bare : 0.0);
    }
    if (pg != nullptr) {
      local.reset();  // the peer gets the machine to itself, as we had it
      auto p = pg->Run(c, absl::Seconds(seconds), absl::Seconds(warmup));
      if (!p.ok()) {
        std::fprintf(stderr, "error: %s\n", std::string(p.status().message()).c_str());
        return 1;
      }
      Print(*p, json);
      const double ours = r.ops / r.seconds, theirs = p->ops / p->seconds;
      std::printf(json ? "{\"workload\":\"create-ratio\",\"clients\":%d,\"backend\":\"%s\",\"peer\":\"postgres\","
                         "\"ratio\":%.2f}\n"
                       : "ratio at %d clients: %s / postgres = %.2fx\n",
                  c, r.backend.c_str(), theirs > 0 ? ours / theirs : 0.0);
    }
  }
  return 0;
}
