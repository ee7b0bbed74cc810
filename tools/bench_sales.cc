#include "tools/bench_sales.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "crm/customers/v1/customers_service.grpc.pb.h"
#include "crm/opportunities/v1/opportunities_service.grpc.pb.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/clock.h"
#include "libs/common/ids.h"
#include "libs/common/status_macros.h"
#include "libs/common/token.h"
#include "libs/eventlog/embedded_log.h"
#include "libs/eventlog/envelope.h"
#include "libs/server/metrics.h"
#include "libs/server/runtime.h"
#include "libs/topics/contracts.h"
#include "services/opportunities/opportunity_engine.h"
#include "tools/bench_crmd.h"

namespace crm::bench {

namespace ov1 = crm::opportunities::v1;

absl::StatusOr<Result> RunStageChanges(int clients, absl::Duration duration, absl::Duration warmup,
                                       const std::string& base) {
  const std::string dir = absl::StrCat(base, "/crm-bench-stages-", getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  Result r;
  {
    CRM_ASSIGN_OR_RETURN(auto crmd, InProcessCrmd::Start(dir, {"customers", "opportunities"}));
    const std::string& token = crmd->token();
    const auto& channel = crmd->channel();
    auto cstub = customers::v1::CustomerService::NewStub(channel);
    auto ostub = ov1::OpportunityService::NewStub(channel);
    auto context = [&] {
      auto ctx = std::make_unique<grpc::ClientContext>();
      ctx->AddMetadata("authorization", "Bearer " + token);
      return ctx;
    };
    customers::v1::CreateCustomerRequest creq;
    creq.mutable_customer()->set_display_name("压测客户");
    creq.mutable_customer()->set_phone("13900000000");
    creq.mutable_customer()->set_owner_id("bench");
    customers::v1::Customer customer;
    if (auto s = cstub->CreateCustomer(context().get(), creq, &customer); !s.ok()) {
      return absl::InternalError(absl::StrCat("create customer: ", s.error_message()));
    }
    // kPerClient opportunities per client, created concurrently: each sees a handful of stage
    // changes over a run, as real ones do (one moved hundreds of times would measure its
    // growing stage history instead).
    constexpr int kPerClient = 50;
    std::vector<std::string> names(static_cast<size_t>(clients) * kPerClient);
    {
      absl::BlockingCounter created(static_cast<int>(names.size()));
      absl::Mutex mu;
      std::string first_error;
      struct Create {
        grpc::ClientContext ctx;
        ov1::CreateOpportunityRequest req;
        ov1::Opportunity resp;
      };
      for (size_t i = 0; i < names.size(); ++i) {
        auto* c = new Create();
        c->ctx.AddMetadata("authorization", "Bearer " + token);
        c->req.mutable_opportunity()->set_customer(customer.name());
        c->req.mutable_opportunity()->set_title(absl::StrCat("压测商机 ", i));
        c->req.mutable_opportunity()->set_owner_id("bench");
        c->req.set_min_consistency_token(customer.consistency_token());
        ostub->async()->CreateOpportunity(&c->ctx, &c->req, &c->resp, [&, c, i](grpc::Status s) {
          {
            absl::MutexLock l(&mu);
            if (!s.ok() && first_error.empty()) first_error = s.error_message();
            names[i] = c->resp.name();
          }
          delete c;
          created.DecrementCount();
        });
      }
      created.Wait();
      absl::MutexLock l(&mu);
      if (!first_error.empty()) return absl::InternalError(absl::StrCat("create opportunities: ", first_error));
    }
    std::vector<int64_t> moves(clients, 0);
    struct Call {
      grpc::ClientContext ctx;
      ov1::MoveOpportunityStageRequest req;
      ov1::Opportunity resp;
    };
    r = RunClosedLoop(clients, duration, warmup, [&](int client, std::function<void(const grpc::Status&)> done) {
      auto* call = new Call();
      call->ctx.AddMetadata("authorization", "Bearer " + token);
      call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      // Round robin over the client's opportunities, forwards on one lap and back on the next.
      const int64_t n = moves[client]++;
      call->req.set_name(names[static_cast<size_t>(client) * kPerClient + n % kPerClient]);
      call->req.set_stage_id((n / kPerClient) % 2 == 0 ? "needs_analysis" : "proposal");
      ostub->async()->MoveOpportunityStage(&call->ctx, &call->req, &call->resp, [call, done](grpc::Status s) {
        delete call;
        done(s);
      });
    }, crmd->kernel());
  }
  std::filesystem::remove_all(dir);
  r.workload = "stage";
  r.backend = "embedded";
  return r;
}

absl::StatusOr<Result> RunOpportunitiesRebuild(int64_t events, const std::string& base, const std::string& log_dir) {
  const bool keep = !log_dir.empty();
  const std::string dir = keep ? log_dir : absl::StrCat(base, "/crm-bench-opp-rebuild-", getpid());
  const bool reuse = keep && std::filesystem::exists(dir + "/log");
  if (!reuse) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  std::filesystem::remove_all(dir + "/opportunities");
  const opportunities::OpportunityEngine::Options options{.clock = SystemClock::Get()};
  if (!reuse) {
    CRM_ASSIGN_OR_RETURN(auto log, eventlog::OpenEmbeddedLog({.path = dir + "/log"}));
    CRM_RETURN_IF_ERROR(log->CreateTopic(opportunities::kTopic, opportunities::kPartitions));
    CRM_ASSIGN_OR_RETURN(auto writer, log->OpenWriter(opportunities::kTopic));
    absl::Mutex mu;
    int64_t inflight = 0;
    absl::Status failed;
    const auto ts = google::protobuf::util::TimeUtil::GetCurrentTime();
    const absl::Time now = absl::Now();
    const char* kStages[] = {"initial_contact", "needs_analysis", "proposal", "negotiation"};
    for (int64_t i = 0; i < events / 5; ++i) {
      const std::string id = NewUuidV7(now);
      common::v1::EventEnvelope env;
      env.set_aggregate_type(crm::topics::opportunities::kOpportunity.type);
      env.set_aggregate_id(id);
      *env.mutable_occurred_at() = ts;
      *env.mutable_recorded_at() = ts;
      env.mutable_actor()->set_user_id(absl::StrCat("rep", i % 50));
      env.mutable_actor()->set_role("rep");
      std::vector<eventlog::Message> batch;
      eventlog::StreamSealer sealer(0, "", "/crm/opportunities");
      for (int v = 1; v <= 5; ++v) {
        env.set_event_id(NewUuidV7(now));
        if (v == 1) {
          ov1::OpportunityCreated c;
          auto* p = c.mutable_profile();
          p->set_customer_id(NewUuidV7(now));
          p->set_name(absl::StrCat("商机 ", i));
          p->mutable_amount()->set_amount_minor(100000 + i);
          p->mutable_amount()->set_currency("CNY");
          p->set_owner_id(absl::StrCat("rep", i % 50));
          p->set_team_id(absl::StrCat("team", i % 5));
          c.set_pipeline_id("default");
          c.set_stage_id(kStages[0]);
          env.set_event_type(c.GetDescriptor()->full_name());
          env.mutable_payload()->PackFrom(c);
        } else {
          ov1::OpportunityStageChanged sc;
          sc.set_from_stage_id(kStages[(v - 2) % 4]);
          sc.set_to_stage_id(kStages[(v - 1) % 4]);
          env.set_event_type(sc.GetDescriptor()->full_name());
          env.mutable_payload()->PackFrom(sc);
        }
        batch.push_back(sealer.Seal(env));
      }
      {
        absl::MutexLock l(&mu);
        mu.Await(absl::Condition(+[](int64_t* n) { return *n < 4000; }, &inflight));
        ++inflight;
      }
      writer->Append(id, std::move(batch), [&](absl::StatusOr<eventlog::Appended> a) {
        absl::MutexLock l(&mu);
        --inflight;
        if (!a.ok() && failed.ok()) failed = a.status();
      });
    }
    absl::MutexLock l(&mu);
    mu.Await(absl::Condition(+[](int64_t* n) { return *n == 0; }, &inflight));
    CRM_RETURN_IF_ERROR(failed);
  }
  CRM_ASSIGN_OR_RETURN(auto log, eventlog::OpenEmbeddedLog({.path = dir + "/log"}));
  const Cpu cpu0 = Cpu::Now();
  const absl::Time t0 = absl::Now();
  CRM_ASSIGN_OR_RETURN(int64_t n, projection::Rebuild(*log, opportunities::OpportunityEngine::Spec(options),
                                                     dir + "/opportunities"));
  Result r;
  r.seconds = absl::ToDoubleSeconds(absl::Now() - t0);
  const Cpu cpu1 = Cpu::Now();
  r.workload = "rebuild";
  r.backend = "embedded";
  r.ops = n;
  r.cpu_s = (cpu1.user + cpu1.sys) - (cpu0.user + cpu0.sys);
  r.rss_mib = cpu1.max_rss_kib / 1024;
  log.reset();
  std::filesystem::remove_all(keep ? dir + "/opportunities" : dir);
  return r;
}

}  // namespace crm::bench
