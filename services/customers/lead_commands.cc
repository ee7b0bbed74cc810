// The customers service's lead (线索) commands; converting a lead is a process manager's
// (lead_conversion.cc).
#include "services/customers/lead_commands.h"

#include "libs/common/grpc_status.h"
#include "libs/common/ids.h"
#include "libs/kernel/target_command.h"
#include "services/customers/customer_projections.h"
#include "services/customers/engine_util.h"

namespace crm::customers {

using namespace internal;  // NOLINT: the service's own helpers

namespace {

template <typename Command>
auto LeadDecider(const Caller& caller, Command cmd) {
  return [caller, cmd = std::move(cmd)](const LeadState* cur) { return Decide(cur, caller, cmd); };
}

}  // namespace

void LeadCommands::Execute(const Caller& caller, const Target& target, DecideFn decide, Done done, bool fresh_id) {
  auto cmd = kernel::TargetCommand<LeadState, LeadEvent>(caller, target, std::move(decide));
  cmd.fresh_id = fresh_id;
  store_->Execute<LeadKind>(std::move(cmd),
                            [this, done = std::move(done)](absl::StatusOr<kernel::Written<LeadState>> w) mutable {
                              if (!w.ok()) return done(w.status());
                              if (w->state.version() == 0) return done(absl::NotFoundError("lead not found"));
                              v1::Lead l = queries_->LeadToApi(w->state);
                              l.set_consistency_token(w->token);
                              done(std::move(l));
                            });
}

void LeadCommands::CreateLead(const Caller& caller, const v1::CreateLeadRequest& req, Done done) {
  if (absl::Status s = CheckRequestId(req.request_id()); !s.ok()) return done(s);
  if (!req.has_lead()) return done(InvalidFieldError("lead", "is required"));
  if (!req.lead().name().empty()) return done(InvalidFieldError("lead.name", "is assigned by the service"));
  if (!req.request_id().empty()) {
    auto ids = ReadHolders(db_->db(), rows::RequestPrefix(req.request_id()));
    if (!ids.ok()) return done(ids.status());
    for (const auto& id : *ids) {
      auto lead = ReadLead(db_->db(), id);
      if (!lead.ok()) return done(lead.status());
      if (lead->has_value() && CanSee(caller, **lead)) return done(queries_->LeadToApi(**lead));
    }
    if (!ids->empty()) return done(InvalidFieldError("request_id", "was already used for another resource"));
  }
  auto settings = queries_->Settings();
  if (!settings.ok()) return done(settings.status());
  customers::CreateLead cmd;
  CopySameNamed(req.lead(), &cmd.profile);
  cmd.owner_id = req.lead().owner_id();
  cmd.team_id = req.lead().team_id();
  cmd.settings = *std::move(settings);
  Execute(caller, {.id = NewUuidV7(clock_->Now()), .request_id = req.request_id()}, LeadDecider(caller, std::move(cmd)),
          std::move(done), /*fresh_id=*/true);
}

void LeadCommands::UpdateLead(const Caller& caller, const v1::UpdateLeadRequest& req, Done done) {
  auto t = ParseTarget(req.request_id(), req.lead().name(), "lead.name", req.lead().etag(), "lead.etag", "leads");
  if (!t.ok()) return done(t.status());
  auto settings = queries_->Settings();
  if (!settings.ok()) return done(settings.status());
  customers::UpdateLead cmd;
  CopySameNamed(req.lead(), &cmd.profile);
  for (const auto& p : req.update_mask().paths()) cmd.paths.push_back(p);
  if (cmd.paths.empty()) cmd.paths = SetFields(cmd.profile, LeadFields());
  cmd.settings = *std::move(settings);
  Execute(caller, *t, LeadDecider(caller, std::move(cmd)), std::move(done));
}

void LeadCommands::AssignLead(const Caller& caller, const v1::AssignLeadRequest& req, Done done) {
  auto t = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "leads");
  if (!t.ok()) return done(t.status());
  Execute(caller, *t, LeadDecider(caller, customers::AssignLead{req.owner_id(), req.team_id()}), std::move(done));
}

void LeadCommands::ClaimLead(const Caller& caller, const v1::ClaimLeadRequest& req, Done done) {
  auto t = ParseTarget(req.request_id(), req.name(), "name", "", "etag", "leads");
  if (!t.ok()) return done(t.status());
  Execute(caller, *t, LeadDecider(caller, customers::ClaimLead{}), std::move(done));
}

void LeadCommands::ReleaseLead(const Caller& caller, const v1::ReleaseLeadRequest& req, Done done) {
  auto t = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "leads");
  if (!t.ok()) return done(t.status());
  Execute(caller, *t, LeadDecider(caller, customers::ReleaseLead{req.reason()}), std::move(done));
}

void LeadCommands::QualifyLead(const Caller& caller, const v1::QualifyLeadRequest& req, Done done) {
  auto t = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "leads");
  if (!t.ok()) return done(t.status());
  Execute(caller, *t, LeadDecider(caller, customers::QualifyLead{}), std::move(done));
}

void LeadCommands::DisqualifyLead(const Caller& caller, const v1::DisqualifyLeadRequest& req, Done done) {
  auto t = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "leads");
  if (!t.ok()) return done(t.status());
  Execute(caller, *t, LeadDecider(caller, customers::DisqualifyLead{req.reason()}), std::move(done));
}

}  // namespace crm::customers
