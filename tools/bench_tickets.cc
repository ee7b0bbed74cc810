#include "tools/bench_tickets.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "crm/tickets/v1/tickets_service.grpc.pb.h"
#include "libs/common/proto_time.h"
#include "libs/common/status_macros.h"
#include "services/tickets/ticket_engine.h"
#include "tools/bench_crmd.h"

namespace crm::bench {
namespace {

namespace kv1 = crm::tickets::v1;

kv1::FormField Field(const std::string& key, kv1::FieldType type, bool required = false) {
  kv1::FormField f;
  f.set_key(key);
  f.set_label(key);
  f.set_type(type);
  f.set_required(required);
  return f;
}

// 售后维修: eleven fields (a pattern, a choice, money, ...) and 新建 → 处理中 ⇄ 待客户反馈 → 已解决 → 已关闭.
kv1::TicketTypeDefinition Repair() {
  kv1::TicketTypeDefinition d;
  d.set_display_name("售后维修");
  auto* form = d.mutable_form();
  *form->add_fields() = Field("serial", kv1::FIELD_TYPE_TEXT, true);
  form->mutable_fields(0)->set_pattern("[A-Z]{2}\\d{6}");
  *form->add_fields() = Field("description", kv1::FIELD_TYPE_LONG_TEXT, true);
  auto* kind = form->add_fields();
  *kind = Field("kind", kv1::FIELD_TYPE_SINGLE_CHOICE, true);
  for (const char* k : {"hardware", "software", "network"}) {
    auto* o = kind->add_options();
    o->set_key(k);
    o->set_label(k);
  }
  *form->add_fields() = Field("fee", kv1::FIELD_TYPE_MONEY);
  *form->add_fields() = Field("quantity", kv1::FIELD_TYPE_NUMBER);
  *form->add_fields() = Field("bought_on", kv1::FIELD_TYPE_DATE);
  *form->add_fields() = Field("visit_at", kv1::FIELD_TYPE_DATETIME);
  *form->add_fields() = Field("engineer", kv1::FIELD_TYPE_USER);
  *form->add_fields() = Field("customer", kv1::FIELD_TYPE_CUSTOMER);
  *form->add_fields() = Field("photo", kv1::FIELD_TYPE_URL);
  *form->add_fields() = Field("resolution", kv1::FIELD_TYPE_LONG_TEXT);
  auto* w = d.mutable_workflow();
  auto state = [&](const char* id, bool final, bool pauses) {
    auto* s = w->add_states();
    s->set_id(id);
    s->set_name(id);
    s->set_final(final);
    s->set_pauses_sla(pauses);
  };
  state("new", false, false);
  state("in_progress", false, false);
  state("waiting", false, true);
  state("resolved", false, false);
  state("closed", true, false);
  auto move = [&](const char* id, const char* from, const char* to) {
    auto* t = w->add_transitions();
    t->set_id(id);
    t->set_name(id);
    t->set_from(from);
    t->set_to(to);
  };
  move("start", "new", "in_progress");
  move("ask", "in_progress", "waiting");
  move("answered", "waiting", "in_progress");
  move("resolve", "in_progress", "resolved");
  move("close", "resolved", "closed");
  w->set_initial_state("new");
  return d;
}

// Mon-Fri 09:00-12:00 and 13:30-18:00 with holidays and make-up workdays in the shape of a
// National Day week (examples/tickets/office-hours.json).
kv1::BusinessCalendar OfficeHours() {
  kv1::BusinessCalendar c;
  for (int wd = 1; wd <= 5; ++wd) {
    for (auto [from, to] : {std::pair<int, int>{540, 720}, {810, 1080}}) {
      auto* win = c.add_windows();
      win->set_weekday(wd);
      win->set_start_minute(from);
      win->set_end_minute(to);
    }
  }
  for (const char* d : {"2026-10-01", "2026-10-02", "2026-10-05", "2026-10-06", "2026-10-07"}) c.add_holidays(d);
  for (const char* d : {"2026-09-27", "2026-10-10"}) c.add_workdays(d);
  return c;
}

// A unary call with the admin token and a long deadline, blocking.
template <typename Stub, typename Req, typename Resp>
grpc::Status Unary(Stub* stub, grpc::Status (Stub::*fn)(grpc::ClientContext*, const Req&, Resp*), const std::string& token,
                   const Req& req, Resp* resp) {
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + token);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(5));
  return (stub->*fn)(&ctx, req, resp);
}

absl::Status Check(const grpc::Status& s, const char* what) {
  if (s.ok()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, ": ", s.error_message()));
}

}  // namespace

absl::Status SetupRepairTickets(const std::shared_ptr<grpc::Channel>& channel, const std::string& token) {
  auto types = kv1::TicketTypeService::NewStub(channel);
  auto sla = kv1::SlaService::NewStub(channel);
  kv1::CreateTicketTypeRequest t;
  t.set_ticket_type_id("repair");
  *t.mutable_definition() = Repair();
  kv1::TicketType type;
  const grpc::Status created = Unary(types.get(), &kv1::TicketTypeService::Stub::CreateTicketType, token, t, &type);
  if (created.error_code() == grpc::StatusCode::ALREADY_EXISTS) return absl::OkStatus();  // set up before
  CRM_RETURN_IF_ERROR(Check(created, "create the ticket type"));
  kv1::SetCalendarRequest c;
  c.mutable_calendar()->set_name("calendars/cn");
  c.mutable_calendar()->set_display_name("中国大陆工作日");
  *c.mutable_calendar()->mutable_calendar() = OfficeHours();
  kv1::Calendar cal;
  CRM_RETURN_IF_ERROR(Check(Unary(sla.get(), &kv1::SlaService::Stub::SetCalendar, token, c, &cal), "calendar"));
  kv1::SetSlaPolicyRequest p;
  p.mutable_policy()->set_type_id("repair");
  p.mutable_policy()->set_first_response_minutes(120);
  p.mutable_policy()->set_resolution_minutes(16 * 60);
  p.mutable_policy()->set_warning_percent(80);
  p.mutable_policy()->set_calendar("calendars/cn");
  kv1::SlaPolicyResource pol;
  return Check(Unary(sla.get(), &kv1::SlaService::Stub::SetSlaPolicy, token, p, &pol), "policy");
}

void FillRepairTicket(int64_t n, kv1::Ticket* t) {
  t->set_ticket_type("ticketTypes/repair");
  t->set_title(absl::StrCat("工单 ", n, "：设备无法开机"));
  t->set_priority(static_cast<kv1::TicketPriority>(1 + n % 4));
  (*t->mutable_values())["serial"].set_text(absl::StrCat("AB", absl::Dec(n % 1000000, absl::kZeroPad6)));
  (*t->mutable_values())["description"].set_text("屏幕不亮，按电源键无反应，已尝试充电");
  (*t->mutable_values())["kind"].set_choice(n % 3 == 0 ? "software" : "hardware");
}

namespace {

struct CreateCall {
  grpc::ClientContext ctx;
  kv1::CreateTicketRequest req;
  kv1::Ticket resp;
};

CreateCall* NewCreate(const std::string& token, int64_t n) {
  auto* c = new CreateCall;
  c->ctx.AddMetadata("authorization", "Bearer " + token);
  FillRepairTicket(n, c->req.mutable_ticket());
  return c;
}

}  // namespace

absl::StatusOr<Result> RunTicketCreate(int clients, absl::Duration duration, absl::Duration warmup,
                                       const std::string& base) {
  const std::string dir = absl::StrCat(base, "/crm-bench-ticket-create-", getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  Result r;
  {
    CRM_ASSIGN_OR_RETURN(auto crmd, InProcessCrmd::Start(dir, {"customers", "opportunities", "tickets"}));
    CRM_RETURN_IF_ERROR(SetupRepairTickets(crmd->channel(), crmd->token()));
    auto stub = kv1::TicketService::NewStub(crmd->channel());
    std::atomic<int64_t> seq{0};
    const std::string token = crmd->token();
    r = RunClosedLoop(clients, duration, warmup, [&](int, std::function<void(const grpc::Status&)> done) {
      CreateCall* c = NewCreate(token, seq.fetch_add(1));
      stub->async()->CreateTicket(&c->ctx, &c->req, &c->resp, [c, done](grpc::Status s) {
        done(s);
        delete c;
      });
    }, crmd->kernel());
    r.workload = "ticket-create";
    r.backend = "embedded";
  }
  std::filesystem::remove_all(dir);
  return r;
}

absl::StatusOr<Result> RunSlaEvaluation(int64_t tickets, int runs, const std::string& base, bool json) {
  const std::string dir = absl::StrCat(base, "/crm-bench-sla-eval-", getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  Result r;
  {
    CRM_ASSIGN_OR_RETURN(auto crmd, InProcessCrmd::Start(dir, {"customers", "opportunities", "tickets"}));
    CRM_RETURN_IF_ERROR(SetupRepairTickets(crmd->channel(), crmd->token()));
    auto stub = kv1::TicketService::NewStub(crmd->channel());
    const std::string token = crmd->token();
    const absl::Time t0 = absl::Now();
    // 64 threads of blocking calls: create; every second ticket then a public comment and
    // "start"; every fourth "resolve" and "close" too.
    std::atomic<int64_t> next{0}, failed{0};
    std::string first_error;
    absl::Mutex mu;
    auto worker = [&] {
      for (int64_t n = next.fetch_add(1); n < tickets; n = next.fetch_add(1)) {
        std::unique_ptr<CreateCall> c(NewCreate(token, n));
        kv1::Ticket out;
        grpc::Status st = Unary(stub.get(), &kv1::TicketService::Stub::CreateTicket, token, c->req, &out);
        const std::string name = out.name();
        if (st.ok() && n % 2 == 0) {
          kv1::AddCommentRequest cm;
          cm.set_name(name);
          cm.set_body("您好，已收到，工程师将尽快联系您");
          st = Unary(stub.get(), &kv1::TicketService::Stub::AddComment, token, cm, &out);
          for (const char* step : {"start", "resolve", "close"}) {
            if (!st.ok() || (n % 4 != 0 && std::string(step) != "start")) break;
            kv1::TransitionTicketRequest tr;
            tr.set_name(name);
            tr.set_transition_id(step);
            st = Unary(stub.get(), &kv1::TicketService::Stub::TransitionTicket, token, tr, &out);
          }
        }
        if (!st.ok()) {
          ++failed;
          absl::MutexLock l(&mu);
          if (first_error.empty()) first_error = st.error_message();
        }
      }
    };
    std::vector<std::thread> threads;
    for (int i = 0; i < 64; ++i) threads.emplace_back(worker);
    for (auto& t : threads) t.join();
    std::fprintf(stderr, "sla-eval: %lld tickets written in %.1f s (%lld failed%s%s)\n",
                 static_cast<long long>(tickets), absl::ToDoubleSeconds(absl::Now() - t0),
                 static_cast<long long>(failed.load()), first_error.empty() ? "" : ": ", first_error.c_str());
    if (failed.load() > 0) return absl::InternalError(absl::StrCat("writing the tickets failed: ", first_error));

    auto sla = kv1::SlaService::NewStub(crmd->channel());
    kv1::EvaluateSlaRequest req;
    req.set_ticket_type("ticketTypes/repair");
    *req.mutable_start_time() = ToProto(t0 - absl::Hours(1));
    *req.mutable_end_time() = ToProto(absl::Now() + absl::Hours(1));
    *req.mutable_as_of() = ToProto(absl::Now() + absl::Hours(72));
    req.mutable_what_if()->set_first_response_minutes(60);
    req.mutable_what_if()->set_resolution_minutes(8 * 60);
    req.mutable_what_if()->set_warning_percent(80);
    req.mutable_what_if()->set_calendar("calendars/cn");
    std::vector<double> ms;
    const Cpu cpu0 = Cpu::Now();
    for (int i = 0; i < runs; ++i) {
      kv1::EvaluateSlaResponse resp;
      const absl::Time s0 = absl::Now();
      CRM_RETURN_IF_ERROR(Check(Unary(sla.get(), &kv1::SlaService::Stub::EvaluateSla, token, req, &resp), "EvaluateSla"));
      ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - s0));
      if (resp.tickets() != tickets) {
        return absl::InternalError(absl::StrCat("EvaluateSla saw ", resp.tickets(), " tickets, not ", tickets));
      }
      std::fprintf(stderr,
                   "run %d: EvaluateSla over %d tickets in %.1f ms (server %.1f ms); resolution in force: met %d, "
                   "breached %d, running %d; what if 8 h: met %d, breached %d, running %d\n",
                   i + 1, resp.tickets(), ms.back(), resp.evaluation_micros() / 1000.0, resp.actual_resolution().met(),
                   resp.actual_resolution().breached(), resp.actual_resolution().running(),
                   resp.what_if_resolution().met(), resp.what_if_resolution().breached(),
                   resp.what_if_resolution().running());
    }
    const Cpu cpu1 = Cpu::Now();
    // The scheduler's pass: every open ticket's clocks under its policy, nothing due (now).
    std::vector<double> pass_ms;
    int64_t open = 0;
    for (int i = 0; i < runs; ++i) {
      const absl::Time s0 = absl::Now();
      CRM_ASSIGN_OR_RETURN(auto run, crmd->engine<tickets::TicketEngine>("tickets")->RunScheduler(absl::Now()));
      pass_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - s0));
      open = run.tickets;
    }
    std::fprintf(stderr, "scheduler pass over %lld open tickets: median %.1f ms over %d runs\n",
                 static_cast<long long>(open), Percentile(pass_ms, 0.5), runs);
    r.workload = "sla-eval";
    r.backend = "embedded";
    r.clients = 1;
    r.ops = tickets;
    r.p50_ms = Percentile(ms, 0.5);
    r.p99_ms = Percentile(ms, 1.0);
    r.seconds = r.p50_ms / 1000;
    r.cpu_s = ((cpu1.user + cpu1.sys) - (cpu0.user + cpu0.sys)) / runs;
    r.rss_mib = cpu1.max_rss_kib / 1024;
    if (json) {
      std::printf("{\"workload\":\"sla-eval\",\"tickets\":%lld,\"runs\":%d,\"median_ms\":%.1f,\"max_ms\":%.1f,"
                  "\"tickets_per_second\":%.0f,\"cpu_seconds_per_run\":%.2f,\"peak_rss_mib\":%ld,"
                  "\"open_tickets\":%lld,\"scheduler_pass_median_ms\":%.1f}\n",
                  static_cast<long long>(tickets), runs, r.p50_ms, r.p99_ms, tickets / r.seconds, r.cpu_s, r.rss_mib,
                  static_cast<long long>(open), Percentile(pass_ms, 0.5));
    } else {
      std::printf("SLA re-evaluation (EvaluateSla, policy in force and a what-if, 2 clocks each): %lld tickets, "
                  "median %.1f ms over %d runs (max %.1f ms) = %.0f tickets/s, cpu %.2f s a run, peak RSS %ld MiB; "
                  "scheduler pass over %lld open tickets: median %.1f ms\n",
                  static_cast<long long>(tickets), r.p50_ms, runs, r.p99_ms, tickets / r.seconds, r.cpu_s, r.rss_mib,
                  static_cast<long long>(open), Percentile(pass_ms, 0.5));
    }
  }
  std::filesystem::remove_all(dir);
  return r;
}

}  // namespace crm::bench
