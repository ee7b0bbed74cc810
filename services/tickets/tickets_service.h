#ifndef CRM_SERVICES_TICKETS_TICKETS_SERVICE_H_
#define CRM_SERVICES_TICKETS_TICKETS_SERVICE_H_

#include "crm/tickets/v1/tickets_service.grpc.pb.h"
#include "libs/server/runtime.h"
#include "services/tickets/ticket_engine.h"

namespace crm::tickets {

#define CRM_TICKET_RPC(Rpc, Req, Resp) \
  grpc::ServerUnaryReactor* Rpc(grpc::CallbackServerContext* ctx, const v1::Req* req, v1::Resp* resp) override;

// gRPC faces of TicketEngine: proto in, proto out, absl::Status -> grpc::Status. No rules.
// `engine` and `runtime` must outlive them.
class TicketTypesService final : public v1::TicketTypeService::CallbackService {
 public:
  TicketTypesService(TicketEngine* engine, server::Runtime* runtime) : engine_(engine), runtime_(runtime) {}
  CRM_TICKET_RPC(CreateTicketType, CreateTicketTypeRequest, TicketType)
  CRM_TICKET_RPC(GetTicketType, GetTicketTypeRequest, TicketType)
  CRM_TICKET_RPC(ListTicketTypes, ListTicketTypesRequest, ListTicketTypesResponse)
  CRM_TICKET_RPC(PublishTicketTypeVersion, PublishTicketTypeVersionRequest, TicketType)
  CRM_TICKET_RPC(ArchiveTicketType, ArchiveTicketTypeRequest, TicketType)
  CRM_TICKET_RPC(MigrateTickets, MigrateTicketsRequest, MigrateTicketsResponse)

 private:
  TicketEngine* engine_;
  server::Runtime* runtime_;
};

class TicketsService final : public v1::TicketService::CallbackService {
 public:
  TicketsService(TicketEngine* engine, server::Runtime* runtime) : engine_(engine), runtime_(runtime) {}
  CRM_TICKET_RPC(CreateTicket, CreateTicketRequest, Ticket)
  CRM_TICKET_RPC(GetTicket, GetTicketRequest, Ticket)
  CRM_TICKET_RPC(UpdateTicket, UpdateTicketRequest, Ticket)
  CRM_TICKET_RPC(TransitionTicket, TransitionTicketRequest, Ticket)
  CRM_TICKET_RPC(AssignTicket, AssignTicketRequest, Ticket)
  CRM_TICKET_RPC(AddComment, AddCommentRequest, Ticket)
  CRM_TICKET_RPC(ListTickets, ListTicketsRequest, ListTicketsResponse)
  CRM_TICKET_RPC(ListEvents, ListEventsRequest, ListEventsResponse)

 private:
  TicketEngine* engine_;
  server::Runtime* runtime_;
};

class SlaService final : public v1::SlaService::CallbackService {
 public:
  SlaService(TicketEngine* engine, server::Runtime* runtime) : engine_(engine), runtime_(runtime) {}
  CRM_TICKET_RPC(SetSlaPolicy, SetSlaPolicyRequest, SlaPolicyResource)
  CRM_TICKET_RPC(GetSlaPolicy, GetSlaPolicyRequest, SlaPolicyResource)
  CRM_TICKET_RPC(ListSlaPolicies, ListSlaPoliciesRequest, ListSlaPoliciesResponse)
  CRM_TICKET_RPC(DeleteSlaPolicy, DeleteSlaPolicyRequest, SlaPolicyResource)
  CRM_TICKET_RPC(SetCalendar, SetCalendarRequest, Calendar)
  CRM_TICKET_RPC(GetCalendar, GetCalendarRequest, Calendar)
  CRM_TICKET_RPC(ListCalendars, ListCalendarsRequest, ListCalendarsResponse)
  CRM_TICKET_RPC(EvaluateSla, EvaluateSlaRequest, EvaluateSlaResponse)

 private:
  TicketEngine* engine_;
  server::Runtime* runtime_;
};

#undef CRM_TICKET_RPC

}  // namespace crm::tickets

#endif  // CRM_SERVICES_TICKETS_TICKETS_SERVICE_H_
