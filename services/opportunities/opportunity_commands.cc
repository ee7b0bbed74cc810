// The opportunity RPCs of OpportunityEngine: requests to commands, states to API messages.
#include <algorithm>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "libs/common/grpc_status.h"
#include "libs/common/ids.h"
#include "libs/common/money.h"
#include "libs/common/proto_time.h"
#include "libs/common/request.h"
#include "libs/common/status_macros.h"
#include "libs/eventlog/envelope.h"
#include "services/opportunities/engine_kinds.h"
#include "services/opportunities/opportunity_engine.h"

namespace crm::opportunities {
namespace {

using projection::FromRocks;
using OppWritten = OpportunityEngine::Written<OpportunityState>;

// API field names of the editable profile fields (the profile's "name" is the API's title).
const std::vector<std::string>& ApiEditable() {
  static const auto* f =
      new std::vector<std::string>{"title", "amount", "expected_close_date", "description", "owner_id", "team_id"};
  return *f;
}

std::string ProfileField(const std::string& api) { return api == "title" ? "name" : api; }

OpportunityProfile ProfileOf(const v1::Opportunity& o, const std::string& customer_id) {
  OpportunityProfile p;
  p.set_customer_id(customer_id);
  p.set_name(o.title());
  if (o.has_amount()) *p.mutable_amount() = o.amount();
  p.set_expected_close_date(o.expected_close_date());
  p.set_owner_id(o.owner_id());
  p.set_team_id(o.team_id());
  p.set_description(o.description());
  p.set_lead_id(o.lead_id());
  return p;
}

}  // namespace

v1::Opportunity OpportunityEngine::ToApi(const OpportunityState& s) const {
  v1::Opportunity o;
  const auto& p = s.profile();
  o.set_name(absl::StrCat("opportunities/", s.id()));
  o.set_customer(absl::StrCat("customers/", p.customer_id()));
  o.set_title(p.name());
  *o.mutable_amount() = p.amount();
  o.set_expected_close_date(p.expected_close_date());
  o.set_owner_id(p.owner_id());
  o.set_team_id(p.team_id());
  o.set_description(p.description());
  o.set_lead_id(p.lead_id());
  o.set_pipeline_id(s.pipeline_id());
  o.set_stage_id(s.stage_id());
  auto settings = ReadSettings(db_->db());
  if (settings.ok()) {
    auto pipeline = PipelineById(*settings, s.pipeline_id());
    if (pipeline.ok()) {
      if (const v1::Stage* st = FindStage(*pipeline, s.stage_id())) {
        o.set_stage_name(st->name());
        o.set_win_probability(st->win_probability());
      }
    }
  }
  o.set_status(s.status());
  *o.mutable_stage_history() = s.visits();
  for (const auto& [stage, d] : TimeInStages(s, options_.clock->Now())) {
    (*o.mutable_seconds_in_stage())[stage] = absl::ToInt64Seconds(d);
  }
  o.set_won_lost_reason(s.won_lost_reason());
  if (s.has_won_amount()) *o.mutable_won_amount() = s.won_amount();
  if (s.has_close_time()) *o.mutable_close_time() = s.close_time();
  o.set_deleted(s.deleted());
  if (s.has_delete_time()) *o.mutable_delete_time() = s.delete_time();
  o.set_customer_deleted(s.customer_deleted());
  o.set_created_by(s.created_by());
  *o.mutable_create_time() = s.create_time();
  *o.mutable_update_time() = s.update_time();
  o.set_etag(std::to_string(s.version()));
  return o;
}

namespace {

// A command on an existing opportunity that needs the pipeline it is in.
template <typename Cmd>
OpportunityEngine::DecideFn<OpportunityState, OpportunityEvent> WithPipeline(const Caller& caller,
                                                                             OpportunitySettings settings, Cmd cmd) {
  return [caller, settings = std::move(settings), cmd = std::move(cmd)](const OpportunityState* s) mutable -> Decision {
    if (s != nullptr) {
      auto pipeline = PipelineById(settings, s->pipeline_id());
      if (!pipeline.ok()) return absl::FailedPreconditionError(pipeline.status().message());
      cmd.pipeline = *std::move(pipeline);
    }
    return Decide(s, caller, cmd);
  };
}

template <typename Cmd>
OpportunityEngine::DecideFn<OpportunityState, OpportunityEvent> Plain(const Caller& caller, Cmd cmd) {
  return PlainDecide<OpportunityState, OpportunityEvent>(caller, std::move(cmd));
}

}  // namespace

void OpportunityEngine::CreateOpportunity(const Caller& c, const v1::CreateOpportunityRequest& req,
                                          Callback<v1::Opportunity> done) {
  if (auto s = CheckRequestId(req.request_id()); !s.ok()) return done(s);
  if (!req.has_opportunity()) return done(InvalidFieldError("opportunity", "is required"));
  const v1::Opportunity& o = req.opportunity();
  if (!o.name().empty()) return done(InvalidFieldError("opportunity.name", "is assigned by the service"));
  auto customer_id = ParseName(o.customer(), "opportunity.customer", "customers");
  if (!customer_id.ok()) return done(customer_id.status());
  auto shared = std::make_shared<Callback<v1::Opportunity>>(std::move(done));
  AfterCustomerKnown(
      req.min_consistency_token(), *customer_id,
      [this, c, req, id = *customer_id, shared] { CreateOpportunityNow(c, req, id, std::move(*shared)); },
      [shared](absl::Status s) { (*shared)(std::move(s)); });
}

void OpportunityEngine::CreateOpportunityNow(const Caller& c, const v1::CreateOpportunityRequest& req,
                                             const std::string& customer_id, Callback<v1::Opportunity> done) {
  const v1::Opportunity& o = req.opportunity();
  auto settings = ReadSettings(db_->db());
  if (!settings.ok()) return done(settings.status());
  auto pipeline = PipelineById(*settings, o.pipeline_id());
  if (!pipeline.ok()) return done(InvalidFieldError("opportunity.pipeline_id", pipeline.status().message()));
  auto customer = ReadCustomerView(db_->db(), customer_id);
  if (!customer.ok()) return done(customer.status());
  opportunities::CreateOpportunity cmd{ProfileOf(o, customer_id), *pipeline, o.stage_id(), *customer};
  Execute<OpportunityState, OpportunityEvent>(c, NewId("opportunities", req.request_id(), clock()->Now()),
                                              req.request_id(), Plain(c, std::move(cmd)),
                                              Reply<OpportunityState, v1::Opportunity>(this, std::move(done)));
}

void OpportunityEngine::UpdateOpportunity(const Caller& c, const v1::UpdateOpportunityRequest& req,
                                          Callback<v1::Opportunity> done) {
  auto target = ParseTarget(req.request_id(), req.opportunity().name(), "opportunity.name", req.opportunity().etag(),
                            "opportunity.etag", "opportunities");
  if (!target.ok()) return done(target.status());
  const v1::Opportunity& o = req.opportunity();
  opportunities::UpdateOpportunity cmd;
  cmd.profile = ProfileOf(o, "");
  std::vector<std::string> paths(req.update_mask().paths().begin(), req.update_mask().paths().end());
  if (paths.empty()) {
    // No mask: every field the request sets (AIP-134).
    for (const auto& f : ApiEditable()) {
      const auto* fd = v1::Opportunity::descriptor()->FindFieldByName(f);
      const auto* r = o.GetReflection();
      if (fd->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE ? r->HasField(o, fd)
                                                                                : !r->GetString(o, fd).empty()) {
        paths.push_back(f);
      }
    }
  }
  for (const auto& p : paths) {
    if (std::find(ApiEditable().begin(), ApiEditable().end(), p) == ApiEditable().end()) {
      return done(InvalidFieldError("update_mask", absl::StrCat("'", p, "' is not an editable field (",
                                                                absl::StrJoin(ApiEditable(), ", "), ")")));
    }
    cmd.paths.push_back(ProfileField(p));
  }
  Execute<OpportunityState, OpportunityEvent>(c, Versioned(*target, "opportunity.etag"), req.request_id(),
                                              Plain(c, std::move(cmd)),
                                              Reply<OpportunityState, v1::Opportunity>(this, std::move(done)));
}

void OpportunityEngine::DeleteOpportunity(const Caller& c, const v1::DeleteOpportunityRequest& req,
                                          Callback<v1::Opportunity> done) {
  auto target = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "opportunities");
  if (!target.ok()) return done(target.status());
  Execute<OpportunityState, OpportunityEvent>(c, Versioned(*target, "etag"), req.request_id(),
                                              Plain(c, opportunities::DeleteOpportunity{req.reason()}),
                                              Reply<OpportunityState, v1::Opportunity>(this, std::move(done)));
}

void OpportunityEngine::UndeleteOpportunity(const Caller& c, const v1::UndeleteOpportunityRequest& req,
                                            Callback<v1::Opportunity> done) {
  auto target = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "opportunities");
  if (!target.ok()) return done(target.status());
  Execute<OpportunityState, OpportunityEvent>(c, Versioned(*target, "etag"), req.request_id(),
                                              Plain(c, opportunities::UndeleteOpportunity{}),
                                              Reply<OpportunityState, v1::Opportunity>(this, std::move(done)));
}

void OpportunityEngine::MoveStage(const Caller& c, const v1::MoveOpportunityStageRequest& req,
                                  Callback<v1::Opportunity> done) {
  auto target = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "opportunities");
  if (!target.ok()) return done(target.status());
  if (req.stage_id().empty()) return done(InvalidFieldError("stage_id", "is required"));
  auto settings = ReadSettings(db_->db());
  if (!settings.ok()) return done(settings.status());
  opportunities::MoveStage cmd{req.stage_id(), req.note(), {}};
  Execute<OpportunityState, OpportunityEvent>(c, Versioned(*target, "etag"), req.request_id(),
                                              WithPipeline(c, *std::move(settings), std::move(cmd)),
                                              Reply<OpportunityState, v1::Opportunity>(this, std::move(done)));
}

void OpportunityEngine::Win(const Caller& c, const v1::WinOpportunityRequest& req, Callback<v1::Opportunity> done) {
  auto target = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "opportunities");
  if (!target.ok()) return done(target.status());
  auto settings = ReadSettings(db_->db());
  if (!settings.ok()) return done(settings.status());
  opportunities::Win cmd{req.amount(), req.reason(), {}};
  Execute<OpportunityState, OpportunityEvent>(c, Versioned(*target, "etag"), req.request_id(),
                                              WithPipeline(c, *std::move(settings), std::move(cmd)),
                                              Reply<OpportunityState, v1::Opportunity>(this, std::move(done)));
}

void OpportunityEngine::Lose(const Caller& c, const v1::LoseOpportunityRequest& req, Callback<v1::Opportunity> done) {
  auto target = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "opportunities");
  if (!target.ok()) return done(target.status());
  auto settings = ReadSettings(db_->db());
  if (!settings.ok()) return done(settings.status());
  opportunities::Lose cmd{req.reason(), req.stage_id(), {}};
  Execute<OpportunityState, OpportunityEvent>(c, Versioned(*target, "etag"), req.request_id(),
                                              WithPipeline(c, *std::move(settings), std::move(cmd)),
                                              Reply<OpportunityState, v1::Opportunity>(this, std::move(done)));
}

void OpportunityEngine::Reopen(const Caller& c, const v1::ReopenOpportunityRequest& req,
                               Callback<v1::Opportunity> done) {
  auto target = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "opportunities");
  if (!target.ok()) return done(target.status());
  auto settings = ReadSettings(db_->db());
  if (!settings.ok()) return done(settings.status());
  opportunities::Reopen cmd{req.stage_id(), req.reason(), {}};
  Execute<OpportunityState, OpportunityEvent>(c, Versioned(*target, "etag"), req.request_id(),
                                              WithPipeline(c, *std::move(settings), std::move(cmd)),
                                              Reply<OpportunityState, v1::Opportunity>(this, std::move(done)));
}

absl::StatusOr<v1::Opportunity> OpportunityEngine::GetOpportunity(const Caller& c,
                                                                  const v1::GetOpportunityRequest& req,
                                                                  absl::Time deadline) {
  CRM_ASSIGN_OR_RETURN(std::string id, ParseName(req.name(), "name", "opportunities"));
  CRM_ASSIGN_OR_RETURN(const absl::Time as_of,
                       OptionalClientTime(req.has_as_of_time(), req.as_of_time(), "as_of_time", absl::InfiniteFuture()));
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  CRM_ASSIGN_OR_RETURN(OpportunityState state, LoadVisible<OpportunityState>(c, id, req.name()));
  if (!req.has_as_of_time()) return ToApi(state);
  // Time travel: the opportunity's own events recorded up to as_of_time.
  CRM_ASSIGN_OR_RETURN(OpportunityState past,
                       PastStateOf<OpportunityState>(db_->db(), id, as_of, &UnpackOpportunityEvent));
  if (past.version() == 0) return absl::NotFoundError(absl::StrCat(req.name(), " did not exist at as_of_time"));
  return ToApi(past);
}

absl::StatusOr<v1::ListOpportunitiesResponse> OpportunityEngine::ListOpportunities(
    const Caller& c, const v1::ListOpportunitiesRequest& req, absl::Time deadline) {
  CRM_ASSIGN_OR_RETURN(int32_t page_size, PageSize(req.page_size(), "page_size"));
  CRM_ASSIGN_OR_RETURN(std::vector<FilterTerm> terms,
                       ParseFilterTerms(req.filter(), {"customer", "owner_id", "team_id", "stage_id", "pipeline_id",
                                                       "status", "customer_deleted"}));
  std::string customer_id, owner;
  int status = -1;
  for (auto& t : terms) {
    if (t.field == "customer") {
      CRM_ASSIGN_OR_RETURN(customer_id, ParseName(t.value, "filter", "customers"));
    } else if (t.field == "owner_id") {
      owner = t.value;
    } else if (t.field == "status") {
      v1::OpportunityStatus st;
      if (!v1::OpportunityStatus_Parse(absl::StrCat("OPPORTUNITY_STATUS_", t.value), &st) ||
          st == v1::OPPORTUNITY_STATUS_UNSPECIFIED) {
        return InvalidFieldError("filter", absl::StrCat("status is OPEN, WON or LOST, not '", t.value, "'"));
      }
      status = st;
    } else if (t.field == "customer_deleted" && t.value != "true" && t.value != "false") {
      return InvalidFieldError("filter", "customer_deleted is true or false");
    }
  }
  CRM_ASSIGN_OR_RETURN(OrderBy order_by, ParseOrderBy(req.order_by(), {"create_time", "update_time", "amount",
                                                                        "expected_close_date"}, "create_time"));
  const std::string& order = order_by.field;
  const bool desc = order_by.desc;
  const std::string fingerprint = absl::StrCat(req.filter(), "|", req.order_by(), "|", req.show_deleted());
  CRM_ASSIGN_OR_RETURN(int64_t offset, ParsePageToken(req.page_token(), fingerprint));
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));

  const rocksdb::Snapshot* snap = db_->db()->GetSnapshot();
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  auto release = absl::MakeCleanup([&] { db_->db()->ReleaseSnapshot(snap); });
  CRM_ASSIGN_OR_RETURN(OpportunitySettings settings, ReadSettings(db_->db()));
  const std::vector<v1::Pipeline> pipelines = EffectivePipelines(settings);
  auto probability = [&](const OpportunityState& s) {
    for (const auto& p : pipelines) {
      if (p.id() != s.pipeline_id()) continue;
      if (const v1::Stage* st = FindStage(p, s.stage_id())) return st->win_probability();
    }
    return 0;
  };
  v1::ListOpportunitiesResponse resp;
  std::vector<std::pair<std::string, OpportunityState>> matches;  // sort key, state
  auto consider = [&](OpportunityState s) -> absl::Status {
    if (s.deleted() && !req.show_deleted()) return absl::OkStatus();
    if (!CanSee(c, s)) return absl::OkStatus();
    for (const auto& t : terms) {
      const auto& p = s.profile();
      if ((t.field == "customer" && p.customer_id() != customer_id) || (t.field == "owner_id" && p.owner_id() != t.value) ||
          (t.field == "team_id" && p.team_id() != t.value) || (t.field == "stage_id" && s.stage_id() != t.value) ||
          (t.field == "pipeline_id" && s.pipeline_id() != t.value) || (t.field == "status" && s.status() != status) ||
          (t.field == "customer_deleted" && s.customer_deleted() != (t.value == "true"))) {
        return absl::OkStatus();
      }
    }
    const std::string currency = s.profile().amount().currency().empty() ? "CNY" : s.profile().amount().currency();
    CRM_RETURN_IF_ERROR(money::AddTo(&(*resp.mutable_total_amount_minor())[currency],
                                     s.profile().amount().amount_minor(), "total_amount_minor"));
    int64_t weighted = 0;
    if (s.status() == v1::OPPORTUNITY_STATUS_OPEN) {
      CRM_ASSIGN_OR_RETURN(weighted, money::MulDiv(s.profile().amount().amount_minor(), probability(s), 100));
    } else if (s.status() == v1::OPPORTUNITY_STATUS_WON) {
      weighted = s.won_amount().amount_minor();
    }
    CRM_RETURN_IF_ERROR(money::AddTo(&(*resp.mutable_weighted_amount_minor())[currency], weighted,
                                     "weighted_amount_minor"));
    std::string key;
    if (order == "amount") {
      key = absl::StrFormat("%020d", s.profile().amount().amount_minor());
    } else if (order == "expected_close_date") {
      key = s.profile().expected_close_date();
    } else {
      key = TimeSortKey(order == "update_time" ? s.update_time() : s.create_time());
    }
    matches.emplace_back(std::move(key), std::move(s));
    return absl::OkStatus();
  };
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(ro));
  if (!customer_id.empty() || !owner.empty()) {
    // An index narrows the scan to one customer's or one owner's opportunities.
    const std::string prefix =
        customer_id.empty() ? rows::ByOwnerPrefix(owner) : rows::ByCustomerPrefix(customer_id);
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      CRM_ASSIGN_OR_RETURN(auto s, ReadState<OpportunityState>(db_->db(), ro,
                                                               rows::Opportunity(it->key().ToString().substr(prefix.size()))));
      if (s.has_value()) CRM_RETURN_IF_ERROR(consider(*std::move(s)));
    }
  } else {
    for (it->Seek("o/"); it->Valid() && it->key().starts_with("o/"); it->Next()) {
      OpportunityState s;
      if (!s.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
        return absl::DataLossError("undecodable opportunity state");
      }
      CRM_RETURN_IF_ERROR(consider(std::move(s)));
    }
  }
  CRM_RETURN_IF_ERROR(FromRocks(it->status(), "scan opportunities"));
  std::sort(matches.begin(), matches.end(), [&](const auto& a, const auto& b) {
    if (a.first != b.first) return desc ? a.first > b.first : a.first < b.first;
    return a.second.id() < b.second.id();
  });
  resp.set_total_size(static_cast<int32_t>(matches.size()));
  for (int64_t i = offset; i < static_cast<int64_t>(matches.size()) && resp.opportunities_size() < page_size; ++i) {
    *resp.add_opportunities() = ToApi(matches[i].second);
  }
  if (offset + resp.opportunities_size() < static_cast<int64_t>(matches.size())) {
    resp.set_next_page_token(PageToken(offset + resp.opportunities_size(), fingerprint));
  }
  return resp;
}

}  // namespace crm::opportunities
