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

#include "absl/strings/escaping.h"
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
#include "libs/common/status_macros.h"
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

// The kinds of journalled writes other than customer creates (W lines).
constexpr char kUpdateCustomerKind[] = "customer.update";
constexpr char kFollowUpKind[] = "customer.follow_up";
constexpr char kCreateOpportunityKind[] = "opportunity.create";
constexpr char kMoveStageKind[] = "opportunity.move";
constexpr char kCreateTaskKind[] = "task.create";
constexpr char kCompleteTaskKind[] = "task.complete";
constexpr char kCreateTicketKind[] = "ticket.create";

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
  // Sends `req` (its request_id set) through `start`, journalled as a write of `kind`: the
  // intent with the request itself before it is sent, so that a check can send it again;
  // the acknowledgement (V, or F for a follow-up) with the request id; a definite refusal.
  // `then` runs on success.
  template <typename Req, typename Resp, typename Start>
  void Write(const char* kind, Req req, Start start, std::function<void(const grpc::Status&)> done,
             std::function<void(Resp&)> then = nullptr) {
    const std::string rid = req.request_id();
    journal_.Line("W", rid, kind, absl::Base64Escape(req.SerializeAsString()));
    Send<Req, Resp>(token_, std::move(req), start, [this, rid, done, then](const grpc::Status& s, Resp& r) {
      if (s.ok()) {
        if constexpr (std::is_same_v<Resp, cv1::FollowUp>) {
          journal_.Line("F", r.name().substr(0, r.name().find("/followUps/")), r.name(), rid);
        } else {
          journal_.Line("V", r.name(), r.etag(), rid);
        }
        if (then) then(r);
      } else if (IsDefiniteRefusal(s.error_code())) {
        journal_.Line("X", rid, static_cast<int>(s.error_code()));
      }
      done(s);
    });
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
        req.set_request_id(NewUuidV7(absl::Now()));
        req.mutable_customer()->set_name(AnyOf(c, c.customers).name);
        req.mutable_customer()->set_notes(absl::StrCat("第 ", c.rng() % 1000, " 次回访：客户关注交付周期"));
        req.mutable_update_mask()->add_paths("notes");
        return Write<cv1::UpdateCustomerRequest, cv1::Customer>(kUpdateCustomerKind, std::move(req),
                                                               CRM_ASYNC(customers_, UpdateCustomer), done);
      }
      case kFollowUp: {
        cv1::CreateFollowUpRequest req;
        req.set_request_id(NewUuidV7(absl::Now()));
        req.set_parent(AnyOf(c, c.customers).name);
        req.mutable_follow_up()->set_channel(cv1::FOLLOW_UP_CHANNEL_PHONE);
        req.mutable_follow_up()->set_summary("电话沟通需求，客户希望下周看方案");
        req.mutable_follow_up()->set_next_step(req.request_id());  // what day-check counts it by
        // A next follow-up time makes the shipped rule default.next_follow_up plan a task:
        // automation from the customers' topic, as stage moves are from the opportunities'.
        *req.mutable_follow_up()->mutable_next_follow_up_time() =
            TimeUtil::SecondsToTimestamp((absl::ToUnixSeconds(absl::Now()) / 3600 + 72) * 3600);
        return Write<cv1::CreateFollowUpRequest, cv1::FollowUp>(kFollowUpKind, std::move(req),
                                                               CRM_ASYNC(customers_, CreateFollowUp), done);
      }
      case kCreateOpportunity: {
        const Customer& cust = AnyOf(c, c.customers);
        ov1::CreateOpportunityRequest req;
        req.set_request_id(NewUuidV7(absl::Now()));
        req.mutable_opportunity()->set_customer(cust.name);
        req.mutable_opportunity()->set_title("智能仓储系统");
        req.mutable_opportunity()->set_description(req.request_id());
        req.mutable_opportunity()->mutable_amount()->set_amount_minor(100000 * (1 + c.rng() % 100));
        req.set_min_consistency_token(cust.token);
        return Write<ov1::CreateOpportunityRequest, ov1::Opportunity>(
            kCreateOpportunityKind, std::move(req), CRM_ASYNC(opportunities_, CreateOpportunity), done,
            [&c](ov1::Opportunity& r) { c.opportunities.push_back({r.name()}); });
      }
      case kMoveStage: {
        Opportunity& o = c.opportunities[c.rng() % c.opportunities.size()];
        if (o.stage + o.step < 0 || o.stage + o.step >= static_cast<int>(kStages.size())) o.step = -o.step;
        o.stage += o.step;
        ov1::MoveOpportunityStageRequest req;
        req.set_request_id(NewUuidV7(absl::Now()));
        req.set_name(o.name);
        req.set_stage_id(kStages[o.stage]);
        return Write<ov1::MoveOpportunityStageRequest, ov1::Opportunity>(
            kMoveStageKind, std::move(req), CRM_ASYNC(opportunities_, MoveOpportunityStage), done);
      }
      case kCreateTask: {
        tv1::CreateTaskRequest req;
        req.set_request_id(NewUuidV7(absl::Now()));
        req.mutable_task()->set_title("回访客户，确认方案");
        req.mutable_task()->set_description(req.request_id());
        req.mutable_task()->set_related(AnyOf(c, c.customers).name);
        *req.mutable_task()->mutable_due_time() = TimeUtil::SecondsToTimestamp((absl::ToUnixSeconds(absl::Now()) / 3600 + 72) * 3600);  // on the hour
        return Write<tv1::CreateTaskRequest, tv1::Task>(kCreateTaskKind, std::move(req), CRM_ASYNC(tasks_, CreateTask),
                                                       done, [&c](tv1::Task& r) { c.open_tasks.push_back(r.name()); });
      }
      case kCompleteTask: {
        tv1::CompleteTaskRequest req;
        req.set_request_id(NewUuidV7(absl::Now()));
        req.set_name(c.open_tasks.back());
        c.open_tasks.pop_back();
        req.set_note("已回访");
        return Write<tv1::CompleteTaskRequest, tv1::Task>(kCompleteTaskKind, std::move(req),
                                                         CRM_ASYNC(tasks_, CompleteTask), done);
      }
      case kCreateTicket: {
        kv1::CreateTicketRequest req;
        req.set_request_id(NewUuidV7(absl::Now()));
        FillRepairTicket(static_cast<int64_t>(c.rng() % 1000000), req.mutable_ticket());
        req.mutable_ticket()->set_customer(AnyOf(c, c.customers).name);
        req.mutable_ticket()->set_title(absl::StrCat(req.ticket().title(), " ", req.request_id()));
        return Write<kv1::CreateTicketRequest, kv1::Ticket>(kCreateTicketKind, std::move(req),
                                                           CRM_ASYNC(tickets_, CreateTicket), done,
                                                           [&c](kv1::Ticket& r) { c.tickets.push_back(r.name()); });
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

// The services a check asks, with the admin's token.
struct Stubs {
  std::unique_ptr<cv1::CustomerService::Stub> customers;
  std::unique_ptr<ov1::OpportunityService::Stub> opportunities;
  std::unique_ptr<tv1::TaskService::Stub> tasks;
  std::unique_ptr<tv1::AutomationService::Stub> automation;
  std::unique_ptr<kv1::TicketService::Stub> tickets;
  std::string token;
};

// One journalled write other than a customer create (a W line and what followed it).
struct JournalledWrite {
  std::string kind, request;  // the request, serialized
  std::string acked;          // the name acknowledged; empty when no answer was seen
  int refused = 0;            // the code of a definite refusal; 0 when none
};

// What a journalled write creates or changes: for a create, the customer it hangs off (the
// parent its kind is listed under); otherwise the aggregate it changes.
struct WriteTarget {
  bool create = false;
  std::string name;
};

template <typename Req>
absl::StatusOr<Req> Decode(const std::string& bytes) {
  Req r;
  if (!r.ParseFromString(bytes)) return absl::InvalidArgumentError("undecodable request");
  return r;
}

absl::StatusOr<WriteTarget> TargetOf(const JournalledWrite& w) {
  if (w.kind == kUpdateCustomerKind) {
    CRM_ASSIGN_OR_RETURN(auto r, Decode<cv1::UpdateCustomerRequest>(w.request));
    return WriteTarget{false, r.customer().name()};
  }
  if (w.kind == kFollowUpKind) {
    CRM_ASSIGN_OR_RETURN(auto r, Decode<cv1::CreateFollowUpRequest>(w.request));
    return WriteTarget{true, r.parent()};
  }
  if (w.kind == kCreateOpportunityKind) {
    CRM_ASSIGN_OR_RETURN(auto r, Decode<ov1::CreateOpportunityRequest>(w.request));
    return WriteTarget{true, r.opportunity().customer()};
  }
  if (w.kind == kMoveStageKind) {
    CRM_ASSIGN_OR_RETURN(auto r, Decode<ov1::MoveOpportunityStageRequest>(w.request));
    return WriteTarget{false, r.name()};
  }
  if (w.kind == kCreateTaskKind) {
    CRM_ASSIGN_OR_RETURN(auto r, Decode<tv1::CreateTaskRequest>(w.request));
    return WriteTarget{true, r.task().related()};
  }
  if (w.kind == kCompleteTaskKind) {
    CRM_ASSIGN_OR_RETURN(auto r, Decode<tv1::CompleteTaskRequest>(w.request));
    return WriteTarget{false, r.name()};
  }
  if (w.kind == kCreateTicketKind) {
    CRM_ASSIGN_OR_RETURN(auto r, Decode<kv1::CreateTicketRequest>(w.request));
    return WriteTarget{true, r.ticket().customer()};
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown kind ", w.kind));
}

template <typename Stub, typename Req, typename Resp>
grpc::Status ResendAs(Stub* stub, grpc::Status (Stub::*fn)(grpc::ClientContext*, const Req&, Resp*),
                      const std::string& token, const std::string& bytes) {
  auto req = Decode<Req>(bytes);
  if (!req.ok()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "undecodable request");
  Resp resp;
  return Call(stub, fn, token, *req, &resp);
}

// Sends a journalled write again, the same request with the same request id.
grpc::Status Resend(const Stubs& s, const JournalledWrite& w) {
  if (w.kind == kUpdateCustomerKind) {
    return ResendAs(s.customers.get(), &cv1::CustomerService::Stub::UpdateCustomer, s.token, w.request);
  }
  if (w.kind == kFollowUpKind) {
    return ResendAs(s.customers.get(), &cv1::CustomerService::Stub::CreateFollowUp, s.token, w.request);
  }
  if (w.kind == kCreateOpportunityKind) {
    return ResendAs(s.opportunities.get(), &ov1::OpportunityService::Stub::CreateOpportunity, s.token, w.request);
  }
  if (w.kind == kMoveStageKind) {
    return ResendAs(s.opportunities.get(), &ov1::OpportunityService::Stub::MoveOpportunityStage, s.token, w.request);
  }
  if (w.kind == kCreateTaskKind) return ResendAs(s.tasks.get(), &tv1::TaskService::Stub::CreateTask, s.token, w.request);
  if (w.kind == kCompleteTaskKind) {
    return ResendAs(s.tasks.get(), &tv1::TaskService::Stub::CompleteTask, s.token, w.request);
  }
  if (w.kind == kCreateTicketKind) {
    return ResendAs(s.tickets.get(), &kv1::TicketService::Stub::CreateTicket, s.token, w.request);
  }
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "unknown kind");
}

// Reads every page of a List method: `page(token, &next)` asks for one and returns its status.
template <typename Page>
grpc::Status AllPages(Page page) {
  std::string token;
  do {
    std::string next;
    if (grpc::Status s = page(token, &next); !s.ok()) return s;
    token = std::move(next);
  } while (!token.empty());
  return grpc::Status::OK;
}

// The children of kind `kind` under customer `parent`, by the request id the day wrote into
// each (the marker field of its kind): names per request id.
grpc::Status ChildrenByMarker(const Stubs& s, const std::string& kind, const std::string& parent,
                              std::map<std::string, std::vector<std::string>>* out) {
  const std::string filter = absl::StrCat(kind == kCreateTaskKind ? "related" : "customer", " = \"", parent, "\"");
  if (kind == kFollowUpKind) {
    return AllPages([&](const std::string& token, std::string* next) {
      cv1::ListFollowUpsRequest req;
      req.set_parent(parent);
      req.set_page_size(1000);
      req.set_page_token(token);
      cv1::ListFollowUpsResponse r;
      grpc::Status st = Call(s.customers.get(), &cv1::CustomerService::Stub::ListFollowUps, s.token, req, &r);
      for (const auto& f : r.follow_ups()) (*out)[f.next_step()].push_back(f.name());
      *next = r.next_page_token();
      return st;
    });
  }
  if (kind == kCreateOpportunityKind) {
    return AllPages([&](const std::string& token, std::string* next) {
      ov1::ListOpportunitiesRequest req;
      req.set_filter(filter);
      req.set_page_size(1000);
      req.set_page_token(token);
      ov1::ListOpportunitiesResponse r;
      grpc::Status st =
          Call(s.opportunities.get(), &ov1::OpportunityService::Stub::ListOpportunities, s.token, req, &r);
      for (const auto& o : r.opportunities()) (*out)[o.description()].push_back(o.name());
      *next = r.next_page_token();
      return st;
    });
  }
  if (kind == kCreateTaskKind) {
    return AllPages([&](const std::string& token, std::string* next) {
      tv1::ListTasksRequest req;
      req.set_filter(filter);
      req.set_page_size(1000);
      req.set_page_token(token);
      tv1::ListTasksResponse r;
      grpc::Status st = Call(s.tasks.get(), &tv1::TaskService::Stub::ListTasks, s.token, req, &r);
      for (const auto& t : r.tasks()) (*out)[t.description()].push_back(t.name());
      *next = r.next_page_token();
      return st;
    });
  }
  return AllPages([&](const std::string& token, std::string* next) {
    kv1::ListTicketsRequest req;
    req.set_filter(filter);
    req.set_page_size(1000);
    req.set_page_token(token);
    kv1::ListTicketsResponse r;
    grpc::Status st = Call(s.tickets.get(), &kv1::TicketService::Stub::ListTickets, s.token, req, &r);
    for (const auto& t : r.tickets()) {
      const size_t space = t.title().rfind(' ');
      (*out)[space == std::string::npos ? "" : t.title().substr(space + 1)].push_back(t.name());
    }
    *next = r.next_page_token();
    return st;
  });
}

struct LoggedEvent {
  std::string id, type, correlation_id, payload_json;
};

// Every event of aggregate `name` (customers/, opportunities/ or tasks/), oldest first.
grpc::Status EventsOf(const Stubs& s, const std::string& name, std::vector<LoggedEvent>* out) {
  return AllPages([&](const std::string& token, std::string* next) {
    grpc::Status st;
    if (absl::StartsWith(name, "customers/")) {
      cv1::ListCustomerEventsRequest req;
      req.set_parent(name);
      req.set_page_size(100);
      req.set_page_token(token);
      cv1::ListCustomerEventsResponse r;
      st = Call(s.customers.get(), &cv1::CustomerService::Stub::ListCustomerEvents, s.token, req, &r);
      for (const auto& e : r.events()) out->push_back({e.event_id(), e.event_type(), e.correlation_id(), ""});
      *next = r.next_page_token();
    } else if (absl::StartsWith(name, "opportunities/")) {
      ov1::ListEventsRequest req;
      req.set_parent(name);
      req.set_page_size(100);
      req.set_page_token(token);
      ov1::ListEventsResponse r;
      st = Call(s.opportunities.get(), &ov1::OpportunityService::Stub::ListEvents, s.token, req, &r);
      for (const auto& e : r.events()) {
        out->push_back({e.event_id(), e.event_type(), e.correlation_id(), e.payload_json()});
      }
      *next = r.next_page_token();
    } else if (absl::StartsWith(name, "tasks/")) {
      tv1::ListEventsRequest req;
      req.set_parent(name);
      req.set_page_size(100);
      req.set_page_token(token);
      tv1::ListEventsResponse r;
      st = Call(s.tasks.get(), &tv1::TaskService::Stub::ListEvents, s.token, req, &r);
      for (const auto& e : r.events()) {
        out->push_back({e.event_id(), e.event_type(), e.correlation_id(), e.payload_json()});
      }
      *next = r.next_page_token();
    } else {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "not a name this check knows");
    }
    return st;
  });
}

// A shipped rule the day's writes trigger, and how a check knows its causes among the events
// of an aggregate: each cause must be followed by exactly one task of the rule about it.
struct AutomationRule {
  const char* key;         // the rule's default_key
  const char* aggregates;  // the names of the aggregates whose events cause it start so
  const char* cause;       // what a cause is, for problems
  std::function<bool(const LoggedEvent&)> is_cause;
};

// The id of the rule shipped as `default_key`; NOT_FOUND when absent or deleted.
grpc::Status RuleId(const Stubs& s, const std::string& default_key, std::string* id) {
  grpc::Status st = AllPages([&](const std::string& token, std::string* next) {
    tv1::ListRulesRequest req;
    req.set_page_size(100);
    req.set_page_token(token);
    tv1::ListRulesResponse r;
    grpc::Status got = Call(s.automation.get(), &tv1::AutomationService::Stub::ListRules, s.token, req, &r);
    for (const auto& rule : r.rules()) {
      if (rule.default_key() == default_key) *id = rule.name().substr(rule.name().find('/') + 1);
    }
    *next = r.next_page_token();
    return got;
  });
  if (st.ok() && id->empty()) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such rule");
  return st;
}

}  // namespace

absl::StatusOr<Result> RunDay(const DayTargets& targets, const DayOptions& options) {
  if (auto s = SetupRepairTickets(targets.tickets, targets.token); !s.ok()) return s;
  Day day(targets, options);
  if (day.journal_failed(options.journal)) {
    return absl::InvalidArgumentError(absl::StrCat("--journal: cannot open ", options.journal));
  }
  Result r = RunClosedLoop(options.clients, options.duration, options.warmup,
                           [&](int client, std::function<void(const grpc::Status&)> done) { day.Next(client, done); },
                           targets.kernel);
  r.workload = "day";
  std::fprintf(stderr, "day mix: %s\n", day.Mix().c_str());
  return r;
}

absl::StatusOr<DayCheck> CheckDay(const DayTargets& targets, const std::vector<std::string>& journals,
                                  const DayCheckOptions& options) {
  std::map<std::string, int64_t> versions;                       // name -> highest acknowledged
  std::vector<std::pair<std::string, std::string>> follow_ups;   // parent, name
  std::map<int64_t, std::string> intents, created;                // n -> request id; n -> name
  std::map<int64_t, int> refused;                                 // n -> the definite refusal's code
  std::map<std::string, JournalledWrite> writes;                  // request id -> the write
  std::vector<std::string> problems;  // of the journal itself: each is a line that cannot be true
  for (const std::string& path : journals) {
    std::ifstream in(path);
    if (!in) return absl::InvalidArgumentError(absl::StrCat("--journal: cannot read ", path));
    std::string line;
    int lineno = 0;
    // A line the day writes once (one intent, one answer per request) seen again: the journal
    // was tampered with or two days shared request ids, and the check would count one write
    // as two.
    auto again = [&](absl::string_view what) {
      problems.push_back(absl::StrCat(path, ":", lineno, ": ", what, " is journalled twice: ", line));
    };
    // An acknowledgement carrying a request id answers a W line journalled before it.
    auto ack = [&](const std::string& rid, const std::string& name) {
      auto w = writes.find(rid);
      if (w == writes.end()) {
        problems.push_back(absl::StrCat(path, ":", lineno, ": ", name, " acknowledged for request ", rid,
                                        " that was never sent"));
      } else if (!w->second.acked.empty() || w->second.refused != 0) {
        again(absl::StrCat("the answer to request ", rid));
      } else {
        w->second.acked = name;
      }
    };
    while (std::getline(in, line)) {
      ++lineno;
      const std::vector<std::string> f = absl::StrSplit(line, ' ');
      int64_t n = 0, v = 0;
      if (f.size() == 3 && f[0] == "I" && absl::SimpleAtoi(f[1], &n)) {
        if (!intents.emplace(n, f[2]).second) again(absl::StrCat("customer ", n, "'s create"));
      } else if (f.size() == 4 && f[0] == "C" && absl::SimpleAtoi(f[2], &n)) {
        if (!created.emplace(n, f[1]).second) again(absl::StrCat("customer ", n, "'s acknowledgement"));
      } else if ((f.size() == 3 || f.size() == 4) && f[0] == "V" && absl::SimpleAtoi(f[2], &v)) {
        versions[f[1]] = std::max(versions[f[1]], v);
        if (f.size() == 4) ack(f[3], f[1]);
      } else if (f.size() == 3 && f[0] == "R" && absl::SimpleAtoi(f[1], &n) && absl::SimpleAtoi(f[2], &v)) {
        refused[n] = static_cast<int>(v);
      } else if ((f.size() == 3 || f.size() == 4) && f[0] == "F") {
        follow_ups.emplace_back(f[1], f[2]);
        if (f.size() == 4) ack(f[3], f[2]);
      } else if (f.size() == 4 && f[0] == "W") {
        std::string request;
        if (!absl::Base64Unescape(f[3], &request)) {
          return absl::InvalidArgumentError(absl::StrCat(path, ":", lineno, ": not a journal line: ", line));
        }
        if (!writes.emplace(f[1], JournalledWrite{f[2], std::move(request)}).second) {
          again(absl::StrCat("request ", f[1]));
        }
      } else if (f.size() == 3 && f[0] == "X" && absl::SimpleAtoi(f[2], &v) && v != 0) {
        auto w = writes.find(f[1]);
        if (w == writes.end()) {
          problems.push_back(absl::StrCat(path, ":", lineno, ": request ", f[1], " refused but never sent"));
        } else if (!w->second.acked.empty() || w->second.refused != 0) {
          again(absl::StrCat("the answer to request ", f[1]));
        } else {
          w->second.refused = static_cast<int>(v);
        }
      } else {
        return absl::InvalidArgumentError(absl::StrCat(path, ":", lineno, ": not a journal line: ", line));
      }
    }
  }
  // Two creates acknowledged as one customer: one of them was lost.
  std::map<std::string, int64_t> customer_of_name;
  for (const auto& [n, name] : created) {
    if (auto [it, fresh] = customer_of_name.emplace(name, n); !fresh) {
      problems.push_back(absl::StrCat("customers ", it->second, " and ", n, " were both acknowledged as ", name));
    }
  }
  std::map<std::string, WriteTarget> target_of;  // request id -> what it creates or changes
  for (const auto& [rid, w] : writes) {
    auto t = TargetOf(w);
    if (!t.ok()) return absl::InvalidArgumentError(absl::StrCat("journalled request ", rid, ": ", t.status().message()));
    target_of[rid] = *t;
  }

  Stubs stubs{cv1::CustomerService::NewStub(targets.customers),
              ov1::OpportunityService::NewStub(targets.opportunities),
              tv1::TaskService::NewStub(targets.tasks),
              tv1::AutomationService::NewStub(targets.tasks),
              kv1::TicketService::NewStub(targets.tickets),
              targets.token};
  auto* customers = stubs.customers.get();
  auto* opportunities = stubs.opportunities.get();
  auto* tasks = stubs.tasks.get();
  auto* tickets = stubs.tickets.get();
  const std::string& token = targets.token;
  absl::Mutex mu;
  DayCheck check;
  check.problems = std::move(problems);
  auto problem = [&](std::string p) {
    absl::MutexLock l(&mu);
    check.problems.push_back(std::move(p));
  };
  auto run = [](std::vector<std::function<void()>>& work) {
    std::atomic<size_t> next{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 16; ++i) {
      threads.emplace_back([&] {
        for (size_t k; (k = next.fetch_add(1)) < work.size();) work[k]();
      });
    }
    for (auto& t : threads) t.join();
  };

  // First every write whose outcome was never seen goes again with its request id, so that
  // what is counted afterwards (children, events, automation) includes what the re-sends did.
  std::set<std::string> resent;  // request ids
  if (options.resend) {
    std::vector<std::function<void()>> work;
    for (const auto& [rid, w] : writes) {
      if (!w.acked.empty() || w.refused != 0) continue;
      resent.insert(rid);
      work.push_back([&, rid = rid, &w = w] {
        const grpc::Status s = Resend(stubs, w);
        // A change sent again may find its aggregate moved on (the day went on after the
        // crash): a definite refusal says it did nothing, which the counts below confirm.
        if (!s.ok() && (target_of.at(rid).create || !IsDefiniteRefusal(s.error_code()))) {
          problem(absl::StrCat(w.kind, " ", rid, " sent again with its request_id: ", s.error_message()));
        }
      });
    }
    run(work);
  }

  std::vector<std::function<void()>> work;
  for (const auto& [name, acked] : versions) {
    work.push_back([&, name = name, acked = acked] {
      grpc::Status s;
      std::string etag;
      if (absl::StartsWith(name, "customers/")) {
        s = GetEtag(customers, &cv1::CustomerService::Stub::GetCustomer, token, name, &etag);
      } else if (absl::StartsWith(name, "opportunities/")) {
        s = GetEtag(opportunities, &ov1::OpportunityService::Stub::GetOpportunity, token, name, &etag);
      } else if (absl::StartsWith(name, "tasks/")) {
        s = GetEtag(tasks, &tv1::TaskService::Stub::GetTask, token, name, &etag);
      } else if (absl::StartsWith(name, "tickets/")) {
        s = GetEtag(tickets, &kv1::TicketService::Stub::GetTicket, token, name, &etag);
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
      std::map<std::string, std::vector<std::string>> listed;
      if (grpc::Status s = ChildrenByMarker(stubs, kFollowUpKind, parent, &listed); !s.ok()) {
        return problem(absl::StrCat("follow-ups of ", parent, ": ", s.error_message()));
      }
      std::set<std::string> all;
      for (const auto& [marker, ns] : listed) all.insert(ns.begin(), ns.end());
      for (const auto& n : names) {
        if (!all.contains(n)) problem(absl::StrCat("follow-up ", n, " was acknowledged and is lost"));
      }
    });
  }

  // Creates other than customers': under their customer, each request id's marker on exactly
  // one child when acknowledged or sent again, on none when refused. A second child with the
  // marker is a create that ran twice (a retry without its request id, or a request id not
  // honoured).
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> creates_under;  // (kind, parent) -> ids
  for (const auto& [rid, w] : writes) {
    if (!target_of[rid].create) continue;
    if (w.acked.empty() && w.refused == 0 && !resent.contains(rid)) continue;  // outcome unknown, not sent again
    creates_under[{w.kind, target_of[rid].name}].push_back(rid);
  }
  for (const auto& [key, rids] : creates_under) {
    work.push_back([&, kind = key.first, parent = key.second, rids = rids] {
      std::map<std::string, std::vector<std::string>> listed;
      if (grpc::Status s = ChildrenByMarker(stubs, kind, parent, &listed); !s.ok()) {
        return problem(absl::StrCat(kind, " under ", parent, ": ", s.error_message()));
      }
      for (const std::string& rid : rids) {
        const JournalledWrite& w = writes.at(rid);
        const std::vector<std::string>& got = listed[rid];
        const std::string names = absl::StrJoin(got, ", ");
        if (w.refused != 0) {
          if (!got.empty()) {
            problem(absl::StrCat(kind, " ", rid, " was refused with gRPC code ", w.refused,
                                 " (nothing written), yet it exists: ", names));
          }
        } else if (got.size() != 1 || (!w.acked.empty() && got[0] != w.acked)) {
          problem(absl::StrCat(kind, " ", rid, " (", w.acked.empty() ? "sent again" : w.acked, ") exists ",
                               got.size(), " times under ", parent, ": ", names));
        }
      }
    });
  }

  // Changes and automation, per aggregate from its events: a change's request id (the
  // events' correlation id) on at most one command's events, and each cause of a shipped
  // rule the day triggers (an opportunity entering the proposal stage, a follow-up with a
  // next follow-up time) followed by exactly one task of that rule. Automation runs behind
  // the log, so a missing task is waited for until the deadline; a second task for one cause
  // is final.
  std::map<std::string, std::vector<std::string>> changes_of;  // aggregate -> request ids of changes
  for (const auto& [rid, w] : writes) {
    if (!target_of[rid].create && (!w.acked.empty() || w.refused != 0 || resent.contains(rid))) {
      changes_of[target_of[rid].name].push_back(rid);
    }
  }
  for (const auto& [name, acked] : versions) {
    if (absl::StartsWith(name, "opportunities/")) changes_of[name];
  }
  for (const auto& [rid, w] : writes) {
    if (w.kind == kFollowUpKind) changes_of[target_of[rid].name];
  }
  const std::vector<AutomationRule> rules = {
      {"default.proposal_follow_up", "opportunities/", "move to proposal",
       [](const LoggedEvent& e) {
         return absl::EndsWith(e.type, ".OpportunityStageChanged") &&
                absl::StrContains(e.payload_json, "\"to_stage_id\":\"proposal\"");
       }},
      // The day's follow-ups (by their request id: a completed task's note is a follow-up
      // too, without a next time) each carry a next follow-up time.
      {"default.next_follow_up", "customers/", "follow-up with a next follow-up time",
       [&writes](const LoggedEvent& e) {
         const auto w = writes.find(e.correlation_id);
         return absl::EndsWith(e.type, ".FollowUpRecorded") && w != writes.end() && w->second.kind == kFollowUpKind;
       }},
  };
  std::vector<std::string> rule_ids(rules.size());
  for (size_t i = 0; i < rules.size(); ++i) {
    if (grpc::Status s = RuleId(stubs, rules[i].key, &rule_ids[i]); !s.ok()) {
      problem(absl::StrCat("rule ", rules[i].key, ": ", s.error_message(), ": automation cannot be checked"));
    }
  }
  const absl::Time settle_by = absl::Now() + options.settle;
  std::atomic<int64_t> causes{0}, changes{0};
  for (const auto& [name, rids] : changes_of) {
    work.push_back([&, name = name, rids = rids] {
      std::vector<LoggedEvent> events;
      if (grpc::Status s = EventsOf(stubs, name, &events); !s.ok()) {
        return problem(absl::StrCat("events of ", name, ": ", s.error_message()));
      }
      std::map<std::string, std::set<std::string>> types_of;  // correlation id -> event types
      std::map<std::string, int> count_of;
      for (const LoggedEvent& e : events) {
        ++count_of[e.correlation_id];
        types_of[e.correlation_id].insert(e.type);
      }
      for (const std::string& rid : rids) {
        changes.fetch_add(1, std::memory_order_relaxed);
        // Each of the day's changes records one event: more under one request id is the
        // change applied again; any after a definite refusal, a refusal that wrote.
        const JournalledWrite& w = writes.at(rid);
        if (w.refused != 0 && count_of[rid] > 0) {
          problem(absl::StrCat(w.kind, " ", rid, " on ", name, " was refused with gRPC code ", w.refused,
                               " (nothing written), yet it has ", count_of[rid], " events"));
        } else if (count_of[rid] > 1) {
          problem(absl::StrCat(w.kind, " ", rid, " on ", name, " was applied ", count_of[rid], " times (",
                               absl::StrJoin(types_of[rid], ", "), ")"));
        }
      }
      std::map<std::string, std::set<std::string>> wanted;  // rule id -> its causes here (event ids)
      std::map<std::string, const AutomationRule*> rule_of;
      for (size_t i = 0; i < rules.size(); ++i) {
        if (rule_ids[i].empty() || !absl::StartsWith(name, rules[i].aggregates)) continue;
        rule_of[rule_ids[i]] = &rules[i];
        auto& w = wanted[rule_ids[i]];
        for (const LoggedEvent& e : events) {
          if (rules[i].is_cause(e)) w.insert(e.id);
        }
      }
      if (wanted.empty()) return;
      for (;;) {
        std::map<std::string, std::map<std::string, std::vector<std::string>>> fired;  // rule id -> cause -> tasks
        const grpc::Status s = AllPages([&](const std::string& page, std::string* next) {
          tv1::ListTasksRequest req;
          req.set_filter(absl::StrCat("related = \"", name, "\""));
          req.set_page_size(1000);
          req.set_page_token(page);
          tv1::ListTasksResponse r;
          grpc::Status got = Call(tasks, &tv1::TaskService::Stub::ListTasks, token, req, &r);
          for (const auto& t : r.tasks()) {
            if (rule_of.contains(t.origin().rule_id())) {
              fired[t.origin().rule_id()][t.origin().cause_event_id()].push_back(t.name());
            }
          }
          *next = r.next_page_token();
          return got;
        });
        if (!s.ok()) return problem(absl::StrCat("tasks of ", name, ": ", s.error_message()));
        std::map<std::string, std::vector<std::string>> missing;  // rule id -> causes without a task
        for (const auto& [id, want] : wanted) {
          for (const std::string& cause : want) {
            if (!fired[id].contains(cause)) missing[id].push_back(cause);
          }
        }
        // While writes cannot succeed (a full disk), automation cannot write its tasks either:
        // then a missing one is not waited for.
        if (!missing.empty() && options.resend && absl::Now() < settle_by) {
          absl::SleepFor(absl::Milliseconds(200));  // automation follows the log: poll until the deadline
          continue;
        }
        for (const auto& [id, want] : wanted) {
          const AutomationRule& rule = *rule_of.at(id);
          causes.fetch_add(static_cast<int64_t>(want.size() - missing[id].size()), std::memory_order_relaxed);
          for (const auto& [cause, names] : fired[id]) {
            if (!want.contains(cause)) {
              problem(absl::StrCat(rule.key, " made ", absl::StrJoin(names, ", "), " about ", name, " for ", cause,
                                   ", not a ", rule.cause, " of it"));
            } else if (names.size() > 1) {
              problem(absl::StrCat(rule.key, " fired ", names.size(), " times for ", name, "'s ", rule.cause, " ",
                                   cause, ": ", absl::StrJoin(names, ", ")));
            }
          }
          if (!missing[id].empty() && options.resend) {
            problem(absl::StrCat(rule.key, " did not fire within ", absl::FormatDuration(options.settle), " for ", name,
                                 "'s ", rule.cause, " (events ", absl::StrJoin(missing[id], ", "), ")"));
          }
        }
        return;
      }
    });
  }

  int64_t customers_resent = 0;
  for (const auto& [n, request_id] : intents) {
    const auto it = created.find(n);
    const std::string acked = it == created.end() ? "" : it->second;
    const auto no = refused.find(n);
    const bool definite = acked.empty() && no != refused.end();
    if (acked.empty() && !options.resend && !definite) continue;
    if (acked.empty() && !definite) ++customers_resent;
    work.push_back([&, n = n, request_id = request_id, acked, definite,
                    code = definite ? no->second : 0] {
      // The customers with customer n's phone, by name; nullopt (a problem told) on failure.
      auto with_phone = [&]() -> std::optional<std::vector<std::string>> {
        cv1::FindDuplicatesRequest req;
        req.set_phone(Phone(n));
        req.set_max_results(10);
        cv1::FindDuplicatesResponse r;
        const grpc::Status s = Call(customers, &cv1::CustomerService::Stub::FindDuplicates, token, req, &r);
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
        const grpc::Status s = Call(customers, &cv1::CustomerService::Stub::CreateCustomer, token, req, &r);
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
  run(work);

  int64_t other_creates_resent = 0;
  for (const std::string& rid : resent) other_creates_resent += target_of[rid].create ? 1 : 0;
  check.versions_checked = static_cast<int64_t>(versions.size());
  check.follow_ups_checked = static_cast<int64_t>(follow_ups.size());
  check.creates_checked = static_cast<int64_t>(intents.size());
  check.creates_resent = customers_resent + other_creates_resent;
  check.writes_checked = static_cast<int64_t>(writes.size());
  check.changes_resent = static_cast<int64_t>(resent.size()) - other_creates_resent;
  check.changes_checked = changes.load();
  check.causes_checked = causes.load();
  return check;
}

}  // namespace crm::bench
