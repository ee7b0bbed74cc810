#include "tools/bench_day.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "crm/customers/v1/customers_service.grpc.pb.h"
#include "crm/opportunities/v1/opportunities_service.grpc.pb.h"
#include "crm/tasks/v1/tasks_service.grpc.pb.h"
#include "crm/tickets/v1/tickets_service.grpc.pb.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/ids.h"
#include "tools/bench_journal.h"
#include "tools/bench_tickets.h"

namespace crm::bench {
namespace {

namespace cv1 = crm::customers::v1;
namespace ov1 = crm::opportunities::v1;
namespace tv1 = crm::tasks::v1;
namespace kv1 = crm::tickets::v1;
using google::protobuf::util::TimeUtil;

constexpr std::array<const char*, 4> kStages = {"initial_contact", "needs_analysis", "proposal", "negotiation"};

int64_t VersionOf(const std::string& etag) {
  int64_t v = 0;
  return absl::SimpleAtoi(etag, &v) ? v : -1;
}

void Authorize(grpc::ClientContext& ctx, const std::string& token) {
  ctx.AddMetadata("authorization", "Bearer " + token);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
}

// One asynchronous unary call: `start(ctx, req, resp, callback)` sends it, `then(status, resp)`
// runs on completion.
template <typename Req, typename Resp, typename Start, typename Then>
void Send(const std::string& token, Req req, Start start, Then then) {
  struct Pending {
    grpc::ClientContext ctx;
    Req req;
    Resp resp;
  };
  auto* p = new Pending;
  p->req = std::move(req);
  Authorize(p->ctx, token);
  start(&p->ctx, &p->req, &p->resp, [p, then = std::move(then)](grpc::Status s) mutable {
    then(s, p->resp);
    delete p;
  });
}

#define CRM_ASYNC(stub, Method) [this](auto... a) { stub->async()->Method(a...); }

enum Op {
  kGetCustomer, kListCustomers, kFindDuplicates, kGetOpportunity, kListTasks, kGetTicket, kCustomerEvents,
  kCreateCustomer, kUpdateCustomer, kFollowUp, kCreateOpportunity, kMoveStage, kCreateTask, kCompleteTask,
  kCreateTicket, kOps
};
constexpr std::array<const char*, kOps> kOpNames = {
    "get_customer", "list_customers", "find_duplicates", "get_opportunity", "list_tasks", "get_ticket",
    "customer_events", "create_customer", "update_customer", "follow_up", "create_opportunity", "move_stage",
    "create_task", "complete_task", "create_ticket"};
// Per 100 calls: 70 reads, 30 writes.
constexpr std::array<int, kOps> kWeights = {22, 8, 10, 12, 6, 6, 6, 6, 4, 7, 4, 5, 2, 1, 1};

class Day {
 public:
  Day(const DayTargets& t, const DayOptions& o)
      : token_(t.token),
        customers_(cv1::CustomerService::NewStub(t.customers)),
        opportunities_(ov1::OpportunityService::NewStub(t.opportunities)),
        tasks_(tv1::TaskService::NewStub(t.tasks)),
        tickets_(kv1::TicketService::NewStub(t.tickets)),
        journal_(o.journal),
        next_customer_(o.first_customer),
        clients_(o.clients) {
    for (int i = 0; i < o.clients; ++i) clients_[i].rng.seed(o.seed * 1000003 + i);
  }
  bool journal_failed(const std::string& path) const { return journal_.failed(path); }

  template <typename Resp>
  static auto Done(std::function<void(const grpc::Status&)> done) {
    return [done](const grpc::Status& s, Resp&) { done(s); };
  }
  // Journals the aggregate's version an acknowledged write returned.
  auto Versioned(std::function<void(const grpc::Status&)> done) {
    return [this, done](const grpc::Status& s, auto& r) {
      if (s.ok()) journal_.Line("V", r.name(), r.etag());
      done(s);
    };
  }

  void Next(int client, std::function<void(const grpc::Status&)> done) {
    Client& c = clients_[client];
    Op op = Pick(c);
    counts_[op].fetch_add(1, std::memory_order_relaxed);
    switch (op) {
      case kGetCustomer: {
        cv1::GetCustomerRequest req;
        req.set_name(AnyOf(c, c.customers).name);
        return Send<cv1::GetCustomerRequest, cv1::Customer>(token_, std::move(req), CRM_ASYNC(customers_, GetCustomer),
                                                           Done<cv1::Customer>(done));
      }
      case kListCustomers: {
        cv1::ListCustomersRequest req;
        req.set_page_size(20);
        return Send<cv1::ListCustomersRequest, cv1::ListCustomersResponse>(
            token_, std::move(req), CRM_ASYNC(customers_, ListCustomers), Done<cv1::ListCustomersResponse>(done));
      }
      case kFindDuplicates: {
        cv1::FindDuplicatesRequest req;
        req.set_phone(Phone(AnyOf(c, c.customers).n));
        return Send<cv1::FindDuplicatesRequest, cv1::FindDuplicatesResponse>(
            token_, std::move(req), CRM_ASYNC(customers_, FindDuplicates), Done<cv1::FindDuplicatesResponse>(done));
      }
      case kGetOpportunity: {
        ov1::GetOpportunityRequest req;
        req.set_name(AnyOf(c, c.opportunities).name);
        return Send<ov1::GetOpportunityRequest, ov1::Opportunity>(
            token_, std::move(req), CRM_ASYNC(opportunities_, GetOpportunity), Done<ov1::Opportunity>(done));
      }
      case kListTasks: {
        tv1::ListTasksRequest req;
        req.set_page_size(20);
        return Send<tv1::ListTasksRequest, tv1::ListTasksResponse>(token_, std::move(req), CRM_ASYNC(tasks_, ListTasks),
                                                                  Done<tv1::ListTasksResponse>(done));
      }
      case kGetTicket: {
        kv1::GetTicketRequest req;
        req.set_name(AnyOf(c, c.tickets));
        return Send<kv1::GetTicketRequest, kv1::Ticket>(token_, std::move(req), CRM_ASYNC(tickets_, GetTicket),
                                                       Done<kv1::Ticket>(done));
      }
      case kCustomerEvents: {
        cv1::ListCustomerEventsRequest req;
        req.set_parent(AnyOf(c, c.customers).name);
        req.set_page_size(20);
        return Send<cv1::ListCustomerEventsRequest, cv1::ListCustomerEventsResponse>(
            token_, std::move(req), CRM_ASYNC(customers_, ListCustomerEvents),
            Done<cv1::ListCustomerEventsResponse>(done));
      }
      case kCreateCustomer: {
        const int64_t n = next_customer_.fetch_add(1);
        cv1::CreateCustomerRequest req;
        req.set_request_id(NewUuidV7(absl::Now()));
        req.mutable_customer()->set_display_name(DisplayName(n));
        req.mutable_customer()->set_phone(Phone(n));
        journal_.CreateSent(n, req.request_id());
        const std::string request_id = req.request_id();
        return Send<cv1::CreateCustomerRequest, cv1::Customer>(
            token_, std::move(req), CRM_ASYNC(customers_, CreateCustomer),
            [this, &c, n, request_id, done](const grpc::Status& s, cv1::Customer& r) {
              journal_.CreateAnswered(n, request_id, s, r.name(), r.etag());
              if (s.ok()) c.customers.push_back({r.name(), r.consistency_token(), n});
              done(s);
            });
      }
      case kUpdateCustomer: {
        cv1::UpdateCustomerRequest req;
        req.mutable_customer()->set_name(AnyOf(c, c.customers).name);
        req.mutable_customer()->set_notes(absl::StrCat("第 ", c.rng() % 1000, " 次回访：客户关注交付周期"));
        req.mutable_update_mask()->add_paths("notes");
        return Send<cv1::UpdateCustomerRequest, cv1::Customer>(token_, std::move(req),
                                                              CRM_ASYNC(customers_, UpdateCustomer), Versioned(done));
      }
      case kFollowUp: {
        cv1::CreateFollowUpRequest req;
        req.set_parent(AnyOf(c, c.customers).name);
        req.mutable_follow_up()->set_channel(cv1::FOLLOW_UP_CHANNEL_PHONE);
        req.mutable_follow_up()->set_summary("电话沟通需求，客户希望下周看方案");
        const std::string parent = req.parent();
        return Send<cv1::CreateFollowUpRequest, cv1::FollowUp>(
            token_, std::move(req), CRM_ASYNC(customers_, CreateFollowUp),
            [this, parent, done](const grpc::Status& s, cv1::FollowUp& r) {
              if (s.ok()) journal_.Line("F", parent, r.name());
              done(s);
            });
      }
      case kCreateOpportunity: {
        const Customer& cust = AnyOf(c, c.customers);
        ov1::CreateOpportunityRequest req;
        req.mutable_opportunity()->set_customer(cust.name);
        req.mutable_opportunity()->set_title("智能仓储系统");
        req.mutable_opportunity()->mutable_amount()->set_amount_minor(100000 * (1 + c.rng() % 100));
        req.set_min_consistency_token(cust.token);
        return Send<ov1::CreateOpportunityRequest, ov1::Opportunity>(
            token_, std::move(req), CRM_ASYNC(opportunities_, CreateOpportunity),
            [this, &c, done](const grpc::Status& s, ov1::Opportunity& r) {
              if (s.ok()) {
                journal_.Line("V", r.name(), r.etag());
                c.opportunities.push_back({r.name()});
              }
              done(s);
            });
      }
      case kMoveStage: {
        Opportunity& o = c.opportunities[c.rng() % c.opportunities.size()];
        if (o.stage + o.step < 0 || o.stage + o.step >= static_cast<int>(kStages.size())) o.step = -o.step;
        o.stage += o.step;
        ov1::MoveOpportunityStageRequest req;
        req.set_name(o.name);
        req.set_stage_id(kStages[o.stage]);
        return Send<ov1::MoveOpportunityStageRequest, ov1::Opportunity>(
            token_, std::move(req), CRM_ASYNC(opportunities_, MoveOpportunityStage), Versioned(done));
      }
      case kCreateTask: {
        tv1::CreateTaskRequest req;
        req.mutable_task()->set_title("回访客户，确认方案");
        req.mutable_task()->set_related(AnyOf(c, c.customers).name);
        *req.mutable_task()->mutable_due_time() = TimeUtil::SecondsToTimestamp((absl::ToUnixSeconds(absl::Now()) / 3600 + 72) * 3600);  // on the hour
        return Send<tv1::CreateTaskRequest, tv1::Task>(token_, std::move(req), CRM_ASYNC(tasks_, CreateTask),
                                                      [this, &c, done](const grpc::Status& s, tv1::Task& r) {
                                                        if (s.ok()) {
                                                          journal_.Line("V", r.name(), r.etag());
                                                          c.open_tasks.push_back(r.name());
                                                        }
                                                        done(s);
                                                      });
      }
      case kCompleteTask: {
        tv1::CompleteTaskRequest req;
        req.set_name(c.open_tasks.back());
        c.open_tasks.pop_back();
        req.set_note("已回访");
        return Send<tv1::CompleteTaskRequest, tv1::Task>(token_, std::move(req), CRM_ASYNC(tasks_, CompleteTask),
                                                        Versioned(done));
      }
      case kCreateTicket: {
        kv1::CreateTicketRequest req;
        FillRepairTicket(static_cast<int64_t>(c.rng() % 1000000), req.mutable_ticket());
        return Send<kv1::CreateTicketRequest, kv1::Ticket>(token_, std::move(req), CRM_ASYNC(tickets_, CreateTicket),
                                                          [this, &c, done](const grpc::Status& s, kv1::Ticket& r) {
                                                            if (s.ok()) {
                                                              journal_.Line("V", r.name(), r.etag());
                                                              c.tickets.push_back(r.name());
                                                            }
                                                            done(s);
                                                          });
      }
      case kOps:
        break;
    }
    std::abort();
  }

  std::string Mix() const {
    std::string out;
    for (int i = 0; i < kOps; ++i) absl::StrAppend(&out, i ? " " : "", kOpNames[i], "=", counts_[i].load());
    return out;
  }

 private:
  struct Customer {
    std::string name, token;
    int64_t n = 0;
  };
  struct Opportunity {
    std::string name;
    int stage = 0, step = 1;
  };
  struct Client {
    std::mt19937_64 rng;
    std::vector<Customer> customers;
    std::vector<Opportunity> opportunities;
    std::vector<std::string> open_tasks, tickets;
  };

  // The weighted pick; an operation that needs what the client does not have yet creates a
  // customer (or a task to complete) first.
  Op Pick(Client& c) {
    int r = static_cast<int>(c.rng() % 100);
    int op = 0;
    while (r >= kWeights[op]) r -= kWeights[op++];
    if (c.customers.empty()) return kCreateCustomer;
    if ((op == kGetOpportunity || op == kMoveStage) && c.opportunities.empty()) return kCreateOpportunity;
    if (op == kGetTicket && c.tickets.empty()) return kCreateTicket;
    if (op == kCompleteTask && c.open_tasks.empty()) return kCreateTask;
    return static_cast<Op>(op);
  }
  template <typename T>
  const T& AnyOf(Client& c, const std::vector<T>& v) {
    return v[c.rng() % v.size()];
  }

  const std::string token_;
  std::unique_ptr<cv1::CustomerService::Stub> customers_;
  std::unique_ptr<ov1::OpportunityService::Stub> opportunities_;
  std::unique_ptr<tv1::TaskService::Stub> tasks_;
  std::unique_ptr<kv1::TicketService::Stub> tickets_;
  Journal journal_;
  std::atomic<int64_t> next_customer_;
  std::vector<Client> clients_;
  std::array<std::atomic<int64_t>, kOps> counts_{};
};

#undef CRM_ASYNC

template <typename Stub, typename Req, typename Resp>
grpc::Status Call(Stub* stub, grpc::Status (Stub::*fn)(grpc::ClientContext*, const Req&, Resp*),
                  const std::string& token, const Req& req, Resp* resp) {
  grpc::ClientContext ctx;
  Authorize(ctx, token);
  return (stub->*fn)(&ctx, req, resp);
}

// Gets the resource `name` through `fn` (a Get<Resource> method) and its etag into *etag.
template <typename Stub, typename Req, typename Resp>
grpc::Status GetEtag(Stub* stub, grpc::Status (Stub::*fn)(grpc::ClientContext*, const Req&, Resp*),
                     const std::string& token, const std::string& name, std::string* etag) {
  Req req;
  req.set_name(name);
  Resp resp;
  grpc::Status s = Call(stub, fn, token, req, &resp);
  *etag = resp.etag();
  return s;
}

}  // namespace

absl::StatusOr<Result> RunDay(const DayTargets& targets, const DayOptions& options) {
  if (auto s = SetupRepairTickets(targets.tickets, targets.token); !s.ok()) return s;
  Day day(targets, options);
  if (day.journal_failed(options.journal)) {
    return absl::InvalidArgumentError(absl::StrCat("--journal: cannot open ", options.journal));
  }
  Result r = RunClosedLoop(options.clients, options.duration, options.warmup,
                           [&](int client, std::function<void(const grpc::Status&)> done) { day.Next(client, done); });
  r.workload = "day";
  std::fprintf(stderr, "day mix: %s\n", day.Mix().c_str());
  return r;
}

absl::StatusOr<DayCheck> CheckDay(const DayTargets& targets, const std::vector<std::string>& journals,
                                  bool resend) {
  std::map<std::string, int64_t> versions;                       // name -> highest acknowledged
  std::vector<std::pair<std::string, std::string>> follow_ups;   // parent, name
  std::map<int64_t, std::string> intents, created;                // n -> request id; n -> name
  std::map<int64_t, int> refused;                                 // n -> the definite refusal's code
  for (const std::string& path : journals) {
    std::ifstream in(path);
    if (!in) return absl::InvalidArgumentError(absl::StrCat("--journal: cannot read ", path));
    std::string line;
    int lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      const std::vector<std::string> f = absl::StrSplit(line, ' ');
      int64_t n = 0, v = 0;
      if (f.size() == 3 && f[0] == "I" && absl::SimpleAtoi(f[1], &n)) {
        intents[n] = f[2];
      } else if (f.size() == 4 && f[0] == "C" && absl::SimpleAtoi(f[2], &n)) {
        created[n] = f[1];
      } else if (f.size() == 3 && f[0] == "V" && absl::SimpleAtoi(f[2], &v)) {
        versions[f[1]] = std::max(versions[f[1]], v);
      } else if (f.size() == 3 && f[0] == "R" && absl::SimpleAtoi(f[1], &n) && absl::SimpleAtoi(f[2], &v)) {
        refused[n] = static_cast<int>(v);
      } else if (f.size() == 3 && f[0] == "F") {
        follow_ups.emplace_back(f[1], f[2]);
      } else {
        return absl::InvalidArgumentError(absl::StrCat(path, ":", lineno, ": not a journal line: ", line));
      }
    }
  }

  auto customers = cv1::CustomerService::NewStub(targets.customers);
  auto opportunities = ov1::OpportunityService::NewStub(targets.opportunities);
  auto tasks = tv1::TaskService::NewStub(targets.tasks);
  auto tickets = kv1::TicketService::NewStub(targets.tickets);
  const std::string& token = targets.token;
  absl::Mutex mu;
  DayCheck check;
  auto problem = [&](std::string p) {
    absl::MutexLock l(&mu);
    check.problems.push_back(std::move(p));
  };

  std::vector<std::function<void()>> work;
  for (const auto& [name, acked] : versions) {
    work.push_back([&, name = name, acked = acked] {
      grpc::Status s;
      std::string etag;
      if (absl::StartsWith(name, "customers/")) {
        s = GetEtag(customers.get(), &cv1::CustomerService::Stub::GetCustomer, token, name, &etag);
      } else if (absl::StartsWith(name, "opportunities/")) {
        s = GetEtag(opportunities.get(), &ov1::OpportunityService::Stub::GetOpportunity, token, name, &etag);
      } else if (absl::StartsWith(name, "tasks/")) {
        s = GetEtag(tasks.get(), &tv1::TaskService::Stub::GetTask, token, name, &etag);
      } else if (absl::StartsWith(name, "tickets/")) {
        s = GetEtag(tickets.get(), &kv1::TicketService::Stub::GetTicket, token, name, &etag);
      } else {
        return problem(absl::StrCat(name, ": not a name this check knows"));
      }
      if (!s.ok()) return problem(absl::StrCat(name, " acknowledged at version ", acked, ": ", s.error_message()));
      if (VersionOf(etag) < acked) {
        problem(absl::StrCat(name, " acknowledged at version ", acked, " is at ", etag, ": a write was lost"));
      }
    });
  }
  std::map<std::string, std::vector<std::string>> by_parent;
  for (const auto& [parent, name] : follow_ups) by_parent[parent].push_back(name);
  for (const auto& [parent, names] : by_parent) {
    work.push_back([&, parent = parent, names = names] {
      std::set<std::string> listed;
      std::string page;
      do {
        cv1::ListFollowUpsRequest req;
        req.set_parent(parent);
        req.set_page_size(1000);
        req.set_page_token(page);
        cv1::ListFollowUpsResponse r;
        const grpc::Status s = Call(customers.get(), &cv1::CustomerService::Stub::ListFollowUps, token, req, &r);
        if (!s.ok()) return problem(absl::StrCat("follow-ups of ", parent, ": ", s.error_message()));
        for (const auto& f : r.follow_ups()) listed.insert(f.name());
        page = r.next_page_token();
      } while (!page.empty());
      for (const auto& n : names) {
        if (!listed.contains(n)) problem(absl::StrCat("follow-up ", n, " was acknowledged and is lost"));
      }
    });
  }
  int64_t resent = 0;
  for (const auto& [n, request_id] : intents) {
    const auto it = created.find(n);
    const std::string acked = it == created.end() ? "" : it->second;
    const auto no = refused.find(n);
    const bool definite = acked.empty() && no != refused.end();
    if (acked.empty() && !resend && !definite) continue;
    if (acked.empty() && !definite) ++resent;
    work.push_back([&, n = n, request_id = request_id, acked, definite,
                    code = definite ? no->second : 0] {
      // The customers with customer n's phone, by name; nullopt (a problem told) on failure.
      auto with_phone = [&]() -> std::optional<std::vector<std::string>> {
        cv1::FindDuplicatesRequest req;
        req.set_phone(Phone(n));
        req.set_max_results(10);
        cv1::FindDuplicatesResponse r;
        const grpc::Status s = Call(customers.get(), &cv1::CustomerService::Stub::FindDuplicates, token, req, &r);
        if (!s.ok()) {
          problem(absl::StrCat("查重 for customer ", n, ": ", s.error_message()));
          return std::nullopt;
        }
        std::vector<std::string> same;
        for (const auto& m : r.matches()) {
          if (m.customer().phone() == Phone(n)) same.push_back(m.customer().name());
        }
        return same;
      };
      if (definite) {  // refused as never written: it must not exist, now or later
        const auto same = with_phone();
        if (same.has_value() && !same->empty()) {
          problem(absl::StrCat("customer ", n, " was refused with gRPC code ", code,
                               " (nothing written), yet it exists: ", absl::StrJoin(*same, ", ")));
        }
        return;
      }
      if (acked.empty()) {  // the outcome was never seen: the same request again must be safe
        cv1::CreateCustomerRequest req;
        req.set_request_id(request_id);
        req.mutable_customer()->set_display_name(DisplayName(n));
        req.mutable_customer()->set_phone(Phone(n));
        cv1::Customer r;
        const grpc::Status s = Call(customers.get(), &cv1::CustomerService::Stub::CreateCustomer, token, req, &r);
        if (!s.ok()) return problem(absl::StrCat("customer ", n, " sent again with its request_id: ", s.error_message()));
      }
      const auto found = with_phone();
      if (!found.has_value()) return;
      const std::vector<std::string>& same = *found;
      if (same.size() != 1 || (!acked.empty() && same[0] != acked)) {
        problem(absl::StrCat("customer ", n, " (", acked.empty() ? "sent again" : acked, ") exists ", same.size(),
                             " times: ", absl::StrJoin(same, ", ")));
      }
    });
  }

  std::atomic<size_t> next{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&] {
      for (size_t k; (k = next.fetch_add(1)) < work.size();) work[k]();
    });
  }
  for (auto& t : threads) t.join();
  check.versions_checked = static_cast<int64_t>(versions.size());
  check.follow_ups_checked = static_cast<int64_t>(follow_ups.size());
  check.creates_checked = static_cast<int64_t>(intents.size());
  check.creates_resent = resent;
  return check;
}

}  // namespace crm::bench
