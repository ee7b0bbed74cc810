#include "services/tickets/ticket_type.h"

#include "absl/strings/str_cat.h"
#include "libs/common/grpc_status.h"
#include "libs/common/proto_time.h"
#include "libs/common/text.h"
#include "services/tickets/form.h"
#include "services/tickets/workflow.h"

namespace crm::tickets {
namespace {

// The request's etag is the command's expected version, checked before Decide (TicketEngine).
absl::Status CheckExisting(const TicketTypeState* s) {
  if (s == nullptr || s->version() == 0) return absl::NotFoundError("ticket type not found");
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateDefinition(const TicketTypeDefinition& d, const std::string& prefix) {
  if (auto s = CheckText(d.display_name(), absl::StrCat(prefix, ".display_name"), 40, true); !s.ok()) return s;
  if (auto s = CheckText(d.description(), absl::StrCat(prefix, ".description"), 2000, false, TextKind::kMultiLine); !s.ok()) return s;
  if (auto s = ValidateSchema(d.form(), absl::StrCat(prefix, ".form")); !s.ok()) return s;
  return ValidateWorkflow(d.workflow(), d.form(), absl::StrCat(prefix, ".workflow"));
}

TicketTypeDecision Decide(const TicketTypeState* state, const Caller& caller, const CreateTicketType& cmd) {
  if (state != nullptr && state->version() > 0) return absl::AlreadyExistsError("ticket type id already exists");
  if (auto s = ValidateDefinition(cmd.definition, "ticket_type.definition"); !s.ok()) return s;
  v1::TicketTypeCreated e;
  *e.mutable_definition() = cmd.definition;
  return std::vector<TicketTypeEvent>{std::move(e)};
}

TicketTypeDecision Decide(const TicketTypeState* state, const Caller& caller, const PublishTicketType& cmd) {
  if (auto s = CheckExisting(state); !s.ok()) return s;
  if (state->archived()) return absl::FailedPreconditionError("the ticket type is archived");
  if (auto s = ValidateDefinition(cmd.definition, "ticket_type.definition"); !s.ok()) return s;
  const v1::TicketTypeVersion* cur = CurrentVersion(*state);
  if (cur != nullptr && cur->definition().SerializeAsString() == cmd.definition.SerializeAsString()) {
    return std::vector<TicketTypeEvent>{};
  }
  v1::TicketTypeVersionPublished e;
  *e.mutable_definition() = cmd.definition;
  e.set_version_number(state->versions_size() + 1);
  return std::vector<TicketTypeEvent>{std::move(e)};
}

TicketTypeDecision Decide(const TicketTypeState* state, const Caller& caller, const ArchiveTicketType& cmd) {
  if (auto s = CheckExisting(state); !s.ok()) return s;
  if (state->archived()) return std::vector<TicketTypeEvent>{};
  if (auto s = CheckText(cmd.reason, "reason", 500, false, TextKind::kMultiLine); !s.ok()) return s;
  v1::TicketTypeArchived e;
  e.set_reason(cmd.reason);
  return std::vector<TicketTypeEvent>{std::move(e)};
}

void Apply(TicketTypeState& s, const TicketTypeEvent& event, int64_t version, absl::Time at, const std::string& actor) {
  s.set_version(version);
  *s.mutable_update_time() = ToProto(at);
  auto publish = [&](const TicketTypeDefinition& d, int32_t number) {
    auto* v = s.add_versions();
    v->set_number(number);
    *v->mutable_definition() = d;
    *v->mutable_publish_time() = ToProto(at);
    v->set_published_by(actor);
  };
  if (const auto* e = std::get_if<v1::TicketTypeCreated>(&event)) {
    s.set_created_by(actor);
    *s.mutable_create_time() = ToProto(at);
    publish(e->definition(), 1);
  } else if (const auto* e = std::get_if<v1::TicketTypeVersionPublished>(&event)) {
    publish(e->definition(), e->version_number());
  } else if (const auto* e = std::get_if<v1::TicketTypeArchived>(&event)) {
    s.set_archived(true);
    s.set_archive_reason(e->reason());
  }
}

const v1::TicketTypeVersion* CurrentVersion(const TicketTypeState& s) {
  return s.versions().empty() ? nullptr : &*s.versions().rbegin();
}

const v1::TicketTypeVersion* FindVersion(const TicketTypeState& s, int32_t number) {
  for (const auto& v : s.versions()) {
    if (v.number() == number) return &v;
  }
  return nullptr;
}

}  // namespace crm::tickets
