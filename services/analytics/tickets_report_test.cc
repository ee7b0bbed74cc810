// The tickets report over the events of a real tickets engine and its SLA scheduler on an
// embedded log under a manual clock: hand-computed figures by day and week, and as_of equal
// to the report computed on the log cut at that moment.
#include "services/analytics/tickets_report.h"

#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "libs/common/proto_time.h"
#include "libs/common/status_testing.h"
#include "libs/common/caller_testing.h"
#include "libs/eventlog/envelope.h"
#include "libs/projection/aggregate_writer.h"
#include "libs/projection/rebuild.h"
#include "services/analytics/analytics_testing.h"
#include "libs/testing/engine_harness.h"
#include "services/tickets/domain_testing.h"
#include "services/tickets/ticket_engine.h"

namespace crm::analytics {
namespace {

using crm::testing::Call;
namespace kv1 = crm::tickets::v1;
using tickets::TicketEngine;

using crm::testing::kAdmin;
using crm::testing::kManager;
using crm::testing::kRep;
using crm::testing::Service;

absl::Time At(int day, int hour) {
  return absl::FromCivil(absl::CivilHour(2026, 3, day, hour), absl::FixedTimeZone(8 * 3600));
}

std::string Describe(const TicketsReport& r) {
  std::string out = absl::StrFormat("opened %d closed %d fr %d res %d compliance %.4f\n", r.opened, r.closed,
                                    r.first_response_breaches, r.resolution_breaches, r.resolution_compliance_percent);
  for (const auto& b : r.buckets) {
    absl::StrAppendFormat(&out, "%s opened %d closed %d fr %d res %d\n", absl::FormatTime(b.start), b.opened, b.closed,
                          b.first_response_breaches, b.resolution_breaches);
  }
  return out;
}

class TicketsReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto h = crm::testing::EngineHarness::Create({.name = "tickets-report", .start = At(1, 9)});
    ASSERT_TRUE(h.ok()) << h.status();
    h_ = *std::move(h);
    const absl::Status s = h_->Open(Service::kTickets);
    ASSERT_TRUE(s.ok()) << s;
  }
  TicketEngine* engine() const { return h_->tickets(); }
  ManualClock& clock() const { return h_->clock(); }

  std::unique_ptr<projection::ProjectionDb> Build(absl::Time cut) {
    return testing::BuildCut(h_->log(), tickets::kTopic, &ApplyTicketsRecord, cut,
                             absl::StrCat(h_->dir(), "/analytics-", builds_++));
  }

  std::string Open(int day, int hour) {
    clock().Set(At(day, hour));
    kv1::CreateTicketRequest req;
    req.mutable_ticket()->set_ticket_type("ticketTypes/repair");
    req.mutable_ticket()->set_title("笔记本无法开机");
    (*req.mutable_ticket()->mutable_values())["serial"].set_text("AB123456");
    (*req.mutable_ticket()->mutable_values())["description"].set_text("屏幕不亮，无法开机");
    (*req.mutable_ticket()->mutable_values())["kind"].set_choice("hardware");
    auto t = Call(engine(), &TicketEngine::CreateTicket, kRep, req);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? t->name() : "";
  }
  void Close(const std::string& name, int day, int hour) {
    clock().Set(At(day, hour));
    kv1::UpdateTicketRequest up;
    up.set_name(name);
    (*up.mutable_values())["resolution"].set_text("更换主板");
    ASSERT_TRUE(Call(engine(), &TicketEngine::UpdateTicket, kRep, up).ok());
    for (const char* t : {"start", "resolve", "close"}) {
      kv1::TransitionTicketRequest req;
      req.set_name(name);
      req.set_transition_id(t);
      ASSERT_TRUE(Call(engine(), &TicketEngine::TransitionTicket, kManager, req).ok()) << t;
    }
  }
  void Schedule(int day, int hour) {
    clock().Set(At(day, hour));
    ASSERT_TRUE(engine()->RunScheduler(clock().Now()).ok());
  }

  static inline int builds_ = 0;
  std::unique_ptr<crm::testing::EngineHarness> h_;
};

TEST_F(TicketsReportTest, VolumeClosuresBreachesAndComplianceByPeriodAndAsOfEqualsTheLogCutThere) {
  kv1::CreateTicketTypeRequest type;
  type.set_ticket_type_id("repair");
  *type.mutable_definition() = tickets::testing::RepairDefinition();
  ASSERT_TRUE(Call(engine(), &TicketEngine::CreateTicketType, kAdmin, type).ok());
  kv1::SetSlaPolicyRequest policy;  // around the clock: 1 h first response, 8 h resolution
  policy.mutable_policy()->set_type_id("repair");
  policy.mutable_policy()->set_first_response_minutes(60);
  policy.mutable_policy()->set_resolution_minutes(480);
  ASSERT_TRUE(Call(engine(), &TicketEngine::SetSlaPolicy, kAdmin, policy).ok());

  const std::string t1 = Open(2, 9), t2 = Open(2, 10);
  Schedule(2, 11);   // t1 and t2 past their first response
  Close(t1, 2, 15);  // within 8 h
  Schedule(2, 19);   // t2 past its resolution (18:00)
  Close(t2, 3, 10);
  const std::string t3 = Open(3, 9);
  Schedule(3, 11);  // t3 past its first response
  Open(9, 9);       // next week, never scheduled

  auto full = Build(absl::InfiniteFuture());
  TicketsQuery q;
  q.from = At(1, 0);
  q.to = At(15, 0);
  q.group_by = Period::kWeek;
  auto r = Tickets(full->db(), q);
  ASSERT_TRUE(r.ok()) << r.status();
  // Weeks from Monday: Feb 23 (holds Sunday the 1st), Mar 2, Mar 9.
  ASSERT_EQ(r->buckets.size(), 3u) << Describe(*r);
  EXPECT_EQ(r->buckets[0].start, At(1, 0) - absl::Hours(6 * 24));
  EXPECT_EQ(r->buckets[1].opened, 3);
  EXPECT_EQ(r->buckets[1].closed, 2);
  EXPECT_EQ(r->buckets[1].first_response_breaches, 3);
  EXPECT_EQ(r->buckets[1].resolution_breaches, 1);
  EXPECT_EQ(r->buckets[2].opened, 1);
  EXPECT_EQ(r->opened, 4);
  EXPECT_DOUBLE_EQ(r->resolution_compliance_percent, 50);  // t1 met, t2 breached

  q.group_by = Period::kDay;
  q.to = At(4, 0);
  r = Tickets(full->db(), q);
  ASSERT_EQ(r->buckets.size(), 3u) << Describe(*r);  // the 1st, 2nd and 3rd
  EXPECT_EQ(r->buckets[1].opened, 2);
  EXPECT_EQ(r->buckets[1].closed, 1);
  EXPECT_EQ(r->buckets[1].first_response_breaches, 2);
  EXPECT_EQ(r->buckets[1].resolution_breaches, 1);
  EXPECT_EQ(r->buckets[2].opened, 1);
  EXPECT_EQ(r->buckets[2].closed, 1);
  EXPECT_EQ(r->buckets[2].first_response_breaches, 1);

  // As of any moment, the report equals the one over the log cut there.
  q.to = At(15, 0);
  for (absl::Time t : {At(2, 9), At(2, 11), At(2, 15), At(2, 19), At(3, 10), At(3, 11), At(9, 9), At(10, 0)}) {
    for (absl::Duration d : {-absl::Minutes(1), absl::ZeroDuration()}) {
      q.as_of = t + d;
      auto as_of = Tickets(full->db(), q);
      auto cut = Build(t + d);
      TicketsQuery all = q;
      all.as_of = absl::InfiniteFuture();
      auto truncated = Tickets(cut->db(), all);
      ASSERT_TRUE(as_of.ok() && truncated.ok());
      EXPECT_EQ(Describe(*as_of), Describe(*truncated)) << "as of " << absl::FormatTime(t + d);
    }
  }
  // Known at 17:00 on the 2nd: t1 closed in time, t2's resolution not yet breached.
  q.as_of = At(2, 17);
  EXPECT_DOUBLE_EQ(Tickets(full->db(), q)->resolution_compliance_percent, 100);
  q.as_of = absl::InfiniteFuture();
  q.type_id = "other";
  EXPECT_EQ(Tickets(full->db(), q)->opened, 0);
}

}  // namespace
}  // namespace crm::analytics
