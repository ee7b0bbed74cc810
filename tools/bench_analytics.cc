#include "tools/bench_analytics.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "crm/customers/v1/customers_service.grpc.pb.h"
#include "crm/opportunities/v1/opportunities_events.pb.h"
#include "crm/tasks/v1/tasks_events.pb.h"
#include "crm/tickets/v1/tickets_events.pb.h"
#include "libs/common/clock.h"
#include "libs/common/ids.h"
#include "libs/common/proto_time.h"
#include "libs/common/status_macros.h"
#include "libs/eventlog/embedded_log.h"
#include "libs/projection/rebuild.h"
#include "libs/topics/contracts.h"
#include "services/analytics/analytics_engine.h"
#include "services/customers/customer_engine.h"
#include "services/opportunities/opportunity_engine.h"
#include "services/tasks/task_engine.h"
#include "services/tickets/ticket_engine.h"
#include "tools/bench_chain_writer.h"
#include "tools/bench_crmd.h"

namespace crm::bench {
namespace {

namespace av1 = crm::analytics::v1;
namespace cv1 = crm::customers::v1;
namespace ov1 = crm::opportunities::v1;
namespace tv1 = crm::tasks::v1;
namespace kv1 = crm::tickets::v1;
using Ev = ChainWriter::Event;

constexpr const char* kRegions[] = {"广东/深圳", "广东/广州", "上海", "北京", "浙江/杭州",
                                    "江苏/苏州", "四川/成都", "湖北/武汉", "山东/青岛", "福建/厦门"};
constexpr const char* kIndustries[] = {"manufacturing", "retail", "it", "finance", "education", "logistics"};
constexpr const char* kChurnReasons[] = {"价格太高", "服务不满意", "被竞争对手抢走", "需求变化"};

std::string Day(absl::Time t) { return absl::FormatTime("%Y-%m-%d", t, absl::FixedTimeZone(8 * 3600)); }

// Writes accounts until `events` events are written; returns how many.
absl::StatusOr<int64_t> WriteYear(eventlog::Log& log, int64_t events, absl::Time end) {
  CRM_RETURN_IF_ERROR(log.CreateTopic(customers::kTopic, customers::kPartitions));
  CRM_RETURN_IF_ERROR(log.CreateTopic(opportunities::kTopic, opportunities::kPartitions));
  CRM_RETURN_IF_ERROR(log.CreateTopic(tasks::kTopic, tasks::kPartitions));
  CRM_RETURN_IF_ERROR(log.CreateTopic(tickets::kTopic, tickets::kPartitions));
  CRM_ASSIGN_OR_RETURN(auto cw, log.OpenWriter(customers::kTopic));
  CRM_ASSIGN_OR_RETURN(auto ow, log.OpenWriter(opportunities::kTopic));
  CRM_ASSIGN_OR_RETURN(auto tw, log.OpenWriter(tasks::kTopic));
  CRM_ASSIGN_OR_RETURN(auto kw, log.OpenWriter(tickets::kTopic));
  ChainWriter cust(cw.get(), "/crm/customers"), opps(ow.get(), "/crm/opportunities"), tasks(tw.get(), "/crm/tasks"),
      tickets(kw.get(), "/crm/tickets");
  const int64_t accounts = std::max<int64_t>(1, events / 16);
  const absl::Time first = end - absl::Hours(24 * 365);
  const absl::Duration spread = absl::Hours(24 * 300);
  int64_t written = 0;
  for (int64_t i = 0; written < events; ++i) {
    const absl::Time t = first + spread * (static_cast<double>(i % accounts) / static_cast<double>(accounts));
    const absl::Duration h = absl::Hours(1), d = absl::Hours(24);
    const std::string owner = absl::StrCat("rep", i % 50), team = absl::StrCat("team", i % 5);
    const auto channel = static_cast<cv1::SourceChannel>(1 + i % 8);
    const std::string lead_id = NewUuidV7(t), customer_id = NewUuidV7(t);

    cv1::LeadCreated lead;
    lead.mutable_profile()->set_company(absl::StrCat("公司", i));
    lead.mutable_profile()->set_source_channel(channel);
    lead.set_owner_id(owner);
    lead.set_team_id(team);
    cv1::LeadConverted converted;
    converted.set_customer_id(customer_id);
    converted.set_customer_created(true);
    cust.Aggregate(crm::topics::customers::kLead.type, lead_id, {{&lead, t}, {&converted, t + h}}, owner, team);

    cv1::CustomerCreated created;
    auto* p = created.mutable_profile();
    p->set_display_name(absl::StrCat("客户", i));
    p->set_owner_id(owner);
    p->set_team_id(team);
    p->set_source_channel(channel);
    p->set_region(kRegions[i % 10]);
    p->set_industry(kIndustries[i % 6]);
    p->set_lifecycle_status(cv1::LIFECYCLE_STATUS_INTENT);
    created.set_lead_id(lead_id);
    cv1::FollowUpRecorded f1, f2;
    f1.set_summary("电话沟通");
    f2.set_summary("上门拜访");
    cv1::CustomerUpdated lost;
    lost.mutable_profile()->set_lifecycle_status(cv1::LIFECYCLE_STATUS_LOST);
    lost.mutable_profile()->set_churn_reason(kChurnReasons[i % 4]);
    lost.add_changed_fields("lifecycle_status");
    lost.add_changed_fields("churn_reason");
    std::vector<Ev> customer = {{&created, t + h}, {&f1, t + d}, {&f2, t + 3 * d}};
    if (i % 10 == 9) customer.push_back({&lost, t + 40 * d});
    cust.Aggregate(crm::topics::customers::kCustomer.type, customer_id, customer, owner, team);

    const bool won = i % 10 < 7;
    const int64_t amount = 100000 + (i % 97) * 10000;
    ov1::OpportunityCreated oc;
    oc.mutable_profile()->set_customer_id(customer_id);
    oc.mutable_profile()->set_name(absl::StrCat("商机", i));
    oc.mutable_profile()->set_owner_id(owner);
    oc.mutable_profile()->set_team_id(team);
    oc.mutable_profile()->mutable_amount()->set_amount_minor(amount);
    oc.mutable_profile()->mutable_amount()->set_currency("CNY");
    oc.set_pipeline_id("default");
    oc.set_stage_id("initial_contact");
    ov1::OpportunityStageChanged s1, s2;
    s1.set_from_stage_id("initial_contact");
    s1.set_to_stage_id("needs_analysis");
    s2.set_from_stage_id("needs_analysis");
    s2.set_to_stage_id("proposal");
    ov1::OpportunityWon w;
    w.set_stage_id("won");
    ov1::OpportunityLost l;
    l.set_stage_id("lost");
    l.set_reason("价格");
    opps.Aggregate(crm::topics::opportunities::kOpportunity.type, NewUuidV7(t),
                   {{&oc, t + 2 * h}, {&s1, t + 5 * d}, {&s2, t + 10 * d},
                    {won ? static_cast<const google::protobuf::Message*>(&w) : &l, t + 20 * d}},
                   owner, team);
    written += 2 + static_cast<int64_t>(customer.size()) + 4;
    if (won) {
      ov1::ContractDrafted k;
      k.mutable_terms()->set_customer_id(customer_id);
      k.mutable_terms()->set_owner_id(owner);
      k.mutable_terms()->set_team_id(team);
      k.mutable_terms()->mutable_amount()->set_amount_minor(amount);
      k.mutable_terms()->mutable_amount()->set_currency("CNY");
      ov1::PaymentPlanSet plan;
      auto* i1 = plan.add_instalments();
      i1->set_number(1);
      i1->set_due_date(Day(t + 30 * d));
      i1->set_amount_minor(amount / 2);
      auto* i2 = plan.add_instalments();
      i2->set_number(2);
      i2->set_due_date(Day(t + 60 * d));
      i2->set_amount_minor(amount - amount / 2);
      ov1::PaymentRecorded pay1, pay2;
      pay1.set_payment_id(absl::StrCat("p", i, "a"));
      pay1.set_amount_minor(amount / 2);
      *pay1.mutable_paid_at() = ToProto(t + 31 * d);
      pay2.set_payment_id(absl::StrCat("p", i, "b"));
      pay2.set_amount_minor(amount / 4);
      *pay2.mutable_paid_at() = ToProto(t + 62 * d);
      opps.Aggregate(crm::topics::opportunities::kContract.type, NewUuidV7(t),
                     {{&k, t + 21 * d}, {&plan, t + 21 * d}, {&pay1, t + 31 * d}, {&pay2, t + 62 * d}}, owner, team);
      written += 4;
    }
    tv1::TaskCreated tc;
    tc.mutable_profile()->set_title("回访客户");
    tc.mutable_profile()->set_assignee_id(owner);
    tc.mutable_profile()->set_team_id(team);
    tc.mutable_profile()->set_related(absl::StrCat("customers/", customer_id));
    tv1::TaskCompleted done;
    done.set_customer_id(customer_id);
    tasks.Aggregate(crm::topics::tasks::kTask.type, NewUuidV7(t), {{&tc, t + d}, {&done, t + 2 * d}}, owner, team);
    kv1::TicketCreated ticket;
    ticket.set_type_id("repair");
    ticket.set_type_version(1);
    ticket.set_title("设备报修");
    ticket.set_customer_id(customer_id);
    ticket.set_state("new");
    ticket.set_assignee_id(owner);
    ticket.set_team_id(team);
    kv1::TicketTransitioned closed;
    closed.set_transition_id("close");
    closed.set_from_state("new");
    closed.set_to_state("closed");
    closed.set_to_final(true);
    tickets.Aggregate(crm::topics::tickets::kTicket.type, NewUuidV7(t), {{&ticket, t + 4 * d}, {&closed, t + 6 * d}}, owner, team);
    written += 4;
  }
  CRM_RETURN_IF_ERROR(cust.Finish());
  CRM_RETURN_IF_ERROR(tickets.Finish());
  CRM_RETURN_IF_ERROR(opps.Finish());
  CRM_RETURN_IF_ERROR(tasks.Finish());
  return written;
}

double Median(std::vector<double> v) { return Percentile(v, 0.5); }

template <typename Req>
Req Year(absl::Time end) {
  Req req;
  *req.mutable_start_time() = ToProto(end - absl::Hours(24 * 366));
  *req.mutable_end_time() = ToProto(end + absl::Hours(24));
  req.set_group_by(av1::GROUP_BY_MONTH);
  return req;
}

}  // namespace

absl::Status RunAnalytics(int64_t events, const std::string& base, const std::string& log_dir, int runs, bool json) {
  const bool keep = !log_dir.empty();
  const std::string dir = keep ? log_dir : absl::StrCat(base, "/crm-bench-analytics-", getpid());
  const bool reuse = keep && std::filesystem::exists(dir + "/log");
  if (!reuse) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  const absl::Time end = absl::Now();
  if (!reuse) {
    CRM_ASSIGN_OR_RETURN(auto log, eventlog::OpenEmbeddedLog({.path = dir + "/log"}));
    const absl::Time t0 = absl::Now();
    CRM_ASSIGN_OR_RETURN(int64_t n, WriteYear(*log, events, end));
    std::fprintf(stderr, "analytics: wrote %lld events in %.1f s\n", static_cast<long long>(n),
                 absl::ToDoubleSeconds(absl::Now() - t0));
  }
  CRM_ASSIGN_OR_RETURN(auto log, eventlog::OpenEmbeddedLog({.path = dir + "/log"}));
  const analytics::AnalyticsEngine::Options options{.clock = SystemClock::Get()};

  // (1) Rebuild of every analytics read model.
  std::vector<double> seconds;
  int64_t rebuilt = 0;
  Cpu last_cpu;
  double last_cpu_s = 0;
  for (int run = 0; run < std::max(1, runs); ++run) {
    std::filesystem::remove_all(dir + "/analytics");
    const Cpu cpu0 = Cpu::Now();
    const absl::Time t0 = absl::Now();
    CRM_ASSIGN_OR_RETURN(rebuilt, projection::Rebuild(*log, analytics::AnalyticsEngine::Spec(options), dir + "/analytics"));
    seconds.push_back(absl::ToDoubleSeconds(absl::Now() - t0));
    last_cpu = Cpu::Now();
    last_cpu_s = (last_cpu.user + last_cpu.sys) - (cpu0.user + cpu0.sys);
    std::fprintf(stderr, "analytics rebuild run %d: %.2f s\n", run + 1, seconds.back());
  }
  const double rebuild_s = Median(seconds);
  if (json) {
    std::printf("{\"workload\":\"analytics-rebuild\",\"events\":%lld,\"seconds\":%.3f,\"events_per_second\":%.0f,"
                "\"cpu_seconds_last_run\":%.2f,\"peak_rss_mib\":%ld,\"runs\":%zu}\n",
                static_cast<long long>(rebuilt), rebuild_s, rebuilt / rebuild_s, last_cpu_s, last_cpu.max_rss_kib / 1024,
                seconds.size());
  } else {
    std::printf("rebuild of all analytics read models: %lld events, median %.2f s of %zu runs = %.0f events/s "
                "(cpu %.2f s last run, peak RSS %ld MiB)\n",
                static_cast<long long>(rebuilt), rebuild_s, seconds.size(), rebuilt / rebuild_s, last_cpu_s,
                last_cpu.max_rss_kib / 1024);
  }

  // (2) Each report over the year, through the engine (validation, scope, read, reply).
  CRM_ASSIGN_OR_RETURN(auto db, projection::ProjectionDb::Open({.path = dir + "/analytics"}));
  db->AcceptTokens(log.get(), analytics::AnalyticsEngine::Spec(options).Topics());
  CRM_ASSIGN_OR_RETURN(auto engine, analytics::AnalyticsEngine::Open(log.get(), db.get(), options));
  const Caller admin{"bench", "admin", ""};
  const absl::Time deadline = absl::InfiniteFuture();
  using E = analytics::AnalyticsEngine;
  struct Probe {
    const char* name;
    std::function<absl::Status()> run;
  };
  auto probe = [&](auto method, auto req) {
    return [&, method, req]() -> absl::Status { return ((*engine).*method)(admin, req, deadline).status(); };
  };
  auto team_scoped = Year<av1::GetTeamReportRequest>(end);
  team_scoped.set_team_id("team1");
  const std::vector<Probe> probes = {
      {"funnel", probe(&E::GetFunnelReport, Year<av1::GetFunnelReportRequest>(end))},
      {"channels", probe(&E::GetChannelsReport, Year<av1::GetChannelsReportRequest>(end))},
      {"team", probe(&E::GetTeamReport, Year<av1::GetTeamReportRequest>(end))},
      {"team (one team)", probe(&E::GetTeamReport, team_scoped)},
      {"value", probe(&E::GetCustomerValueReport, Year<av1::GetCustomerValueReportRequest>(end))},
      {"churn", probe(&E::GetChurnReport, Year<av1::GetChurnReportRequest>(end))},
      {"tickets", probe(&E::GetTicketsReport, Year<av1::GetTicketsReportRequest>(end))},
      {"receivables", probe(&E::GetReceivablesReport, Year<av1::GetReceivablesReportRequest>(end))},
  };
  if (!json) std::printf("%-16s %10s %10s %8s\n", "report", "median_ms", "max_ms", "calls");
  for (const Probe& p : probes) {
    std::vector<double> ms;
    for (int k = 0; k < std::max(1, runs) * 5; ++k) {
      const absl::Time t0 = absl::Now();
      CRM_RETURN_IF_ERROR(p.run());
      ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    }
    const double max = *std::max_element(ms.begin(), ms.end());
    const double median = Median(ms);
    if (json) {
      std::printf("{\"workload\":\"analytics-report\",\"report\":\"%s\",\"events\":%lld,\"median_ms\":%.2f,"
                  "\"max_ms\":%.2f,\"calls\":%zu}\n",
                  p.name, static_cast<long long>(rebuilt), median, max, ms.size());
    } else {
      std::printf("%-16s %10.2f %10.2f %8zu\n", p.name, median, max, ms.size());
    }
  }
  // What the reports found, so a reader sees they counted the year.
  CRM_ASSIGN_OR_RETURN(auto funnel, engine->GetFunnelReport(admin, Year<av1::GetFunnelReportRequest>(end), deadline));
  CRM_ASSIGN_OR_RETURN(auto team, engine->GetTeamReport(admin, Year<av1::GetTeamReportRequest>(end), deadline));
  CRM_ASSIGN_OR_RETURN(auto churn, engine->GetChurnReport(admin, Year<av1::GetChurnReportRequest>(end), deadline));
  std::fprintf(stderr,
               "analytics: the year holds %lld opportunities (%lld won), %lld follow-ups, %lld tasks done, "
               "%lld reps, %lld churned, collected %lld.%02lld CNY\n",
               static_cast<long long>(funnel.opportunities()), static_cast<long long>(funnel.won()),
               static_cast<long long>(team.total().follow_ups()), static_cast<long long>(team.total().tasks_done()),
               static_cast<long long>(team.reps_size()), static_cast<long long>(churn.churned()),
               static_cast<long long>(team.total().collected_minor() / 100),
               static_cast<long long>(team.total().collected_minor() % 100));
  engine.reset();
  db.reset();
  log.reset();
  std::filesystem::remove_all(keep ? dir + "/analytics" : dir);
  return absl::OkStatus();
}

absl::StatusOr<Result> RunAnalyticsLag(int clients, absl::Duration duration, absl::Duration warmup,
                                       const std::string& base) {
  const std::string dir = absl::StrCat(base, "/crm-bench-analytics-lag-", getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  Result r;
  {
    CRM_ASSIGN_OR_RETURN(auto crmd, InProcessCrmd::Start(dir, {"customers", "opportunities", "analytics"}));
    analytics::AnalyticsEngine* engine = crmd->engine<analytics::AnalyticsEngine>("analytics");
    auto stub = cv1::CustomerService::NewStub(crmd->channel());
    const std::string& token = crmd->token();
    std::vector<std::string> customers;
    for (int i = 0; i < 100; ++i) {
      grpc::ClientContext ctx;
      ctx.AddMetadata("authorization", "Bearer " + token);
      cv1::CreateCustomerRequest req;
      req.mutable_customer()->set_display_name(absl::StrCat("滞后测试客户", i));
      req.mutable_customer()->set_phone(absl::StrCat("137", absl::Dec(getpid() % 1000 * 10000 + i, absl::kZeroPad8)));
      req.mutable_customer()->set_owner_id(absl::StrCat("rep", i % 10));
      cv1::Customer resp;
      grpc::Status s = stub->CreateCustomer(&ctx, req, &resp);
      if (!s.ok()) return absl::InternalError(absl::StrCat("seed customer: ", s.error_message()));
      customers.push_back(resp.name());
    }
    absl::Mutex mu;
    std::vector<double> lag_ms, from_call_ms;
    int64_t pending = 0, failed = 0;
    const absl::Time measure_from = absl::Now() + warmup;
    std::atomic<int64_t> seq{0};
    Result load = RunClosedLoop(clients, duration, warmup, [&](int client, std::function<void(const grpc::Status&)> done) {
      struct Call {
        grpc::ClientContext ctx;
        cv1::CreateFollowUpRequest req;
        cv1::FollowUp resp;
        absl::Time start = absl::Now();
      };
      auto* c = new Call;
      c->ctx.AddMetadata("authorization", "Bearer " + token);
      c->req.set_parent(customers[static_cast<size_t>(seq.fetch_add(1)) % customers.size()]);
      c->req.mutable_follow_up()->set_summary("电话沟通");
      c->req.mutable_follow_up()->set_channel(cv1::FOLLOW_UP_CHANNEL_PHONE);
      stub->async()->CreateFollowUp(&c->ctx, &c->req, &c->resp, [&, c, done](grpc::Status s) {
        const absl::Time acked = absl::Now();
        if (s.ok() && acked >= measure_from) {
          {
            absl::MutexLock l(&mu);
            ++pending;
          }
          engine->AfterToken(c->resp.consistency_token(), "consistency_token", acked + absl::Seconds(30),
                             [&, acked, start = c->start](absl::Status applied) {
                               const absl::Time at = absl::Now();
                               absl::MutexLock l(&mu);
                               --pending;
                               if (applied.ok()) {
                                 lag_ms.push_back(absl::ToDoubleMilliseconds(at - acked));
                                 from_call_ms.push_back(absl::ToDoubleMilliseconds(at - start));
                               } else {
                                 ++failed;
                               }
                             });
        }
        done(s);
        delete c;
      });
    });
    {
      absl::MutexLock l(&mu);
      mu.AwaitWithTimeout(absl::Condition(+[](int64_t* n) { return *n == 0; }, &pending), absl::Seconds(60));
    }
    absl::MutexLock l(&mu);
    r = load;
    r.workload = "analytics-lag";
    r.backend = "embedded";
    r.errors = load.errors + failed + pending;
    r.p50_ms = Percentile(lag_ms, 0.5);
    r.p99_ms = Percentile(lag_ms, 0.99);
    r.p999_ms = Percentile(lag_ms, 0.999);
    std::fprintf(stderr,
                 "analytics-lag: %zu follow-ups measured; after the ack p50 %.3f ms p99 %.3f ms; from the call's "
                 "start (the durable write included) p50 %.3f ms p99 %.3f ms; the write alone p50 %.3f ms p99 %.3f ms\n",
                 lag_ms.size(), r.p50_ms, r.p99_ms, Percentile(from_call_ms, 0.5), Percentile(from_call_ms, 0.99),
                 load.p50_ms, load.p99_ms);
  }
  std::filesystem::remove_all(dir);
  return r;
}

}  // namespace crm::bench
