#include "tools/bench_tasks.h"

#include <unistd.h>

#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "crm/customers/v1/customers_service.grpc.pb.h"
#include "crm/opportunities/v1/opportunities_events.pb.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/clock.h"
#include "libs/common/ids.h"
#include "libs/common/proto_time.h"
#include "libs/common/status_macros.h"
#include "libs/common/token.h"
#include "libs/eventlog/embedded_log.h"
#include "libs/eventlog/envelope.h"
#include "libs/projection/rebuild.h"
#include "libs/server/metrics.h"
#include "libs/server/runtime.h"
#include "tools/bench_chain_writer.h"
#include "tools/bench_crmd.h"
#include "libs/topics/contracts.h"
#include "services/customers/customer_engine.h"
#include "services/opportunities/opportunity_engine.h"
#include "services/tasks/task_engine.h"
#include "services/tasks/task_projections.h"

namespace crm::bench {
namespace {

namespace cv1 = crm::customers::v1;
namespace ov1 = crm::opportunities::v1;
namespace tv1 = crm::tasks::v1;

// Every record of `topic` from offset 0.
absl::StatusOr<std::vector<eventlog::Record>> All(eventlog::Log& log, const std::string& topic) {
  CRM_ASSIGN_OR_RETURN(auto ends, log.EndOffsets(topic));
  std::vector<eventlog::Position> from;
  for (int32_t p = 0; p < static_cast<int32_t>(ends.size()); ++p) from.push_back({p, 0});
  return eventlog::ReadToEnd(log, topic, from);
}

}  // namespace

absl::StatusOr<Result> RunTaskLag(int clients, absl::Duration duration, absl::Duration warmup,
                                  const std::string& base) {
  const std::string dir = absl::StrCat(base, "/crm-bench-task-lag-", getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  Result r;
  {
    CRM_ASSIGN_OR_RETURN(auto crmd, InProcessCrmd::Start(dir, {"customers", "opportunities", "tasks"}));
    eventlog::Log* log = &crmd->log();
    const std::string& token = crmd->token();
    auto stub = cv1::LeadService::NewStub(crmd->channel());
    std::atomic<int64_t> seq{0};
    const int64_t salt = absl::ToUnixSeconds(absl::Now()) % 100000;
    Result load = RunClosedLoop(clients, duration, warmup, [&](int client, std::function<void(const grpc::Status&)> done) {
      struct Call {
        grpc::ClientContext ctx;
        cv1::CreateLeadRequest req;
        cv1::Lead resp;
      };
      auto* c = new Call;
      c->ctx.AddMetadata("authorization", "Bearer " + token);
      const int64_t n = seq.fetch_add(1);
      c->req.mutable_lead()->set_contact_name(absl::StrCat("联系人", n));
      c->req.mutable_lead()->set_company(absl::StrCat("公司", n));
      c->req.mutable_lead()->set_phone(absl::StrCat("139", absl::Dec((salt % 1000) * 100000 + n % 100000, absl::kZeroPad8)));
      c->req.mutable_lead()->set_owner_id(absl::StrCat("rep", client % 20));
      stub->async()->CreateLead(&c->ctx, &c->req, &c->resp, [c, done](grpc::Status s) {
        done(s);
        delete c;
      });
    }, crmd->kernel());
    const int64_t leads = seq.load();
    // Wait for the tasks: one per LeadCreated.
    std::map<std::string, absl::Time> causes;  // LeadCreated event id -> recorded_at
    CRM_ASSIGN_OR_RETURN(auto crecs, All(*log, customers::kTopic));
    for (const auto& rec : crecs) {
      CRM_ASSIGN_OR_RETURN(auto env, eventlog::DecodeEnvelope(rec.value));
      if (env.event_type() == cv1::LeadCreated::descriptor()->full_name()) {
        causes[env.event_id()] = projection::RecordedAt(env);
      }
    }
    std::vector<double> lag_ms;
    const absl::Time give_up = absl::Now() + absl::Seconds(30);
    while (true) {
      lag_ms.clear();
      CRM_ASSIGN_OR_RETURN(auto trecs, All(*log, tasks::kTopic));
      for (const auto& rec : trecs) {
        CRM_ASSIGN_OR_RETURN(auto env, eventlog::DecodeEnvelope(rec.value));
        if (env.event_type() != tv1::TaskCreated::descriptor()->full_name()) continue;
        tv1::TaskCreated created;
        if (!env.payload().UnpackTo(&created)) return absl::DataLossError("bad TaskCreated");
        auto it = causes.find(created.origin().cause_event_id());
        if (it == causes.end()) continue;
        lag_ms.push_back(absl::ToDoubleMilliseconds(projection::RecordedAt(env) - it->second));
      }
      if (lag_ms.size() >= causes.size() || absl::Now() > give_up) break;
      absl::SleepFor(absl::Milliseconds(200));
    }
    r = load;
    r.workload = "task-lag";
    r.backend = "embedded";
    // Throughput is the measured window's leads; the latencies are every lead's lag.
    r.errors = static_cast<int64_t>(causes.size() - lag_ms.size()) + load.errors;
    r.p50_ms = Percentile(lag_ms, 0.5);
    r.p99_ms = Percentile(lag_ms, 0.99);
    r.p999_ms = Percentile(lag_ms, 0.999);
    std::fprintf(stderr, "task-lag: %lld leads created (%.0f/s measured), %lld tasks matched\n",
                 static_cast<long long>(leads), load.ops / load.seconds, static_cast<long long>(lag_ms.size()));
  }
  std::filesystem::remove_all(dir);
  return r;
}

namespace {

absl::Status WriteAccounts(eventlog::Log& log, int64_t events) {
  CRM_RETURN_IF_ERROR(log.CreateTopic(customers::kTopic, customers::kPartitions));
  CRM_RETURN_IF_ERROR(log.CreateTopic(opportunities::kTopic, opportunities::kPartitions));
  CRM_ASSIGN_OR_RETURN(auto cw, log.OpenWriter(customers::kTopic));
  CRM_ASSIGN_OR_RETURN(auto ow, log.OpenWriter(opportunities::kTopic));
  ChainWriter customers(cw.get(), "/crm/customers"), opps(ow.get(), "/crm/opportunities");
  const absl::Time at = absl::Now();
  for (int64_t i = 0; i < events / 10; ++i) {
    const std::string owner = absl::StrCat("rep", i % 50), team = absl::StrCat("team", i % 5);
    cv1::LeadCreated lead;
    lead.mutable_profile()->set_company(absl::StrCat("公司", i));
    lead.set_owner_id(owner);
    lead.set_team_id(team);
    cv1::LeadQualified qualified;
    customers.Aggregate(crm::topics::customers::kLead.type, NewUuidV7(at), {&lead, &qualified}, at);
    const std::string customer = NewUuidV7(at);
    cv1::CustomerCreated created;
    created.mutable_profile()->set_display_name(absl::StrCat("客户", i));
    created.mutable_profile()->set_owner_id(owner);
    created.mutable_profile()->set_team_id(team);
    cv1::FollowUpRecorded f1, f2;
    f1.set_summary("电话");
    f2.set_summary("拜访");
    *f2.mutable_next_follow_up_time() = ToProto(at + absl::Hours(48));
    cv1::CustomerUpdated upd;
    upd.mutable_profile()->set_lifecycle_status(i % 10 == 0 ? cv1::LIFECYCLE_STATUS_LOST : cv1::LIFECYCLE_STATUS_INTENT);
    upd.add_changed_fields("lifecycle_status");
    customers.Aggregate(crm::topics::customers::kCustomer.type, customer, {&created, &f1, &f2, &upd}, at);
    ov1::OpportunityCreated oc;
    oc.mutable_profile()->set_customer_id(customer);
    oc.mutable_profile()->set_name(absl::StrCat("商机", i));
    oc.mutable_profile()->set_owner_id(owner);
    oc.mutable_profile()->set_team_id(team);
    oc.set_stage_id("initial_contact");
    ov1::OpportunityStageChanged s1, s2;
    s1.set_from_stage_id("initial_contact");
    s1.set_to_stage_id("needs_analysis");
    s2.set_from_stage_id("needs_analysis");
    s2.set_to_stage_id("proposal");
    ov1::OpportunityWon won;
    won.set_stage_id("won");
    opps.Aggregate(crm::topics::opportunities::kOpportunity.type, NewUuidV7(at), {&oc, &s1, &s2, &won}, at);
  }
  CRM_RETURN_IF_ERROR(customers.Finish());
  return opps.Finish();
}

}  // namespace

absl::StatusOr<Result> RunRuleEvaluation(int64_t events, const std::string& base, const std::string& log_dir,
                                         int64_t* fired) {
  const bool keep = !log_dir.empty();
  const std::string dir = keep ? log_dir : absl::StrCat(base, "/crm-bench-rules-", getpid());
  const bool reuse = keep && std::filesystem::exists(dir + "/log");
  if (!reuse) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  std::filesystem::remove_all(dir + "/tasks");
  const tasks::TaskEngine::Options options{.clock = SystemClock::Get()};
  if (!reuse) {
    CRM_ASSIGN_OR_RETURN(auto log, eventlog::OpenEmbeddedLog({.path = dir + "/log"}));
    {
      // The default rules, in force before every event below.
      int64_t rebuilt = 0;
      CRM_ASSIGN_OR_RETURN(auto db, projection::OpenProjections(*log, tasks::TaskEngine::Spec(options),
                                                                dir + "/seed", &rebuilt));
      CRM_ASSIGN_OR_RETURN(auto engine, tasks::TaskEngine::Open(log.get(), db.get(), options));
    }
    std::filesystem::remove_all(dir + "/seed");
    absl::SleepFor(absl::Milliseconds(5));
    CRM_RETURN_IF_ERROR(WriteAccounts(*log, events));
  }
  CRM_ASSIGN_OR_RETURN(auto log, eventlog::OpenEmbeddedLog({.path = dir + "/log"}));
  const Cpu cpu0 = Cpu::Now();
  const absl::Time t0 = absl::Now();
  CRM_ASSIGN_OR_RETURN(int64_t n, projection::Rebuild(*log, tasks::TaskEngine::Spec(options), dir + "/tasks"));
  Result r;
  r.seconds = absl::ToDoubleSeconds(absl::Now() - t0);
  const Cpu cpu1 = Cpu::Now();
  r.workload = "rule-eval";
  r.backend = "embedded";
  r.ops = n;
  r.cpu_s = (cpu1.user + cpu1.sys) - (cpu0.user + cpu0.sys);
  r.rss_mib = cpu1.max_rss_kib / 1024;
  {
    CRM_ASSIGN_OR_RETURN(auto db, projection::ProjectionDb::Open({.path = dir + "/tasks"}));
    std::unique_ptr<rocksdb::Iterator> it(db->db()->NewIterator(rocksdb::ReadOptions()));
    *fired = 0;
    for (it->Seek(tasks::rows::kPendingPrefix); it->Valid() && it->key().starts_with(tasks::rows::kPendingPrefix);
         it->Next()) {
      ++*fired;
    }
  }
  log.reset();
  std::filesystem::remove_all(keep ? dir + "/tasks" : dir);
  return r;
}

}  // namespace crm::bench
