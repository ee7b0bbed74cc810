// The tickets engine end to end on an embedded log, beside a real customers engine whose topic
// it follows, under a manual clock: given/when/then.
#include "services/tickets/ticket_engine.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "libs/common/proto_time.h"
#include "libs/common/list_page_testing.h"
#include "libs/common/status_testing.h"
#include "libs/common/caller_testing.h"
#include "libs/projection/rebuild.h"
#include "libs/projection/rows.h"
#include "services/customers/customer_engine.h"
#include "services/tickets/domain_testing.h"
#include "libs/testing/engine_harness.h"

namespace crm::tickets {
namespace {

using crm::testing::AbortedInfo;
using crm::testing::Call;
using crm::testing::FieldOf;
using crm::testing::FieldsOf;

using crm::testing::kAdmin;
using crm::testing::kManager;
using crm::testing::kRep;
using crm::testing::kRep2;
using crm::testing::Service;
// Local (UTC+8) time of March 2026.
absl::Time At(int day, int hour, int minute = 0) {
  return absl::FromCivil(absl::CivilMinute(2026, 3, day, hour, minute), absl::FixedTimeZone(8 * 3600));
}

v1::FieldValue Text(const std::string& s) {
  v1::FieldValue v;
  v.set_text(s);
  return v;
}
v1::FieldValue Choice(const std::string& s) {
  v1::FieldValue v;
  v.set_choice(s);
  return v;
}

class TicketEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto h = crm::testing::EngineHarness::Create({.name = "ticket-engine", .start = At(2, 9)});
    ASSERT_TRUE(h.ok()) << h.status();
    h_ = *std::move(h);
    const absl::Status s = h_->Open(Service::kCustomers);
    ASSERT_TRUE(s.ok()) << s;
    OpenTickets();
  }
  void OpenTickets(const std::string& proj = "") {
    const absl::Status s = h_->Open(Service::kTickets, proj);
    ASSERT_TRUE(s.ok()) << s;
  }
  TicketEngine* engine() const { return h_->tickets(); }
  customers::CustomerEngine* customers() const { return h_->customers(); }
  projection::ProjectionDb* db() const { return h_->db(Service::kTickets); }
  ManualClock& clock() const { return h_->clock(); }

  v1::TicketType Type(const v1::TicketTypeDefinition& d = testing::RepairDefinition(), const std::string& id = "repair") {
    v1::CreateTicketTypeRequest req;
    req.set_ticket_type_id(id);
    *req.mutable_definition() = d;
    auto t = Call(engine(), &TicketEngine::CreateTicketType, kAdmin, req);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *t : v1::TicketType();
  }
  static std::map<std::string, v1::FieldValue> GoodValues() {
    return {{"serial", Text("AB123456")}, {"description", Text("屏幕不亮，无法开机")}, {"kind", Choice("hardware")}};
  }
  absl::StatusOr<v1::Ticket> Create(const Caller& c, std::map<std::string, v1::FieldValue> values = GoodValues(),
                                    const std::string& customer = "",
                                    v1::TicketPriority priority = v1::TICKET_PRIORITY_NORMAL) {
    v1::CreateTicketRequest req;
    req.mutable_ticket()->set_ticket_type("ticketTypes/repair");
    req.mutable_ticket()->set_title("笔记本无法开机");
    req.mutable_ticket()->set_customer(customer);
    req.mutable_ticket()->set_priority(priority);
    for (auto& [k, v] : values) (*req.mutable_ticket()->mutable_values())[k] = v;
    return Call(engine(), &TicketEngine::CreateTicket, c, req);
  }
  absl::StatusOr<v1::Ticket> Move(const Caller& c, const v1::Ticket& t, const std::string& transition) {
    v1::TransitionTicketRequest req;
    req.set_name(t.name());
    req.set_transition_id(transition);
    return Call(engine(), &TicketEngine::TransitionTicket, c, req);
  }
  absl::StatusOr<v1::Ticket> Set(const Caller& c, const v1::Ticket& t, const std::string& key, v1::FieldValue v) {
    v1::UpdateTicketRequest req;
    req.set_name(t.name());
    (*req.mutable_values())[key] = std::move(v);
    return Call(engine(), &TicketEngine::UpdateTicket, c, req);
  }
  absl::StatusOr<v1::Ticket> Comment(const Caller& c, const v1::Ticket& t, bool internal) {
    v1::AddCommentRequest req;
    req.set_name(t.name());
    req.set_body(internal ? "内部备注：备件已申请" : "您好，工程师已安排上门");
    req.set_internal(internal);
    return Call(engine(), &TicketEngine::AddComment, c, req);
  }
  v1::Ticket Get(const v1::Ticket& t) {
    v1::GetTicketRequest req;
    req.set_name(t.name());
    auto got = engine()->GetTicket(kAdmin, req, absl::Now() + absl::Seconds(5));
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? *got : v1::Ticket();
  }
  // The ticket driven through the flow to closed by an admin at the clock's time.
  void Close(const v1::Ticket& t) {
    if (Get(t).state() == "new") {
      ASSERT_TRUE(Move(kAdmin, t, "start").ok());
    }
    ASSERT_TRUE(Set(kAdmin, t, "resolution", Text("更换主板后正常")).ok());
    ASSERT_TRUE(Move(kAdmin, t, "resolve").ok());
    ASSERT_TRUE(Move(kAdmin, t, "close").ok());
  }
  void Calendar(const v1::BusinessCalendar& cal) {
    v1::SetCalendarRequest req;
    req.mutable_calendar()->set_name("calendars/cn");
    req.mutable_calendar()->set_display_name("中国大陆工作日");
    *req.mutable_calendar()->mutable_calendar() = cal;
    auto c = Call(engine(), &TicketEngine::SetCalendar, kAdmin, req);
    ASSERT_TRUE(c.ok()) << c.status();
  }
  absl::StatusOr<v1::SlaPolicyResource> Policy(int64_t first_response_minutes, int64_t resolution_minutes,
                                               const std::string& calendar = "",
                                               v1::TicketPriority p = v1::TICKET_PRIORITY_UNSPECIFIED) {
    v1::SetSlaPolicyRequest req;
    auto* pol = req.mutable_policy();
    pol->set_type_id("repair");
    pol->set_priority(p);
    pol->set_first_response_minutes(first_response_minutes);
    pol->set_resolution_minutes(resolution_minutes);
    pol->set_warning_percent(80);
    pol->set_calendar(calendar);
    return Call(engine(), &TicketEngine::SetSlaPolicy, kAdmin, req);
  }
  std::vector<std::string> EventTypes(const v1::Ticket& t) {
    v1::ListEventsRequest req;
    req.set_parent(t.name());
    req.set_page_size(1000);
    auto got = engine()->ListEvents(kAdmin, req, absl::Now() + absl::Seconds(5));
    EXPECT_TRUE(got.ok()) << got.status();
    std::vector<std::string> out;
    if (got.ok()) {
      for (const auto& e : got->events()) out.push_back(e.event_type().substr(e.event_type().rfind('.') + 1));
    }
    return out;
  }
  // Version 2 of the repair type: version 1 with another description.
  absl::StatusOr<v1::TicketType> PublishSecondVersion() {
    v1::PublishTicketTypeVersionRequest pub;
    pub.set_name("ticketTypes/repair");
    *pub.mutable_definition() = testing::RepairDefinition();
    pub.mutable_definition()->set_description("第二版");
    return Call(engine(), &TicketEngine::PublishTicketTypeVersion, kAdmin, pub);
  }
  std::string LiveChecksum() { return *h_->Checksum(Service::kTickets); }
  std::string RebuiltChecksum() {
    auto rebuilt = h_->RebuiltChecksum(Service::kTickets);
    EXPECT_TRUE(rebuilt.ok()) << rebuilt.status();
    return rebuilt.ok() ? *rebuilt : "";
  }
  // Waits until the tickets projection applied everything the customers topic holds.
  void CatchUp() {
    absl::Notification n;
    projection::AfterCaughtUp(h_->log(), *db(), {"crm.customers.events.v1"}, absl::Now() + absl::Seconds(10),
                              [&](absl::Status) { n.Notify(); });
    n.WaitForNotification();
  }

  std::unique_ptr<crm::testing::EngineHarness> h_;
};

TEST_F(TicketEngineTest, TicketsAreCheckedAgainstTheirFormAndMoveOnlyAlongTheWorkflow) {
  Type();
  // Every bad value is named at once.
  auto bad = Create(kRep, {{"serial", Text("12")}, {"kind", Choice("firmware")}, {"photo", Text("ftp://x")}});
  ASSERT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<std::string> named = FieldsOf(bad.status());
  std::sort(named.begin(), named.end());
  EXPECT_EQ(named, (std::vector<std::string>{"ticket.values.description", "ticket.values.kind", "ticket.values.photo",
                                             "ticket.values.serial"}));
  v1::CreateTicketRequest no_type;
  no_type.mutable_ticket()->set_ticket_type("ticketTypes/nope");
  EXPECT_EQ(FieldOf(Call(engine(), &TicketEngine::CreateTicket, kRep, no_type).status()), "ticket.ticket_type");

  auto t = Create(kRep);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->state(), "new");
  EXPECT_EQ(t->state_name(), "新建");
  EXPECT_EQ(t->type_version(), 1);
  EXPECT_EQ(FieldOf(Move(kRep, *t, "resolve").status()), "transition");  // not from "new"
  ASSERT_TRUE(Move(kRep, *t, "start").ok());
  auto unresolved = Move(kRep, *t, "resolve");
  EXPECT_EQ(unresolved.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(FieldOf(unresolved.status()), "values.resolution");
  ASSERT_TRUE(Set(kRep, *t, "resolution", Text("更换主板")).ok());
  ASSERT_TRUE(Move(kRep, *t, "resolve").ok());
  EXPECT_EQ(Move(kRep, *t, "close").status().code(), absl::StatusCode::kPermissionDenied);  // managers close
  EXPECT_EQ(Move(kRep2, *t, "reopen").status().code(), absl::StatusCode::kPermissionDenied);  // not theirs
  auto closed = Move(kManager, *t, "close");
  ASSERT_TRUE(closed.ok()) << closed.status();
  EXPECT_TRUE(closed->closed());
  EXPECT_EQ(closed->state_name(), "已关闭");
  EXPECT_EQ(Set(kManager, *t, "resolution", Text("x")).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(EventTypes(*t), (std::vector<std::string>{"TicketCreated", "TicketTransitioned", "TicketValuesChanged",
                                                      "TicketTransitioned", "TicketTransitioned"}));

  // A new version applies to new tickets; the old ticket keeps its own.
  v1::PublishTicketTypeVersionRequest pub;
  pub.set_name("ticketTypes/repair");
  *pub.mutable_definition() = testing::RepairDefinition();
  pub.mutable_definition()->set_description("第二版");
  ASSERT_TRUE(Call(engine(), &TicketEngine::PublishTicketTypeVersion, kAdmin, pub).ok());
  EXPECT_EQ(Create(kRep)->type_version(), 2);
  EXPECT_EQ(Get(*t).type_version(), 1);
}

TEST_F(TicketEngineTest, PagesAreNewestFirstForEveryRoleAcrossAssigneesAndCreators) {
  Type();
  std::vector<std::string> names;
  for (int i = 0; i < 12; ++i) {
    auto t = Create(i % 3 == 0 ? kRep : kRep2);
    ASSERT_TRUE(t.ok()) << t.status();
    names.push_back(t->name());
    if (i % 4 == 1) {  // u1 is assigned some of u2's tickets: they come once in u1's list
      v1::AssignTicketRequest assign;
      assign.set_name(t->name());
      assign.set_assignee_id("u1");
      ASSERT_TRUE(Call(engine(), &TicketEngine::AssignTicket, kManager, assign).ok());
    }
    if (i % 2) clock().Advance(absl::Seconds(1));
  }
  for (const Caller& who : {kAdmin, kManager, kRep, kRep2}) {
    std::vector<std::pair<std::string, std::string>> want;  // (create time key, id), name
    for (const auto& n : names) {
      v1::GetTicketRequest g;
      g.set_name(n);
      auto t = engine()->GetTicket(who, g, absl::Now() + absl::Seconds(5));
      if (t.ok()) want.push_back({absl::StrCat(projection::TimeKey(FromProto(t->create_time())), n.substr(8)), n});
    }
    std::sort(want.rbegin(), want.rend());
    std::vector<std::string> want_names;
    for (auto& w : want) want_names.push_back(w.second);
    for (int size : {1, 4, 1000}) {
      v1::ListTicketsRequest req;
      req.set_page_size(size);
      const std::vector<std::string> got = crm::testing::PageThrough<v1::ListTicketsRequest, v1::ListTicketsResponse>(
          req, [&](const v1::ListTicketsRequest& r) { return engine()->ListTickets(who, r, absl::Now() + absl::Seconds(5)); },
          [](const v1::ListTicketsResponse& r) {
            std::vector<std::string> n;
            for (const auto& t : r.tickets()) n.push_back(t.name());
            return n;
          },
          static_cast<int64_t>(want.size()));
      EXPECT_EQ(got, want_names) << who.user_id << " size " << size;
    }
  }
}

TEST_F(TicketEngineTest, AssignmentCommentsAndVisibility) {
  Type();
  auto t = Create(kRep);
  ASSERT_TRUE(t.ok());
  v1::GetTicketRequest get;
  get.set_name(t->name());
  EXPECT_EQ(engine()->GetTicket(kRep2, get, absl::Now() + absl::Seconds(5)).status().code(),
            absl::StatusCode::kPermissionDenied);
  v1::AssignTicketRequest assign;
  assign.set_name(t->name());
  assign.set_assignee_id("u2");
  auto a = Call(engine(), &TicketEngine::AssignTicket, kManager, assign);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(engine()->GetTicket(kRep2, get, absl::Now() + absl::Seconds(5)).ok());
  ASSERT_TRUE(Comment(kRep2, *t, /*internal=*/true).ok());
  auto c = Comment(kRep2, *t, /*internal=*/false);
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->comments_size(), 2);
  EXPECT_TRUE(c->comments(0).internal());
  EXPECT_EQ(c->comments(1).author_id(), "u2");
  v1::ListTicketsRequest list;
  list.set_filter("assignee_id = \"u2\"");
  EXPECT_EQ(engine()->ListTickets(kManager, list, absl::Now() + absl::Seconds(5))->total_size(), 1);
  list.set_filter("");
  EXPECT_EQ(engine()->ListTickets(kRep2, list, absl::Now() + absl::Seconds(5))->total_size(), 1);
  list.set_filter("priority = \"SOMETIMES\"");
  EXPECT_EQ(FieldOf(engine()->ListTickets(kRep2, list, absl::Now() + absl::Seconds(5)).status()), "filter");
}

// Office hours Mon-Fri 09:00-12:00 and 13:30-18:00; Monday 2026-03-09 is a holiday. A ticket
// opened Friday 17:00 with a 2-hour first response and a 16-hour resolution target.
TEST_F(TicketEngineTest, SlaClocksRunOnBusinessTimeAcrossNightsWeekendsHolidaysAndPauses) {
  Type();
  v1::BusinessCalendar cal = testing::OfficeHours();
  cal.add_holidays("2026-03-09");
  Calendar(cal);
  ASSERT_TRUE(Policy(120, 16 * 60, "calendars/cn").ok());
  clock().Set(At(6, 17));
  auto t = Create(kRep);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->sla().policy(), "ticketTypes/repair/slaPolicies/default");
  // 1 hour on Friday, none over the weekend and the holiday, then 1 hour on Tuesday.
  EXPECT_EQ(FromProto(t->sla().first_response().due_time()), At(10, 10));

  auto run = engine()->RunScheduler(At(6, 23));
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->warnings + run->breaches, 0);
  clock().Set(At(10, 9, 40));
  run = engine()->RunScheduler(clock().Now());  // 80% of 2 hours: Tuesday 09:36
  EXPECT_EQ(run->warnings, 1);
  EXPECT_EQ(engine()->RunScheduler(clock().Now())->warnings, 0);  // once
  clock().Set(At(10, 10, 5));
  run = engine()->RunScheduler(clock().Now());
  EXPECT_EQ(run->breaches, 1);
  EXPECT_EQ(EventTypes(*t), (std::vector<std::string>{"TicketCreated", "SlaWarning", "SlaBreached"}));
  v1::ListEventsRequest events;
  events.set_parent(t->name());
  auto ev = engine()->ListEvents(kAdmin, events, absl::Now() + absl::Seconds(5));
  EXPECT_EQ(FromProto(ev->events(1).occurred_at()), At(10, 9, 36));
  EXPECT_EQ(FromProto(ev->events(2).occurred_at()), At(10, 10));

  // Answered at 10:30, waiting for the customer (pausing) from 11:00 until Wednesday 17:00.
  clock().Set(At(10, 10, 30));
  ASSERT_TRUE(Comment(kRep, *t, false).ok());
  ASSERT_TRUE(Move(kRep, *t, "start").ok());
  clock().Set(At(10, 11));
  ASSERT_TRUE(Move(kRep, *t, "ask").ok());
  clock().Set(At(11, 16));
  v1::Ticket waiting = Get(*t);
  EXPECT_TRUE(waiting.sla().resolution().paused());
  EXPECT_EQ(waiting.sla().resolution().elapsed_seconds(), 3 * 3600);  // Fri 1 h + Tue 2 h
  EXPECT_TRUE(waiting.sla().first_response().breached());
  clock().Set(At(11, 17));
  ASSERT_TRUE(Move(kRep, *t, "answered").ok());
  // 13 hours left: Wed 1 h, Thu 7.5 h, Fri 3 h + 1.5 h → Friday 03-13 15:00.
  EXPECT_EQ(FromProto(Get(*t).sla().resolution().due_time()), At(13, 15));
  clock().Set(At(13, 12, 30));  // 80% of 16 h = 12.8 h: Friday 10:18
  run = engine()->RunScheduler(clock().Now());
  EXPECT_EQ(run->warnings, 1);
  clock().Set(At(13, 14, 59));
  EXPECT_EQ(engine()->RunScheduler(clock().Now())->breaches, 0);
  clock().Set(At(13, 15));
  EXPECT_EQ(engine()->RunScheduler(clock().Now())->breaches, 1);
  v1::ListTicketsRequest list;
  list.set_filter("sla_breached = true");
  EXPECT_EQ(engine()->ListTickets(kAdmin, list, absl::Now() + absl::Seconds(5))->total_size(), 1);

  // The projection equals a fresh rebuild, and a restart records nothing again.
  EXPECT_EQ(LiveChecksum(), RebuiltChecksum());
  OpenTickets();
  EXPECT_EQ(engine()->RunScheduler(clock().Now())->breaches + engine()->RunScheduler(clock().Now())->warnings, 0);
}

// Three tickets closed after 2, 6 and 10 hours around the clock under an 8-hour resolution
// policy: what if the target had been 4 hours?
TEST_F(TicketEngineTest, EvaluateSlaRecomputesAPastPeriodUnderAnotherPolicy) {
  Type();
  ASSERT_TRUE(Policy(60, 8 * 60).ok());
  std::vector<v1::Ticket> made;
  for (int hours : {2, 6, 10}) {
    clock().Set(At(2, 8));
    auto t = Create(kRep);
    ASSERT_TRUE(t.ok());
    made.push_back(*t);
    clock().Set(At(2, 8 + hours));
    Close(*t);
  }
  clock().Set(At(20, 9));
  ASSERT_TRUE(Create(kRep).ok());  // outside the period
  v1::EvaluateSlaRequest req;
  req.set_ticket_type("ticketTypes/repair");
  *req.mutable_start_time() = ToProto(At(1, 0));
  *req.mutable_end_time() = ToProto(At(3, 0));
  req.mutable_what_if()->set_resolution_minutes(4 * 60);
  req.set_include_tickets(true);
  auto r = engine()->EvaluateSla(kManager, req, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->tickets(), 3);
  EXPECT_EQ(r->actual_resolution().met(), 2);
  EXPECT_EQ(r->actual_resolution().breached(), 1);
  EXPECT_NEAR(r->actual_resolution().compliance_percent(), 66.67, 0.01);
  EXPECT_EQ(r->what_if_resolution().met(), 1);
  EXPECT_EQ(r->what_if_resolution().breached(), 2);
  EXPECT_EQ(r->what_if_resolution().median_elapsed_seconds(), 6 * 3600);
  EXPECT_EQ(r->what_if_first_response().no_target(), 3);
  // Closing answers the customer: 2, 6, 10 hours against a 1-hour first-response target.
  EXPECT_EQ(r->actual_first_response().breached(), 3);
  ASSERT_EQ(r->details_size(), 3);
  for (const auto& d : r->details()) {  // created at one moment: in id order
    const bool ten_hours = d.ticket() == made[2].name();
    EXPECT_EQ(d.actual().resolution().breached(), ten_hours) << d.ticket();
    EXPECT_EQ(d.what_if().resolution().breached(), d.ticket() != made[0].name()) << d.ticket();
  }

  // As of a moment before the last closed, it was still running.
  *req.mutable_as_of() = ToProto(At(2, 17));
  r = engine()->EvaluateSla(kManager, req, absl::Now() + absl::Seconds(5));
  EXPECT_EQ(r->actual_resolution().met(), 2);
  EXPECT_EQ(r->actual_resolution().breached(), 1);  // 9 h elapsed > 8 h, not closed yet
  EXPECT_EQ(r->what_if_resolution().breached(), 2);

  req.clear_end_time();
  EXPECT_EQ(FieldOf(engine()->EvaluateSla(kManager, req, absl::Now() + absl::Seconds(5)).status()), "end_time");
  *req.mutable_end_time() = ToProto(At(3, 0));
  req.mutable_what_if()->set_warning_percent(120);
  EXPECT_EQ(FieldOf(engine()->EvaluateSla(kManager, req, absl::Now() + absl::Seconds(5)).status()),
            "what_if.warning_percent");
}

TEST_F(TicketEngineTest, PoliciesAreCheckedAndResolvePerPriority) {
  Type();
  EXPECT_EQ(FieldOf(Policy(0, 0).status()), "policy.resolution_minutes");
  EXPECT_EQ(FieldOf(Policy(60, 60, "calendars/none").status()), "policy.calendar");
  ASSERT_TRUE(Policy(60, 600).ok());
  ASSERT_TRUE(Policy(15, 120, "", v1::TICKET_PRIORITY_URGENT).ok());
  auto urgent = Create(kRep, GoodValues(), "", v1::TICKET_PRIORITY_URGENT);
  auto normal = Create(kRep);
  EXPECT_EQ(urgent->sla().policy(), "ticketTypes/repair/slaPolicies/urgent");
  EXPECT_EQ(urgent->sla().resolution().target_seconds(), 7200);
  EXPECT_EQ(normal->sla().policy(), "ticketTypes/repair/slaPolicies/default");
  v1::ListSlaPoliciesRequest list;
  list.set_parent("ticketTypes/repair");
  EXPECT_EQ(engine()->ListSlaPolicies(kRep, list, absl::Now() + absl::Seconds(5))->policies_size(), 2);
  v1::DeleteSlaPolicyRequest del;
  del.set_name("ticketTypes/repair/slaPolicies/urgent");
  ASSERT_TRUE(Call(engine(), &TicketEngine::DeleteSlaPolicy, kAdmin, del).ok());
  EXPECT_EQ(Get(*urgent).sla().policy(), "ticketTypes/repair/slaPolicies/default");
}

// ListTicketTypes, GetTicketType and ArchiveTicketType through the engine the gRPC service
// calls (ArchiveTicketType had domain tests only, the reads none).
TEST_F(TicketEngineTest, TicketTypesAreReadListedAndArchived) {
  const auto deadline = [] { return absl::Now() + absl::Seconds(5); };
  v1::TicketType repair = Type();
  v1::TicketType install = Type(testing::RepairDefinition(), "install");
  ASSERT_EQ(install.name(), "ticketTypes/install");

  v1::GetTicketTypeRequest get;
  get.set_name("ticketTypes/repair");
  auto got = engine()->GetTicketType(kRep, get, deadline());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->current_version(), 1);
  EXPECT_EQ(got->definition().SerializeAsString(), repair.definition().SerializeAsString());
  EXPECT_FALSE(got->archived());
  get.set_name("ticketTypes/nope");
  EXPECT_EQ(engine()->GetTicketType(kRep, get, deadline()).status().code(), absl::StatusCode::kNotFound);
  get.set_name("tickets/repair");
  EXPECT_EQ(FieldOf(engine()->GetTicketType(kRep, get, deadline()).status()), "name");

  v1::ListTicketTypesRequest list;
  list.set_page_size(1);
  auto page = engine()->ListTicketTypes(kRep, list, deadline());
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->ticket_types_size(), 1);
  ASSERT_FALSE(page->next_page_token().empty());
  list.set_page_token(page->next_page_token());
  auto rest = engine()->ListTicketTypes(kRep, list, deadline());
  ASSERT_TRUE(rest.ok()) << rest.status();
  ASSERT_EQ(rest->ticket_types_size(), 1);
  EXPECT_TRUE(rest->next_page_token().empty());
  EXPECT_NE(page->ticket_types(0).name(), rest->ticket_types(0).name());
  list.set_page_token("garbage");
  EXPECT_EQ(FieldOf(engine()->ListTicketTypes(kRep, list, deadline()).status()), "page_token");
  list.clear_page_token();
  list.set_page_size(-1);
  EXPECT_EQ(FieldOf(engine()->ListTicketTypes(kRep, list, deadline()).status()), "page_size");

  // Archive: no new tickets of the type, open ones go on; gone from the list unless asked for
  ASSERT_TRUE(Create(kRep).ok());
  v1::ArchiveTicketTypeRequest archive;
  archive.set_name("ticketTypes/repair");
  archive.set_reason(std::string(501, 'x'));
  EXPECT_EQ(FieldOf(Call(engine(), &TicketEngine::ArchiveTicketType, kAdmin, archive).status()), "reason");
  archive.set_reason("停止保修服务");
  archive.set_etag("9");
  EXPECT_EQ(Call(engine(), &TicketEngine::ArchiveTicketType, kAdmin, archive).status().code(),
            absl::StatusCode::kAborted);
  archive.clear_etag();
  archive.set_name("ticketTypes/nope");
  EXPECT_EQ(Call(engine(), &TicketEngine::ArchiveTicketType, kAdmin, archive).status().code(),
            absl::StatusCode::kNotFound);
  archive.set_name("ticketTypes/repair");
  auto archived = Call(engine(), &TicketEngine::ArchiveTicketType, kAdmin, archive);
  ASSERT_TRUE(archived.ok()) << archived.status();
  EXPECT_TRUE(archived->archived());
  EXPECT_EQ(archived->archive_reason(), "停止保修服务");
  EXPECT_EQ(Create(kRep).status().code(), absl::StatusCode::kFailedPrecondition);
  list.set_page_size(0);
  auto live = engine()->ListTicketTypes(kRep, list, deadline());
  ASSERT_TRUE(live.ok()) << live.status();
  ASSERT_EQ(live->ticket_types_size(), 1);
  EXPECT_EQ(live->ticket_types(0).name(), "ticketTypes/install");
  list.set_show_archived(true);
  EXPECT_EQ(engine()->ListTicketTypes(kRep, list, deadline())->ticket_types_size(), 2);

  v1::ListEventsRequest events;
  events.set_parent("ticketTypes/repair");
  auto trail = engine()->ListEvents(kAdmin, events, deadline());
  ASSERT_TRUE(trail.ok()) << trail.status();
  ASSERT_EQ(trail->events_size(), 2);
  EXPECT_EQ(trail->events(0).event_type(), "crm.tickets.v1.TicketTypeCreated");
  EXPECT_EQ(trail->events(1).event_type(), "crm.tickets.v1.TicketTypeArchived");
  EXPECT_EQ(LiveChecksum(), RebuiltChecksum());
}

// GetSlaPolicy, GetCalendar and ListCalendars through the engine.
TEST_F(TicketEngineTest, SlaPoliciesAndCalendarsAreReadByName) {
  const auto deadline = [] { return absl::Now() + absl::Seconds(5); };
  Type();
  v1::BusinessCalendar cal;
  auto* w = cal.add_windows();
  w->set_weekday(1);
  w->set_start_minute(9 * 60);
  w->set_end_minute(18 * 60);
  cal.add_holidays("2026-04-06");
  Calendar(cal);
  auto set = Policy(30, 480, "calendars/cn", v1::TICKET_PRIORITY_HIGH);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->name(), "ticketTypes/repair/slaPolicies/high");

  v1::GetSlaPolicyRequest gp;
  gp.set_name("ticketTypes/repair/slaPolicies/high");
  auto policy = engine()->GetSlaPolicy(kRep, gp, deadline());
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->policy().first_response_minutes(), 30);
  EXPECT_EQ(policy->policy().resolution_minutes(), 480);
  EXPECT_EQ(policy->policy().calendar(), "calendars/cn");
  EXPECT_EQ(policy->updated_by(), "a1");
  gp.set_name("ticketTypes/repair/slaPolicies/urgent");
  EXPECT_EQ(engine()->GetSlaPolicy(kRep, gp, deadline()).status().code(), absl::StatusCode::kNotFound);
  gp.set_name("ticketTypes/repair");
  EXPECT_EQ(FieldOf(engine()->GetSlaPolicy(kRep, gp, deadline()).status()), "name");

  v1::GetCalendarRequest gc;
  gc.set_name("calendars/cn");
  auto got = engine()->GetCalendar(kRep, gc, deadline());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->display_name(), "中国大陆工作日");
  EXPECT_EQ(got->calendar().SerializeAsString(), cal.SerializeAsString());
  gc.set_name("calendars/none");
  EXPECT_EQ(engine()->GetCalendar(kRep, gc, deadline()).status().code(), absl::StatusCode::kNotFound);
  gc.set_name("cn");
  EXPECT_EQ(FieldOf(engine()->GetCalendar(kRep, gc, deadline()).status()), "name");
  auto all = engine()->ListCalendars(kRep, v1::ListCalendarsRequest(), deadline());
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->calendars_size(), 1);
  EXPECT_EQ(all->calendars(0).name(), "calendars/cn");
}

TEST_F(TicketEngineTest, AdminsMigrateOpenTicketsToANewVersionWithAMapping) {
  Type();
  auto open1 = Create(kRep);
  auto open2 = Create(kRep);
  auto closed = Create(kRep);
  ASSERT_TRUE(Move(kRep, *open1, "start").ok());
  Close(*closed);
  // Version 2: serial becomes serial_no and a required channel appears.
  v1::TicketTypeDefinition d2 = testing::RepairDefinition();
  d2.mutable_form()->mutable_fields(0)->set_key("serial_no");
  auto* channel = d2.mutable_form()->add_fields();
  *channel = testing::Field("channel", v1::FIELD_TYPE_SINGLE_CHOICE, true);
  for (const char* k : {"phone", "wechat"}) {
    auto* o = channel->add_options();
    o->set_key(k);
    o->set_label(k);
  }
  v1::PublishTicketTypeVersionRequest pub;
  pub.set_name("ticketTypes/repair");
  *pub.mutable_definition() = d2;
  ASSERT_TRUE(Call(engine(), &TicketEngine::PublishTicketTypeVersion, kAdmin, pub).ok());

  v1::MigrateTicketsRequest m;
  m.set_name("ticketTypes/repair");
  m.set_from_version(1);
  (*m.mutable_field_mapping())["serial"] = "serial_no";
  m.set_validate_only(true);
  auto check = Call(engine(), &TicketEngine::MigrateTickets, kAdmin, m);
  ASSERT_TRUE(check.ok()) << check.status();
  EXPECT_EQ(check->migrated(), 0);
  ASSERT_EQ(check->failures_size(), 2);  // the closed ticket is not looked at
  EXPECT_NE(check->failures(0).reason().find("values.channel"), std::string::npos) << check->failures(0).reason();

  (*m.mutable_defaults())["channel"] = Choice("phone");
  (*m.mutable_field_mapping())["serial"] = "serial_nope";
  EXPECT_EQ(FieldOf(Call(engine(), &TicketEngine::MigrateTickets, kAdmin, m).status()), "field_mapping.serial");
  (*m.mutable_field_mapping())["serial"] = "serial_no";
  m.set_validate_only(false);
  auto done = Call(engine(), &TicketEngine::MigrateTickets, kAdmin, m);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->migrated(), 2);
  EXPECT_EQ(done->failures_size(), 0);
  v1::Ticket moved = Get(*open1);
  EXPECT_EQ(moved.type_version(), 2);
  EXPECT_EQ(moved.state(), "in_progress");
  EXPECT_EQ(moved.values().at("serial_no").text(), "AB123456");
  EXPECT_EQ(moved.values().at("channel").choice(), "phone");
  EXPECT_EQ(moved.values().count("serial"), 0u);
  EXPECT_EQ(Get(*closed).type_version(), 1);
  // The migrated ticket now follows version 2's form.
  EXPECT_EQ(FieldOf(Set(kRep, *open2, "serial", Text("AB000001")).status()), "values.serial");
  EXPECT_EQ(Call(engine(), &TicketEngine::MigrateTickets, kAdmin, m)->migrated(), 0);  // none left
  EXPECT_EQ(LiveChecksum(), RebuiltChecksum());
}

TEST_F(TicketEngineTest, LinkedCustomersMustExistAndMergesMoveTheirTickets) {
  Type();
  EXPECT_EQ(FieldOf(Create(kRep, GoodValues(), "customers/0193a000-0000-7000-8000-000000000000").status()),
            "ticket.customer");
  EXPECT_EQ(FieldOf(Create(kRep, GoodValues(), "clients/1").status()), "ticket.customer");
  auto make = [&](const std::string& name, const std::string& phone) {
    customers::v1::CreateCustomerRequest req;
    req.mutable_customer()->set_display_name(name);
    req.mutable_customer()->set_phone(phone);
    auto c = Call(&customers()->customer_commands(), &customers::CustomerCommands::Create, kRep, req);
    EXPECT_TRUE(c.ok()) << c.status();
    return *c;
  };
  auto survivor = make("上海星辰科技有限公司", "13812345678");
  auto merged = make("星辰科技（上海）", "13912345678");
  // Created a moment ago on the customers topic: the engine waits for its view.
  auto t = Create(kRep, GoodValues(), merged.name());
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->customer(), merged.name());
  EXPECT_EQ(Create(kRep2, GoodValues(), merged.name()).status().code(), absl::StatusCode::kPermissionDenied);

  customers::v1::MergeCustomersRequest mr;
  mr.set_survivor(survivor.name());
  mr.set_merged(merged.name());
  auto m = Call(customers(), &customers::CustomerEngine::MergeCustomers, kAdmin, mr);
  ASSERT_TRUE(m.ok()) << m.status();
  CatchUp();
  EXPECT_EQ(Get(*t).customer(), survivor.name());
  v1::ListTicketsRequest list;
  list.set_filter(absl::StrCat("customer = \"", survivor.name(), "\""));
  EXPECT_EQ(engine()->ListTickets(kAdmin, list, absl::Now() + absl::Seconds(5))->total_size(), 1);
  // New tickets for the merged customer go to the survivor.
  EXPECT_EQ(Create(kRep, GoodValues(), merged.name())->customer(), survivor.name());
  EXPECT_EQ(LiveChecksum(), RebuiltChecksum());
}


// What commands cost on the engine's store (libs/kernel/aggregate_store.h) from `before` to
// `after`: states (read or cached), request-id lookups, folds, seals, appends.
std::vector<int64_t> Spent(const kernel::StoreCounters& before, const kernel::StoreCounters& after) {
  // The projection's reads and folds count too: it takes the store's fold, so one each.
  return {after.all_states() - before.all_states(), after.request_lookups - before.request_lookups,
          after.all_folds() - before.all_folds(), after.seals - before.seals, after.appends - before.appends};
}
using Work = std::vector<int64_t>;

// The answer of a write equals what a read of the committed row shows (the store answers with
// its own fold of the sealed events, not a read after the commit).
void ExpectAnswerIsTheRow(google::protobuf::Message* answer, const google::protobuf::Message& row) {
  const google::protobuf::FieldDescriptor* token = answer->GetDescriptor()->FindFieldByName("consistency_token");
  ASSERT_NE(token, nullptr);
  answer->GetReflection()->ClearField(answer, token);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*answer, row))
      << "answer:\n" << answer->DebugString() << "row:\n" << row.DebugString();
}

TEST_F(TicketEngineTest, ACreateAndAnUpdateReadTheStateOnceFoldAndSealEachEventOnceAndAnswerTheCommittedRow) {
  Type();
  ASSERT_TRUE(Policy(60, 8 * 60).ok());  // the answer shows SLA clocks too
  v1::CreateTicketRequest create;
  create.set_request_id("create-1");
  create.mutable_ticket()->set_ticket_type("ticketTypes/repair");
  create.mutable_ticket()->set_title("笔记本无法开机");
  for (auto& [k, v] : GoodValues()) (*create.mutable_ticket()->mutable_values())[k] = v;
  kernel::StoreCounters before = engine()->WriteCounters();
  auto created = Call(engine(), &TicketEngine::CreateTicket, kRep, create);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(Spent(before, engine()->WriteCounters()), (Work{1, 1, 1, 1, 1}));
  EXPECT_FALSE(created->consistency_token().empty());
  v1::Ticket answer = *created;
  ExpectAnswerIsTheRow(&answer, Get(*created));

  v1::UpdateTicketRequest update;
  update.set_request_id("update-1");
  update.set_name(created->name());
  (*update.mutable_values())["resolution"] = Text("更换主板");
  before = engine()->WriteCounters();
  auto updated = Call(engine(), &TicketEngine::UpdateTicket, kRep, update);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(Spent(before, engine()->WriteCounters()), (Work{1, 1, 1, 1, 1}));
  EXPECT_EQ(updated->etag(), "2");
  answer = *updated;
  ExpectAnswerIsTheRow(&answer, Get(*created));

  // Repeats: answered from the state, nothing decided, sealed or appended.
  before = engine()->WriteCounters();
  auto again = Call(engine(), &TicketEngine::CreateTicket, kRep, create);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->name(), created->name());
  EXPECT_TRUE(again->consistency_token().empty());
  ASSERT_TRUE(Call(engine(), &TicketEngine::UpdateTicket, kRep, update).ok());
  EXPECT_EQ(Spent(before, engine()->WriteCounters()), (Work{2, 2, 0, 0, 0}));
  EXPECT_EQ(EventTypes(*created), (std::vector<std::string>{"TicketCreated", "TicketValuesChanged"}));

  // The other aggregates answer with their rows too.
  auto published = PublishSecondVersion();
  ASSERT_TRUE(published.ok()) << published.status();
  v1::GetTicketTypeRequest get_type;
  get_type.set_name("ticketTypes/repair");
  ExpectAnswerIsTheRow(&*published, *engine()->GetTicketType(kAdmin, get_type, absl::Now() + absl::Seconds(5)));
  auto policy = Policy(30, 4 * 60, "", v1::TICKET_PRIORITY_HIGH);
  ASSERT_TRUE(policy.ok()) << policy.status();
  v1::GetSlaPolicyRequest get_policy;
  get_policy.set_name(policy->name());
  ExpectAnswerIsTheRow(&*policy, *engine()->GetSlaPolicy(kAdmin, get_policy, absl::Now() + absl::Seconds(5)));
  v1::SetCalendarRequest cal;
  cal.mutable_calendar()->set_name("calendars/cn");
  cal.mutable_calendar()->set_display_name("中国大陆工作日");
  *cal.mutable_calendar()->mutable_calendar() = testing::OfficeHours();
  auto calendar = Call(engine(), &TicketEngine::SetCalendar, kAdmin, cal);
  ASSERT_TRUE(calendar.ok()) << calendar.status();
  v1::GetCalendarRequest get_cal;
  get_cal.set_name("calendars/cn");
  ExpectAnswerIsTheRow(&*calendar, *engine()->GetCalendar(kAdmin, get_cal, absl::Now() + absl::Seconds(5)));
  EXPECT_EQ(LiveChecksum(), RebuiltChecksum());
}

// A request_id names one change of one resource: sent again for another resource it is refused
// on field request_id and writes nothing (before the store it was written as a new request).
TEST_F(TicketEngineTest, ARequestIdAlreadyUsedForAnotherResourceIsRefusedAndWritesNothing) {
  Type();
  auto first = Create(kRep);
  auto second = Create(kRep);
  ASSERT_TRUE(first.ok() && second.ok());
  v1::AssignTicketRequest assign;
  assign.set_request_id("assign-1");
  assign.set_name(first->name());
  assign.set_assignee_id("u2");
  ASSERT_TRUE(Call(engine(), &TicketEngine::AssignTicket, kManager, assign).ok());
  assign.set_name(second->name());
  auto reused = Call(engine(), &TicketEngine::AssignTicket, kManager, assign);
  EXPECT_EQ(reused.status().code(), absl::StatusCode::kInvalidArgument) << reused.status();
  EXPECT_EQ(FieldOf(reused.status()), "request_id");
  EXPECT_EQ(EventTypes(*second), (std::vector<std::string>{"TicketCreated"}));
  EXPECT_EQ(Get(*second).assignee_id(), "");

  // Also across aggregate types, and for a create whose id the request would derive anew (here
  // another user's: request ids are one namespace, so a client should send UUIDs).
  v1::SetCalendarRequest cal;
  cal.set_request_id("assign-1");
  cal.mutable_calendar()->set_name("calendars/cn");
  *cal.mutable_calendar()->mutable_calendar() = testing::OfficeHours();
  EXPECT_EQ(FieldOf(Call(engine(), &TicketEngine::SetCalendar, kAdmin, cal).status()), "request_id");
  v1::GetCalendarRequest get_cal;
  get_cal.set_name("calendars/cn");
  EXPECT_EQ(engine()->GetCalendar(kAdmin, get_cal, absl::Now() + absl::Seconds(5)).status().code(),
            absl::StatusCode::kNotFound);
  v1::CreateTicketRequest create;
  create.set_request_id("assign-1");
  create.mutable_ticket()->set_ticket_type("ticketTypes/repair");
  create.mutable_ticket()->set_title("屏幕闪烁");
  for (auto& [k, v] : GoodValues()) (*create.mutable_ticket()->mutable_values())[k] = v;
  EXPECT_EQ(FieldOf(Call(engine(), &TicketEngine::CreateTicket, kRep2, create).status()), "request_id");
  v1::ListTicketsRequest list;
  EXPECT_EQ(engine()->ListTickets(kAdmin, list, absl::Now() + absl::Seconds(5))->total_size(), 2);
}

// A migration sends its one request_id for every ticket it moves, and a call that stopped at
// max_tickets goes on under the same request_id: each ticket is migrated once, none refused.
TEST_F(TicketEngineTest, AMigrationUnderOneRequestIdMovesEveryTicketOnceAcrossCalls) {
  Type();
  std::vector<v1::Ticket> made;
  for (int i = 0; i < 5; ++i) {
    auto t = Create(kRep);
    ASSERT_TRUE(t.ok()) << t.status();
    made.push_back(*t);
  }
  ASSERT_TRUE(PublishSecondVersion().ok());

  v1::MigrateTicketsRequest m;
  m.set_name("ticketTypes/repair");
  m.set_from_version(1);
  m.set_request_id("migrate-1");
  m.set_max_tickets(2);
  auto part = Call(engine(), &TicketEngine::MigrateTickets, kAdmin, m);
  ASSERT_TRUE(part.ok()) << part.status();
  EXPECT_EQ(part->migrated(), 2);
  EXPECT_EQ(part->failures_size(), 0) << part->DebugString();
  EXPECT_EQ(part->remaining(), 3);
  m.set_max_tickets(0);
  auto rest = Call(engine(), &TicketEngine::MigrateTickets, kAdmin, m);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(rest->migrated(), 3);
  EXPECT_EQ(rest->failures_size(), 0) << rest->DebugString();
  EXPECT_EQ(rest->remaining(), 0);
  EXPECT_EQ(Call(engine(), &TicketEngine::MigrateTickets, kAdmin, m)->migrated(), 0);  // none left
  for (const v1::Ticket& t : made) {
    EXPECT_EQ(Get(t).type_version(), 2) << t.name();
    EXPECT_EQ(EventTypes(t), (std::vector<std::string>{"TicketCreated", "TicketMigrated"})) << t.name();
  }
  EXPECT_EQ(LiveChecksum(), RebuiltChecksum());
}

// The etag is the command's expected version, checked by the store before Decide: a stale one
// writes nothing and names the request field it came from, also for an SLA policy or a
// calendar not written yet (an etag of a version that does not exist is stale, not ignored).
TEST_F(TicketEngineTest, AStaleEtagWritesNothingAndNamesItsField) {
  const auto deadline = [] { return absl::Now() + absl::Seconds(5); };
  const v1::TicketType type = Type();
  auto ticket = Create(kRep);
  ASSERT_TRUE(ticket.ok()) << ticket.status();
  v1::UpdateTicketRequest up;
  up.set_name(ticket->name());
  (*up.mutable_values())["serial"] = Text("CD654321");
  up.set_etag("2");
  EXPECT_EQ(AbortedInfo(Call(engine(), &TicketEngine::UpdateTicket, kRep, up).status()), "ETAG_MISMATCH etag");
  v1::TransitionTicketRequest move;
  move.set_name(ticket->name());
  move.set_transition_id("start");
  move.set_etag("0");  // "nothing written yet": it has been
  EXPECT_EQ(AbortedInfo(Call(engine(), &TicketEngine::TransitionTicket, kRep, move).status()), "ETAG_MISMATCH etag");
  v1::AssignTicketRequest assign;
  assign.set_name(ticket->name());
  assign.set_assignee_id("u2");
  assign.set_etag("3");
  EXPECT_EQ(AbortedInfo(Call(engine(), &TicketEngine::AssignTicket, kAdmin, assign).status()), "ETAG_MISMATCH etag");
  EXPECT_EQ(EventTypes(*ticket).size(), 1u) << "nothing written";

  v1::PublishTicketTypeVersionRequest pub;
  pub.set_name(type.name());
  *pub.mutable_definition() = testing::RepairDefinition();
  pub.mutable_definition()->set_description("第二版");
  pub.set_etag("2");
  EXPECT_EQ(AbortedInfo(Call(engine(), &TicketEngine::PublishTicketTypeVersion, kAdmin, pub).status()),
            "ETAG_MISMATCH etag");
  v1::ArchiveTicketTypeRequest archive;
  archive.set_name(type.name());
  archive.set_etag("2");
  EXPECT_EQ(AbortedInfo(Call(engine(), &TicketEngine::ArchiveTicketType, kAdmin, archive).status()), "ETAG_MISMATCH etag");
  v1::GetTicketTypeRequest get_type;
  get_type.set_name(type.name());
  auto type_now = engine()->GetTicketType(kRep, get_type, deadline());
  ASSERT_TRUE(type_now.ok()) << type_now.status();
  EXPECT_EQ(type_now->etag(), "1") << "nothing written";

  v1::SetSlaPolicyRequest policy;
  policy.mutable_policy()->set_type_id("repair");
  policy.mutable_policy()->set_first_response_minutes(30);
  policy.mutable_policy()->set_resolution_minutes(480);
  policy.set_etag("3");
  EXPECT_EQ(AbortedInfo(Call(engine(), &TicketEngine::SetSlaPolicy, kAdmin, policy).status()), "ETAG_MISMATCH etag");
  v1::GetSlaPolicyRequest get_policy;
  get_policy.set_name("ticketTypes/repair/slaPolicies/default");
  EXPECT_EQ(engine()->GetSlaPolicy(kRep, get_policy, deadline()).status().code(), absl::StatusCode::kNotFound)
      << "nothing written";
  v1::SetCalendarRequest cal;
  cal.mutable_calendar()->set_name("calendars/cn");
  cal.mutable_calendar()->set_display_name("中国大陆工作日");
  auto* w = cal.mutable_calendar()->mutable_calendar()->add_windows();
  w->set_weekday(1);
  w->set_start_minute(9 * 60);
  w->set_end_minute(18 * 60);
  cal.set_etag("2");
  EXPECT_EQ(AbortedInfo(Call(engine(), &TicketEngine::SetCalendar, kAdmin, cal).status()), "ETAG_MISMATCH etag");
  v1::GetCalendarRequest get_cal;
  get_cal.set_name("calendars/cn");
  EXPECT_EQ(engine()->GetCalendar(kRep, get_cal, deadline()).status().code(), absl::StatusCode::kNotFound)
      << "nothing written";
  // "0" asks for a policy not written yet: that one is written
  policy.set_etag("0");
  auto set = Call(engine(), &TicketEngine::SetSlaPolicy, kAdmin, policy);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->etag(), "1");
}

}  // namespace
}  // namespace crm::tickets
