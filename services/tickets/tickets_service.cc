#include "services/tickets/tickets_service.h"

#include "libs/server/serve.h"

namespace crm::tickets {

CRM_SERVE_WRITE(TicketTypesService, CreateTicketType, v1::CreateTicketTypeRequest, v1::TicketType, CreateTicketType)
CRM_SERVE_READ(TicketTypesService, GetTicketType, v1::GetTicketTypeRequest, v1::TicketType, GetTicketType)
CRM_SERVE_READ(TicketTypesService, ListTicketTypes, v1::ListTicketTypesRequest, v1::ListTicketTypesResponse, ListTicketTypes)
CRM_SERVE_WRITE(TicketTypesService, PublishTicketTypeVersion, v1::PublishTicketTypeVersionRequest, v1::TicketType,
                PublishTicketTypeVersion)
CRM_SERVE_WRITE(TicketTypesService, ArchiveTicketType, v1::ArchiveTicketTypeRequest, v1::TicketType, ArchiveTicketType)
CRM_SERVE_WRITE(TicketTypesService, MigrateTickets, v1::MigrateTicketsRequest, v1::MigrateTicketsResponse, MigrateTickets)

CRM_SERVE_WRITE(TicketsService, CreateTicket, v1::CreateTicketRequest, v1::Ticket, CreateTicket)
CRM_SERVE_READ(TicketsService, GetTicket, v1::GetTicketRequest, v1::Ticket, GetTicket)
CRM_SERVE_WRITE(TicketsService, UpdateTicket, v1::UpdateTicketRequest, v1::Ticket, UpdateTicket)
CRM_SERVE_WRITE(TicketsService, TransitionTicket, v1::TransitionTicketRequest, v1::Ticket, TransitionTicket)
CRM_SERVE_WRITE(TicketsService, AssignTicket, v1::AssignTicketRequest, v1::Ticket, AssignTicket)
CRM_SERVE_WRITE(TicketsService, AddComment, v1::AddCommentRequest, v1::Ticket, AddComment)
CRM_SERVE_READ(TicketsService, ListTickets, v1::ListTicketsRequest, v1::ListTicketsResponse, ListTickets)
CRM_SERVE_READ(TicketsService, ListEvents, v1::ListEventsRequest, v1::ListEventsResponse, ListEvents)

CRM_SERVE_WRITE(SlaService, SetSlaPolicy, v1::SetSlaPolicyRequest, v1::SlaPolicyResource, SetSlaPolicy)
CRM_SERVE_READ(SlaService, GetSlaPolicy, v1::GetSlaPolicyRequest, v1::SlaPolicyResource, GetSlaPolicy)
CRM_SERVE_READ(SlaService, ListSlaPolicies, v1::ListSlaPoliciesRequest, v1::ListSlaPoliciesResponse, ListSlaPolicies)
CRM_SERVE_WRITE(SlaService, DeleteSlaPolicy, v1::DeleteSlaPolicyRequest, v1::SlaPolicyResource, DeleteSlaPolicy)
CRM_SERVE_WRITE(SlaService, SetCalendar, v1::SetCalendarRequest, v1::Calendar, SetCalendar)
CRM_SERVE_READ(SlaService, GetCalendar, v1::GetCalendarRequest, v1::Calendar, GetCalendar)
CRM_SERVE_READ(SlaService, ListCalendars, v1::ListCalendarsRequest, v1::ListCalendarsResponse, ListCalendars)
CRM_SERVE_READ(SlaService, EvaluateSla, v1::EvaluateSlaRequest, v1::EvaluateSlaResponse, EvaluateSla)

}  // namespace crm::tickets
