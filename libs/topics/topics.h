#ifndef CRM_LIBS_TOPICS_TOPICS_H_
#define CRM_LIBS_TOPICS_TOPICS_H_

// The log's topics, named once. Every topic name the code uses comes from here; the
// `topic_literals` test (tools/check_topic_literals.py) fails the build's tests when a name is
// spelled anywhere else in the C++ sources. The names are part of the wire contract (Kafka
// topics, k8s/base/kafka/topics.yaml, the public event schemas): never rename one.
#include <cstdint>
#include <string>
#include <vector>

namespace crm::topics {

// Each service's own events: the service writes it alone, the others follow it.
inline constexpr char kCustomers[] = "crm.customers.events.v1";
inline constexpr char kOpportunities[] = "crm.opportunities.events.v1";
inline constexpr char kTasks[] = "crm.tasks.events.v1";
inline constexpr char kTickets[] = "crm.tickets.events.v1";

// crm-integration's topics: the services' events as CloudEvents JSON for ERP/OA systems, the
// events those systems send in, and the inbound records that could not be applied.
inline constexpr char kPublic[] = "crm.public.events.v1";
inline constexpr char kInbound[] = "crm.inbound.v1";
inline constexpr char kInboundDeadLetters[] = "crm.inbound.v1.dlq";

// Signed seals of the other topics' chain heads (libs/eventlog/seal.h).
inline constexpr char kSeals[] = "crm.audit.seals.v1";

// Partitions of every topic when it has to be created. Records of one aggregate share a
// partition (the key is the aggregate id), so changing this for an existing topic reorders
// nothing already written but moves later events of an aggregate: never change it in place.
inline constexpr int32_t kPartitions = 8;

// The four services' event topics, in the order crmd composes the services.
inline const std::vector<std::string>& ServiceTopics() {
  static const std::vector<std::string>* const kAll =
      new std::vector<std::string>{kCustomers, kOpportunities, kTasks, kTickets};
  return *kAll;
}

// Every topic a deployment has, as the development broker creates them.
inline const std::vector<std::string>& AllTopics() {
  static const std::vector<std::string>* const kAll = new std::vector<std::string>{
      kCustomers, kOpportunities, kTasks, kTickets, kPublic, kInbound, kInboundDeadLetters};
  return *kAll;
}

}  // namespace crm::topics

#endif  // CRM_LIBS_TOPICS_TOPICS_H_
