#ifndef CRM_LIBS_TOPICS_EVENTS_H_
#define CRM_LIBS_TOPICS_EVENTS_H_

// Event types by their message. An event's type (EventEnvelope.event_type, the CloudEvents
// ce_type, automation rules' triggers) is the full name of its payload message, so code names
// it by the message: a renamed or moved message then fails to compile instead of silently
// matching nothing. The `topic_literals` test (tools/check_topic_literals.py) fails when an
// event type is spelled as a literal outside libs/topics; topics_test pins the wire strings.
// To test an envelope, eventlog::Is<M>(envelope) (libs/eventlog/envelope.h).
#include <string>

namespace crm::topics {

// The event type of events whose payload is an `M` ("crm.customers.v1.CustomerCreated").
template <typename M>
const std::string& EventType() {
  return M::descriptor()->full_name();
}

}  // namespace crm::topics

#endif  // CRM_LIBS_TOPICS_EVENTS_H_
