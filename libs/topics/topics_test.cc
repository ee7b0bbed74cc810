#include <set>
#include <string>

#include "crm/customers/v1/customers_events.pb.h"
#include "crm/opportunities/v1/opportunities_events.pb.h"
#include "crm/tasks/v1/tasks_events.pb.h"
#include "crm/tickets/v1/tickets_events.pb.h"
#include "gtest/gtest.h"
#include "libs/topics/contracts.h"
#include "libs/topics/default_pipeline.h"
#include "libs/topics/events.h"
#include "libs/topics/topics.h"

namespace crm::topics {
namespace {

// The strings below are what logs written by earlier builds hold: a change here is a change of
// the wire contract, not a refactoring.

TEST(TopicsTest, EventTypesAreTheWireStringsOfTheirMessages) {
  EXPECT_EQ(EventType<crm::customers::v1::CustomerCreated>(), "crm.customers.v1.CustomerCreated");
  EXPECT_EQ(EventType<crm::customers::v1::CustomerMergedInto>(), "crm.customers.v1.CustomerMergedInto");
  EXPECT_EQ(EventType<crm::customers::v1::LeadConverted>(), "crm.customers.v1.LeadConverted");
  EXPECT_EQ(EventType<crm::customers::v1::LeadCreated>(), "crm.customers.v1.LeadCreated");
  EXPECT_EQ(EventType<crm::customers::v1::FollowUpRecorded>(), "crm.customers.v1.FollowUpRecorded");
  EXPECT_EQ(EventType<crm::opportunities::v1::OpportunityStageChanged>(),
            "crm.opportunities.v1.OpportunityStageChanged");
  EXPECT_EQ(EventType<crm::opportunities::v1::ContractActivated>(), "crm.opportunities.v1.ContractActivated");
  EXPECT_EQ(EventType<crm::tasks::v1::TaskCreated>(), "crm.tasks.v1.TaskCreated");
  EXPECT_EQ(EventType<crm::tickets::v1::SlaBreached>(), "crm.tickets.v1.SlaBreached");
  EXPECT_EQ(EventType<crm::tickets::v1::TicketAssigned>(), "crm.tickets.v1.TicketAssigned");
}

TEST(TopicsTest, AggregateTypesAreTheWireStrings) {
  EXPECT_STREQ(customers::kCustomer.type, "customer");
  EXPECT_STREQ(customers::kLead.type, "lead");
  EXPECT_STREQ(customers::kSettings.type, "customer_settings");
  EXPECT_STREQ(opportunities::kOpportunity.type, "opportunity");
  EXPECT_STREQ(opportunities::kQuote.type, "quote");
  EXPECT_STREQ(opportunities::kContract.type, "contract");
  EXPECT_STREQ(opportunities::kSettings.type, "opportunity_settings");
  EXPECT_STREQ(tasks::kTask.type, "task");
  EXPECT_STREQ(tasks::kRule.type, "rule");
  EXPECT_STREQ(tasks::kReminder.type, "reminder");
  EXPECT_STREQ(tickets::kTicket.type, "ticket");
  EXPECT_STREQ(tickets::kTicketType.type, "ticket_type");
  EXPECT_STREQ(tickets::kSlaPolicy.type, "sla_policy");
  EXPECT_STREQ(tickets::kCalendar.type, "calendar");
}

TEST(TopicsTest, EachServiceTopicHasItsContractAndEveryTypeIsUnique) {
  ASSERT_EQ(std::size(kServiceContracts), ServiceTopics().size());
  std::set<std::string> types;
  for (size_t i = 0; i < ServiceTopics().size(); ++i) {
    EXPECT_EQ(kServiceContracts[i]->name, ServiceTopics()[i]);
    for (const AggregateContract* a : kServiceContracts[i]->aggregates) {
      EXPECT_TRUE(types.insert(a->type).second) << a->type;
      EXPECT_EQ(FindAggregate(a->type), a);
    }
  }
  EXPECT_EQ(FindAggregate("customers"), nullptr);
  EXPECT_EQ(FindAggregate(""), nullptr);
}

TEST(TopicsTest, RecordsAreFoundByTheirCollection) {
  std::set<std::string> records;
  for (const TopicContract* t : kServiceContracts) {
    for (const AggregateContract* a : t->aggregates) {
      if (a->record) records.insert(a->collection);
    }
  }
  EXPECT_EQ(records, (std::set<std::string>{"customers", "leads", "opportunities", "quotes", "contracts", "tickets"}));
  EXPECT_EQ(FindRecordByCollection("opportunities"), &opportunities::kOpportunity);
  EXPECT_EQ(FindRecordByCollection("tasks"), nullptr);  // a task is not a record tasks relate to
  EXPECT_EQ(FindRecordByCollection(""), nullptr);       // settings have no collection
}

TEST(TopicsTest, TheDefaultPipelineKeepsItsStageIds) {
  const auto& p = opportunities::DefaultPipeline();
  EXPECT_EQ(p.id(), "default");
  std::string ids;
  for (const auto& s : p.stages()) ids += s.id() + " ";
  EXPECT_EQ(ids, "initial_contact needs_analysis proposal negotiation won lost ");
}

}  // namespace
}  // namespace crm::topics
