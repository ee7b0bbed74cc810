#ifndef CRM_LIBS_TOPICS_CONTRACTS_H_
#define CRM_LIBS_TOPICS_CONTRACTS_H_

// What each service topic holds: its aggregates, under the type their envelopes carry and the
// collection of their resource names. Every aggregate type the code uses comes from here; the
// `topic_literals` test (tools/check_topic_literals.py) fails when one is spelled as a literal
// elsewhere in the C++ sources. The types are part of the wire contract (every envelope's
// aggregate_type, the embedded log's stream rows, the CloudEvents subject): never rename one.
#include <span>
#include <string_view>

#include "libs/topics/topics.h"

namespace crm::topics {

// One aggregate of a topic.
struct AggregateContract {
  // EventEnvelope.aggregate_type of its events ("customer").
  const char* type;
  // The collection of its resource names ("customers" in customers/{id}); empty when it has
  // none of its own (settings singletons, SLA policies named under their ticket type).
  const char* collection;
  // Whether it is a business record: tasks relate to it (Task.related) and automation rules
  // watch its date fields.
  bool record;
};

// A service topic: its name (topics.h) and the aggregates whose events it holds.
struct TopicContract {
  const char* name;
  std::span<const AggregateContract* const> aggregates;
};

namespace customers {
inline constexpr AggregateContract kCustomer{"customer", "customers", true};
inline constexpr AggregateContract kLead{"lead", "leads", true};
inline constexpr AggregateContract kSettings{"customer_settings", "", false};
inline constexpr const AggregateContract* kAggregates[] = {&kCustomer, &kLead, &kSettings};
inline constexpr TopicContract kTopic{kCustomers, kAggregates};
}  // namespace customers

namespace opportunities {
inline constexpr AggregateContract kOpportunity{"opportunity", "opportunities", true};
inline constexpr AggregateContract kQuote{"quote", "quotes", true};
inline constexpr AggregateContract kContract{"contract", "contracts", true};
inline constexpr AggregateContract kSettings{"opportunity_settings", "", false};
inline constexpr const AggregateContract* kAggregates[] = {&kOpportunity, &kQuote, &kContract, &kSettings};
inline constexpr TopicContract kTopic{kOpportunities, kAggregates};
}  // namespace opportunities

namespace tasks {
inline constexpr AggregateContract kTask{"task", "tasks", false};
inline constexpr AggregateContract kRule{"rule", "rules", false};
// A rule's standalone reminder: no resource of its own.
inline constexpr AggregateContract kReminder{"reminder", "", false};
inline constexpr const AggregateContract* kAggregates[] = {&kTask, &kRule, &kReminder};
inline constexpr TopicContract kTopic{kTasks, kAggregates};
}  // namespace tasks

namespace tickets {
inline constexpr AggregateContract kTicket{"ticket", "tickets", true};
inline constexpr AggregateContract kTicketType{"ticket_type", "ticketTypes", false};
inline constexpr AggregateContract kSlaPolicy{"sla_policy", "", false};
inline constexpr AggregateContract kCalendar{"calendar", "calendars", false};
inline constexpr const AggregateContract* kAggregates[] = {&kTicket, &kTicketType, &kSlaPolicy, &kCalendar};
inline constexpr TopicContract kTopic{kTickets, kAggregates};
}  // namespace tickets

// The four service topics' contracts, in the order of ServiceTopics().
inline constexpr const TopicContract* kServiceContracts[] = {&customers::kTopic, &opportunities::kTopic,
                                                             &tasks::kTopic, &tickets::kTopic};

// The first aggregate of the service topics, in kServiceContracts order, for which `pred`
// holds; nullptr when none does.
template <typename Pred>
constexpr const AggregateContract* FindAggregateIf(Pred pred) {
  for (const TopicContract* t : kServiceContracts) {
    for (const AggregateContract* a : t->aggregates) {
      if (pred(*a)) return a;
    }
  }
  return nullptr;
}

// The aggregate of type `type` on any service topic, or nullptr when no topic has one.
constexpr const AggregateContract* FindAggregate(std::string_view type) {
  return FindAggregateIf([type](const AggregateContract& a) { return type == a.type; });
}

// The business record (AggregateContract::record) whose resource names are in `collection`,
// or nullptr.
constexpr const AggregateContract* FindRecordByCollection(std::string_view collection) {
  return FindAggregateIf([collection](const AggregateContract& a) { return a.record && collection == a.collection; });
}

}  // namespace crm::topics

#endif  // CRM_LIBS_TOPICS_CONTRACTS_H_
